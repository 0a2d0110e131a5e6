"""A corpus of hostile and broken values, each built from a real encoding.

Every entry is ``(name, data, expected type)``; decoding each must raise DecodeError quickly and
without large allocations. Bodies are forged by writing the real record with a "twin" schema in
which one field's type is swapped (an enum for a long, a string for bytes or a long), so the
forged bytes sit exactly where the real reader expects that field.
"""

from __future__ import annotations

import copy
import io
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from s321.models import DeadLetter, Decision, ManifestEvent
from s321.serialization import MAGIC, MAX_ITEMS, MAX_RECORD_BYTES, encode, fingerprint, schema
from tests.contract import samples

__all__ = ["BAD_INPUTS", "zigzag"]


def zigzag(n: int) -> bytes:
    """``n`` as an Avro long: zig-zag, then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _record(name: str, data: bytes) -> dict[str, Any]:
    record: Any = schemaless_reader(io.BytesIO(data[10:]), parse_schema(schema(name)))
    return dict(record)


def _forge(name: str, data: bytes, field: str, new_type: Any, value: Any) -> bytes:
    """``data`` re-encoded with ``field`` written as ``new_type`` holding ``value``."""
    twin = copy.deepcopy(schema(name))
    for f in twin["fields"]:
        if f["name"] == field:
            f["type"] = new_type
            f.pop("default", None)
    record = _record(name, data)
    record[field] = value
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(twin), record)
    return MAGIC + fingerprint(name) + buf.getvalue()


_M = encode(samples.manifest())
_D = encode(samples.decision())
_DL = encode(samples.dead_letter())
_FP = fingerprint("ManifestEvent")
_RAW = {"type": "fixed", "name": "Raw", "size": 0}


def _raw(payload: bytes) -> Any:
    """A fixed type of the payload's size: writes the payload bytes with no length prefix."""
    return {**_RAW, "name": f"Raw{len(payload)}", "size": len(payload)}


BAD_INPUTS: list[tuple[str, bytes, type[Any]]] = [
    ("empty", b"", ManifestEvent),
    ("magic only", MAGIC, ManifestEvent),
    ("header cut inside the fingerprint", _M[:6], ManifestEvent),
    ("header without body", _M[:10], ManifestEvent),
    ("wrong magic", b"\xc3\x02" + _M[2:], ManifestEvent),
    (
        "registry framing given to single-object reader",
        b"\x00\x00\x00\x00\x01" + _M[10:],
        ManifestEvent,
    ),
    ("unknown fingerprint", MAGIC + bytes(8) + _M[10:], ManifestEvent),
    ("body cut in half", _M[: len(_M) // 2], ManifestEvent),
    ("last byte missing", _M[:-1], ManifestEvent),
    ("trailing byte", _M + b"\x00", ManifestEvent),
    ("decision read as manifest", _D, ManifestEvent),
    ("decision body under the manifest fingerprint", MAGIC + _FP + _D[10:], ManifestEvent),
    (
        "dead-letter body under the decision fingerprint",
        MAGIC + fingerprint("Decision") + _DL[10:],
        Decision,
    ),
    ("required fields missing (header only)", _M[:10] + _M[10:40], ManifestEvent),
    ("invalid enum index", _forge("ManifestEvent", _M, "mode", "long", 99), ManifestEvent),
    ("negative enum index", _forge("ManifestEvent", _M, "mode", "long", -1), ManifestEvent),
    ("invalid union index", _forge("ManifestEvent", _M, "house_bill", "long", 7), ManifestEvent),
    (
        "bad UTF-8",
        _forge("ManifestEvent", _M, "carrier_code", "bytes", b"\xff\xfe\xfd"),
        ManifestEvent,
    ),
    (
        "string length prefix of 3 GB",
        _forge("ManifestEvent", _M, "carrier_code", "long", 3_000_000_000),
        ManifestEvent,
    ),
    (
        "negative string length",
        _forge("ManifestEvent", _M, "carrier_code", "long", -5),
        ManifestEvent,
    ),
    (
        "array claiming 4 billion lines",
        _forge("ManifestEvent", _M, "lines", "long", 4_000_000_000),
        ManifestEvent,
    ),
    (
        "negative array block with a huge byte size",
        _forge(
            "ManifestEvent",
            _M,
            "lines",
            _raw(zigzag(-2_000_000_000) + zigzag(2**40)),
            zigzag(-2_000_000_000) + zigzag(2**40),
        ),
        ManifestEvent,
    ),
    (
        "map claiming 2 billion headers",
        _forge("DeadLetter", _DL, "headers", "long", 2_000_000_000),
        DeadLetter,
    ),
    (
        "array far over the item limit",
        _forge(
            "Decision",
            _D,
            "required_actions",
            {"type": "array", "items": "string"},
            [""] * (MAX_ITEMS + 1),
        ),
        Decision,
    ),
    (
        "string far over the record size limit",
        _forge("ManifestEvent", _M, "carrier_code", "string", "x" * (2 * MAX_RECORD_BYTES)),
        ManifestEvent,
    ),
    (
        "timestamp out of range",
        _forge("ManifestEvent", _M, "estimated_arrival", "long", 2**62),
        ManifestEvent,
    ),
    (
        "decimal wider than its precision",
        _forge("ManifestEvent", _M, "shipping_weight_kg", "bytes", b"\x7f" * 40),
        ManifestEvent,
    ),
    (
        "varint longer than ten bytes",
        _forge("ManifestEvent", _M, "carrier_code", _raw(b"\xff" * 20), b"\xff" * 20),
        ManifestEvent,
    ),
]
