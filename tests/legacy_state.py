"""The JSON layout shipment states were stored in before the compact encoding (the raw
records base64'd), written here so that tests can give the worker states written by the old
code."""

from __future__ import annotations

import base64
import json
from typing import Any

from s321.core.correlation import Part, ShipmentState

__all__ = ["encode_json"]


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


def encode_json(s: ShipmentState) -> bytes:
    """``s`` as the old code stored it (partition and next deadline first; the Type 86 fields
    only for a shipment that awaits an entry; no flags, which it did not have)."""
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
    }
    if s.entry_due_ms is not None:
        d.update(pw=s.deadline_ms, ed=s.entry_due_ms, ex=s.entry_expired)
    return json.dumps(d, separators=(",", ":")).encode()
