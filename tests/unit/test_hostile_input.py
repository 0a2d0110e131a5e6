"""Records that decode but are not sane, records near the size limits, and event times far
ahead: what the processor does with each (no broker)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from s321 import serialization, topics
from s321.core.processor import MAX_OUTPUT_BYTES, Output, Processor
from s321.core.state import decode_state
from s321.models import DeadLetter, ManifestEvent, Outcome
from tests.factories import T0, entry86, manifest, pilot, value_rule
from tests.unit.test_pipeline import BROKER_MS, Feed, P, _ms

__all__: list[str] = []


def _letters(f: Feed) -> list[DeadLetter]:
    return [serialization.decode(o.value, DeadLetter) for o in f.of(topics.DEAD_LETTERS)]


def _with_negative_line(m: ManifestEvent) -> ManifestEvent:
    """``m`` with a second line worth -$200, of negative quantity and weight."""
    line = m.lines[0]
    bad = replace(line, value=Decimal("-200.00"), quantity=-1, weight_kg=Decimal("-0.400"))
    return replace(m, lines=(line, bad))


def test_a_negative_line_no_longer_releases_goods_over_the_threshold() -> None:
    """A $900 line with a -$200 line beside it is a dead letter naming both bounds broken, and
    its shipment gets no decision; the $900 line alone is held for value."""
    f = Feed()
    f.send(_with_negative_line(manifest("HB20", "900.00")))
    f.send(pilot("HB20"))
    assert f.decisions() == []
    [letter] = _letters(f)
    assert letter.error_class == "ValidationError"
    assert "lines[1].value" in letter.reason
    assert "lines[1].quantity" in letter.reason
    assert "lines[1].weight_kg" in letter.reason
    assert letter.value == serialization.encode(_with_negative_line(manifest("HB20", "900.00")))
    f.send(manifest("HB21", "900.00"))
    f.send(pilot("HB21"))
    [d] = f.decisions()
    assert (d.shipment_key, d.outcome) == ("HB21", Outcome.HOLD)


def test_an_invalid_amendment_holds_a_released_shipment_until_a_valid_one_replaces_it() -> None:
    """A released shipment whose manifest CHANGE breaks a bound gets a HOLD version with the
    data-quality reason; a valid CHANGE after it releases it again."""
    f = Feed()
    f.send(manifest("HB22"))
    f.send(pilot("HB22"))
    change = manifest("HB22", at=T0 + timedelta(minutes=5))
    f.send(replace(_with_negative_line(change), header=replace(change.header, event_id="c1")))
    fixed = manifest("HB22", at=T0 + timedelta(minutes=6))
    f.send(fixed, timestamp_ms=BROKER_MS + 1)
    versions = [(d.version, d.outcome, [h.reason_code for h in d.hits]) for d in f.decisions()]
    assert versions == [
        (1, Outcome.RELEASE, []),
        (2, Outcome.HOLD, ["INVALID_INPUT"]),
        (3, Outcome.RELEASE, []),
    ]
    held = f.decisions()[1]
    assert held.hits[0].rule_id == "DQ"
    assert held.hits[0].evidence == {
        "parts": "manifest",
        "fields": "lines[].quantity,lines[].value,lines[].weight_kg",
    }
    assert "correct and resend the rejected record" in held.required_actions
    assert [letter.error_class for letter in _letters(f)] == ["ValidationError"]


def test_a_shipment_flagged_before_it_is_ready_is_held_when_decided() -> None:
    """An invalid pilot record flags its shipment: its manifest alone, decided at the pilot
    deadline, is held for data quality besides missing data; a valid pilot record received
    later clears the flag, and the next version releases."""
    f = Feed()
    bad_pilot = pilot("HB23", event_id="p-bad")
    bad_pilot = replace(bad_pilot, listed_price=Decimal("-5.00"))
    f.send(bad_pilot)
    f.send(manifest("HB23"), timestamp_ms=BROKER_MS + 1)
    f.tick(_ms(timedelta(minutes=31)))
    [held] = f.decisions()
    assert held.outcome is Outcome.HOLD
    assert {h.reason_code for h in held.hits} == {"INVALID_INPUT", "MISSING_ADVANCE_DATA"}
    f.send(pilot("HB23", at=T0 + timedelta(minutes=1)), timestamp_ms=BROKER_MS + 2)
    assert [d.outcome for d in f.decisions()][-1] is Outcome.RELEASE


def test_an_invalid_record_read_off_its_home_partition_flags_its_shipment_there() -> None:
    """A record keyed by something else breaks a bound: it is dead-lettered where it was read,
    and the flag goes to the shipment's home partition, which holds the shipment."""
    f = Feed()
    f.send(manifest("HB24"))
    f.send(pilot("HB24"))
    home = decode_state(f.store["HB24"]).partition
    elsewhere = (home + 1) % P
    bad = replace(pilot("HB24", at=T0 + timedelta(minutes=2)), currency="EUR")
    f.send(bad, key=b"some-other-key", partition=elsewhere)
    [letter] = _letters(f)
    assert (letter.partition, letter.source_topic) == (elsewhere, topics.PILOT.base)
    assert "currency" in letter.reason
    assert [d.outcome for d in f.decisions()] == [Outcome.RELEASE, Outcome.HOLD]


def test_a_record_whose_key_breaks_its_bound_changes_no_state() -> None:
    """A 5,000-character house bill is a dead letter; it names no shipment, so nothing is
    written to the store."""
    f = Feed()
    outs = f.send(manifest("HB" + "7" * 4998))
    assert [o.spec for o in outs] == [topics.DEAD_LETTERS]
    assert "house_bill" in _letters(f)[0].reason
    assert f.store == {}


def test_hostile_text_and_dates_are_refused_with_the_field_named() -> None:
    """Control characters, bidirectional overrides, a 10,000-character name, year-1 and
    year-9999 dates and a non-dollar currency each make a dead letter naming the field."""
    m = manifest("HB25")
    cases = {
        "consignee.name": replace(m, consignee=replace(m.consignee, name="Pat\u202eeoD")),
        "shipper.name": replace(m, shipper=replace(m.shipper, name="x" * 10_000)),
        "lines[0].description": replace(m, lines=(replace(m.lines[0], description="a\x1bb"),)),
        "estimated_arrival": replace(m, estimated_arrival=m.estimated_arrival.replace(year=9999)),
        "header.event_time": replace(m, header=replace(m.header, event_time=T0.replace(year=1))),
        "currency": replace(m, currency="JPY"),
    }
    for field, event in cases.items():
        f = Feed()
        f.send(event)
        [letter] = _letters(f)
        assert letter.reason.startswith("invalid record: " + field), (field, letter.reason)
        assert "Pat" not in letter.reason


def test_an_event_more_than_a_year_ahead_is_refused_and_moves_no_clock() -> None:
    """An event dated over a year after its broker timestamp is dead-lettered and counts for no
    clock; one dated ahead by less is accepted but counts only up to its broker timestamp,
    and a single one does not move its partition's clock at all."""
    f = Feed()
    received = _ms(timedelta(hours=1))
    far = manifest("HB26", at=T0 + timedelta(days=400))
    f.send(far, timestamp_ms=received)
    assert "header.event_time" in _letters(f)[0].reason
    assert f.proc.read_ms == {}
    flagged = decode_state(f.store["HB26"])
    assert (flagged.manifest, [x.fields for x in flagged.invalid]) == (None, ["header.event_time"])
    ahead = manifest("HB27", at=T0 + timedelta(days=300))
    f.send(ahead, timestamp_ms=received)
    assert "HB27" in f.store
    tp = (topics.MANIFEST.base, decode_state(f.store["HB27"]).partition)
    assert f.proc.read_ms.get(tp, 0) == 0, "one record alone moves no clock"
    f.send(manifest("HB28", at=T0 + timedelta(days=300)), timestamp_ms=received, partition=tp[1])
    assert f.proc.read_ms[tp] == received, "capped at its broker time"


def test_a_clock_position_is_the_second_newest_time_read() -> None:
    """Records read in any order: an input topic-partition's clock position is the
    second-newest of their (capped) event times."""
    proc = Processor(value_rule, P)
    times = [5, 1, 9, 3, 7, 8]
    for i, t in enumerate(times):
        proc._read("t", 0, t)
        assert proc.read_ms.get(("t", 0), 0) == (sorted(times[: i + 1])[-2] if i else 0)


def test_a_garbage_record_too_large_for_a_dead_letter_is_recorded_reduced() -> None:
    """A 1,040,000-byte undecodable value, and a valid record under an oversize key, each get a
    dead letter that fits the output limit: where the record is, its size and digest."""
    f = Feed()
    garbage = b"\xc3\x01" + b"\x07" * 1_039_998
    [o] = f.record(topics.MANIFEST.base, 2, 41, b"k1", garbage, BROKER_MS, f.store)
    _assert_reduced(o, garbage, b"k1")
    big_key = b"K" * 950_000
    raw = serialization.encode(manifest("HB29"))
    outs = f.record(topics.MANIFEST.base, 0, 42, big_key, raw, BROKER_MS, f.store)
    assert [x.spec for x in outs] == [topics.REPARTITION], "a valid record is forwarded"
    bad = serialization.encode(_with_negative_line(manifest("HB30")))
    [o] = [x for x in f.record(topics.MANIFEST.base, 0, 43, big_key, bad, 0, f.store)
           if x.spec is topics.DEAD_LETTERS]  # fmt: skip
    _assert_reduced(o, bad, None)


def _assert_reduced(o: Output, value: bytes, key: bytes | None) -> None:
    assert o.spec is topics.DEAD_LETTERS
    size = len(o.key or b"") + len(o.value) + sum(len(k) + len(v) for k, v in o.headers)
    assert size <= MAX_OUTPUT_BYTES
    letter = serialization.decode(o.value, DeadLetter)
    assert (letter.value, letter.key, o.key) == (None, key, key)
    assert f"value of {len(value)} bytes" in letter.reason
    assert hashlib.sha256(value).hexdigest() in letter.reason
    assert dict(o.headers)["s321-reduced"] == letter.headers["s321-reduced"]


def test_a_dead_letter_that_fits_keeps_the_original_bytes() -> None:
    """A dead letter under the output limit carries the record's value and key unchanged."""
    f = Feed()
    garbage = b"\x00" * 500_000
    [o] = f.record(topics.PILOT.base, 1, 3, b"k", garbage, BROKER_MS, f.store)
    letter = serialization.decode(o.value, DeadLetter)
    assert (letter.value, letter.key) == (garbage, b"k")
    assert "s321-reduced" not in letter.headers


def test_a_bill_keeps_at_most_sixteen_entry_numbers() -> None:
    """A bill flooded with Type 86 entries keeps 16 entry numbers, so its state stays bounded;
    the rules still see more than one."""
    f = Feed()
    f.send(manifest("HB31"))
    for i in range(40):
        e = replace(entry86("HB31", event_id=f"e{i}"), entry_number=f"ABC{i:08d}")
        f.send(e)
    assert len(decode_state(f.store["HB31"]).entry_numbers) == 16
