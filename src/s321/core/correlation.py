"""The join: one shipment's manifest, pilot record and Type 86 entry, merged into one state.

Pure functions over :class:`ShipmentState`; the Faust agent only stores the state and sends what
these functions return. Semantics (event time throughout, so a replay decides the same way):

* **Key.** The normalised house bill, else the tracking number (Type 86: its bill number).
* **Newest wins.** Each part keeps the newest event by (event time, event id); an older event
  arriving late is recorded as seen but changes nothing. An event id already seen is a
  duplicate and changes nothing.
* **Deadlines.** A manifest without a pilot record waits until ``pilot_wait`` of event time
  after the manifest, or the manifest's estimated arrival if sooner; then the shipment is decided
  on what is present (the missing-advance-data rule fires). Pilot or Type 86 data without a
  manifest waits ``manifest_wait`` (24 h) and is then reported unmatched, undecided.
* **Decide** when manifest and pilot record are both present, or when the pilot deadline passed;
  re-evaluate on every later change, and publish a new version only when the outcome or its
  reasons change. A manifest DELETE publishes a CANCELLED version.
* **Invalid records.** A record that broke a validation bound (:mod:`s321.validation`) never
  becomes a part; the shipment it names keeps a :class:`Flag` per kind instead, and is held
  while it has one. A valid record of that kind read after it, which becomes the shipment's
  part, clears it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from s321.models import (
    Action,
    Entry86,
    InputRef,
    ManifestEvent,
    PilotRecord,
    normalise_bill,
)

__all__ = [
    "Deadlines",
    "Flag",
    "Part",
    "PartKind",
    "ShipmentState",
    "Step",
    "decision_id",
    "expire",
    "link_key",
    "merge",
    "shipment_key",
]

PartKind = Literal["manifest", "pilot", "entry86"]
InputEvent = ManifestEvent | PilotRecord | Entry86

_SEEN_LIMIT = 32
#: Distinct Type 86 entry numbers kept per bill: the rules ask only whether there is more than
#: one, and a bill flooded with entries must not grow its state without bound.
_ENTRY_NUMBERS_KEPT = 16


@dataclass(frozen=True)
class Deadlines:
    """How long a shipment waits for its partners, in event time."""

    pilot_wait: timedelta = timedelta(minutes=30)
    manifest_wait: timedelta = timedelta(hours=24)


def shipment_key(event: InputEvent) -> str | None:
    """The correlation key carried by the payload, or None when it carries no usable bill."""
    if isinstance(event, Entry86):
        return normalise_bill(event.bill_number)
    return normalise_bill(event.house_bill) or normalise_bill(event.tracking_number)


def link_key(event: InputEvent) -> str | None:
    """The second identifier a manifest carries (its tracking number when it also has a house
    bill): records keyed by it belong to the shipment keyed by :func:`shipment_key`."""
    if not isinstance(event, ManifestEvent):
        return None
    primary = shipment_key(event)
    other = normalise_bill(event.tracking_number)
    return other if other and other != primary else None


def kind_of(event: InputEvent) -> PartKind:
    if isinstance(event, ManifestEvent):
        return "manifest"
    if isinstance(event, PilotRecord):
        return "pilot"
    return "entry86"


def decision_id(key: str, version: int) -> str:
    """Deterministic id of a shipment's decision version: a replay produces the same id."""
    return hashlib.blake2b(f"{key}\x00{version}".encode(), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Part:
    """One stored input event: its original bytes plus where it came from."""

    raw: bytes
    ref: InputRef
    event_time_ms: int
    action: Action
    broker_time_ms: int

    def newer_than(self, other: Part) -> bool:
        return (self.event_time_ms, self.ref.event_id) > (other.event_time_ms, other.ref.event_id)


class Flag(NamedTuple):
    """A record of this shipment that failed validation: its kind, when it was received
    (broker time, milliseconds) and the fields it broke (names, never values)."""

    kind: str
    broker_ms: int
    fields: str


@dataclass(frozen=True, slots=True)
class ShipmentState:
    """Everything the join keeps for one shipment (stored in the changelogged table)."""

    key: str
    partition: int
    manifest: Part | None = None
    pilot: Part | None = None
    entry86: Part | None = None
    seen: tuple[str, ...] = ()
    deadline_ms: int | None = None
    pilot_expired: bool = False
    unmatched: bool = False
    version: int = 0
    signature: str = ""
    decided_ms: int | None = None
    alias_of: str | None = None  # this key is another identifier of shipment ``alias_of``
    entry_numbers: tuple[str, ...] = ()  # every Type 86 entry filed for this bill
    invalid: tuple[Flag, ...] = ()  # at most one per kind: the newest invalid record of it

    def part(self, kind: PartKind) -> Part | None:
        return getattr(self, kind)  # type: ignore[no-any-return]  # kind is one of three fields

    @property
    def cancelled(self) -> bool:
        return self.manifest is not None and self.manifest.action is Action.DELETE

    @property
    def ready(self) -> bool:
        """Enough is known to decide: manifest with pilot data, or the pilot deadline passed."""
        return self.manifest is not None and (self.pilot is not None or self.pilot_expired)


@dataclass(frozen=True, slots=True)
class Step:
    """What one merge or expiry asks the caller to do."""

    state: ShipmentState
    changed: bool
    decide: bool = False
    unmatched: bool = False
    duplicate: bool = False


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _deadline(
    state: ShipmentState, manifest: ManifestEvent | None, first_ms: int, deadlines: Deadlines
) -> int | None:
    if state.manifest is not None:
        if state.pilot is not None or state.pilot_expired or manifest is None:
            return None
        wait = state.manifest.event_time_ms + int(deadlines.pilot_wait.total_seconds() * 1000)
        return min(wait, _ms(manifest.estimated_arrival))
    if state.unmatched:
        return None
    return first_ms + int(deadlines.manifest_wait.total_seconds() * 1000)


def merge(
    state: ShipmentState | None,
    event: InputEvent,
    part: Part,
    partition: int,
    deadlines: Deadlines,
    key: str | None = None,
) -> Step:
    """Fold one decoded input event into its shipment's state."""
    key = key or shipment_key(event)
    assert key is not None, "callers route keyless events to the dead letters"
    if state is None:
        state = ShipmentState(key=key, partition=partition)
    if part.ref.event_id in state.seen:
        return Step(state, changed=False, duplicate=True)
    seen = (*state.seen, part.ref.event_id)[-_SEEN_LIMIT:]
    kind = kind_of(event)
    current = state.part(kind)
    if isinstance(event, Entry86):
        number = normalise_bill(event.entry_number) or ""
        if number not in state.entry_numbers and len(state.entry_numbers) < _ENTRY_NUMBERS_KEPT:
            # a second entry for one bill is a filing of its own, not an amendment: the
            # rules must see it even when it is older than the entry kept
            state = replace(state, entry_numbers=(*state.entry_numbers, number))
            if current is not None and not part.newer_than(current):
                return Step(replace(state, seen=seen), changed=True, decide=state.ready)
    if current is not None and not part.newer_than(current):
        return Step(replace(state, seen=seen), changed=False)
    if state.invalid:
        # received after an invalid record of its kind, it replaces what that record meant to
        # (received in the same millisecond, which came first is unknown: the flag stays)
        invalid = tuple(
            f for f in state.invalid if f.kind != kind or f.broker_ms >= part.broker_time_ms
        )
        state = replace(state, invalid=invalid)
    if kind == "manifest":
        state = replace(state, seen=seen, partition=partition, manifest=part)
    elif kind == "pilot":
        state = replace(state, seen=seen, partition=partition, pilot=part)
    else:
        state = replace(state, seen=seen, partition=partition, entry86=part)
    if state.unmatched and kind == "manifest":
        state = replace(state, unmatched=False)
    first_ms = min(p.event_time_ms for p in (state.manifest, state.pilot, state.entry86) if p)
    manifest = event if isinstance(event, ManifestEvent) else None
    if state.manifest is not None and manifest is None and state.deadline_ms is not None:
        deadline: int | None = state.deadline_ms if state.pilot is None else None
    else:
        deadline = _deadline(state, manifest, first_ms, deadlines)
    state = replace(state, deadline_ms=deadline)
    decide = state.ready or (state.cancelled and state.version > 0)
    return Step(state, changed=True, decide=decide)


def expire(state: ShipmentState, watermark_ms: int) -> Step:
    """Apply a passed deadline: decide without pilot data, or report the shipment unmatched."""
    if state.deadline_ms is None or state.deadline_ms > watermark_ms:
        return Step(state, changed=False)
    if state.manifest is not None:
        state = replace(state, deadline_ms=None, pilot_expired=True)
        return Step(state, changed=True, decide=True)
    state = replace(state, deadline_ms=None, unmatched=True)
    return Step(state, changed=True, unmatched=True)
