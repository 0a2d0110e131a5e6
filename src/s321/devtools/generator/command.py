"""What ``s321 generate`` does, behind its thin click command."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO

from s321 import topics
from s321.admin import ensure_topics
from s321.devtools.generator.ocf import WireRecord, read_records, write_records
from s321.devtools.generator.produce import ProduceStats, encode_events, produce_records
from s321.devtools.generator.scenarios import (
    Event,
    Expected,
    GeneratorConfig,
    iter_stream,
    parse_mix,
)
from s321.kafka_config import KafkaClientConfig

__all__ = ["GenerateOptions", "run_generate"]


@dataclass(frozen=True)
class GenerateOptions:
    """Every option of ``s321 generate`` as plain values."""

    kafka: KafkaClientConfig
    seed: int = 321
    shipments: int = 1000
    start: date = date(2024, 6, 1)
    end: date = date(2024, 12, 31)
    mix: str = "demo"
    enable: tuple[str, ...] = ()
    ground_truth: Path | None = None
    out: Path | None = None
    replay: Path | None = None
    rate: float = 0.0
    partitioner: str = "murmur2"
    bad_keys: float = 0.0
    topic_prefix: str = ""
    partitions: int = 8
    progress: bool = True
    #: the wire format of values (``Serializer.encode``); None: single-object encoding
    encode: Callable[[object], bytes] | None = None


def _split(
    stream: Iterator[Event | Expected], truth: IO[str] | None, counts: dict[str, int]
) -> Iterator[Event]:
    for item in stream:
        if isinstance(item, Event):
            yield item
        else:
            counts[item.outcome] = counts.get(item.outcome, 0) + 1
            if truth is not None:
                truth.write(json.dumps(item.to_json(), separators=(",", ":")) + "\n")


def run_generate(opts: GenerateOptions) -> tuple[str, ProduceStats | int, dict[str, int]]:
    """Generate (or replay) and produce, or write a replay file. Returns what was done,
    the produce figures (or the number of records written) and the outcome counts."""
    counts: dict[str, int] = {}
    records: Iterator[WireRecord]
    truth_fh: IO[str] | None = None
    try:
        if opts.replay is not None:
            records = read_records(opts.replay)
            total = None
        else:
            cfg = GeneratorConfig(
                seed=opts.seed,
                shipments=opts.shipments,
                start=opts.start,
                end=opts.end,
                mix=parse_mix(opts.mix),
                enable=frozenset(opts.enable),
            )
            if opts.ground_truth is not None:
                truth_fh = opts.ground_truth.open("w", encoding="utf-8")
            records = encode_events(_split(iter_stream(cfg), truth_fh, counts), opts.encode)
            total = None
        if opts.out is not None:
            written = write_records(
                opts.out, records, metadata={"s321.seed": str(opts.seed), "s321.mix": opts.mix}
            )
            return "written", written, counts
        ensure_topics(opts.kafka, opts.topic_prefix, opts.partitions, topics.INPUTS)
        stats = produce_records(
            records,
            kafka=opts.kafka,
            prefix=opts.topic_prefix,
            rate=opts.rate,
            partitioner=opts.partitioner,
            bad_keys=opts.bad_keys,
            seed=opts.seed,
            progress=opts.progress,
            total=total,
        )
        return "produced", stats, counts
    finally:
        if truth_fh is not None:
            truth_fh.close()
