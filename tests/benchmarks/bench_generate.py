"""Benchmark: events/s that ``s321 generate`` puts into the local Kafka, against a baseline.

Run: ``.venv/bin/python tests/benchmarks/bench_generate.py [--shipments 40000]`` (not collected
by pytest). Figures printed:

* generation: scenarios drawn, drafts rendered to domain events (no encoding), events/s;
* encoding: events to Avro single-object bytes, events/s;
* produce: the generator's producer path on pre-encoded records (what ``--replay`` does);
* baseline: a bare confluent-kafka loop producing the same keys and value bytes, same tuning;
* end to end: generate + encode + produce streaming, as ``s321 generate`` runs.

Target: produce at 50,000 events/s or more. The ratio produce/baseline shows the cost of
the generator's producer path (headers, delivery callbacks, pacing) over raw librdkafka.
"""

from __future__ import annotations

import argparse
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from s321 import topics
from s321.admin import ensure_topics
from s321.devtools.generator import GeneratorConfig, generate, iter_stream
from s321.devtools.generator.command import _split
from s321.devtools.generator.produce import encode_events, produce_records
from s321.settings import Settings

_TUNING: dict[str, object] = {
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "compression.type": "lz4",
    "acks": 1,
    "enable.idempotence": False,
}


def _baseline(bootstrap: str, prefix: str, records: list[tuple[str, bytes, bytes]]) -> float:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", **_TUNING}
    )
    t0 = time.perf_counter()
    for topic, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    return len(records) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shipments", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=321)
    args = parser.parse_args()
    kafka = Settings.from_env().kafka()
    bootstrap = kafka.bootstrap
    cfg = GeneratorConfig(seed=args.seed, shipments=args.shipments)

    t0 = time.perf_counter()
    traffic = generate(cfg)
    gen_s = time.perf_counter() - t0
    n = len(traffic.events)
    t0 = time.perf_counter()
    records = list(encode_events(traffic.events))
    enc_s = time.perf_counter() - t0
    size = sum(len(r.value) for r in records)

    prefixes = [f"bench-{uuid.uuid4().hex[:8]}-{i}." for i in range(3)]
    made: list[str] = []
    try:
        for p in prefixes:
            made += ensure_topics(kafka, p, 8, topics.INPUTS)
        ours = produce_records(records, kafka=kafka, prefix=prefixes[0])
        raw = [
            (
                topics.topic_name(next(s for s in topics.INPUTS if s.base == r.topic), prefixes[1]),
                r.key or b"",
                r.value,
            )
            for r in records
        ]
        base_rate = _baseline(bootstrap, prefixes[1], raw)
        t0 = time.perf_counter()
        counts: dict[str, int] = {}
        e2e = produce_records(
            encode_events(_split(iter_stream(cfg), None, counts)),
            kafka=kafka,
            prefix=prefixes[2],
        )
        e2e_s = time.perf_counter() - t0
    finally:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for fut in admin.delete_topics(made).values():
            fut.result(timeout=30)

    print(f"shipments {args.shipments}, events {n}, mean value {size / n:.0f} bytes")
    print(f"generation        {n / gen_s:>10,.0f} events/s")
    print(f"encoding          {n / enc_s:>10,.0f} events/s")
    print(f"produce (replay)  {ours.rate:>10,.0f} events/s  ({ours.failed} failed)")
    print(f"baseline raw      {base_rate:>10,.0f} events/s")
    print(f"ratio             {ours.rate / base_rate:>10.2f}")
    print(f"end to end        {e2e.records / e2e_s:>10,.0f} events/s")


if __name__ == "__main__":
    main()
