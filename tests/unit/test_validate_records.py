"""``s321 validate``: JSON lines, Avro container files and stdin, checked as the worker checks
records; what is wrong is printed by record, field and rule, never a value."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastavro import parse_schema, schemaless_reader, writer

from s321 import serialization
from s321.cli import cli
from s321.devtools.generator.ocf import WireRecord, write_records
from s321.ops.records import check_stream, from_json, to_json
from tests.contract import samples

SECRET_NAME = "Jane Q Public"


def _lines(*objs: Any) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


def _invoke(args: list[str], stdin: str | bytes | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *args], input=stdin)
    return result.exit_code, result.output


@pytest.mark.parametrize("event", [samples.manifest(3), samples.pilot(), samples.entry86()])
def test_the_json_form_round_trips_to_the_same_event(event: Any) -> None:
    assert from_json(json.loads(json.dumps(to_json(event)))) == event


def test_a_file_of_valid_records_passes(tmp_path: Path) -> None:
    path = tmp_path / "ok.jsonl"
    path.write_text(
        _lines(to_json(samples.manifest()), to_json(samples.pilot()), to_json(samples.entry86()))
    )
    code, out = _invoke([str(path)])
    assert code == 0, out
    assert out.splitlines()[-1] == "3 records: 3 valid, 0 invalid"
    assert "record 2 (line 2, PilotRecord): valid" in out


def test_each_failing_record_is_named_with_its_fields_and_rules_and_no_values() -> None:
    good = to_json(samples.manifest())
    bad_bound = json.loads(json.dumps(good))
    bad_bound["lines"][1]["value"] = "-1.00"
    bad_bound["consignee"]["name"] = SECRET_NAME + "\u202e"
    bad_bound["currency"] = "EUR"
    bad_type = json.loads(json.dumps(good))
    bad_type["lines"][0]["quantity"] = "two"
    naive = json.loads(json.dumps(good))
    naive["header"]["event_time"] = "2025-01-01T00:00:00"
    unknown = {**good, "shoe_size": "9"}
    too_precise = json.loads(json.dumps(good))
    too_precise["freight_charge"] = "8.001"
    stdin = _lines(good, bad_bound, bad_type, naive, unknown, too_precise) + "\n{not json\n"
    code, out = _invoke(["-"], stdin)
    assert code == 1
    for secret in (SECRET_NAME, "EUR", "two"):
        assert secret not in out
    expected = [
        "record 1 (line 1, ManifestEvent): valid",
        "record 2 (line 2, ManifestEvent): currency: USD",
        "record 2 (line 2, ManifestEvent): consignee.name: no control, bidirectional-control, "
        "line-separator or private-use characters",
        "record 2 (line 2, ManifestEvent): lines[1].value: from 0 to 10000000.00 USD",
        "record 3 (line 3, ManifestEvent): lines[0].quantity: an integer",
        "record 4 (line 4, ManifestEvent): header.event_time: an ISO-8601 time with an offset",
        "record 5 (line 5, ManifestEvent): shoe_size: not a field of ManifestEvent",
        "record 6 (line 6, ManifestEvent): freight_charge: at most 2 decimal places",
        "record 7 (line 8): record: not JSON (Expecting property name enclosed in double quotes)",
        "7 records: 1 valid, 6 invalid",
    ]
    assert sorted(out.splitlines()) == sorted(expected), out


def test_type_comes_from_the_option_or_each_line() -> None:
    entry = to_json(samples.entry86())
    del entry["type"]
    code, out = _invoke(["--type", "Entry86"], _lines(entry))
    assert code == 0, out
    code, out = _invoke([], _lines(entry))
    assert code == 1
    assert "type: one of ManifestEvent, PilotRecord, Entry86" in out
    code, out = _invoke(["--type", "PilotRecord"], _lines(to_json(samples.entry86())))
    assert code == 1
    assert "type: PilotRecord (as --type says)" in out


def test_the_worker_bounds_relative_to_receipt_apply() -> None:
    """An event time more than a year ahead of the check is refused, as the worker refuses it
    ahead of its receipt."""
    event = to_json(samples.pilot())
    event["header"]["event_time"] = "2099-01-01T00:00:00+00:00"
    event["order_date"] = "2098-12-30T00:00:00+00:00"
    out = list(check_stream(io.BufferedReader(io.BytesIO(_lines(event).encode()))))
    assert [p for c in out for p in c.problems] == [
        ("header.event_time", "at most 366 days ahead of the time received")
    ]


def test_an_avro_container_file_of_an_input_schema(tmp_path: Path) -> None:
    path = tmp_path / "manifests.avro"
    schema = parse_schema(serialization.schema("ManifestEvent"))
    good = _avro_values(samples.manifest(), schema)
    bad = _avro_values(samples.manifest(), schema)
    bad["lines"][0]["hts"] = "12"
    rows = [good, bad]
    with path.open("wb") as out:
        writer(out, schema, rows)
    code, out_text = _invoke([str(path)])
    assert code == 1, out_text
    assert out_text.splitlines() == [
        "record 1 (record 1 of the container, ManifestEvent): valid",
        "record 2 (record 2 of the container, ManifestEvent): lines[0].hts: 6 to 10 digits",
        "2 records: 1 valid, 1 invalid",
    ]
    code, out_text = _invoke(["--type", "Entry86", str(path)])
    assert code == 1
    assert "type: Entry86 (the file's schema is s321.v1.ManifestEvent)" in out_text


def _avro_values(event: Any, schema: Any) -> Any:
    """``event`` as an Avro library holds it (decimals, times, enum symbols)."""
    return schemaless_reader(io.BytesIO(serialization.encode(event)[10:]), schema, None)


def test_a_generated_container_file_is_read_as_the_worker_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "gen.avro"
    t = datetime(2025, 1, 1, tzinfo=UTC)
    write_records(
        path,
        [
            WireRecord("s321.pilot.v1", b"K", serialization.encode(samples.pilot()), "g", t),
            WireRecord("s321.manifest.v1", b"K", b"\xc3\x01garbage", "g", t),
        ],
    )
    code, out = _invoke([str(path)])
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "record 1 (record 1 of the container, PilotRecord): valid"
    assert lines[1].startswith("record 2 (record 2 of the container, ManifestEvent): record: ")
    assert lines[2] == "2 records: 1 valid, 1 invalid"


def test_empty_input_fails() -> None:
    code, out = _invoke([], "")
    assert code == 1
    assert out.strip() == "0 records: 0 valid, 0 invalid"


def test_the_example_in_the_carriers_guide_is_valid() -> None:
    guide = (Path(__file__).parents[2] / "deploy" / "CARRIERS.md").read_text()
    block = guide.split("```json\n", 1)[1].split("```", 1)[0]
    code, out = _invoke([], " ".join(block.split("\n")) + "\n")
    assert code == 0, out
    assert out.splitlines()[0] == "record 1 (line 1, Entry86): valid"
