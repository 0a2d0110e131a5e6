"""Schema evolution, checked by the reference Avro implementation's compatibility checker.

Every version kept in ``schemas/released/`` is a promise: consumers and producers built on it
must keep working. Inbound events are FULL_TRANSITIVE compatible (new readers read every old
writer, every old reader reads new writers); decisions are BACKWARD compatible (the newest
reader reads every released writer).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from s321 import serialization
from s321.models import Decision
from s321.serialization import encode, released_schema, released_versions, schema
from tests.contract import samples

__all__: list[str] = []

INBOUND = ("ManifestEvent", "PilotRecord", "Entry86")


def _parse(s: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(s))


def _compatible(reader: dict[str, Any], writer: dict[str, Any]) -> tuple[bool, set[str]]:
    result = ReaderWriterCompatibilityChecker().get_compatibility(_parse(reader), _parse(writer))
    return result.compatibility is SchemaCompatibilityType.compatible, set(result.messages)


def _pairs(kinds: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(v, name) for v in released_versions() for name in kinds]


def test_a_first_release_exists_and_matches_every_type() -> None:
    """schemas/released/v1 holds every named type, so there is something to be compatible with."""
    assert "v1" in released_versions()
    for name in serialization.TYPE_NAMES:
        assert released_schema("v1", name)["name"] == name


@pytest.mark.parametrize(("version", "name"), _pairs(INBOUND))
def test_inbound_events_are_full_transitive(version: str, name: str) -> None:
    """The current inbound schema reads every released one and every released one reads it."""
    current, old = schema(name), released_schema(version, name)
    ok, why = _compatible(current, old)
    assert ok, f"current cannot read {version}: {why}"
    ok, why = _compatible(old, current)
    assert ok, f"{version} cannot read current: {why}"


@pytest.mark.parametrize(("version", "name"), _pairs(("Decision", "DeadLetter")))
def test_outbound_records_are_backward(version: str, name: str) -> None:
    """The current Decision (and DeadLetter) schema reads everything written with a release."""
    ok, why = _compatible(schema(name), released_schema(version, name))
    assert ok, f"current cannot read {version}: {why}"


def test_checker_reports_a_new_required_field() -> None:
    """Adding a field without a default is reported incompatible: the checker can fail."""
    changed = copy.deepcopy(schema("ManifestEvent"))
    changed["fields"].append({"name": "insurer", "type": "string", "doc": "new, no default"})
    ok, _ = _compatible(changed, schema("ManifestEvent"))
    assert not ok


def test_checker_reports_a_new_enum_symbol_without_reader_default() -> None:
    """A new Mode symbol breaks old readers (Mode has no reader default), so FULL fails."""
    changed = copy.deepcopy(schema("PilotRecord"))
    mode = next(f for f in changed["fields"] if f["name"] == "mode")
    mode["type"] = {**mode["type"], "symbols": [*mode["type"]["symbols"], "PIPELINE"]}
    ok, _ = _compatible(schema("PilotRecord"), changed)
    assert not ok


def test_checker_accepts_an_optional_field_with_default() -> None:
    """Adding an optional field with a null default is compatible both ways (the allowed change)."""
    changed = copy.deepcopy(schema("Entry86"))
    changed["fields"].append(
        {"name": "broker_ref", "type": ["null", "string"], "default": None, "doc": "new"}
    )
    assert _compatible(changed, schema("Entry86"))[0]
    assert _compatible(schema("Entry86"), changed)[0]


def test_unknown_outcome_reads_as_hold() -> None:
    """A reader meeting an Outcome symbol it does not know falls back to HOLD (fail safe)."""
    newer = copy.deepcopy(schema("Decision"))
    outcome = next(f for f in newer["fields"] if f["name"] == "outcome")
    outcome["type"] = {**outcome["type"], "symbols": [*outcome["type"]["symbols"], "REFER"]}
    assert _compatible(schema("Decision"), newer)[0]


def test_older_writer_is_resolved_into_the_current_type() -> None:
    """A Decision written by an older producer (no stale_refdata, no not_applicable) reads with
    the defaults, through Avro schema resolution on the registry path."""
    import io

    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from fastavro import parse_schema, schemaless_reader, schemaless_writer

    older = copy.deepcopy(schema("Decision"))
    older["fields"] = [
        f for f in older["fields"] if f["name"] not in ("stale_refdata", "not_applicable")
    ]
    client = SchemaRegistryClient.new_client({"url": "mock://evolution-test"})
    schema_id = client.register_schema("s321.v1.Decision", Schema(json.dumps(older), "AVRO"))
    current = encode(samples.decision())
    record = schemaless_reader(io.BytesIO(current[10:]), parse_schema(schema("Decision")))
    body = io.BytesIO()
    schemaless_writer(body, parse_schema(older), record)
    framed = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    got = serialization.Serializer(registry_client=client).decode(framed, Decision)
    assert got.not_applicable == ()
    assert got.stale_refdata is False
    assert got.hits == samples.decision().hits
