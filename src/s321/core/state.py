"""How a :class:`~s321.core.correlation.ShipmentState` is stored in the table.

Compact, so that a state fits one changelog record with margin whatever its inputs: the parts'
input records are kept as their own bytes, not re-encoded. Each is at most
:data:`s321.validation.MAX_RECORD_BYTES` (256 KiB), so a state stays under 800 KB, where
Kafka's default record limit is 1 MiB. The layout (integers big-endian)::

    b"\x00S3"                                  marker (a JSON state starts with "{")
    partition (u32), next deadline (i64; -1: none),        the head
    time to forget it at (i64; -1: none)
    length (i32), then JSON of all but the parts' bytes    readable with any JSON tool
    for manifest, pilot record and Type 86 entry in turn: length (i32; -1: absent), then
    the record's bytes as read from its topic (Avro, readable with its schema)

The head comes first so that rebuilding the deadline index after a rebalance reads only it
(:func:`deadlines_of`). In the JSON, a part is a list: where it was read (topic, partition,
offset, event id), its event time, its action and its broker time. States written as
``b"\x00S2"`` have no time to forget them at, in the head or the JSON (``fg``): they are read
as never forgotten until they next change.

States written before this encoding are JSON, the parts' bytes in base64
(``{"p":<partition>,"dl":<deadline or null>,...``): they are read as before, and written in
the compact encoding the next time they change.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from typing import Any

from s321.core.correlation import Flag, Part, ShipmentState
from s321.models import Action, InputRef

__all__ = ["StateCodec", "deadline_of", "deadlines_of", "decode_state", "encode_state"]

_MARKER = b"\x00S3"
_HEAD = struct.Struct(">Iqq")
_MARKER_S2 = b"\x00S2"  # before the time to forget: its head has no third field
_HEAD_S2 = struct.Struct(">Iq")
_LENGTH = struct.Struct(">i")
#: made once (``json.dumps`` with options makes an encoder per call)
_JSON = json.JSONEncoder(separators=(",", ":"))


def _ref_out(p: Part | None) -> Any:
    if p is None:
        return None
    r = p.ref
    return [
        r.topic,
        r.partition,
        r.offset,
        r.event_id,
        p.event_time_ms,
        p.action.value,
        p.broker_time_ms,
    ]


def _ref_in(v: Any, raw: bytes | None) -> Part | None:
    if v is None or raw is None:
        return None
    topic, partition, offset, event_id, et, action, bt = v
    return Part(raw, InputRef(topic, partition, offset, event_id), et, Action(action), bt)


def encode_state(s: ShipmentState) -> bytes:
    """The state's stored bytes: head (partition, next deadline), JSON, the parts' records."""
    meta = {
        "k": s.key,
        "m": _ref_out(s.manifest),
        "pi": _ref_out(s.pilot),
        "e": _ref_out(s.entry86),
        "seen": list(s.seen),
        "dl": s.deadline_ms,
        "px": s.pilot_expired,
        "um": s.unmatched,
        "v": s.version,
        "sig": s.signature,
        "dm": s.decided_ms,
        "al": s.alias_of,
        "en": list(s.entry_numbers),
        "ed": s.entry_due_ms,
        "ex": s.entry_expired,
        "iv": [list(f) for f in s.invalid],
        "fg": s.forget_ms,
    }
    text = _JSON.encode(meta).encode()
    deadline, forget = s.next_deadline_ms, s.forget_at_ms
    out = [
        _MARKER,
        _HEAD.pack(
            s.partition, -1 if deadline is None else deadline, -1 if forget is None else forget
        ),
        _LENGTH.pack(len(text)),
        text,
    ]
    for part in (s.manifest, s.pilot, s.entry86):
        if part is None:
            out.append(_LENGTH.pack(-1))
        else:
            out += (_LENGTH.pack(len(part.raw)), part.raw)
    return b"".join(out)


def decode_state(b: bytes) -> ShipmentState:
    """The state stored as ``b``, in the compact encoding or the JSON one before it."""
    if b.startswith(_MARKER):
        at = len(_MARKER) + _HEAD.size
    elif b.startswith(_MARKER_S2):
        at = len(_MARKER_S2) + _HEAD_S2.size
    else:
        return _decode_json(b)
    (size,) = _LENGTH.unpack_from(b, at)
    at += _LENGTH.size
    d = json.loads(b[at : at + size])
    at += size
    raws: list[bytes | None] = []
    for _ in range(3):
        (size,) = _LENGTH.unpack_from(b, at)
        at += _LENGTH.size
        raws.append(None if size < 0 else b[at : at + size])
        at += max(size, 0)
    (partition,) = struct.unpack_from(">I", b, len(_MARKER))
    return ShipmentState(
        key=d["k"],
        partition=partition,
        manifest=_ref_in(d["m"], raws[0]),
        pilot=_ref_in(d["pi"], raws[1]),
        entry86=_ref_in(d["e"], raws[2]),
        seen=tuple(d["seen"]),
        deadline_ms=d["dl"],
        pilot_expired=d["px"],
        unmatched=d["um"],
        version=d["v"],
        signature=d["sig"],
        decided_ms=d["dm"],
        alias_of=d["al"],
        entry_numbers=tuple(d["en"]),
        entry_due_ms=d["ed"],
        entry_expired=d["ex"],
        invalid=tuple(Flag(*f) for f in d["iv"]),
        forget_ms=d.get("fg"),
    )


class StateCodec:
    """:func:`encode_state` and :func:`decode_state`, remembering for the keys written most
    recently the bytes written and their state: a shipment's state is usually read again soon
    after it is written (its next input, its decision at the end of the batch), and reading
    those same bytes again returns the state without decoding them (states are immutable)."""

    def __init__(self, kept: int = 8192) -> None:
        self._kept = kept
        self._last: dict[str, tuple[bytes, ShipmentState]] = {}  # key -> bytes, state; newest last

    def encode(self, key: str, state: ShipmentState) -> bytes:
        raw = encode_state(state)
        last = self._last
        last.pop(key, None)
        if len(last) >= self._kept:
            del last[next(iter(last))]
        last[key] = (raw, state)
        return raw

    def decode(self, key: str, raw: bytes) -> ShipmentState:
        known = self._last.get(key)
        if known is not None and known[0] == raw:
            return known[1]
        return decode_state(raw)


def deadline_of(raw: bytes) -> tuple[int, int | None]:
    """A stored state's partition and next deadline (see :func:`deadlines_of`)."""
    partition, deadline, _ = deadlines_of(raw)
    return partition, deadline


def deadlines_of(raw: bytes) -> tuple[int, int | None, int | None]:
    """A stored state's partition, next deadline and time to forget it at
    (:attr:`~s321.core.correlation.ShipmentState.forget_at_ms`), read from the head of its
    encoding; a JSON state whose encoding does not start with them is decoded in full."""
    if raw.startswith(_MARKER):
        partition, deadline, forget = _HEAD.unpack_from(raw, len(_MARKER))
        return partition, None if deadline < 0 else deadline, None if forget < 0 else forget
    if raw.startswith(_MARKER_S2):
        partition, deadline = _HEAD_S2.unpack_from(raw, len(_MARKER_S2))
        return partition, None if deadline < 0 else deadline, None
    head = _JSON_HEAD.match(raw)
    if head is None:
        state = _decode_json(raw)
        return state.partition, state.next_deadline_ms, None
    found = head.group(2)
    return int(head.group(1)), None if found == b"null" else int(found), None


# -- the JSON encoding, read for states written before the compact one ------------------------

_JSON_HEAD = re.compile(rb'\{"p":(\d+),"dl":(null|\d+),')


def _part_in(v: Any) -> Part | None:
    if v is None:
        return None
    raw, topic, partition, offset, event_id, et, action, bt = v
    return Part(
        base64.b64decode(raw), InputRef(topic, partition, offset, event_id), et, Action(action), bt
    )


def _decode_json(b: bytes) -> ShipmentState:
    """A state in the JSON encoding (one without ``al`` or ``en`` is no alias and has seen no
    entry number; one without ``ed`` awaits no Type 86 entry; one without ``pw`` has its
    partner wait in ``dl``; none has a time to be forgotten at: it is forgotten once it changes)."""
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
    )
