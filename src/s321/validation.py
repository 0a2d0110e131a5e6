"""What a plausible input record is: the bounds every input event keeps, checked by
:func:`validate` before the record may change any state.

Decoding (:mod:`s321.serialization`) proves a record is well formed; this module says whether
it is *sane*: amounts and weights that are not negative or absurd, positive quantities, times
in a plausible window, text of bounded length without control or bidirectional-override
characters, a shipment key of the right form. Judging a sane record (an unknown country code,
a vague description, a fictitious consignee, a bad check digit) stays with the rules; a bound
here refuses only what no filer could mean and what the rules were never meant to read.
Pure: no Kafka, no Redis, so a command can check files with it as the worker checks records.

What the worker does with a record that breaks a bound (:mod:`s321.core.processor`): it goes
to the dead-letter topic, with its bytes, error class ``ValidationError`` and a reason naming
each field and bound broken (never a value), before it changes any state or any clock. If it
names its shipment (its key keeps its own bound), that shipment is flagged and held, reason
``DQ``/``INVALID_INPUT``, until a valid record of the same kind received after it replaces it:
a shipment is never released on data that failed validation.

Per field (every field of every input type has a bound, :data:`FIELDS`; ``None`` is accepted
wherever the field is optional; a nested party, address or line keeps its own fields' bounds):

- 1 or more printable ASCII, no space; at most 128 characters
    event_id
- from 2016-01-01 to before 2100-01-01
    event_time
- printable ASCII; at most 50 characters
    source, agency, program, carrier_code, port_of_entry, conveyance, port_of_lading,
    originator_code, entry_number
- any value of its type (checked when decoded)
    action, mode, release_path, gift, filer_type, security_scan_verified, known_customer
- text with no control, bidirectional-control, line-separator or private-use characters; at
  most 200 characters
    line1, name, marketplace
- text with no control, bidirectional-control, line-separator or private-use characters; at
  most 100 characters
    city, region
- empty, or 2 or 3 letters; at most 3 characters
    country, origin_country
- text with no control, bidirectional-control, line-separator or private-use characters; at
  most 20 characters
    postal_code
- printable ASCII; at most 100 characters
    party_id, certificate_id, sku, order_id, importer_of_record
- text with no control, bidirectional-control, line-separator or private-use characters; at
  most 1000 characters
    description, enhanced_description
- a whole number from 1 to 1000000
    quantity
- from 0 to 10000000.00 USD
    value, freight_charge, listed_price
- from 0 to 100000.000 kg
    weight_kg, shipping_weight_kg
- 6 to 10 digits; at most 10 characters
    LineItem.hts, PilotRecord.hts
- 8 to 14 digits; at most 14 characters
    gtin
- letters, digits, space and . / _ -; at most 50 characters, at most 35 letters and digits
    house_bill, tracking_number, master_bill, postal_item_id, bill_number
- from 2016-01-01 to before 2100-01-01, and from 30 days before to 180 days after the event
  time
    estimated_arrival, actual_arrival
- at most 999, each with its own fields' bounds
    lines
- USD (the rules compare amounts with U.S. dollar thresholds)
    currency
- text with no control, bidirectional-control, line-separator or private-use characters; at
  most 2048 characters
    product_picture, listing_url
- from 2016-01-01 to before 2100-01-01, and from 400 days before to 1 day after the event
  time
    order_date
- 10 digits; at most 10 characters
    Entry86Line.hts
- from 2016-01-01 to before 2100-01-01, and from 30 days before to 1 day after the event
  time
    filed_at

Per record:

- record size: the encoded value is at most 262144 bytes (256 KiB). A shipment keeps up to
  three records (manifest, pilot, Type 86) in its state, which must fit one changelog record
  (1 MB by default) with margin; a larger record is refused, not kept in part.
- shipment key: a manifest or pilot record carries a house bill or a tracking number, a Type
  86 entry a bill number, with at least one letter or digit once separators are removed.
- lines: a manifest or Type 86 entry has at least one line (a manifest DELETE may have none),
  and the sum of its line values is at most 10000000.00 USD, like each line's.
- header.event_time is at most 366 days (:data:`FUTURE_LIMIT`) ahead of the time the record
  was received (:func:`received_ms`: its broker timestamp, or the worker's clock when that is
  earlier or the record has none, since a producer sets the timestamp of a topic with
  CreateTime).

Event time and clocks. A record within that limit is accepted, but cannot move a clock past
the time it was received, nor move it alone (:mod:`s321.core.processor` keeps a clock per
partition; its deadlines fire when the clock passes them):

- a record counts for its input partition's clock with its event time capped at the time it
  was received (:func:`clock_time`): what happens after a record was sent cannot be known
  from it, so no deadline fires before its time has come on the broker's clock, whatever the
  events say (a sender whose clock runs ahead only delays deadlines by that much);
- an input topic-partition's clock position is the second-newest of those times read from it:
  the newest alone never moves a clock, so one outlier cannot; a second record must reach as
  far. Live, that costs one record's gap on each topic-partition.

The limit is a year, not minutes, because s321's own traffic generator simulates dated legal
regimes and so sends, now, events dated up to 2027-06-30 (the CPSC era); nothing real is dated
ahead. Capped for the clocks, such events are decided like any other.

Why these values: the rules compare amounts with U.S. dollar thresholds and have no exchange
rates, so another currency is refused rather than read as dollars; $10 million per line or
house bill is far above any de minimis or informal-entry value (informal entries end at
$2,500) and within the schema's precision; 100 t is several full containers; 999 lines is
ACE's limit for an entry; times before 2016 predate the $800 threshold and every source this
pipeline reads (the Data Pilot and Type 86 start in 2019); an arrival reported up to 30 days
after it happened is a correction, not live data, and one planned more than 180 days ahead is
no plan (an ocean voyage takes weeks); an entry is filed when its event is sent, and an order
placed before its pilot filing.
Bill and tracking numbers are at most 35 letters and digits (the longest carrier tracking
numbers have 34).

Text fields refuse control characters (C0, DEL, C1), the Unicode bidirectional controls
(U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069), the line and paragraph
separators (U+2028, U+2029), surrogates and private-use characters. Codes and identifiers are
printable ASCII.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from s321.models import (
    Action,
    Address,
    Entry86,
    Entry86Line,
    EventHeader,
    LineItem,
    ManifestEvent,
    Party,
    PgaData,
    PilotRecord,
    normalise_bill,
)

__all__ = [
    "EARLIEST",
    "FIELDS",
    "FUTURE_LIMIT",
    "LATEST",
    "MAX_AMOUNT",
    "MAX_KEY_CHARS",
    "MAX_LINES",
    "MAX_QUANTITY",
    "MAX_RECORD_BYTES",
    "MAX_WEIGHT_KG",
    "Violation",
    "bounds_table",
    "clock_time",
    "is_shipment_key",
    "received_ms",
    "validate",
]

#: Earliest and latest plausible time of any time field (inclusive, exclusive).
EARLIEST = datetime(2016, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
#: How far an event time may be ahead of the time its record was received.
FUTURE_LIMIT = timedelta(days=366)
#: Largest encoded input value kept: three of them fit one 1 MB changelog record with margin.
MAX_RECORD_BYTES = 256 * 1024
#: Largest amount (a line's value, a record's total, a price, a freight charge), in USD.
MAX_AMOUNT = Decimal("10000000.00")
#: Largest weight, in kilograms.
MAX_WEIGHT_KG = Decimal("100000.000")
#: Largest quantity of one line (or of a pilot record).
MAX_QUANTITY = 1_000_000
#: Most lines of a manifest or Type 86 entry.
MAX_LINES = 999
#: Most letters and digits of a bill or tracking number once separators are removed.
MAX_KEY_CHARS = 35


@dataclass(frozen=True, slots=True)
class Violation:
    """One bound a record breaks: the field's path (``lines[2].value``) and the bound, never
    the value (it may be personal data)."""

    field: str
    bound: str

    def __str__(self) -> str:
        return f"{self.field}: {self.bound}"


# -- bounds ---------------------------------------------------------------------------------

_FORBIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
    "\ud800-\udfff\ue000-\uf8ff\U000f0000-\U0010ffff]"
)
_NOT_ASCII = re.compile(r"[^\x20-\x7e]")
_TEXT_CHARS = "no control, bidirectional-control, line-separator or private-use characters"

#: A bound's fast test: whether a value keeps it, given its record's event time (itself in
#: bounds). It may refuse a value that :meth:`_Bound.check` accepts (a subclass of the
#: expected type, say), never accept one that ``check`` refuses.
_Keeps = Callable[[Any, datetime], bool]


class _Bound:
    """A bound on one field's value: ``doc`` says it in words; ``check`` returns None when a
    value keeps it, else the bound broken. ``event_time`` is the record's, for bounds relative
    to it (None when it is itself out of bounds: those are not checked). ``keeps`` builds the
    bound's fast test, once (None: every value keeps it)."""

    @property
    def doc(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        raise NotImplementedError

    def keeps(self) -> _Keeps | None:
        raise NotImplementedError


@dataclass(frozen=True)
class _Text(_Bound):
    max_len: int
    ascii: bool = False
    pattern: str = ""
    pattern_doc: str = ""

    @property
    def doc(self) -> str:
        what = self.pattern_doc or ("printable ASCII" if self.ascii else "text with " + _TEXT_CHARS)
        return f"{what}; at most {self.max_len} characters"

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        if not isinstance(value, str):
            return "a string"
        if len(value) > self.max_len:
            return f"at most {self.max_len} characters"
        if self.pattern and re.fullmatch(self.pattern, value) is None:
            return self.pattern_doc
        if self.ascii and _NOT_ASCII.search(value):
            return "printable ASCII only"
        if _FORBIDDEN.search(value):
            return _TEXT_CHARS
        return None

    def keeps(self) -> _Keeps | None:
        """``str.isprintable()`` is false for every character refused (controls, format
        characters such as the bidirectional controls, line and paragraph separators,
        surrogates, private use) and for a few allowed (other spaces, unassigned code points),
        which :meth:`check` then accepts; printable ASCII is ``isascii()`` and
        ``isprintable()``. (:func:`_keeps_type` tests text without a pattern the same way,
        inline.)"""
        max_len, ascii = self.max_len, self.ascii
        fullmatch = re.compile(self.pattern).fullmatch if self.pattern else None

        def keeps(value: Any, event_time: datetime) -> bool:
            return (
                type(value) is str
                and len(value) <= max_len
                and value.isprintable()
                and (not ascii or value.isascii())
                and (fullmatch is None or fullmatch(value) is not None)
            )

        return keeps


@dataclass(frozen=True)
class _Bill(_Text):
    """A bill or tracking number: its characters, its length, and its length once normalised
    (the shipment key it makes)."""

    @property
    def doc(self) -> str:
        return f"{super().doc}, at most {MAX_KEY_CHARS} letters and digits"

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        problem = super().check(value, event_time)
        if problem is None and len(normalise_bill(value) or "") > MAX_KEY_CHARS:
            return f"at most {MAX_KEY_CHARS} letters and digits"
        return problem

    def keeps(self) -> _Keeps | None:
        text = super().keeps()
        assert text is not None

        def keeps(value: Any, event_time: datetime) -> bool:
            return text(value, event_time) and len(normalise_bill(value) or "") <= MAX_KEY_CHARS

        return keeps


@dataclass(frozen=True)
class _Amount(_Bound):
    maximum: Decimal
    unit: str

    @property
    def doc(self) -> str:
        return f"from 0 to {self.maximum} {self.unit}"

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        if not isinstance(value, Decimal) or not value.is_finite():
            return "a finite decimal"
        if not 0 <= value <= self.maximum:
            return self.doc
        return None

    def keeps(self) -> _Keeps | None:
        maximum = self.maximum

        def keeps(value: Any, event_time: datetime) -> bool:
            return type(value) is Decimal and value.is_finite() and 0 <= value <= maximum

        return keeps


@dataclass(frozen=True)
class _Count(_Bound):
    minimum: int
    maximum: int

    @property
    def doc(self) -> str:
        return f"a whole number from {self.minimum} to {self.maximum}"

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return "a whole number"
        if not self.minimum <= value <= self.maximum:
            return self.doc
        return None

    def keeps(self) -> _Keeps | None:
        minimum, maximum = self.minimum, self.maximum

        def keeps(value: Any, event_time: datetime) -> bool:
            return type(value) is int and minimum <= value <= maximum

        return keeps


def _span(d: timedelta) -> str:
    if d.days:
        return f"{d.days} day" + ("s" if d.days > 1 else "")
    return f"{int(d.total_seconds() // 3600)} hours"


@dataclass(frozen=True)
class _Time(_Bound):
    """Within the plausible window and, when given, from ``before`` before the event time to
    ``after`` after it."""

    before: timedelta | None = None
    after: timedelta | None = None

    @property
    def doc(self) -> str:
        window = f"from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}"
        if self.before is None or self.after is None:
            return window
        return (
            f"{window}, and from {_span(self.before)} before to {_span(self.after)} after "
            "the event time"
        )

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            return "a timezone-aware time"
        if not EARLIEST <= value < LATEST:
            return self.doc
        if (
            event_time is not None
            and self.before is not None
            and self.after is not None
            and not event_time - self.before <= value <= event_time + self.after
        ):
            return self.doc
        return None

    def keeps(self) -> _Keeps | None:
        before, after = self.before, self.after
        if before is None or after is None:

            def keeps(value: Any, event_time: datetime) -> bool:
                return (
                    type(value) is datetime
                    and value.tzinfo is not None
                    and EARLIEST <= value < LATEST
                )

            return keeps

        def keeps_near(value: Any, event_time: datetime) -> bool:
            return (
                type(value) is datetime
                and value.tzinfo is not None
                and EARLIEST <= value < LATEST
                and event_time - before <= value <= event_time + after
            )

        return keeps_near


@dataclass(frozen=True)
class _OneOf(_Bound):
    allowed: frozenset[str]
    why: str

    @property
    def doc(self) -> str:
        return f"{' or '.join(sorted(self.allowed))} ({self.why})"

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        return None if value in self.allowed else " or ".join(sorted(self.allowed))

    def keeps(self) -> _Keeps | None:
        allowed = self.allowed

        def keeps(value: Any, event_time: datetime) -> bool:
            return type(value) is str and value in allowed

        return keeps


@dataclass(frozen=True)
class _Fixed(_Bound):
    """A bound checked elsewhere (flags and enumerations when decoded) or on the parts of a
    value (a nested record's own fields, a list's items)."""

    text: str

    @property
    def doc(self) -> str:
        return self.text

    def check(self, value: Any, event_time: datetime | None) -> str | None:
        return None

    def keeps(self) -> _Keeps | None:
        return None


@dataclass(frozen=True)
class _Lines(_Fixed):
    def check(self, value: Any, event_time: datetime | None) -> str | None:
        return None if len(value) <= MAX_LINES else f"at most {MAX_LINES}"

    def keeps(self) -> _Keeps | None:
        def keeps(value: Any, event_time: datetime) -> bool:
            return (
                type(value) is tuple
                and len(value) <= MAX_LINES
                and all(_keeps_record(line, event_time) for line in value)
            )

        return keeps


BILL = _Bill(50, pattern=r"[A-Za-z0-9 ./_-]*", pattern_doc="letters, digits, space and . / _ -")
CODE = _Text(50, ascii=True)
IDENT = _Text(100, ascii=True)
EVENT_ID = _Text(128, pattern=r"[\x21-\x7e]+", pattern_doc="1 or more printable ASCII, no space")
NAME = _Text(200)
PLACE = _Text(100)
POSTAL = _Text(20)
COUNTRY = _Text(3, pattern=r"(?:[A-Za-z]{2,3})?", pattern_doc="empty, or 2 or 3 letters")
DESCRIPTION = _Text(1000)
URI = _Text(2048)
HTS = _Text(10, pattern=r"[0-9]{6,10}", pattern_doc="6 to 10 digits")
HTS10 = _Text(10, pattern=r"[0-9]{10}", pattern_doc="10 digits")
GTIN = _Text(14, pattern=r"[0-9]{8,14}", pattern_doc="8 to 14 digits")
CURRENCY = _OneOf(frozenset({"USD"}), "the rules compare amounts with U.S. dollar thresholds")
MONEY = _Amount(MAX_AMOUNT, "USD")
WEIGHT = _Amount(MAX_WEIGHT_KG, "kg")
QUANTITY = _Count(1, MAX_QUANTITY)
EVENT_TIME = _Time()
ARRIVAL = _Time(timedelta(days=30), timedelta(days=180))
FILED = _Time(timedelta(days=30), timedelta(days=1))
ORDERED = _Time(timedelta(days=400), timedelta(days=1))
LINES = _Lines(f"at most {MAX_LINES}, each with its own fields' bounds")
FLAG = _Fixed("any value of its type (checked when decoded)")
NESTED = _Fixed("its own fields' bounds")

#: Every field of every input type and its bound (nested types have their own entry).
FIELDS: Mapping[type, Mapping[str, _Bound]] = {
    EventHeader: {"event_id": EVENT_ID, "event_time": EVENT_TIME, "source": CODE, "action": FLAG},
    Address: {
        "line1": NAME,
        "city": PLACE,
        "country": COUNTRY,
        "region": PLACE,
        "postal_code": POSTAL,
    },
    Party: {"name": NAME, "address": NESTED, "party_id": IDENT},
    PgaData: {"agency": CODE, "program": CODE, "certificate_id": IDENT},
    LineItem: {
        "description": DESCRIPTION,
        "quantity": QUANTITY,
        "value": MONEY,
        "weight_kg": WEIGHT,
        "hts": HTS,
        "origin_country": COUNTRY,
        "sku": IDENT,
        "gtin": GTIN,
        "manufacturer": NESTED,
        "pga": NESTED,
    },
    ManifestEvent: {
        "header": NESTED,
        "house_bill": BILL,
        "tracking_number": BILL,
        "master_bill": BILL,
        "carrier_code": CODE,
        "mode": FLAG,
        "port_of_entry": CODE,
        "estimated_arrival": ARRIVAL,
        "shipper": NESTED,
        "consignee": NESTED,
        "origin_country": COUNTRY,
        "lines": LINES,
        "shipping_weight_kg": WEIGHT,
        "release_path": FLAG,
        "actual_arrival": ARRIVAL,
        "conveyance": CODE,
        "port_of_lading": CODE,
        "currency": CURRENCY,
        "freight_charge": MONEY,
        "gift": FLAG,
        "nominal_consignee": NESTED,
        "postal_item_id": BILL,
    },
    PilotRecord: {
        "header": NESTED,
        "originator_code": CODE,
        "filer_type": FLAG,
        "mode": FLAG,
        "tracking_number": BILL,
        "house_bill": BILL,
        "master_bill": BILL,
        "carrier_code": CODE,
        "shipment_initiator": NESTED,
        "deliver_to": NESTED,
        "enhanced_description": DESCRIPTION,
        "security_scan_verified": FLAG,
        "known_customer": FLAG,
        "seller": NESTED,
        "marketplace": NAME,
        "listed_price": MONEY,
        "currency": CURRENCY,
        "product_picture": URI,
        "listing_url": URI,
        "order_id": IDENT,
        "order_date": ORDERED,
        "buyer": NESTED,
        "quantity": QUANTITY,
        "sku": IDENT,
        "gtin": GTIN,
        "manufacturer": NESTED,
        "hts": HTS,
        "origin_country": COUNTRY,
    },
    Entry86Line: {
        "hts": HTS10,
        "quantity": QUANTITY,
        "value": MONEY,
        "description": DESCRIPTION,
        "pga": NESTED,
    },
    Entry86: {
        "header": NESTED,
        "bill_number": BILL,
        "entry_number": CODE,
        "port_of_entry": CODE,
        "shipper": NESTED,
        "consignee": NESTED,
        "origin_country": COUNTRY,
        "lines": LINES,
        "filed_at": FILED,
        "importer_of_record": IDENT,
        "currency": CURRENCY,
    },
}


def bounds_table() -> str:
    """The per-field bounds, as written in this module's docstring: each bound, then the
    fields that keep it (a field name that has different bounds in different types is named
    with its type)."""
    bounds: dict[str, set[str]] = {}
    for table in FIELDS.values():
        for name, bound in table.items():
            bounds.setdefault(name, set()).add(bound.doc)
    rows: dict[str, list[str]] = {}
    for kind, table in FIELDS.items():
        for name, bound in table.items():
            if bound is NESTED:
                continue
            label = f"{kind.__name__}.{name}" if len(bounds[name]) > 1 else name
            names = rows.setdefault(bound.doc, [])
            if label not in names:
                names.append(label)
    out = []
    for doc, names in rows.items():
        out.append(textwrap.fill(doc, 92, initial_indent="- ", subsequent_indent="  "))
        fields = ", ".join(names)
        out.append(textwrap.fill(fields, 92, initial_indent="    ", subsequent_indent="    "))
    return "\n".join(out)


# -- checking -------------------------------------------------------------------------------
#
# A record is checked in two steps: a fast test that it keeps every field's bound (one
# predicate per type, built once from FIELDS), and, only when that fails, the walk that names
# each bound broken (with ``check``). The fast test never passes a record the walk would
# fault, so the violations are the walk's, and records that keep their bounds skip it.


def _keeps_type(kind: type, table: Mapping[str, _Bound]) -> _Keeps:
    """The fast test of ``kind``, whose bounds are ``table``: each field is None or keeps its
    bound, tested in one function written from the table (a call and a loop step per field
    would cost as much as the tests). Text without a pattern, most of the fields checked, is
    tested inline as :meth:`_Text.keeps` tests it; a nested record by its own type's test,
    looked up as the walk looks up its bounds; every other bound by its ``keeps``."""
    env: dict[str, Any] = {"_KEEPS": _KEEPS}
    lines = [f"def keeps_{kind.__name__}(obj, event_time):"]
    for name, bound in table.items():
        if type(bound) is _Text and not bound.pattern:
            test = f"type(value) is str and len(value) <= {bound.max_len} and value.isprintable()"
            test += " and value.isascii()" if bound.ascii else ""
        elif bound is NESTED:
            test = "(keeps := _KEEPS.get(type(value))) is not None and keeps(value, event_time)"
        elif (keeps := bound.keeps()) is not None:
            env[f"keeps_{name}"] = keeps
            test = f"keeps_{name}(value, event_time)"
        else:
            continue
        lines += [
            f"    value = obj.{name}",
            f"    if value is not None and not ({test}):",
            "        return False",
        ]
    lines.append("    return True")
    exec("\n".join(lines), env)  # noqa: S102 (source written above from FIELDS, not from input)
    written: _Keeps = env[f"keeps_{kind.__name__}"]
    return written


def _keeps_record(obj: Any, event_time: datetime) -> bool:
    """Whether ``obj``, of a type in :data:`FIELDS`, keeps its type's bounds (False for any
    other type: the walk says why)."""
    keeps = _KEEPS.get(type(obj))
    return keeps is not None and keeps(obj, event_time)


_KEEPS: dict[type, _Keeps] = {}
_KEEPS.update((kind, _keeps_type(kind, table)) for kind, table in FIELDS.items())


def _walk(obj: Any, path: str, event_time: datetime | None) -> Iterator[Violation]:
    for name, bound in FIELDS[type(obj)].items():
        value = getattr(obj, name)
        if value is None:
            continue
        where = f"{path}{name}"
        problem = bound.check(value, event_time)
        if problem is not None:
            yield Violation(where, problem)
        elif bound is NESTED:
            yield from _walk(value, where + ".", event_time)
        elif bound is LINES:
            for i, line in enumerate(value):
                yield from _walk(line, f"{where}[{i}].", event_time)


def _key(event: ManifestEvent | PilotRecord | Entry86) -> str | None:
    if isinstance(event, Entry86):
        return normalise_bill(event.bill_number)
    return normalise_bill(event.house_bill) or normalise_bill(event.tracking_number)


def _record(
    event: ManifestEvent | PilotRecord | Entry86, received_ms: int | None, size: int | None
) -> Iterator[Violation]:
    if size is not None and size > MAX_RECORD_BYTES:
        yield Violation("record size", f"at most {MAX_RECORD_BYTES} bytes")
    if _key(event) is None:
        yield Violation(
            "shipment key",
            "a bill number"
            if isinstance(event, Entry86)
            else "a house bill or tracking number with a letter or digit",
        )
    event_time = event.header.event_time
    if received_ms is not None and isinstance(event_time, datetime) and event_time.tzinfo:
        limit = datetime.fromtimestamp(received_ms / 1000, UTC) + FUTURE_LIMIT
        if event_time > limit:
            yield Violation(
                "header.event_time", f"at most {FUTURE_LIMIT.days} days ahead of the time received"
            )
    if isinstance(event, ManifestEvent | Entry86):
        if not event.lines and event.header.action is not Action.DELETE:
            yield Violation("lines", "at least 1 (unless the action is DELETE)")
        values = [li.value for li in event.lines]
        finite = all(isinstance(v, Decimal) and v.is_finite() for v in values)
        if finite and sum(values, Decimal(0)) > MAX_AMOUNT:
            yield Violation("lines (sum of values)", f"at most {MAX_AMOUNT} USD")


_SHIPMENT_KEY = re.compile(f"[A-Z0-9]{{1,{MAX_KEY_CHARS}}}")


def is_shipment_key(key: str) -> bool:
    """Whether ``key`` (a normalised bill or tracking number) has the form of a shipment key:
    1 to 35 upper-case letters and digits."""
    return _SHIPMENT_KEY.fullmatch(key) is not None


def received_ms(broker_ms: int, now_ms: int) -> int:
    """When a record was received: its broker timestamp (``broker_ms``, epoch milliseconds),
    or ``now_ms`` (the reader's clock) when that is earlier or the record has none (0 or
    less). A timestamp ahead of the reader's clock was set by a producer and is not believed."""
    return min(broker_ms, now_ms) if broker_ms > 0 else now_ms


def clock_time(event_ms: int, received: int) -> int:
    """The time a record counts for with the event-time clocks: its event time, capped at the
    time it was received."""
    return min(event_ms, received)


def validate(
    event: ManifestEvent | PilotRecord | Entry86,
    *,
    received_ms: int | None = None,
    size: int | None = None,
) -> list[Violation]:
    """The bounds ``event`` breaks (empty when it keeps them all), in field order.

    ``received_ms``: when the record was received (epoch milliseconds), for the event-time
    tolerance (not checked when None); ``size``: its encoded size in bytes (not checked when
    None)."""
    event_time = getattr(event.header, "event_time", None)
    if EVENT_TIME.check(event_time, None) is not None:
        event_time = None  # itself a violation: no other time is judged against it
    problems = list(_record(event, received_ms, size))
    if event_time is None or not _keeps_record(event, event_time):
        problems += _walk(event, "", event_time)
    return problems
