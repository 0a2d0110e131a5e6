"""How a :class:`~s321.core.correlation.ShipmentState` is stored in the table: JSON bytes.

JSON keeps the changelog readable with Kafka's own tools. The encoding starts with the
partition and the deadline (``{"p":<partition>,"dl":<deadline or null>,...``), so that
rebuilding the deadline index after a rebalance reads only the head of each state
(:func:`deadline_of`) instead of decoding it. A part (manifest, pilot record, Type 86 entry)
is a list: the raw input bytes in base64, where it was read (topic, partition, offset, event
id), its event time, its action and its broker time.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from s321.core.correlation import Flag, Part, ShipmentState
from s321.models import Action, InputRef

__all__ = ["deadline_of", "decode_state", "encode_state"]


def _part_out(p: Part | None) -> Any:
    if p is None:
        return None
    r = p.ref
    return [
        base64.b64encode(p.raw).decode(),
        r.topic,
        r.partition,
        r.offset,
        r.event_id,
        p.event_time_ms,
        p.action.value,
        p.broker_time_ms,
    ]


def _part_in(v: Any) -> Part | None:
    if v is None:
        return None
    raw, topic, partition, offset, event_id, et, action, bt = v
    return Part(
        base64.b64decode(raw), InputRef(topic, partition, offset, event_id), et, Action(action), bt
    )


def encode_state(s: ShipmentState) -> bytes:
    """The state's stored bytes, partition and next deadline first (see :func:`deadline_of`)."""
    d: dict[str, Any] = {
        "p": s.partition,
        "dl": s.next_deadline_ms,
        "k": s.key,
        "m": _part_out(s.manifest),
        "pi": _part_out(s.pilot),
        "e": _part_out(s.entry86),
        "seen": list(s.seen),
        "px": s.pilot_expired,
        "um": s.unmatched,
        "v": s.version,
        "sig": s.signature,
        "dm": s.decided_ms,
        "al": s.alias_of,
        "en": list(s.entry_numbers),
        "iv": [list(f) for f in s.invalid],
    }
    if s.entry_due_ms is not None:
        # only a Type 86 shipment has these; its head deadline may then be the entry's, and
        # "pw" keeps the partner wait (states without "pw" have it in "dl")
        d.update(pw=s.deadline_ms, ed=s.entry_due_ms, ex=s.entry_expired)
    return json.dumps(d, separators=(",", ":")).encode()


def decode_state(b: bytes) -> ShipmentState:
    """The state stored as ``b`` (a state without ``al`` or ``en`` is no alias and has seen no
    entry number; one without ``ed`` awaits no Type 86 entry; one without ``iv`` is not
    flagged)."""
    d = json.loads(b)
    return ShipmentState(
        key=d["k"],
        partition=d["p"],
        manifest=_part_in(d["m"]),
        pilot=_part_in(d["pi"]),
        entry86=_part_in(d["e"]),
        seen=tuple(d["seen"]),
        deadline_ms=d["pw"] if "pw" in d else d["dl"],
        pilot_expired=d["px"],
        unmatched=d["um"],
        version=d["v"],
        signature=d["sig"],
        decided_ms=d["dm"],
        alias_of=d.get("al"),
        entry_numbers=tuple(d.get("en", ())),
        entry_due_ms=d.get("ed"),
        entry_expired=d.get("ex", False),
        invalid=tuple(Flag(*f) for f in d.get("iv", ())),
    )


_HEAD = re.compile(rb'\{"p":(\d+),"dl":(null|\d+),')


def deadline_of(raw: bytes) -> tuple[int, int | None]:
    """A stored state's partition and next deadline, read from the head of its encoding; a
    state whose encoding does not start with them is decoded in full."""
    head = _HEAD.match(raw)
    if head is None:
        state = decode_state(raw)
        return state.partition, state.next_deadline_ms
    deadline = head.group(2)
    return int(head.group(1)), None if deadline == b"null" else int(deadline)
