"""``s321 validate``: input records checked offline, as the worker checks them at its edge.

A record is read from JSON lines, an Avro object container file or stdin (either form), then
encoded to the wire and read back with :mod:`s321.serialization` (the worker's decoder), and
judged by :func:`s321.validation.validate` with the time it is checked as its time of
receipt. What a record breaks is reported as field paths and bounds, never values.

The JSON form of an input record (one object per line)
    the fields of its Avro schema (``schemas/ManifestEvent.avsc``, ``PilotRecord.avsc``,
    ``Entry86.avsc``) by name, nested records as objects, arrays as arrays, plus ``"type"``:
    ``"ManifestEvent"``, ``"PilotRecord"`` or ``"Entry86"`` (optional when ``--type`` says it
    for the whole file). A union with null is the value or ``null`` (no ``{"string": ...}``
    wrapper); an optional field may be left out. Enums are their symbols (``"ADD"``).
    Amounts and weights (Avro ``decimal``) are decimal strings, ``"12.50"`` (a JSON number
    is taken exactly as written too); times (``timestamp-millis``) are ISO-8601 strings with
    an offset, ``"2025-03-01T08:30:00Z"``. :func:`to_json` writes this form.

Avro object container files
    written with the input schemas (any Avro library's container writer), one record type
    per file, the type taken from the file's schema name; or ``s321 generate --out`` files
    (records already in the wire format, read as the worker reads them).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from fastavro import parse_schema, reader, schemaless_reader, schemaless_writer

from s321 import serialization
from s321.models import Entry86, ManifestEvent, PilotRecord
from s321.validation import validate

__all__ = ["INPUT_TYPES", "Checked", "check_stream", "from_json", "to_json"]

#: The input types, by Avro record name.
INPUT_TYPES: Mapping[str, type[Any]] = {
    "ManifestEvent": ManifestEvent,
    "PilotRecord": PilotRecord,
    "Entry86": Entry86,
}

_OCF_MAGIC = b"Obj\x01"
_GENERATED = "s321.generator.GeneratedRecord"
_TOPIC_TYPES = {"s321.manifest.v1": "ManifestEvent", "s321.pilot.v1": "PilotRecord",
                "s321.entry86.v1": "Entry86"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Checked:
    """One record's verdict: its number (1-based), where it was (``line 7``), its type when
    known, and each problem as ``(field, rule)`` (empty: valid)."""

    number: int
    where: str
    type_name: str | None
    problems: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The verdict as printed: one line per problem, or one saying it is valid."""
        head = (
            f"record {self.number} ({self.where}{', ' + self.type_name if self.type_name else ''})"
        )
        if self.ok:
            return [f"{head}: valid"]
        return [f"{head}: {field}: {rule}" for field, rule in self.problems]


class _Unfit(Exception):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(field, rule)
        self.field = field
        self.rule = rule


# -- the JSON form ----------------------------------------------------------------------------


def _named(node: Any, out: dict[str, Any]) -> None:
    """Every named type defined in ``node``, under its short and full names."""
    if isinstance(node, list):
        for n in node:
            _named(n, out)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum") and "name" in node:
            out[node["name"]] = node
            out[f"{node.get('namespace', serialization.NAMESPACE)}.{node['name']}"] = node
        for f in node.get("fields", ()):
            _named(f["type"], out)
        if "items" in node:
            _named(node["items"], out)


_SCHEMAS = {name: serialization.schema(name) for name in INPUT_TYPES}
_NAMED: dict[str, Any] = {}
for _s in _SCHEMAS.values():
    _named(_s, _NAMED)
_PARSED = {name: parse_schema(s) for name, s in _SCHEMAS.items()}


_PRIMITIVES = {"string": "a string", "long": "an integer", "int": "an integer",
               "boolean": "true or false", "null": "null", "bytes": "a string"}  # fmt: skip


def _describe(node: Any) -> str:
    if isinstance(node, str):
        node = _NAMED.get(node, node)
    if isinstance(node, list):
        return " or ".join(_describe(n) for n in node)
    if isinstance(node, dict):
        logical = node.get("logicalType")
        if logical == "decimal":
            return "a decimal string"
        if logical == "timestamp-millis":
            return "an ISO-8601 time with an offset"
        if node["type"] == "enum":
            return "one of " + ", ".join(node["symbols"])
        if node["type"] == "record":
            return "an object"
        if node["type"] == "array":
            return "an array"
        return _describe(node["type"])
    return _PRIMITIVES.get(str(node), str(node))


def _convert(node: Any, value: Any, path: str) -> Any:
    """``value`` (parsed JSON) as the Avro library takes it for schema ``node``."""
    if isinstance(node, str) and node in _NAMED:
        node = _NAMED[node]
    if isinstance(node, list):  # a union: null or one branch
        if value is None and "null" in node:
            return None
        branches = [n for n in node if n != "null"]
        if len(branches) == 1:
            return _convert(branches[0], value, path)
        raise _Unfit(path, _describe(node))
    if isinstance(node, dict):
        logical = node.get("logicalType")
        if logical == "decimal":
            return _decimal(node, value, path)
        if logical == "timestamp-millis":
            if isinstance(value, str):
                try:
                    t = datetime.fromisoformat(value)
                except ValueError:
                    pass
                else:
                    if t.tzinfo is not None:
                        return t
            raise _Unfit(path, "an ISO-8601 time with an offset")
        kind = node["type"]
        if kind == "record":
            return _record(node, value, path)
        if kind == "enum":
            if value in node["symbols"]:
                return value
            raise _Unfit(path, _describe(node))
        if kind == "array":
            if not isinstance(value, list):
                raise _Unfit(path, "an array")
            return [_convert(node["items"], v, f"{path}[{i}]") for i, v in enumerate(value)]
        return _convert(kind, value, path)
    ok = {
        "string": isinstance(value, str),
        "long": isinstance(value, int) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }.get(node, False)
    if not ok:
        raise _Unfit(path, _describe(node))
    return value


def _decimal(node: dict[str, Any], value: Any, path: str) -> Decimal:
    """A decimal the schema's scale and precision hold (the Avro writer would refuse it
    without naming the field)."""
    number: Decimal | None = None
    if isinstance(value, str | Decimal | int) and not isinstance(value, bool):
        with contextlib.suppress(InvalidOperation):
            number = Decimal(value.strip() if isinstance(value, str) else value)
    if number is None or not number.is_finite():
        raise _Unfit(path, "a decimal string")
    scale, precision = int(node.get("scale", 0)), int(node["precision"])
    exponent = int(number.as_tuple().exponent)
    if -exponent > scale:
        raise _Unfit(path, f"at most {scale} decimal places")
    if len(number.scaleb(scale).quantize(Decimal(1)).as_tuple().digits) > precision:
        raise _Unfit(path, f"at most {precision} digits")
    return number


def _record(node: dict[str, Any], value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Unfit(path or "record", "an object")
    prefix = f"{path}." if path else ""
    known = {f["name"] for f in node["fields"]}
    extra = sorted(set(value) - known - ({"type"} if not path else set()))
    if extra:
        raise _Unfit(f"{prefix}{extra[0]}", f"not a field of {node['name']}")
    out: dict[str, Any] = {}
    for f in node["fields"]:
        name = f["name"]
        if name in value:
            out[name] = _convert(f["type"], value[name], prefix + name)
        elif "default" in f:
            out[name] = f["default"]
        else:
            raise _Unfit(prefix + name, f"required ({_describe(f['type'])})")
    return out


def _encode(type_name: str, record: dict[str, Any]) -> bytes:
    """``record`` (Avro-library values) as a single-object-encoded value."""
    buf = io.BytesIO()
    buf.write(serialization.MAGIC + serialization.fingerprint(type_name))
    try:
        schemaless_writer(buf, _PARSED[type_name], record)
    except (ValueError, TypeError, AttributeError, OverflowError, KeyError) as exc:
        raise _Unfit(
            "record", f"does not fit the {type_name} schema ({type(exc).__name__})"
        ) from None
    return buf.getvalue()


def from_json(obj: Any, type_name: str | None = None) -> Any:
    """The input event a JSON-form object describes (``type_name``, or its ``"type"``),
    read through the worker's decoder. Raises :class:`ValueError` naming the field at fault."""
    try:
        return serialization.decode(_encode(*_json_record(obj, type_name)))
    except _Unfit as exc:
        raise ValueError(f"{exc.field}: {exc.rule}") from None
    except serialization.DecodeError as exc:
        raise ValueError(f"record: {exc.reason}") from None


def _json_record(obj: Any, type_name: str | None) -> tuple[str, dict[str, Any]]:
    named = obj.get("type") if isinstance(obj, dict) else None
    if type_name is not None and named is not None and named != type_name:
        raise _Unfit("type", f"{type_name} (as --type says)")
    chosen = type_name or named
    if not isinstance(chosen, str) or chosen not in INPUT_TYPES:
        raise _Unfit("type", "one of " + ", ".join(INPUT_TYPES))
    return chosen, _record(_SCHEMAS[chosen], obj, "")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_json(event: ManifestEvent | PilotRecord | Entry86) -> dict[str, Any]:
    """``event`` in the JSON form (with its ``"type"``)."""
    name = type(event).__name__
    data = serialization.encode(event)
    record = schemaless_reader(io.BytesIO(data[10:]), _PARSED[name], None)
    return {"type": name, **_plain(record)}


# -- checking ---------------------------------------------------------------------------------


def _judge(number: int, where: str, type_name: str | None, value: bytes, now_ms: int) -> Checked:
    try:
        event = serialization.decode(value)
    except serialization.DecodeError as exc:
        return Checked(number, where, type_name, (("record", exc.reason),))
    if type(event) not in INPUT_TYPES.values():
        return Checked(number, where, type(event).__name__, (("type", "an input record"),))
    found = validate(event, received_ms=now_ms, size=len(value))
    return Checked(number, where, type(event).__name__, tuple((v.field, v.bound) for v in found))


def _json_lines(stream: IO[bytes], type_name: str | None, now_ms: int) -> Iterator[Checked]:
    number = 0
    for line_no, raw in enumerate(stream, 1):
        if not raw.strip():
            continue
        number += 1
        where = f"line {line_no}"
        try:
            obj = json.loads(raw, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8"
            yield Checked(number, where, None, (("record", f"not JSON ({why})"),))
            continue
        try:
            name, record = _json_record(obj, type_name)
            value = _encode(name, record)
        except _Unfit as exc:
            named = obj.get("type") if isinstance(obj, dict) else None
            shown = type_name or (named if named in INPUT_TYPES else None)
            yield Checked(number, where, shown, ((exc.field, exc.rule),))
            continue
        yield _judge(number, where, name, value, now_ms)


def _container(stream: IO[bytes], type_name: str | None, now_ms: int) -> Iterator[Checked]:
    records = reader(stream)
    schema: dict[str, Any] = records.writer_schema  # type: ignore[assignment]  # a record's schema
    full = f"{schema.get('namespace', '')}.{schema.get('name', '')}".lstrip(".")
    short = full.rsplit(".", 1)[-1]
    for number, item in enumerate(records, 1):
        rec: dict[str, Any] = item  # type: ignore[assignment]  # a record schema's rows
        where = f"record {number} of the container"
        if full == _GENERATED:
            base = str(rec["topic"])
            yield _judge(number, where, _TOPIC_TYPES.get(base), bytes(rec["value"]), now_ms)
            continue
        if short not in INPUT_TYPES or (type_name is not None and short != type_name):
            yield Checked(
                number,
                where,
                None,
                (("type", f"{type_name or 'an input record'} (the file's schema is {full})"),),
            )
            continue
        try:
            value = _encode(short, rec)
        except _Unfit as exc:
            yield Checked(number, where, short, ((exc.field, exc.rule),))
            continue
        yield _judge(number, where, short, value, now_ms)


def check_stream(
    stream: IO[bytes], type_name: str | None = None, now_ms: int | None = None
) -> Iterator[Checked]:
    """Every record in ``stream`` (an Avro container file if it starts like one, else JSON
    lines) with its verdict; ``now_ms``: the time of receipt assumed (default: now)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    head = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
    if head == _OCF_MAGIC:
        yield from _container(stream, type_name, now)
    else:
        yield from _json_lines(stream, type_name, now)
