"""Round trips through the wire contracts, and what the encoded bytes look like to others."""

from __future__ import annotations

import io
import json
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Any

import avro.io
import avro.schema
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given, settings

from s321 import models, serialization
from s321.models import DeadLetter, Decision, Entry86, ManifestEvent, PilotRecord
from s321.serialization import (
    MAGIC,
    DecodeError,
    EncodeError,
    Serializer,
    decode,
    encode,
    fingerprint,
    schema,
)
from tests.contract import samples, strategies

__all__: list[str] = []

SAMPLES = {
    "ManifestEvent": samples.manifest(),
    "PilotRecord": samples.pilot(),
    "Entry86": samples.entry86(),
    "Decision": samples.decision(),
    "DeadLetter": samples.dead_letter(),
}


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it, written out independently."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


@given(strategies.records)
@settings(max_examples=300, deadline=None)
def test_any_record_round_trips(record: Any) -> None:
    """Every generated domain record decodes to an equal object of the same type."""
    back = decode(encode(record), type(record))
    assert back == record
    assert type(back) is type(record)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_round_trips_with_types_intact(name: str) -> None:
    """A full sample decodes with Decimal amounts, UTC datetimes and tuples where the model has them."""
    record = SAMPLES[name]
    back = decode(encode(record))
    assert back == record
    for f in fields(back):
        value = getattr(back, f.name)
        if isinstance(value, datetime):
            assert value.tzinfo is UTC
        assert not isinstance(value, list), f.name


def test_amounts_keep_two_places() -> None:
    """A whole-dollar amount comes back with scale 2, as the decimal schema says."""
    back = decode(encode(samples.entry86()), Entry86)
    assert str(back.lines[0].value) == "37.50"


def test_non_utc_time_comes_back_as_the_same_instant_in_utc() -> None:
    """An aware time in another zone is written as its instant and read back in UTC."""
    from datetime import timedelta, timezone

    eastern = datetime(2024, 4, 13, 0, 0, tzinfo=timezone(timedelta(hours=-4)))
    record = samples.dead_letter()
    record = DeadLetter(
        **{**{f.name: getattr(record, f.name) for f in fields(record)}, "time": eastern}
    )
    back = decode(encode(record), DeadLetter)
    assert back.time == eastern
    assert back.time.tzinfo is UTC
    assert back.time.hour == 4


def test_sub_millisecond_time_is_truncated_to_the_millisecond() -> None:
    """timestamp-millis keeps whole milliseconds; the microseconds beyond are dropped, not rounded."""
    t = datetime(2024, 1, 1, 12, 0, 0, 123999, tzinfo=UTC)
    record = samples.dead_letter()
    record = DeadLetter(**{**{f.name: getattr(record, f.name) for f in fields(record)}, "time": t})
    assert decode(encode(record), DeadLetter).time == t.replace(microsecond=123000)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_header_is_single_object_encoding(name: str) -> None:
    """Encoded values open with C3 01 and the little-endian CRC-64-AVRO of the canonical form."""
    data = encode(SAMPLES[name])
    canonical = to_parsing_canonical_form(schema(name)).encode()
    assert data[:2] == MAGIC
    assert data[2:10] == _crc64_avro(canonical).to_bytes(8, "little")
    assert fingerprint(name) == data[2:10]


@pytest.mark.parametrize("name", list(SAMPLES))
def test_another_avro_implementation_reads_our_bytes(name: str) -> None:
    """The reference Avro package, given only the schema, reads the body to the same values."""
    data = encode(SAMPLES[name])
    writer = avro.schema.parse(json.dumps(schema(name)))
    datum = avro.io.DatumReader(writer).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    record = SAMPLES[name]
    for f in fields(record):
        ours = getattr(record, f.name)
        theirs = datum[f.name]
        if isinstance(ours, datetime | Decimal | bool | int | float | str | bytes):
            assert theirs == ours, f.name
    if isinstance(record, ManifestEvent):
        assert datum["lines"][0]["value"] == record.lines[0].value
        assert datum["mode"] == record.mode.value
        assert datum["consignee"]["address"]["country"] == "US"


def test_expected_type_mismatch_is_refused() -> None:
    """A Decision's bytes read where a ManifestEvent is expected raise DecodeError with the bytes."""
    data = encode(samples.decision())
    with pytest.raises(DecodeError) as info:
        decode(data, ManifestEvent)
    assert info.value.raw == data
    assert "ManifestEvent" in info.value.reason


def test_decode_without_expected_type_uses_the_fingerprint() -> None:
    """Without an expected type, each value decodes to the type its fingerprint names."""
    for name, record in SAMPLES.items():
        assert type(decode(encode(record))).__name__ == name


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (samples.entry86(), "naive"),
        (samples.entry86(), "places"),
        (samples.entry86(), "precision"),
        (samples.entry86(), "nan"),
        (samples.decision(), "int32"),
        (samples.decision(), "type"),
    ],
)
def test_invalid_values_are_refused_on_encode(record: Any, why: str) -> None:
    """Values the schema cannot hold exactly raise EncodeError instead of being rounded or guessed."""
    d = {f.name: getattr(record, f.name) for f in fields(record)}
    if why == "naive":
        d["filed_at"] = datetime(2024, 1, 1)
    elif why == "places":
        d["lines"] = (models.Entry86Line("6109100012", 1, Decimal("1.005")),)
    elif why == "precision":
        d["lines"] = (models.Entry86Line("6109100012", 1, Decimal("1E+14")),)
    elif why == "nan":
        d["lines"] = (models.Entry86Line("6109100012", 1, Decimal("NaN")),)
    elif why == "int32":
        d["inputs"] = (models.InputRef("t", 2**31, 0, "e"),)
    else:
        d["version"] = "2"
    with pytest.raises(EncodeError):
        encode(type(record)(**d))


def test_only_top_level_types_encode() -> None:
    """A nested type such as Address is not a topic value: encoding it raises EncodeError."""
    with pytest.raises(EncodeError):
        encode(models.Address("1 Main St", "Queens", "US"))


def _dataclass_for(name: str) -> type[Any]:
    cls = getattr(models, name)
    assert isinstance(cls, type)
    return cls


@pytest.mark.parametrize("name", serialization.TYPE_NAMES)
def test_schema_mirrors_the_model(name: str) -> None:
    """Each schema has the model's fields (or enum symbols), a doc everywhere, namespace s321.v1."""
    s = schema(name)
    cls = _dataclass_for(name)
    assert s["namespace"] == "s321.v1"
    assert s["doc"]
    if s["type"] == "enum":
        assert s["symbols"] == [m.value for m in cls]
        return
    assert is_dataclass(cls)
    assert [f["name"] for f in s["fields"]] == [f.name for f in fields(cls)]
    for f in s["fields"]:
        assert f["doc"], f["name"]
        if isinstance(f["type"], list) and "null" in f["type"]:
            assert f.get("default", "absent") is None, f["name"]


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("LineItem", "value"),
        ("Entry86Line", "value"),
        ("ManifestEvent", "freight_charge"),
        ("PilotRecord", "listed_price"),
    ],
)
def test_amounts_use_decimal_14_2(name: str, field: str) -> None:
    """Every money field is bytes with the decimal logical type, precision 14 and scale 2."""
    (node,) = [
        f
        for f in json.loads((files("s321.schemas") / f"{name}.avsc").read_text())["fields"]
        if f["name"] == field
    ]
    t = node["type"]
    t = next(x for x in t if x != "null") if isinstance(t, list) else t
    assert t == {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 2}


def test_registry_wire_format_round_trips() -> None:
    """With a registry URL, values are framed 00 + schema id and decode through the registry."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    client = SchemaRegistryClient.new_client({"url": "mock://contract-test"})
    ser = Serializer(registry_client=client)
    record = samples.manifest()
    data = ser.encode(record)
    assert data[0] == 0
    assert ser.decode(data, ManifestEvent) == record
    reader = Serializer(registry_client=client)
    assert reader.decode(data) == record
    assert client.get_latest_version("s321.v1.ManifestEvent").schema_id == int.from_bytes(
        data[1:5], "big"
    )
    # single-object values still read (producers move to the registry one at a time) ...
    assert ser.decode(encode(record), ManifestEvent) == record
    # ... and a value in neither framing is refused
    with pytest.raises(DecodeError):
        ser.decode(b"\x01" + data[1:])


def test_all_top_level_types_are_topic_values() -> None:
    """The record types that encode are exactly the five that travel on topics."""
    assert set(serialization.RECORD_TYPES) == {
        ManifestEvent,
        PilotRecord,
        Entry86,
        Decision,
        DeadLetter,
    }
