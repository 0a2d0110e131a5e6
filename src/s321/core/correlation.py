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
  manifest waits ``manifest_wait`` (24 h) and is then reported unmatched, undecided. A manifest
  whose release path is Type 86 waits for its entry until the filing deadline of its arrival
  date (:meth:`s321.regime.Regime.type86_due`: the arrival itself from 2024-04-13, the 15th
  calendar day after it before); if none is on file by then, the entry is marked missing and
  the shipment decided again (held for the missing entry). A later manifest that moves the
  deadline makes the entry due again by the new one.
* **Decide** when manifest and pilot record are both present, or when the pilot deadline passed;
  re-evaluate on every later change, and publish a new version only when the outcome or its
  reasons change. A manifest DELETE publishes a CANCELLED version.
* **Invalid records.** A record that broke a validation bound (:mod:`s321.validation`) never
  becomes a part; the shipment it names keeps a :class:`Flag` per kind instead, and is held
  while it has one. A valid record of that kind received after it, which becomes the
  shipment's part, clears it.

* **Forget.** A state holds personal data (the parts' records), so it is not kept for ever: once
  no deadline of it is pending, it is forgotten ``retention`` of event time after its last
  activity (its newest part's event time, its Type 86 filing deadline, or the receipt of its
  newest invalid record, whichever is latest) — deleted from the table, a tombstone on its
  changelog. Its decisions stay on the decisions topic. A record of the shipment read after
  that starts a new state (its version numbering continues from the version ledger while the
  ledger remembers it).

A state keeps each pending deadline; :attr:`ShipmentState.next_deadline_ms`, the soonest, and
:attr:`ShipmentState.forget_at_ms` are what the processor's deadline index holds and
:func:`expire` applies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from s321.models import (
    Action,
    Entry86,
    InputRef,
    ManifestEvent,
    PilotRecord,
    ReleasePath,
    normalise_bill,
)
from s321.regime import RegimeTable, default_regimes

__all__ = [
    "DEFAULT_RETENTION",
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
    "retained",
    "shipment_key",
]

PartKind = Literal["manifest", "pilot", "entry86"]
InputEvent = ManifestEvent | PilotRecord | Entry86

_SEEN_LIMIT = 32
#: Distinct Type 86 entry numbers kept per bill: the rules ask only whether there is more than
#: one, and a bill flooded with entries must not grow its state without bound.
_ENTRY_NUMBERS_KEPT = 16


#: How long a quiet shipment's state is kept by default: past the longest wait a shipment can
#: still be decided again by (a Type 86 entry filed up to 15 days after arrival before
#: 2024-04-13, and counted from the filing deadline itself), with a week's margin for a late
#: correction; the 24 h manifest wait is far inside it.
DEFAULT_RETENTION = timedelta(days=21)


@dataclass(frozen=True)
class Deadlines:
    """How long a shipment waits for its partners, in event time; the Type 86 filing deadline
    comes from the regime table in force at arrival. ``retention``: how long a state with
    nothing pending is kept after its last activity (see Forget above)."""

    pilot_wait: timedelta = timedelta(minutes=30)
    manifest_wait: timedelta = timedelta(hours=24)
    regimes: RegimeTable = field(default_factory=default_regimes)
    retention: timedelta = DEFAULT_RETENTION

    def entry_due_ms(self, manifest: ManifestEvent) -> int | None:
        """When the Type 86 entry a manifest asks for is overdue (the first millisecond after
        its filing deadline), or None when it asks for no Type 86 entry."""
        if manifest.release_path is not ReleasePath.TYPE_86:
            return None
        if manifest.header.action is Action.DELETE:
            return None  # a withdrawn manifest asks for no entry
        arrival = manifest.arrival
        return _ms(self.regimes.at(arrival).type86_due(arrival)) + 1


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
    entry_due_ms: int | None = None  # when the Type 86 entry the manifest asks for is overdue
    entry_expired: bool = False  # that deadline passed with no entry on file
    invalid: tuple[Flag, ...] = ()  # at most one per kind: the newest invalid record of it
    forget_ms: int | None = None  # when the state is deleted if nothing is pending by then

    def part(self, kind: PartKind) -> Part | None:
        return getattr(self, kind)  # type: ignore[no-any-return]  # kind is one of three fields

    def evolve(self, **changes: Any) -> ShipmentState:
        """A copy with ``changes``, as :func:`dataclasses.replace` makes one at about half the
        cost (a state is copied a few times for each record)."""
        if not changes.keys() <= _STATE_FIELD_SET:
            raise TypeError(f"no such field: {sorted(changes.keys() - _STATE_FIELD_SET)}")
        new = _new(ShipmentState)
        for name in _STATE_FIELDS:
            _set(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    @property
    def cancelled(self) -> bool:
        return self.manifest is not None and self.manifest.action is Action.DELETE

    @property
    def ready(self) -> bool:
        """Enough is known to decide: manifest with pilot data, or the pilot deadline passed."""
        return self.manifest is not None and (self.pilot is not None or self.pilot_expired)

    @property
    def entry_awaited(self) -> bool:
        """The manifest asks for a Type 86 entry, none is on file and its deadline is ahead."""
        return self.entry_due_ms is not None and self.entry86 is None and not self.entry_expired

    @property
    def entry_missing(self) -> bool:
        """No Type 86 entry is on file and its filing deadline has passed (event time)."""
        return self.entry_expired and self.entry86 is None

    @property
    def next_deadline_ms(self) -> int | None:
        """The soonest pending deadline: the partner wait, or the awaited entry's."""
        entry = self.entry_due_ms if self.entry_awaited else None
        if entry is None or (self.deadline_ms is not None and self.deadline_ms <= entry):
            return self.deadline_ms
        return entry

    @property
    def forget_at_ms(self) -> int | None:
        """When the state is to be forgotten: its :attr:`forget_ms` once no deadline is
        pending, else None (it is due again when they have passed)."""
        return self.forget_ms if self.next_deadline_ms is None else None


@dataclass(frozen=True, slots=True)
class Step:
    """What one merge or expiry asks the caller to do."""

    state: ShipmentState
    changed: bool
    decide: bool = False
    unmatched: bool = False
    duplicate: bool = False
    forget: bool = False  # delete the state: its retention ran out with nothing pending


_STATE_FIELDS = tuple(f.name for f in fields(ShipmentState))
_STATE_FIELD_SET = frozenset(_STATE_FIELDS)
_new = object.__new__
_set = object.__setattr__  # a frozen dataclass's own __init__ sets its fields so too


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def retained(state: ShipmentState, deadlines: Deadlines) -> ShipmentState:
    """``state`` with its :attr:`~ShipmentState.forget_ms`: ``deadlines.retention`` after its
    last activity (a part's event time or receipt time, whichever is later; the Type 86 filing
    deadline; the newest invalid record's receipt); None for a state with none of them (an
    identifier alias).

    Receipt counts because a partition's clock never runs ahead of the broker time of what it
    has read: a replay of old traffic, whose clock jumps to the time it is replayed, does not
    forget states that later records of the replay may still need."""
    forget = _forget_ms(state, deadlines)
    return state if forget == state.forget_ms else state.evolve(forget_ms=forget)


def _forget_ms(state: ShipmentState, deadlines: Deadlines) -> int | None:
    """The :attr:`~ShipmentState.forget_ms` :func:`retained` gives ``state``."""
    parts = [p for p in (state.manifest, state.pilot, state.entry86) if p]
    times = [max(p.event_time_ms, p.broker_time_ms) for p in parts]
    times += [f.broker_ms for f in state.invalid]
    if state.entry_due_ms is not None:
        times.append(state.entry_due_ms)
    return max(times) + int(deadlines.retention.total_seconds() * 1000) if times else None


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
            state = state.evolve(entry_numbers=(*state.entry_numbers, number))
            if current is not None and not part.newer_than(current):
                return Step(state.evolve(seen=seen), changed=True, decide=state.ready)
    if current is not None and not part.newer_than(current):
        return Step(state.evolve(seen=seen), changed=False)
    changes: dict[str, Any] = {"seen": seen, "partition": partition, kind: part}
    if state.invalid:
        # received after an invalid record of its kind, it replaces what that record meant to
        # (received in the same millisecond, which came first is unknown: the flag stays)
        changes["invalid"] = tuple(
            f for f in state.invalid if f.kind != kind or f.broker_ms >= part.broker_time_ms
        )
    if isinstance(event, ManifestEvent):
        due = deadlines.entry_due_ms(event)
        # a deadline that moved is judged again; the same one stays passed
        changes["entry_due_ms"] = due
        changes["entry_expired"] = state.entry_expired and due == state.entry_due_ms
        changes["unmatched"] = False
    state = state.evolve(**changes)
    first_ms = min(p.event_time_ms for p in (state.manifest, state.pilot, state.entry86) if p)
    manifest = event if isinstance(event, ManifestEvent) else None
    if state.manifest is not None and manifest is None and state.deadline_ms is not None:
        deadline: int | None = state.deadline_ms if state.pilot is None else None
    else:
        deadline = _deadline(state, manifest, first_ms, deadlines)
    # the time to forget it at does not depend on the deadline: both set in one copy
    state = state.evolve(deadline_ms=deadline, forget_ms=_forget_ms(state, deadlines))
    decide = state.ready or (state.cancelled and state.version > 0)
    return Step(state, changed=True, decide=decide)


def expire(state: ShipmentState, watermark_ms: int) -> Step:
    """Apply every deadline passed by ``watermark_ms``: decide without pilot data, report the
    shipment unmatched, or mark its Type 86 entry missing (decided again once it can be); or,
    with none pending, forget the state once its retention ran out."""
    due = state.next_deadline_ms
    if due is None:
        forget = state.forget_at_ms
        if forget is None or forget > watermark_ms:
            return Step(state, changed=False)
        return Step(state, changed=True, forget=True)
    if due > watermark_ms:
        return Step(state, changed=False)
    decide = unmatched = False
    if state.deadline_ms is not None and state.deadline_ms <= watermark_ms:
        if state.manifest is not None:
            state = state.evolve(deadline_ms=None, pilot_expired=True)
            decide = True
        else:
            state = state.evolve(deadline_ms=None, unmatched=True)
            unmatched = True
    entry = state.entry_due_ms if state.entry_awaited else None
    if entry is not None and entry <= watermark_ms:
        state = state.evolve(entry_expired=True)
        decide = decide or state.ready
    return Step(state, changed=True, decide=decide, unmatched=unmatched)
