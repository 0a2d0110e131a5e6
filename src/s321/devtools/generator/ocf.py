"""Avro object container files of produce-ready records, for replay.

Each record is what goes to Kafka: the topic's base name (no prefix), the key bytes, the
value bytes (already in the wire format of :mod:`s321.serialization`), the ``source`` header
and the emission time. Replaying a file therefore needs no generator and no encoder.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastavro import parse_schema, reader, writer

from s321.errors import ConfigError

__all__ = ["WireRecord", "read_records", "write_records"]

_SCHEMA = parse_schema(
    {
        "type": "record",
        "name": "GeneratedRecord",
        "namespace": "s321.generator",
        "doc": "One produce-ready input record written by s321 generate --out.",
        "fields": [
            {"name": "topic", "type": "string"},
            {"name": "key", "type": ["null", "bytes"]},
            {"name": "value", "type": "bytes"},
            {"name": "source", "type": "string"},
            {"name": "emit_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        ],
    }
)


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One record as produced: topic base name, key, value bytes, source, emission time."""

    topic: str
    key: bytes | None
    value: bytes
    source: str
    emit_time: datetime


def write_records(
    path: Path,
    records: Iterable[WireRecord],
    codec: str = "null",
    metadata: dict[str, str] | None = None,
) -> int:
    """Write records to an Avro container file; returns how many were written."""
    count = 0

    def rows() -> Iterator[dict[str, Any]]:
        nonlocal count
        for r in records:
            count += 1
            yield {
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "source": r.source,
                "emit_time": r.emit_time,
            }

    with path.open("wb") as fh:
        writer(fh, _SCHEMA, rows(), codec=codec, metadata=metadata or {})
    return count


def read_records(path: Path) -> Iterator[WireRecord]:
    """Read the records of a file written by :func:`write_records`, in order."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the replay file: {exc.strerror}") from exc
    with fh:
        try:
            rows = reader(fh, _SCHEMA)
        except ValueError as exc:
            raise ConfigError(f"{path}: not an Avro container file") from exc
        for row in rows:
            assert isinstance(row, dict)
            yield WireRecord(
                row["topic"], row["key"], row["value"], row["source"], row["emit_time"]
            )
