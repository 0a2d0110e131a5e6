"""Avro container files of produce-ready records (the --out / --replay format)."""

from __future__ import annotations

from pathlib import Path

import pytest

from s321.devtools.generator import GeneratorConfig, generate
from s321.devtools.generator.ocf import read_records, write_records
from s321.devtools.generator.produce import encode_events
from s321.errors import ConfigError
from s321.serialization import decode


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_records_round_trip_through_a_container_file(tmp_path: Path, codec: str) -> None:
    """Records written to a file read back identical, in order, and decode to the events."""
    events = generate(GeneratorConfig(seed=4, shipments=120)).events
    records = list(encode_events(events))
    path = tmp_path / "traffic.avro"
    assert write_records(path, records, codec=codec, metadata={"s321.seed": "4"}) == len(records)
    back = list(read_records(path))
    assert back == records
    assert [decode(r.value) for r in back] == [e.value for e in events]


def test_a_file_that_is_not_avro_is_a_config_error(tmp_path: Path) -> None:
    """Replaying a file that is not an Avro container fails with a ConfigError."""
    path = tmp_path / "junk.avro"
    path.write_bytes(b"definitely not avro")
    with pytest.raises(ConfigError, match="not an Avro container"):
        list(read_records(path))
