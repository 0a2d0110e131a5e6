"""One pass over a :class:`~s321.models.CompleteRecord` into the flat facts every rule reads.

Computed once per evaluation so that 26 rules do not each walk the record. Holds references
to parties (rules hash them for evidence), never copies their text into evidence.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from s321.models import (
    Address,
    CompleteRecord,
    Entry86Line,
    LineItem,
    Party,
    PgaData,
    ReleasePath,
    address_key,
    party_key,
)

__all__ = ["FIELD_TYPES", "MEMO_LIMIT", "BoundedMemo", "Facts", "Line", "terms"]

_WORD = re.compile(r"[A-Z0-9]+")
_D0 = Decimal(0)

#: Entries a process-wide memo keeps before it starts over (descriptions, parties and
#: addresses repeat across shipments: sellers, products, reshippers).
MEMO_LIMIT = 50_000


class BoundedMemo(dict[Any, Any]):
    """A bounded memo: cleared when full (cheaper than LRU bookkeeping on every hit)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def __missing__(self, key: Any) -> Any:
        if len(self) >= MEMO_LIMIT:
            self.clear()
        value = self[key] = self.fn(key)
        return value


def _terms(text: str) -> tuple[str, ...]:
    words = _WORD.findall(text.upper())
    triples = (f"{a} {b} {c}" for a, b, c in zip(words, words[1:], words[2:], strict=False))
    return (*words, *(f"{a} {b}" for a, b in itertools.pairwise(words)), *triples)


_TERMS = BoundedMemo(_terms)
_WORDS = BoundedMemo(lambda text: tuple(_WORD.findall(text.upper())))
# party and address keys are memoised by the fields they read (name; line 1, city, postal code,
# country), not by the dataclass: a frozen dataclass hashes through a Python-level __hash__
_PARTY_KEYS: dict[tuple[str | None, ...], str] = {}
_ADDRESS_KEYS: dict[tuple[str | None, ...], str] = {}


def _remember(memo: dict[Any, str], key: Any, value: str) -> str:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def terms(text: str) -> tuple[str, ...]:
    """Upper-case words of ``text`` plus adjacent pairs and triples (multi-word keywords)."""
    result: tuple[str, ...] = _TERMS[text]
    return result


def words(text: str) -> tuple[str, ...]:
    """Upper-case words of ``text`` (letters and digits)."""
    result: tuple[str, ...] = _WORDS[text]
    return result


class Line(NamedTuple):
    """One goods line from the manifest or the Type 86 entry (a named tuple: built per line of
    every record, so it is cheap to make)."""

    source: str  # "manifest" | "entry86"
    description: str | None
    quantity: int
    value: Decimal
    weight_kg: Decimal | None
    hts: str | None
    origin: str | None
    pga: PgaData | None


def _read_lines(
    source: str,
    items: Sequence[LineItem] | Sequence[Entry86Line],
    origin: str | None,
    lines: list[Line],
    pga: list[Line],
) -> tuple[Decimal, int]:
    """Append an event's goods lines to ``lines`` (and to ``pga``, those with PGA data) and
    return their total value and quantity, in one pass (no generators: it runs per record).
    A line without an origin of its own (a Type 86 line never has one) has the event's."""
    value = _D0
    quantity = 0
    for li in items:
        value += li.value
        quantity += li.quantity
        if isinstance(li, LineItem):
            weight, where = li.weight_kg, li.origin_country or origin
        else:
            weight, where = None, origin
        line = Line(source, li.description, li.quantity, li.value, weight, li.hts, where, li.pga)
        lines.append(line)
        if li.pga is not None:
            pga.append(line)
    return value, quantity


class Facts:
    """The flat view of one record. Attributes are None where no source supplied them."""

    __slots__ = (
        "arrival",
        "carrier_code",
        "consignee",
        "declared_value",
        "described",
        "descriptions",
        "entry_quantity",
        "entry_value",
        "fields_cache",
        "filer_code",
        "freight_charge",
        "gift",
        "hts_origins",
        "lines",
        "listed_price",
        "manifest_quantity",
        "manifest_value",
        "mode",
        "origin",
        "origins",
        "parties",
        "pga_lines",
        "pilot_quantity",
        "quantity",
        "record",
        "release_path",
        "seller",
        "shipper_country",
        "weight_kg",
    )

    def __init__(self, record: CompleteRecord, now: datetime | None = None) -> None:
        self.record = record
        m, p, e = record.manifest, record.pilot, record.entry86
        lines: list[Line] = []
        pga: list[Line] = []
        if m is not None:
            self.arrival = m.actual_arrival or m.estimated_arrival
            self.release_path: ReleasePath | None = m.release_path
            value, quantity = _read_lines("manifest", m.lines, m.origin_country, lines, pga)
            self.manifest_value: Decimal | None = value
            self.gift = m.gift
            self.quantity: int | None = quantity
            self.manifest_quantity: int | None = quantity
            self.weight_kg: Decimal | None = m.shipping_weight_kg
            self.freight_charge: Decimal | None = m.freight_charge
            self.consignee: Party | None = m.consignee
            shipper_address = m.shipper.address
            self.shipper_country: str | None = shipper_address.country if shipper_address else None
            self.mode: str | None = m.mode._value_
            self.carrier_code: str | None = m.carrier_code
        else:
            self.arrival = (e.filed_at if e is not None else None) or now or datetime.now(UTC)
            self.release_path = ReleasePath.TYPE_86 if e is not None else None
            self.manifest_value = None
            self.gift = False
            self.manifest_quantity = None
            self.weight_kg = None
            self.freight_charge = None
            self.consignee = e.consignee if e is not None else (p.deliver_to if p else None)
            self.shipper_country = (
                e.shipper.address.country if e is not None and e.shipper.address else None
            )
            self.mode = p.mode._value_ if p is not None else None
            self.carrier_code = p.carrier_code if p is not None else None
        if e is not None:
            value, quantity = _read_lines("entry86", e.lines, e.origin_country, lines, pga)
            self.entry_value: Decimal | None = value
            self.entry_quantity: int | None = quantity
            self.filer_code: str | None = e.entry_number[:3]
            if m is None:
                self.quantity = quantity
        else:
            self.entry_value = None
            self.entry_quantity = None
            self.filer_code = None
            if m is None:
                self.quantity = None
        self.lines = tuple(lines)
        self.pga_lines: tuple[Line, ...] = tuple(pga)
        mv, ev = self.manifest_value, self.entry_value
        self.declared_value: Decimal | None = (
            ev if mv is None else mv if ev is None or not ev > mv else ev  # max(mv, ev)
        )
        self.origin: str | None = (
            (m.origin_country if m else None)
            or (e.origin_country if e else None)
            or (p.origin_country if p else None)
        )
        # these set operations, in this order, fix the tuples' order, and with it which list
        # hit a rule reports first
        origins = {li.origin for li in lines}
        if self.origin is not None:
            origins.add(self.origin)
        if p is not None and p.origin_country:
            origins.add(p.origin_country)
        if len(origins) > 1:
            origins.discard(None)
        self.origins: tuple[str | None, ...] = tuple(origins) if origins else (None,)
        pairs = {(li.hts, li.origin) for li in lines if li.hts}
        if p is not None and p.hts:
            pairs.add((p.hts, p.origin_country or self.origin))
        self.hts_origins: tuple[tuple[str, str | None], ...] = tuple(pairs)
        descs = [li.description for li in lines if li.description is not None]
        #: some goods line has a description (the pilot's enhanced one is not a line's)
        self.described = bool(descs)
        if p is not None and p.enhanced_description:
            descs.append(p.enhanced_description)
        self.descriptions: tuple[str, ...] = tuple(descs)
        parties: list[tuple[str, Party]] = []
        if m is not None:
            parties.append(("shipper", m.shipper))
            parties.append(("consignee", m.consignee))
        if e is not None:
            parties.append(("seller", e.shipper))
            parties.append(("consignee", e.consignee))
        if p is not None:
            self.seller: Party | None = p.seller or (e.shipper if e is not None else None)
            self.listed_price: Decimal | None = p.listed_price
            self.pilot_quantity: int | None = p.quantity
            if p.seller is not None:
                parties.append(("seller", p.seller))
            if p.shipment_initiator is not None:
                parties.append(("shipper", p.shipment_initiator))
            if p.deliver_to is not None:
                parties.append(("consignee", p.deliver_to))
            if p.manufacturer is not None:
                parties.append(("manufacturer", p.manufacturer))
            if p.buyer is not None:
                parties.append(("buyer", p.buyer))
        else:
            self.seller = e.shipper if e is not None else None
            self.listed_price = None
            self.pilot_quantity = None
        if m is not None:
            for li in m.lines:
                if li.manufacturer is not None:
                    parties.append(("manufacturer", li.manufacturer))
        unique: dict[tuple[str, str], tuple[str, Party]] = {}
        for role, party in parties:  # the first party of each role and name, in order
            unique.setdefault((role, party.name), (role, party))
        self.parties: tuple[tuple[str, Party], ...] = tuple(unique.values())
        self.fields_cache: dict[str, Any] | None = None

    @staticmethod
    def akey(address: Address) -> str:
        """:func:`address_key`, memoised across records (the same address hashes once)."""
        k = (address.line1, address.city, address.postal_code, address.country)
        found = _ADDRESS_KEYS.get(k)
        return found if found is not None else _remember(_ADDRESS_KEYS, k, address_key(address))

    @staticmethod
    def pkey(party: Party) -> str:
        """:func:`party_key`, memoised across records (the same party hashes once)."""
        a = party.address
        k = (party.name,) if a is None else (party.name, a.line1, a.city, a.postal_code, a.country)
        found = _PARTY_KEYS.get(k)
        return found if found is not None else _remember(_PARTY_KEYS, k, party_key(party))

    @staticmethod
    def terms(text: str) -> tuple[str, ...]:
        """:func:`terms`, memoised across records."""
        k: tuple[str, ...] = _TERMS[text]
        return k

    def field(self, name: str) -> Any:
        """One typed field a rule-set condition may name (see :data:`FIELD_TYPES`)."""
        return _GETTERS[name](self)

    def fields(self) -> dict[str, Any]:
        """Every typed field rule-set conditions may name (see :data:`FIELD_TYPES`)."""
        if self.fields_cache is None:
            self.fields_cache = {name: get(self) for name, get in _GETTERS.items()}
        return self.fields_cache


def _consignee_country(f: Facts) -> str | None:
    c = f.consignee
    return c.address.country if c is not None and c.address else None


_GETTERS: dict[str, Any] = {
    "declared_value": lambda f: f.declared_value,
    "manifest_value": lambda f: f.manifest_value,
    "entry_value": lambda f: f.entry_value,
    "freight_charge": lambda f: f.freight_charge,
    "weight_kg": lambda f: f.weight_kg,
    "quantity": lambda f: None if f.quantity is None else Decimal(f.quantity),
    "listed_price": lambda f: f.listed_price,
    "origin": lambda f: f.origin,
    "shipper_country": lambda f: f.shipper_country,
    "consignee_country": _consignee_country,
    "mode": lambda f: f.mode,
    "carrier_code": lambda f: f.carrier_code,
    "release_path": lambda f: None if f.release_path is None else f.release_path.value,
    "port_of_entry": lambda f: f.record.manifest.port_of_entry if f.record.manifest else None,
    "filer_code": lambda f: f.filer_code,
    "marketplace": lambda f: f.record.pilot.marketplace if f.record.pilot else None,
    "gift": lambda f: f.gift,
    "has_manifest": lambda f: f.record.manifest is not None,
    "has_pilot": lambda f: f.record.pilot is not None,
    "has_entry86": lambda f: f.record.entry86 is not None,
    "line_count": lambda f: Decimal(len(f.lines)),
    "hts_codes": lambda f: tuple(h for h, _ in f.hts_origins),
    "descriptions": lambda f: f.descriptions,
}


#: name -> rule-engine type name of every field a condition may use (checked at load).
FIELD_TYPES: dict[str, str] = {
    "declared_value": "FLOAT",
    "manifest_value": "FLOAT",
    "entry_value": "FLOAT",
    "freight_charge": "FLOAT",
    "weight_kg": "FLOAT",
    "quantity": "FLOAT",
    "listed_price": "FLOAT",
    "origin": "STRING",
    "shipper_country": "STRING",
    "consignee_country": "STRING",
    "mode": "STRING",
    "carrier_code": "STRING",
    "release_path": "STRING",
    "port_of_entry": "STRING",
    "filer_code": "STRING",
    "marketplace": "STRING",
    "gift": "BOOLEAN",
    "has_manifest": "BOOLEAN",
    "has_pilot": "BOOLEAN",
    "has_entry86": "BOOLEAN",
    "line_count": "FLOAT",
    "hts_codes": "ARRAY",
    "descriptions": "ARRAY",
}
