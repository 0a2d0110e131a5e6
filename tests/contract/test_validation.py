"""The bounds of s321.validation: every field of every input type has one, each is tested on
both sides, records inside them all pass, and a violation never carries the value."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s321 import serialization, validation
from s321.errors import RecordError, ValidationError
from s321.models import Action, Entry86, ManifestEvent, PilotRecord
from s321.validation import (
    EARLIEST,
    LATEST,
    MAX_AMOUNT,
    MAX_LINES,
    MAX_QUANTITY,
    MAX_RECORD_BYTES,
    MAX_WEIGHT_KG,
    Violation,
    validate,
)
from tests.contract import samples, strategies

__all__: list[str] = []

Event = ManifestEvent | PilotRecord | Entry86
Sample = Callable[[datetime], Any]  # a value, given the record's event time

_MS = timedelta(milliseconds=1)
_DAY = timedelta(days=1)


def _at(offset: timedelta) -> Sample:
    return lambda event_time: event_time + offset


def _fixed(value: Any) -> Sample:
    return lambda event_time: value


def _both(inside: list[Any], outside: list[Any]) -> tuple[list[Sample], list[Sample]]:
    return [_fixed(v) for v in inside], [_fixed(v) for v in outside]


_BAD_TEXT = [
    "Jane\x00Doe",  # C0 control
    "Jane\x7fDoe",  # DEL
    "Jane\x85Doe",  # C1 control
    "Jane\u202eeoD",  # right-to-left override
    "Jane\u2067Doe",  # first-strong isolate
    "Jane\u200fDoe",  # right-to-left mark
    "Jane\u2028Doe",  # line separator
    "Jane\ue000Doe",  # private use
]


def _text(n: int) -> tuple[list[Sample], list[Sample]]:
    return _both(["x" * n, "Zoë Ñandú-李明, O'Brien & Co. #2"[:n]], ["x" * (n + 1), *_BAD_TEXT])


def _ascii(n: int) -> tuple[list[Sample], list[Sample]]:
    return _both(["X" * n, "AB-12 /.:#"[:n]], ["X" * (n + 1), "CÄRR", "C\tR", "C\u202eR"])


#: For every bound: values just inside it, and values just outside it.
EXAMPLES: dict[int, tuple[list[Sample], list[Sample]]] = {
    id(validation.BILL): _both(
        ["A" * 35, "1z-999 aa1/2_3.4", "A" * 35 + "-" * 15],
        ["A" * 36, "A" * 35 + "-" * 16, "HB#1", "HB\u202e1", "HB\x001", "ＨＢ1"],
    ),
    id(validation.CODE): _ascii(50),
    id(validation.IDENT): _ascii(100),
    id(validation.EVENT_ID): _both(
        ["e" * 128, "550e8400-e29b-41d4-a716-446655440000"], ["", "a b", "e" * 129, "é1"]
    ),
    id(validation.NAME): _text(200),
    id(validation.PLACE): _text(100),
    id(validation.POSTAL): _text(20),
    id(validation.DESCRIPTION): _text(1000),
    id(validation.URI): _text(2048),
    id(validation.COUNTRY): _both(["", "CN", "chn", "XX"], ["C", "CHNA", "C1", "中国", "C\u202e"]),
    id(validation.HTS): _both(
        ["610910", "6109100012"], ["61091", "61091000123", "6109.1", "ABCDEF"]
    ),
    id(validation.HTS10): _both(["6109100012"], ["610910001", "61091000123", "61091000.2"]),
    id(validation.GTIN): _both(["12345678", "1" * 14], ["1234567", "1" * 15, "ABCDEFGH"]),
    id(validation.CURRENCY): _both(["USD"], ["EUR", "usd", ""]),
    id(validation.MONEY): _both(
        [Decimal("0.00"), Decimal("0.01"), MAX_AMOUNT],
        [Decimal("-0.01"), Decimal("-200.00"), MAX_AMOUNT + Decimal("0.01"), Decimal("NaN")],
    ),
    id(validation.WEIGHT): _both(
        [Decimal("0.000"), MAX_WEIGHT_KG],
        [Decimal("-0.001"), MAX_WEIGHT_KG + Decimal("0.001"), Decimal("Infinity")],
    ),
    id(validation.QUANTITY): _both([1, MAX_QUANTITY], [0, -1, MAX_QUANTITY + 1, True]),
    id(validation.EVENT_TIME): _both(
        [EARLIEST, LATEST - _MS],
        [EARLIEST - _MS, LATEST, datetime(1, 1, 1, tzinfo=EARLIEST.tzinfo)],
    ),
    id(validation.ARRIVAL): (
        [_at(-30 * _DAY), _at(180 * _DAY)],
        [
            _at(-30 * _DAY - _MS),
            _at(180 * _DAY + _MS),
            _fixed(datetime(9999, 12, 31, tzinfo=EARLIEST.tzinfo)),
        ],
    ),
    id(validation.FILED): ([_at(-30 * _DAY), _at(_DAY)], [_at(-30 * _DAY - _MS), _at(_DAY + _MS)]),
    id(validation.ORDERED): (
        [_at(-400 * _DAY), _at(_DAY)],
        [_at(-400 * _DAY - _MS), _at(_DAY + _MS)],
    ),
}


def _base(kind: type) -> tuple[Event, str]:
    """A valid record holding an object of type ``kind``, and where it is in the record."""
    m, p, e = samples.manifest(lines=2), samples.pilot(), samples.entry86(lines=1)
    where: dict[str, tuple[Event, str]] = {
        "ManifestEvent": (m, ""),
        "PilotRecord": (p, ""),
        "Entry86": (e, ""),
        "EventHeader": (m, "header"),
        "Party": (m, "consignee"),
        "Address": (m, "consignee.address"),
        "LineItem": (m, "lines.1"),
        "PgaData": (m, "lines.1.pga"),
        "Entry86Line": (e, "lines.0"),
    }
    return where[kind.__name__]


def _set(obj: Any, path: list[str], value: Any) -> Any:
    """``obj`` with the field at ``path`` (attribute names, or indexes into tuples) set."""
    head, rest = path[0], path[1:]
    if isinstance(obj, tuple):
        items = list(obj)
        items[int(head)] = _set(items[int(head)], rest, value) if rest else value
        return tuple(items)
    return replace(obj, **{head: _set(getattr(obj, head), rest, value) if rest else value})


def _field_path(where: str, name: str) -> str:
    """The violation's name for a field: ``lines.1`` + ``value`` is ``lines[1].value``."""
    parts = [*where.split("."), name] if where else [name]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _cases() -> list[tuple[str, type, str, bool, Sample]]:
    cases = []
    for kind, table in validation.FIELDS.items():
        for name, bound in table.items():
            if id(bound) not in EXAMPLES:
                continue
            inside, outside = EXAMPLES[id(bound)]
            for i, sample in enumerate(inside):
                cases.append((f"{kind.__name__}.{name}-inside-{i}", kind, name, True, sample))
            for i, sample in enumerate(outside):
                cases.append((f"{kind.__name__}.{name}-outside-{i}", kind, name, False, sample))
    return cases


CASES = _cases()


def test_every_field_of_every_input_type_has_a_bound() -> None:
    """The table names every field of every input type and nothing else, so a field added to
    a model cannot reach the rules unchecked."""
    for kind, table in validation.FIELDS.items():
        assert set(table) == {f.name for f in fields(kind)}, kind.__name__


def test_every_bound_with_a_value_range_is_tested_on_both_sides() -> None:
    """Each bound that limits values (all but flags, nested records and line lists) has
    examples inside and outside it here."""
    skipped = {id(validation.FLAG), id(validation.NESTED), id(validation.LINES)}
    for table in validation.FIELDS.values():
        for name, bound in table.items():
            if id(bound) not in skipped:
                assert id(bound) in EXAMPLES, name
                inside, outside = EXAMPLES[id(bound)]
                assert inside, name
                assert outside, name


@pytest.mark.parametrize(
    ("name", "kind", "field", "ok", "sample"), CASES, ids=[c[0] for c in CASES]
)
def test_field_bound(name: str, kind: type, field: str, ok: bool, sample: Sample) -> None:
    """A value inside the field's bound raises no violation of that field; one outside raises
    exactly one, naming the field, never the value."""
    record, where = _base(kind)
    value = sample(record.header.event_time)
    path = [*where.split("."), field] if where else [field]
    changed = _set(record, path, value)
    found = [v for v in validate(changed) if v.field == _field_path(where, field)]
    if ok:
        assert found == [], found
    else:
        assert len(found) == 1, validate(changed)
        if isinstance(value, str) and len(value) > 3:
            assert value not in str(found[0])


def test_samples_and_the_record_level_bounds_on_both_sides() -> None:
    """The samples pass; record size, line count, line total and the shipment key are bounded
    on both sides."""
    m = samples.manifest(lines=1)
    assert validate(m) == validate(samples.pilot()) == validate(samples.entry86()) == []
    assert validate(m, size=MAX_RECORD_BYTES) == []
    assert validate(m, size=MAX_RECORD_BYTES + 1) == [
        Violation("record size", f"at most {MAX_RECORD_BYTES} bytes")
    ]
    line = m.lines[0]
    many = replace(m, lines=(line,) * MAX_LINES)
    assert validate(many) == []
    assert [v.field for v in validate(replace(m, lines=(line,) * (MAX_LINES + 1)))] == ["lines"]
    assert [v.field for v in validate(replace(m, lines=()))] == ["lines"]
    delete = replace(m, lines=(), header=replace(m.header, action=Action.DELETE))
    assert validate(delete) == []
    half = replace(line, value=MAX_AMOUNT / 2)
    assert validate(replace(m, lines=(half, half))) == []
    over = replace(line, value=MAX_AMOUNT / 2 + Decimal("0.01"))
    assert [v.field for v in validate(replace(m, lines=(half, over)))] == ["lines (sum of values)"]
    keyless = replace(m, house_bill=None, tracking_number="--")
    assert [v.field for v in validate(keyless)] == ["shipment key"]
    assert validate(replace(m, house_bill=" - ", tracking_number="1Z 999")) == []
    assert [v.field for v in validate(replace(samples.entry86(), bill_number="./"))] == [
        "shipment key"
    ]


def test_event_time_is_at_most_a_year_ahead_of_the_time_received() -> None:
    """An event time up to 366 days after the record was received passes; 1 ms more does not
    (only when the time received is known)."""
    m = samples.manifest()
    received = int(m.header.event_time.timestamp() * 1000) - 366 * 86_400_000
    assert validate(m, received_ms=received) == []
    [v] = validate(m, received_ms=received - 1)
    assert v.field == "header.event_time"
    assert validate(m) == []


def test_received_time_and_clock_time() -> None:
    """A record is received at its broker timestamp unless that is missing or ahead of the
    reader's clock; it counts for the clocks at most at that time."""
    assert validation.received_ms(1_000, 2_000) == 1_000
    assert validation.received_ms(3_000, 2_000) == 2_000
    assert validation.received_ms(-1, 2_000) == 2_000
    assert validation.clock_time(500, 1_000) == 500
    assert validation.clock_time(10**13, 1_000) == 1_000


def test_the_docstring_holds_the_bounds_table() -> None:
    """The bounds are documented in one place, the module docstring, and it says what the code
    checks."""
    doc = " ".join((validation.__doc__ or "").split())
    assert " ".join(validation.bounds_table().split()) in doc


def test_reason_names_fields_and_bounds_not_personal_data() -> None:
    """A ValidationError's reason names each broken field and its bound, never the value; it is
    a RecordError (dead-lettered like any bad record)."""
    name = "Secret Person\u202e Name"
    m = samples.manifest()
    bad = replace(m, consignee=replace(m.consignee, name=name), currency="EUR")
    error = ValidationError(validate(bad), raw=b"x")
    assert isinstance(error, RecordError)
    assert "consignee.name" in error.reason
    assert "currency" in error.reason
    assert "Secret" not in error.reason
    assert "EUR" not in error.reason
    many = ValidationError([Violation(f"lines[{i}].value", "from 0") for i in range(12)])
    assert many.reason.endswith("; and 2 more")


@given(strategies.valid_inputs)
@settings(max_examples=300, deadline=None)
def test_records_inside_every_bound_pass_and_still_pass_after_the_wire(event: Event) -> None:
    """Any record drawn inside the bounds has no violation, before and after a round trip
    through its Avro contract."""
    assert validate(event) == []
    data = serialization.encode(event)
    assert validate(serialization.decode(data), size=len(data)) == []


@given(strategies.manifests | strategies.pilots | strategies.entries86)
@settings(max_examples=300, deadline=None)
def test_any_decodable_record_is_checked_without_error(event: Event) -> None:
    """Any record the contracts can carry is checked without raising; every violation names a
    field path and a bound."""
    with contextlib.suppress(serialization.EncodeError):
        serialization.encode(event)  # (the strategies reach past what encodes; both are checked)
    for v in validate(event, received_ms=0, size=10):
        assert v.field
        assert v.bound


@given(strategies.valid_manifests, st.data())
@settings(max_examples=200, deadline=None)
def test_one_negative_line_value_is_one_violation_naming_that_line(
    m: ManifestEvent, data: st.DataObject
) -> None:
    """In an otherwise valid manifest, one line with a negative value is exactly one violation,
    naming that line's value."""
    i = data.draw(st.integers(0, len(m.lines) - 1))
    amount = data.draw(st.decimals(max_value=Decimal("-0.01"), min_value=-MAX_AMOUNT, places=2))
    lines = list(m.lines)
    lines[i] = replace(lines[i], value=amount)
    assert validate(replace(m, lines=tuple(lines))) == [
        Violation(f"lines[{i}].value", validation.MONEY.doc)
    ]


def test_printable_text_holds_no_refused_character() -> None:
    """The fast test of text may stand for the bound's character check: no character that
    ``str.isprintable()`` accepts is refused, and printable ASCII is exactly what
    ``isascii()`` and ``isprintable()`` both accept."""
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    assert validation._FORBIDDEN.search("".join(c for c in chars if c.isprintable())) is None
    ascii_printable = "".join(c for c in chars if c.isascii() and c.isprintable())
    assert ascii_printable == "".join(chr(c) for c in range(0x20, 0x7F))


def test_each_bound_fast_test_accepts_only_what_it_checks_as_kept() -> None:
    """Every value just inside or outside a bound that the bound's fast test accepts, its
    check accepts too; the values just inside in the examples pass the fast test (bar text
    with characters it leaves to the check)."""
    event_time = samples.manifest().header.event_time
    for key, (inside, outside) in EXAMPLES.items():
        bound = next(b for t in validation.FIELDS.values() for b in t.values() if id(b) == key)
        keeps = bound.keeps()
        assert keeps is not None
        for sample in [*inside, *outside]:
            value = sample(event_time)
            if keeps(value, event_time):
                assert bound.check(value, event_time) is None, (bound, value)
        for sample in inside:
            value = sample(event_time)
            kept = keeps(value, event_time)
            assert kept or (isinstance(value, str) and not value.isprintable()), (bound, value)


@given(
    strategies.valid_inputs | strategies.manifests | strategies.pilots | strategies.entries86,
    st.sampled_from([None, 0, 1_700_000_000_000]),
    st.sampled_from([None, 10, MAX_RECORD_BYTES + 1]),
)
@settings(max_examples=500, deadline=None)
def test_the_fast_test_changes_no_violation(
    event: Event, received_ms: int | None, size: int | None
) -> None:
    """validate() finds the same violations, in the same order, as when every record is
    walked field by field (its fast test refusing all), and the fast test passes no record
    whose walk finds a violation."""
    found = validate(event, received_ms=received_ms, size=size)
    with mock.patch.object(validation, "_keeps_record", return_value=False):
        walked = validate(event, received_ms=received_ms, size=size)
    assert found == walked
    event_time = event.header.event_time
    if validation.EVENT_TIME.check(event_time, None) is None and validation._keeps_record(
        event, event_time
    ):
        assert list(validation._walk(event, "", event_time)) == []
