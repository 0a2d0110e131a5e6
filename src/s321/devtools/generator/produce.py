"""Produce generated (or replayed) records to Kafka, fast, with rate limit and emulations.

The producer is tuned for throughput (large batches, a short linger, lz4 compression,
leader-only acknowledgement). ``partitioner`` emulates the client library that produced the
data: ``murmur2`` is the Java client's default (librdkafka ``murmur2_random``), ``crc32`` is
librdkafka's own default (``consistent_random``). ``bad_keys`` replaces that fraction of
Kafka keys with keys that disagree with the payload, as a misbehaving producer would.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from s321 import topics
from s321.devtools.generator.ocf import WireRecord
from s321.devtools.generator.scenarios import Event
from s321.errors import ConfigError, S321Error
from s321.kafka_config import KafkaClientConfig, confluent

__all__ = ["PARTITIONERS", "ProduceStats", "encode_events", "produce_records"]

PARTITIONERS = {"murmur2": "murmur2_random", "crc32": "consistent_random"}

_BY_BASE = {spec.base: spec for spec in topics.INPUTS}


@dataclass(frozen=True, slots=True)
class ProduceStats:
    """What one run sent: records, bytes, seconds, and failed deliveries."""

    records: int
    bytes: int
    seconds: float
    failed: int

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def encode_events(
    events: Iterable[Event], encode: Callable[[object], bytes] | None = None
) -> Iterator[WireRecord]:
    """Events to produce-ready records (value bytes from :mod:`s321.serialization`)."""
    if encode is None:
        from s321.serialization import encode as wire_encode

        encode = wire_encode
    for e in events:
        yield WireRecord(e.spec.base, e.key.encode(), encode(e.value), e.source, e.emit_at)


def produce_records(
    records: Iterable[WireRecord],
    *,
    kafka: KafkaClientConfig,
    prefix: str = "",
    rate: float = 0.0,
    partitioner: str = "murmur2",
    bad_keys: float = 0.0,
    seed: int = 0,
    progress: bool = False,
    total: int | None = None,
    extra_config: dict[str, object] | None = None,
) -> ProduceStats:
    """Send records to their topics; ``rate`` events/s (0: as fast as possible)."""
    from confluent_kafka import Producer

    if partitioner not in PARTITIONERS:
        raise ConfigError(f"partitioner must be one of {', '.join(PARTITIONERS)}")
    if not 0.0 <= bad_keys <= 1.0:
        raise ConfigError("--bad-keys is a fraction between 0 and 1")
    config: dict[str, object] = {
        **confluent(kafka),
        "partitioner": PARTITIONERS[partitioner],
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "compression.type": "lz4",
        "acks": 1,
        "enable.idempotence": False,
        **(extra_config or {}),
    }
    producer = Producer(config)
    failed = 0

    def delivered(err: object, _msg: object) -> None:
        nonlocal failed
        if err is not None:
            failed += 1

    rng = random.Random(seed ^ 0x5EED)
    names = {base: topics.topic_name(spec, prefix) for base, spec in _BY_BASE.items()}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="ev", unit_scale=True, smoothing=0.1)
    sent = size = 0
    t0 = time.perf_counter()
    step = max(1, int(rate // 50)) if rate > 0 else 5_000
    produce, poll = producer.produce, producer.poll
    for r in records:
        key = r.key
        if bad_keys and rng.random() < bad_keys:
            key = f"BAD{rng.getrandbits(48):012X}".encode()
        headers: list[tuple[str, str | bytes | None]] = [("source", r.source.encode())]
        while True:
            try:
                produce(names[r.topic], r.value, key, on_delivery=delivered, headers=headers)
                break
            except BufferError:
                poll(0.05)
        sent += 1
        size += len(r.value)
        if sent % step == 0:
            poll(0)
            if bar is not None:
                bar.update(step)
            if rate > 0:
                ahead = sent / rate - (time.perf_counter() - t0)
                if ahead > 0:
                    time.sleep(ahead)
    remaining = producer.flush(60)
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.update(sent % step)
        bar.close()
    if remaining:
        raise S321Error(f"{remaining} records were still undelivered after 60 s")
    return ProduceStats(sent, size, seconds, failed)
