"""The one place that maps domain objects (:mod:`s321.models`) to Avro records and back.

Wire format
    By default every value is an Avro *single-object encoding*: ``C3 01``, the 8-byte
    little-endian CRC-64-AVRO fingerprint of the writer schema's Parsing Canonical Form, then
    the Avro binary body. Any Avro implementation can read it with the schema alone, no
    registry needed. A :class:`Serializer` built with a schema-registry URL writes the
    registry wire format instead (``00``, 4-byte big-endian schema id, body), registering each
    type under its record full name (``s321.v1.ManifestEvent``: the record-name strategy, so a
    type's subject is the same on every topic). Such a serializer still reads single-object
    encoded values, so producers can move to the registry one at a time.
    :func:`serializer` builds the one the settings ask for.

Contracts
    ``schemas/*.avsc`` (installed as :mod:`s321.schemas`) hold one named type each; they are
    parsed once, at import. Decimals (``bytes`` + ``decimal``) and timestamps (``long`` +
    ``timestamp-millis``) are converted here rather than by the Avro library: the conversion is
    strict (an amount with more decimal places than its scale, or more digits than its
    precision, is refused instead of rounded; a naive datetime is refused instead of guessed)
    and cheaper. Records written with a released older version of a schema
    (``schemas/released/v*/``) are read through Avro schema resolution into the current type.

Hostile input
    Every failure to read a value raises :class:`DecodeError` carrying the original bytes:
    wrong magic, unknown fingerprint, truncation, trailing bytes, out-of-range union or enum
    index, bad UTF-8, out-of-range amounts or times, another type than the one expected.
    (Enums are read as indexes, so a negative one is refused too; a negative *union* branch
    index, which no Avro writer produces, is read by the Avro library counting from the end
    and still yields a well-typed value.) A value
    larger than :data:`MAX_RECORD_BYTES` is refused before it is read; a length prefix larger
    than what is left of the value fails at once without allocating (the body is read from an
    in-memory buffer that never returns more than it holds), and arrays and maps over
    :data:`MAX_ITEMS` entries are refused.

>>> from datetime import UTC, datetime
>>> from s321.models import DeadLetter
>>> dl = DeadLetter("s321.pilot.v1", 0, 7, None, b"junk", {}, "DecodeError", "wrong magic",
...                 datetime(2024, 5, 1, tzinfo=UTC))
>>> data = encode(dl)
>>> data[:2] == MAGIC and data[2:10] == fingerprint("DeadLetter")
True
>>> decode(data, DeadLetter) == dl
True
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, Inexact, InvalidOperation
from importlib.resources import files
from typing import Any, TypeVar, cast, overload

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _crc64_hex
from fastavro.schema import to_parsing_canonical_form

from s321.errors import RecordError
from s321.models import (
    Action,
    Address,
    DeadLetter,
    Decision,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    InputRef,
    LineItem,
    ManifestEvent,
    Mode,
    Outcome,
    Party,
    PgaData,
    PilotRecord,
    ReleasePath,
    RuleHit,
    Severity,
)

__all__ = [
    "MAGIC",
    "MAX_ITEMS",
    "MAX_RECORD_BYTES",
    "NAMESPACE",
    "RECORD_TYPES",
    "TYPE_NAMES",
    "DecodeError",
    "EncodeError",
    "Serializer",
    "decode",
    "encode",
    "fingerprint",
    "released_schema",
    "released_versions",
    "schema",
    "serializer",
]

T = TypeVar("T")

#: Avro namespace of every s321 contract.
NAMESPACE = "s321.v1"
#: The two marker bytes that open an Avro single-object encoding.
MAGIC = b"\xc3\x01"
#: Largest encoded value accepted or produced; larger ones are refused unread.
MAX_RECORD_BYTES = 1 << 20
#: Most entries one array or map may hold (manifest lines, hits, evidence, headers, ...).
MAX_ITEMS = 10_000

#: Every named type, in dependency order (a type only refers to types before it).
TYPE_NAMES: tuple[str, ...] = (
    "Action",
    "FilerType",
    "Mode",
    "ReleasePath",
    "Severity",
    "Outcome",
    "Address",
    "Party",
    "PgaData",
    "LineItem",
    "EventHeader",
    "ManifestEvent",
    "PilotRecord",
    "Entry86Line",
    "Entry86",
    "RuleHit",
    "InputRef",
    "Decision",
    "DeadLetter",
)

_CONFLUENT_MAGIC = 0
_SINGLE_OBJECT_HEADER = 10
_CONFLUENT_HEADER = 5


class DecodeError(RecordError):
    """Bytes that are not a valid s321 record (of the expected type).

    ``raw`` holds the bytes as received and ``reason`` says why, without personal data, so the
    pipeline can dead-letter the record unchanged.
    """

    def __init__(self, reason: str, raw: bytes | None = None) -> None:
        super().__init__(reason, raw)


class EncodeError(RecordError):
    """A domain object that cannot be written: wrong type, out-of-range or malformed value.

    ``reason`` names the type and the problem, never a field's personal-data value.
    """


# --- contracts -------------------------------------------------------------------------------


def _load(package: str, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    root = files(package)
    return {n: json.loads(root.joinpath(f"{n}.avsc").read_text("utf-8")) for n in names}


def _inline(node: Any, defs: Mapping[str, dict[str, Any]], seen: set[str]) -> Any:
    """A self-contained copy of ``node``: each named type defined at its first use."""
    if isinstance(node, str):
        short = node.removeprefix(NAMESPACE + ".")
        if short in defs and short not in seen:
            seen.add(short)
            return _inline(defs[short], defs, seen)
        return node
    if isinstance(node, list):
        return [_inline(n, defs, seen) for n in node]
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum") and "name" in node:
            seen.add(node["name"])
        out = dict(node)
        if node.get("type") == "record":
            out["fields"] = [{**f, "type": _inline(f["type"], defs, seen)} for f in node["fields"]]
        elif node.get("type") == "array":
            out["items"] = _inline(node["items"], defs, seen)
        elif node.get("type") == "map":
            out["values"] = _inline(node["values"], defs, seen)
        return out
    return node


def _plan(node: Any, enums_as_index: bool) -> Any:
    """The schema fastavro is given: decimal and timestamp logical types removed, and with
    ``enums_as_index`` every enum read and written as its index (a long). This module converts
    those itself (see the module docstring); reading enum indexes here is what lets a negative
    index be refused, where a list lookup would count it from the end."""
    if isinstance(node, list):
        return [_plan(n, enums_as_index) for n in node]
    if isinstance(node, str):
        return "long" if enums_as_index and node in _ENUM_NAMES else node
    if isinstance(node, dict):
        if node.get("logicalType") in ("decimal", "timestamp-millis"):
            return node["type"]
        if enums_as_index and node.get("type") == "enum":
            return "long"
        out = {k: _plan(v, enums_as_index) for k, v in node.items()}
        if enums_as_index and "fields" not in node and isinstance(node.get("default"), str):
            t = node.get("type")
            symbols = t.get("symbols") if isinstance(t, dict) else _ENUM_SYMBOLS.get(t or "")
            if symbols is not None:  # an enum field's default, now an index
                out["default"] = symbols.index(node["default"])
        return out
    return node


def _fingerprint_of(full: dict[str, Any]) -> bytes:
    return bytes.fromhex(_crc64_hex(to_parsing_canonical_form(full), "CRC-64-AVRO"))


_DEFS = _load("s321.schemas", TYPE_NAMES)
_FULL = {n: _inline(_DEFS[n], _DEFS, set()) for n in TYPE_NAMES}
_ENUM_SYMBOLS: dict[str, list[str]] = {
    name: d["symbols"]
    for n, d in _DEFS.items()
    if d["type"] == "enum"
    for name in (n, f"{NAMESPACE}.{n}")
}
_ENUM_NAMES = frozenset(_ENUM_SYMBOLS)


def _released() -> dict[str, dict[str, dict[str, Any]]]:
    root = files("s321.schemas").joinpath("released")
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not root.is_dir():
        return out
    for version in sorted(p.name for p in root.iterdir() if p.is_dir()):
        defs: dict[str, dict[str, Any]] = {}
        vdir = root.joinpath(version)
        for entry in vdir.iterdir():
            if entry.name.endswith(".avsc"):
                defs[entry.name.removesuffix(".avsc")] = json.loads(entry.read_text("utf-8"))
        out[version] = {n: _inline(defs[n], defs, set()) for n in defs}
    return out


_RELEASED = _released()


def schema(type_name: str) -> dict[str, Any]:
    """The current, self-contained Avro schema of ``type_name`` (a fresh copy, as parsed JSON).

    Named types it uses are defined inline at their first use, so any Avro implementation or a
    schema registry can take it as is.
    """
    try:
        return cast(dict[str, Any], json.loads(json.dumps(_FULL[type_name])))
    except KeyError:
        raise KeyError(f"no s321 schema named {type_name!r}") from None


def released_versions() -> tuple[str, ...]:
    """Names of the released schema versions kept in ``schemas/released/`` (``v1``, ...)."""
    return tuple(_RELEASED)


def released_schema(version: str, type_name: str) -> dict[str, Any]:
    """The self-contained schema of ``type_name`` as released in ``version``."""
    return cast(dict[str, Any], json.loads(json.dumps(_RELEASED[version][type_name])))


def fingerprint(type_name: str) -> bytes:
    """The 8-byte little-endian CRC-64-AVRO fingerprint of ``type_name``'s current schema, as
    written after ``C3 01`` in the single-object encoding."""
    return _fingerprint_of(_FULL[type_name])


# --- conversions -----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])
_MONEY_LIMIT = 10**14  # precision 14
_WEIGHT_LIMIT = 10**12  # precision 12
_INT32 = 1 << 31


class _Bad(Exception):
    """A value rejected by a conversion; becomes Encode/DecodeError with the type's name."""


def _dec_out(value: Decimal, places: int, limit: int) -> bytes:
    try:
        scaled = _EXACT.scaleb(value, places)
        unscaled = int(scaled)
    except (InvalidOperation, ArithmeticError, ValueError, TypeError) as exc:
        raise _Bad(f"amount is not a finite decimal with at most {places} places") from exc
    if unscaled != scaled:
        raise _Bad(f"amount has more than {places} decimal places")
    if not -limit < unscaled < limit:
        raise _Bad("amount exceeds the schema's decimal precision")
    return unscaled.to_bytes((unscaled.bit_length() + 8) >> 3, "big", signed=True)


# Amounts repeat (prices, weights), and both conversions cost microseconds: memoise them in
# small dicts, cleared when full. Only exact Decimals are cached: a float equal to a cached
# Decimal must still be refused.
_CACHE_SIZE = 4096
_MONEY_OUT: dict[Decimal, bytes] = {}
_WEIGHT_OUT: dict[Decimal, bytes] = {}
_MONEY_IN: dict[bytes, Decimal] = {}
_WEIGHT_IN: dict[bytes, Decimal] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _dec_out_cached(value: Decimal, cache: dict[Decimal, bytes], places: int, limit: int) -> bytes:
    if type(value) is not Decimal:
        raise _Bad("amount is not a Decimal")
    try:
        hit = cache.get(value)
    except TypeError as exc:  # a signalling NaN cannot be hashed
        raise _Bad("amount is not a finite decimal") from exc
    if hit is None:
        hit = _remember(cache, value, _dec_out(value, places, limit))
    return hit


def _money_out(value: Decimal) -> bytes:
    return _dec_out_cached(value, _MONEY_OUT, 2, _MONEY_LIMIT)


def _weight_out(value: Decimal) -> bytes:
    return _dec_out_cached(value, _WEIGHT_OUT, 3, _WEIGHT_LIMIT)


def _opt_money_out(value: Decimal | None) -> bytes | None:
    return None if value is None else _dec_out_cached(value, _MONEY_OUT, 2, _MONEY_LIMIT)


def _opt_weight_out(value: Decimal | None) -> bytes | None:
    return None if value is None else _dec_out_cached(value, _WEIGHT_OUT, 3, _WEIGHT_LIMIT)


def _dec_in(raw: bytes, places: int, limit: int) -> Decimal:
    if len(raw) > 7:  # 10**14 needs 48 bits plus a sign bit
        raise _Bad("decimal wider than the schema's precision")
    unscaled = int.from_bytes(raw, "big", signed=True)
    if not -limit < unscaled < limit:
        raise _Bad("decimal exceeds the schema's precision")
    return Decimal(unscaled).scaleb(-places)


def _dec_in_cached(raw: bytes, cache: dict[bytes, Decimal], places: int, limit: int) -> Decimal:
    hit = cache.get(raw)
    return hit if hit is not None else _remember(cache, raw, _dec_in(raw, places, limit))


def _money_in(raw: bytes) -> Decimal:
    return _dec_in_cached(raw, _MONEY_IN, 2, _MONEY_LIMIT)


def _weight_in(raw: bytes) -> Decimal:
    return _dec_in_cached(raw, _WEIGHT_IN, 3, _WEIGHT_LIMIT)


def _opt_money_in(raw: bytes | None) -> Decimal | None:
    return None if raw is None else _dec_in_cached(raw, _MONEY_IN, 2, _MONEY_LIMIT)


def _opt_weight_in(raw: bytes | None) -> Decimal | None:
    return None if raw is None else _dec_in_cached(raw, _WEIGHT_IN, 3, _WEIGHT_LIMIT)


def _ts_out(value: datetime) -> int:
    if value.tzinfo is None:
        raise _Bad("datetime is naive; s321 times must be timezone-aware")
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _opt_ts_out(value: datetime | None) -> int | None:
    return None if value is None else _ts_out(value)


def _ts_in(millis: int) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError as exc:
        raise _Bad("timestamp out of range") from exc


def _opt_ts_in(millis: int | None) -> datetime | None:
    return None if millis is None else _ts_in(millis)


def _int32(value: int) -> int:
    if not -_INT32 <= value < _INT32:
        raise _Bad("value out of the 32-bit int range")
    return value


def _items(seq: list[Any]) -> list[Any]:
    if len(seq) > MAX_ITEMS:
        raise _Bad(f"array or map with more than {MAX_ITEMS} entries")
    return seq


def _enum_maps(cls: Any) -> tuple[dict[int | str, Any], dict[str, int]]:
    """(index or symbol -> member, member -> index). Symbols are keys too because records
    read through schema resolution carry symbols (resolved by name), not indexes."""
    members = list(cls)
    read: dict[int | str, Any] = {i: m for i, m in enumerate(members)}
    read.update({m.value: m for m in members})
    return read, {m: i for i, m in enumerate(members)}


_ACTION, _ACTION_IX = _enum_maps(Action)
_FILER, _FILER_IX = _enum_maps(FilerType)
_MODE, _MODE_IX = _enum_maps(Mode)
_RELEASE, _RELEASE_IX = _enum_maps(ReleasePath)
_SEVERITY, _SEVERITY_IX = _enum_maps(Severity)
_OUTCOME, _OUTCOME_IX = _enum_maps(Outcome)


# --- domain <-> record, one pair per type ----------------------------------------------------
# Enums travel as their index (see _plan); an unknown member is a KeyError -> EncodeError.


def _address_out(a: Address) -> dict[str, Any]:
    return {
        "line1": a.line1,
        "city": a.city,
        "country": a.country,
        "region": a.region,
        "postal_code": a.postal_code,
    }


def _address_in(d: dict[str, Any]) -> Address:
    return Address(d["line1"], d["city"], d["country"], d["region"], d["postal_code"])


def _party_out(p: Party) -> dict[str, Any]:
    a = p.address
    return {
        "name": p.name,
        "address": None if a is None else _address_out(a),
        "party_id": p.party_id,
    }


def _opt_party_out(p: Party | None) -> dict[str, Any] | None:
    return None if p is None else _party_out(p)


def _party_in(d: dict[str, Any]) -> Party:
    a = d["address"]
    return Party(d["name"], None if a is None else _address_in(a), d["party_id"])


def _opt_party_in(d: dict[str, Any] | None) -> Party | None:
    return None if d is None else _party_in(d)


def _pga_out(p: PgaData | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"agency": p.agency, "program": p.program, "certificate_id": p.certificate_id}


def _pga_in(d: dict[str, Any] | None) -> PgaData | None:
    return None if d is None else PgaData(d["agency"], d["program"], d["certificate_id"])


def _line_out(x: LineItem) -> dict[str, Any]:
    return {
        "description": x.description,
        "quantity": x.quantity,
        "value": _money_out(x.value),
        "weight_kg": _opt_weight_out(x.weight_kg),
        "hts": x.hts,
        "origin_country": x.origin_country,
        "sku": x.sku,
        "gtin": x.gtin,
        "manufacturer": _opt_party_out(x.manufacturer),
        "pga": _pga_out(x.pga),
    }


def _line_in(d: dict[str, Any]) -> LineItem:
    return LineItem(
        d["description"],
        d["quantity"],
        _money_in(d["value"]),
        _opt_weight_in(d["weight_kg"]),
        d["hts"],
        d["origin_country"],
        d["sku"],
        d["gtin"],
        _opt_party_in(d["manufacturer"]),
        _pga_in(d["pga"]),
    )


def _header_out(h: EventHeader) -> dict[str, Any]:
    return {
        "event_id": h.event_id,
        "event_time": _ts_out(h.event_time),
        "source": h.source,
        "action": _ACTION_IX[h.action],
    }


def _header_in(d: dict[str, Any]) -> EventHeader:
    return EventHeader(d["event_id"], _ts_in(d["event_time"]), d["source"], _ACTION[d["action"]])


def _manifest_out(m: ManifestEvent) -> dict[str, Any]:
    return {
        "header": _header_out(m.header),
        "house_bill": m.house_bill,
        "tracking_number": m.tracking_number,
        "master_bill": m.master_bill,
        "carrier_code": m.carrier_code,
        "mode": _MODE_IX[m.mode],
        "port_of_entry": m.port_of_entry,
        "estimated_arrival": _ts_out(m.estimated_arrival),
        "shipper": _party_out(m.shipper),
        "consignee": _party_out(m.consignee),
        "origin_country": m.origin_country,
        "lines": [_line_out(x) for x in _items(list(m.lines))],
        "shipping_weight_kg": _weight_out(m.shipping_weight_kg),
        "release_path": _RELEASE_IX[m.release_path],
        "actual_arrival": _opt_ts_out(m.actual_arrival),
        "conveyance": m.conveyance,
        "port_of_lading": m.port_of_lading,
        "currency": m.currency,
        "freight_charge": _opt_money_out(m.freight_charge),
        "gift": m.gift,
        "nominal_consignee": _opt_party_out(m.nominal_consignee),
        "postal_item_id": m.postal_item_id,
    }


def _manifest_in(d: dict[str, Any]) -> ManifestEvent:
    return ManifestEvent(
        header=_header_in(d["header"]),
        house_bill=d["house_bill"],
        tracking_number=d["tracking_number"],
        master_bill=d["master_bill"],
        carrier_code=d["carrier_code"],
        mode=_MODE[d["mode"]],
        port_of_entry=d["port_of_entry"],
        estimated_arrival=_ts_in(d["estimated_arrival"]),
        shipper=_party_in(d["shipper"]),
        consignee=_party_in(d["consignee"]),
        origin_country=d["origin_country"],
        lines=tuple([_line_in(x) for x in _items(d["lines"])]),
        shipping_weight_kg=_weight_in(d["shipping_weight_kg"]),
        release_path=_RELEASE[d["release_path"]],
        actual_arrival=_opt_ts_in(d["actual_arrival"]),
        conveyance=d["conveyance"],
        port_of_lading=d["port_of_lading"],
        currency=d["currency"],
        freight_charge=_opt_money_in(d["freight_charge"]),
        gift=d["gift"],
        nominal_consignee=_opt_party_in(d["nominal_consignee"]),
        postal_item_id=d["postal_item_id"],
    )


def _pilot_out(p: PilotRecord) -> dict[str, Any]:
    return {
        "header": _header_out(p.header),
        "originator_code": p.originator_code,
        "filer_type": _FILER_IX[p.filer_type],
        "mode": _MODE_IX[p.mode],
        "tracking_number": p.tracking_number,
        "house_bill": p.house_bill,
        "master_bill": p.master_bill,
        "carrier_code": p.carrier_code,
        "shipment_initiator": _opt_party_out(p.shipment_initiator),
        "deliver_to": _opt_party_out(p.deliver_to),
        "enhanced_description": p.enhanced_description,
        "security_scan_verified": p.security_scan_verified,
        "known_customer": p.known_customer,
        "seller": _opt_party_out(p.seller),
        "marketplace": p.marketplace,
        "listed_price": _opt_money_out(p.listed_price),
        "currency": p.currency,
        "product_picture": p.product_picture,
        "listing_url": p.listing_url,
        "order_id": p.order_id,
        "order_date": _opt_ts_out(p.order_date),
        "buyer": _opt_party_out(p.buyer),
        "quantity": p.quantity,
        "sku": p.sku,
        "gtin": p.gtin,
        "manufacturer": _opt_party_out(p.manufacturer),
        "hts": p.hts,
        "origin_country": p.origin_country,
    }


def _pilot_in(d: dict[str, Any]) -> PilotRecord:
    return PilotRecord(
        header=_header_in(d["header"]),
        originator_code=d["originator_code"],
        filer_type=_FILER[d["filer_type"]],
        mode=_MODE[d["mode"]],
        tracking_number=d["tracking_number"],
        house_bill=d["house_bill"],
        master_bill=d["master_bill"],
        carrier_code=d["carrier_code"],
        shipment_initiator=_opt_party_in(d["shipment_initiator"]),
        deliver_to=_opt_party_in(d["deliver_to"]),
        enhanced_description=d["enhanced_description"],
        security_scan_verified=d["security_scan_verified"],
        known_customer=d["known_customer"],
        seller=_opt_party_in(d["seller"]),
        marketplace=d["marketplace"],
        listed_price=_opt_money_in(d["listed_price"]),
        currency=d["currency"],
        product_picture=d["product_picture"],
        listing_url=d["listing_url"],
        order_id=d["order_id"],
        order_date=_opt_ts_in(d["order_date"]),
        buyer=_opt_party_in(d["buyer"]),
        quantity=d["quantity"],
        sku=d["sku"],
        gtin=d["gtin"],
        manufacturer=_opt_party_in(d["manufacturer"]),
        hts=d["hts"],
        origin_country=d["origin_country"],
    )


def _e86_line_out(x: Entry86Line) -> dict[str, Any]:
    return {
        "hts": x.hts,
        "quantity": x.quantity,
        "value": _money_out(x.value),
        "description": x.description,
        "pga": _pga_out(x.pga),
    }


def _e86_line_in(d: dict[str, Any]) -> Entry86Line:
    return Entry86Line(
        d["hts"], d["quantity"], _money_in(d["value"]), d["description"], _pga_in(d["pga"])
    )


def _entry86_out(e: Entry86) -> dict[str, Any]:
    return {
        "header": _header_out(e.header),
        "bill_number": e.bill_number,
        "entry_number": e.entry_number,
        "port_of_entry": e.port_of_entry,
        "shipper": _party_out(e.shipper),
        "consignee": _party_out(e.consignee),
        "origin_country": e.origin_country,
        "lines": [_e86_line_out(x) for x in _items(list(e.lines))],
        "filed_at": _ts_out(e.filed_at),
        "importer_of_record": e.importer_of_record,
        "currency": e.currency,
    }


def _entry86_in(d: dict[str, Any]) -> Entry86:
    return Entry86(
        header=_header_in(d["header"]),
        bill_number=d["bill_number"],
        entry_number=d["entry_number"],
        port_of_entry=d["port_of_entry"],
        shipper=_party_in(d["shipper"]),
        consignee=_party_in(d["consignee"]),
        origin_country=d["origin_country"],
        lines=tuple([_e86_line_in(x) for x in _items(d["lines"])]),
        filed_at=_ts_in(d["filed_at"]),
        importer_of_record=d["importer_of_record"],
        currency=d["currency"],
    )


def _hit_out(h: RuleHit) -> dict[str, Any]:
    return {
        "rule_id": h.rule_id,
        "rule_version": _int32(h.rule_version),
        "severity": _SEVERITY_IX[h.severity],
        "reason_code": h.reason_code,
        "description": h.description,
        "evidence": _checked_map(h.evidence),
    }


def _hit_in(d: dict[str, Any]) -> RuleHit:
    return RuleHit(
        d["rule_id"],
        d["rule_version"],
        _SEVERITY[d["severity"]],
        d["reason_code"],
        d["description"],
        _checked_map(d["evidence"]),
    )


def _checked_map(m: Mapping[str, T]) -> dict[str, T]:
    if len(m) > MAX_ITEMS:
        raise _Bad(f"array or map with more than {MAX_ITEMS} entries")
    return m if type(m) is dict else dict(m)


def _ref_out(r: InputRef) -> dict[str, Any]:
    return {
        "topic": r.topic,
        "partition": _int32(r.partition),
        "offset": r.offset,
        "event_id": r.event_id,
    }


def _ref_in(d: dict[str, Any]) -> InputRef:
    return InputRef(d["topic"], d["partition"], d["offset"], d["event_id"])


def _decision_out(x: Decision) -> dict[str, Any]:
    return {
        "decision_id": x.decision_id,
        "shipment_key": x.shipment_key,
        "version": x.version,
        "outcome": _OUTCOME_IX[x.outcome],
        "hits": [_hit_out(h) for h in _items(list(x.hits))],
        "required_actions": _items(list(x.required_actions)),
        "regime_version": x.regime_version,
        "ruleset_version": x.ruleset_version,
        "refdata_version": x.refdata_version,
        "inputs": [_ref_out(r) for r in _items(list(x.inputs))],
        "event_time": _ts_out(x.event_time),
        "decided_at": _ts_out(x.decided_at),
        "latency_ms": x.latency_ms,
        "stale_refdata": x.stale_refdata,
        "not_applicable": _items(list(x.not_applicable)),
    }


def _decision_in(d: dict[str, Any]) -> Decision:
    return Decision(
        decision_id=d["decision_id"],
        shipment_key=d["shipment_key"],
        version=d["version"],
        outcome=_OUTCOME[d["outcome"]],
        hits=tuple([_hit_in(h) for h in _items(d["hits"])]),
        required_actions=tuple(_items(d["required_actions"])),
        regime_version=d["regime_version"],
        ruleset_version=d["ruleset_version"],
        refdata_version=d["refdata_version"],
        inputs=tuple([_ref_in(r) for r in _items(d["inputs"])]),
        event_time=_ts_in(d["event_time"]),
        decided_at=_ts_in(d["decided_at"]),
        latency_ms=d["latency_ms"],
        stale_refdata=d["stale_refdata"],
        not_applicable=tuple(_items(d["not_applicable"])),
    )


def _dead_out(x: DeadLetter) -> dict[str, Any]:
    return {
        "source_topic": x.source_topic,
        "partition": _int32(x.partition),
        "offset": x.offset,
        "key": x.key,
        "value": x.value,
        "headers": _checked_map(x.headers),
        "error_class": x.error_class,
        "reason": x.reason,
        "time": _ts_out(x.time),
    }


def _dead_in(d: dict[str, Any]) -> DeadLetter:
    return DeadLetter(
        source_topic=d["source_topic"],
        partition=d["partition"],
        offset=d["offset"],
        key=d["key"],
        value=d["value"],
        headers=_checked_map(d["headers"]),
        error_class=d["error_class"],
        reason=d["reason"],
        time=_ts_in(d["time"]),
    )


# --- codecs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Codec:
    """Everything needed to write and read one top-level type, prepared once."""

    name: str
    cls: type[Any]
    wire: dict[str, Any]  # parsed plan: logical types stripped, enums as indexes
    resolving: dict[str, Any]  # parsed plan with enums kept, the reader for older writers
    fingerprint: bytes
    header: bytes
    to_record: Callable[[Any], dict[str, Any]]
    from_record: Callable[[dict[str, Any]], Any]


def _wire(full: dict[str, Any], enums_as_index: bool = True) -> dict[str, Any]:
    return cast(dict[str, Any], parse_schema(_plan(full, enums_as_index)))


def _codec(
    cls: type[Any],
    to_record: Callable[[Any], dict[str, Any]],
    from_record: Callable[[dict[str, Any]], Any],
) -> _Codec:
    name = cls.__name__
    fp = _fingerprint_of(_FULL[name])
    full = _FULL[name]
    return _Codec(
        name, cls, _wire(full), _wire(full, False), fp, MAGIC + fp, to_record, from_record
    )


_CODECS: tuple[_Codec, ...] = (
    _codec(ManifestEvent, _manifest_out, _manifest_in),
    _codec(PilotRecord, _pilot_out, _pilot_in),
    _codec(Entry86, _entry86_out, _entry86_in),
    _codec(Decision, _decision_out, _decision_in),
    _codec(DeadLetter, _dead_out, _dead_in),
)

#: The types that travel on topics, the only ones :func:`encode` and :func:`decode` accept.
RECORD_TYPES: tuple[type[Any], ...] = tuple(c.cls for c in _CODECS)

_BY_CLASS: dict[type[Any], _Codec] = {c.cls: c for c in _CODECS}
_BY_NAME: dict[str, _Codec] = {c.name: c for c in _CODECS}
_BY_FULLNAME: dict[str, _Codec] = {f"{NAMESPACE}.{c.name}": c for c in _CODECS}


def _writers() -> Iterator[tuple[bytes, tuple[_Codec, dict[str, Any] | None]]]:
    """Fingerprint -> (codec, writer schema to resolve from, or None for the current one)."""
    for c in _CODECS:
        yield c.fingerprint, (c, None)
    for version in _RELEASED.values():
        for c in _CODECS:
            old = version.get(c.name)
            if old is not None and (fp := _fingerprint_of(old)) != c.fingerprint:
                yield fp, (c, _wire(old, False))


_BY_FINGERPRINT: dict[bytes, tuple[_Codec, dict[str, Any] | None]] = dict(_writers())


def _type_name_of(obj: object) -> str:
    return type(obj).__name__


def _read_body(
    data: bytes,
    start: int,
    codec: _Codec,
    writer: dict[str, Any] | None,
    expected: type[Any] | None,
) -> Any:
    if expected is not None and codec.cls is not expected:
        raise DecodeError(
            f"expected a {getattr(expected, '__name__', expected)} record, got {codec.name}", data
        )
    buf = io.BytesIO(data)
    buf.seek(start)
    try:
        if writer is None:
            record = schemaless_reader(buf, codec.wire, None)
        else:
            record = schemaless_reader(buf, writer, codec.resolving)
        if buf.tell() != len(data):
            raise DecodeError(
                f"{codec.name}: {len(data) - buf.tell()} trailing bytes after the record", data
            )
        return codec.from_record(cast(dict[str, Any], record))
    except DecodeError:
        raise
    except _Bad as exc:
        raise DecodeError(f"{codec.name}: {exc}", data) from None
    except EOFError:
        raise DecodeError(
            f"{codec.name}: truncated body or length beyond the value", data
        ) from None
    except UnicodeDecodeError:
        raise DecodeError(f"{codec.name}: a string is not valid UTF-8", data) from None
    except IndexError:
        raise DecodeError(f"{codec.name}: invalid union, enum or varint", data) from None
    except KeyError:
        raise DecodeError(f"{codec.name}: unknown enum symbol or missing field", data) from None
    except (ValueError, TypeError, OverflowError, MemoryError, RecursionError) as exc:
        raise DecodeError(f"{codec.name}: malformed body ({type(exc).__name__})", data) from None
    except Exception as exc:  # the Avro library's own errors (schema resolution) have no root
        raise DecodeError(f"{codec.name}: unreadable body ({type(exc).__name__})", data) from None


class Serializer:
    """Encodes and decodes s321 records, as single-object encoding or via a schema registry.

    ``Serializer()`` needs nothing else: values carry their schema's fingerprint. With
    ``registry_url``, values use the registry wire format; ``registry_config`` adds client
    settings (e.g. ``{"basic.auth.user.info": ...}``); ``registry_client`` shares a client
    already built. A ``mock://`` URL gives an in-memory registry, for tests. The registry is
    asked once per type and once per unseen schema id; failing to reach it raises the client's
    own error (retriable, unlike :class:`DecodeError`).
    """

    __slots__ = ("_by_id", "_client", "_ids")

    def __init__(
        self,
        registry_url: str | None = None,
        registry_config: Mapping[str, str] | None = None,
        *,
        registry_client: Any = None,
    ) -> None:
        self._client: Any = registry_client
        self._ids: dict[str, int] = {}
        self._by_id: dict[int, tuple[_Codec, dict[str, Any] | None]] = {}
        if registry_url and registry_client is None:
            from confluent_kafka.schema_registry import SchemaRegistryClient

            conf = {"url": registry_url, **(registry_config or {})}
            self._client = SchemaRegistryClient.new_client(conf)

    def close(self) -> None:
        """Close the registry client's connections (nothing to do without a registry)."""
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Serializer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def uses_registry(self) -> bool:
        """Whether values use the registry wire format rather than single-object encoding."""
        return self._client is not None

    def encode(self, obj: object) -> bytes:
        """``obj`` (a ManifestEvent, PilotRecord, Entry86, Decision or DeadLetter) as bytes.

        Raises :class:`EncodeError` for another type or a value the schema cannot hold.
        """
        codec = _BY_CLASS.get(type(obj))
        if codec is None:
            raise EncodeError(f"{_type_name_of(obj)} is not a top-level record type")
        header = codec.header if self._client is None else self._registry_header(codec)
        buf = io.BytesIO()
        buf.write(header)
        try:
            schemaless_writer(buf, codec.wire, codec.to_record(obj))
        except _Bad as exc:
            raise EncodeError(f"{codec.name}: {exc}") from None
        except (ValueError, TypeError, AttributeError, OverflowError, KeyError) as exc:
            raise EncodeError(
                f"{codec.name}: a field does not fit its schema ({type(exc).__name__})"
            ) from None
        if buf.tell() > MAX_RECORD_BYTES:
            raise EncodeError(f"{codec.name}: encoded size over {MAX_RECORD_BYTES} bytes")
        return buf.getvalue()

    @overload
    def decode(self, data: bytes, expected: type[T]) -> T: ...
    @overload
    def decode(self, data: bytes, expected: None = None) -> Any: ...

    def decode(self, data: bytes, expected: type[Any] | None = None) -> Any:
        """The domain object in ``data``; its type comes from the fingerprint or schema id.

        With ``expected``, a record of another type is refused. Raises :class:`DecodeError`.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"value is {type(data).__name__}, not bytes", None)
        data = bytes(data) if type(data) is not bytes else data
        if len(data) > MAX_RECORD_BYTES:
            raise DecodeError(f"value of {len(data)} bytes is over {MAX_RECORD_BYTES}", data)
        if self._client is not None and data[:2] != MAGIC:
            return self._decode_registry(data, expected)
        if data[:2] != MAGIC:
            raise DecodeError("not an Avro single-object encoding (wrong magic bytes)", data)
        if len(data) < _SINGLE_OBJECT_HEADER:
            raise DecodeError("value ends inside the single-object header", data)
        found = _BY_FINGERPRINT.get(data[2:_SINGLE_OBJECT_HEADER])
        if found is None:
            raise DecodeError(
                f"unknown schema fingerprint {data[2:_SINGLE_OBJECT_HEADER].hex()}", data
            )
        return _read_body(data, _SINGLE_OBJECT_HEADER, found[0], found[1], expected)

    def _registry_header(self, codec: _Codec) -> bytes:
        schema_id = self._ids.get(codec.name)
        if schema_id is None:
            from confluent_kafka.schema_registry import Schema

            text = json.dumps(_FULL[codec.name])
            schema_id = self._client.register_schema(
                f"{NAMESPACE}.{codec.name}", Schema(text, "AVRO")
            )
            self._ids[codec.name] = schema_id
            self._by_id[schema_id] = (codec, None)
        return bytes([_CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big")

    def _decode_registry(self, data: bytes, expected: type[Any] | None) -> Any:
        if len(data) < _CONFLUENT_HEADER or data[0] != _CONFLUENT_MAGIC:
            raise DecodeError("not a schema-registry framed value (wrong magic byte)", data)
        schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        found = self._by_id.get(schema_id)
        if found is None:
            found = self._lookup(schema_id, data)
        return _read_body(data, _CONFLUENT_HEADER, found[0], found[1], expected)

    def _lookup(self, schema_id: int, data: bytes) -> tuple[_Codec, dict[str, Any] | None]:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        try:
            registered = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if getattr(exc, "http_status_code", None) == 404:
                raise DecodeError(f"unknown schema id {schema_id}", data) from None
            raise
        writer = json.loads(registered.schema_str)
        name = writer.get("name", "") if isinstance(writer, dict) else ""
        full = name if "." in name else f"{writer.get('namespace', '')}.{name}"
        codec = _BY_FULLNAME.get(full)
        if codec is None:
            raise DecodeError(f"schema id {schema_id} is not an s321 record type", data)
        same = _fingerprint_of(writer) == codec.fingerprint
        found = (codec, None if same else _wire(writer, False))
        self._by_id[schema_id] = found
        return found


_DEFAULT = Serializer()


def serializer(registry_url: str = "", basic_auth: str = "") -> Serializer:
    """The serializer for a deployment: single-object encoding when ``registry_url`` is empty
    (the shared default instance), else the registry wire format through a client of that
    registry (``basic_auth`` is its ``user:password``, if it needs one)."""
    if not registry_url:
        return _DEFAULT
    config = {"basic.auth.user.info": basic_auth} if basic_auth else None
    return Serializer(registry_url, config)


def encode(obj: object) -> bytes:
    """``obj`` in Avro single-object encoding (see :meth:`Serializer.encode`)."""
    return _DEFAULT.encode(obj)


@overload
def decode(data: bytes, expected: type[T]) -> T: ...
@overload
def decode(data: bytes, expected: None = None) -> Any: ...


def decode(data: bytes, expected: type[Any] | None = None) -> Any:
    """The domain object in single-object-encoded ``data`` (see :meth:`Serializer.decode`)."""
    return _DEFAULT.decode(data, expected)
