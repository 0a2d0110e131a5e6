"""The correlating processor alone, no Kafka: how much of a shipment's cost is its own logic.

Run: ``.venv/bin/python tests/benchmarks/bench_processor.py [--shipments 2000] [--profile]``
(not a pytest file; the local stack must be up for Redis: ``s321 stack up``).

Feeds the benchmark's cached backlog (demo mix, every scenario) straight to
:class:`s321.core.processor.Processor` with a dict as its store, in the worker's batches of 200
records (each batch's decisions made as it ends), routing re-keyed records back to it as the
repartition topic would, then fires the trailing deadlines with idle marks. It does
this twice in one run: with the worker's evaluator (rules, reference data and the
cross-shipment state in the real Redis), and, as the baseline, with the same evaluator
without cross-shipment state. It prints shipments per second (process CPU time and wall
time) for each and the ratio, so the Redis share of a decision is a figure from one run.
``--profile`` prints the top functions of the first pass (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import uuid
from collections import deque
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from s321 import topics
from s321.core.processor import Processor
from s321.core.routing import murmur2_partition
from s321.devtools.bench import cached_traffic
from s321.devtools.generator.ocf import WireRecord, read_records
from s321.evaluator import RuleEvaluator, build_evaluator
from s321.settings import Settings

__all__ = ["main"]

PARTITIONS = 8


def feed(processor: Processor, records: list[WireRecord], batch: int = 200) -> int:
    """Every record to the processor in the worker's batches (decisions made as each ends),
    re-keyed ones queued behind the rest as the repartition topic would; returns decisions."""
    store: dict[str, bytes] = {}
    decided = 0
    offset = 0
    queue: deque[tuple[str, int, bytes | None, bytes, Any]] = deque()
    for r in records:
        key = r.key if isinstance(r.key, bytes) else r.key.encode()
        queue.append((r.topic, murmur2_partition(key, PARTITIONS), key, r.value, ()))
    while queue:
        outs = []
        for _ in range(min(batch, len(queue))):
            topic, partition, key, value, headers = queue.popleft()
            outs += processor.on_record(topic, partition, offset, key, value, 0, store, headers)
            offset += 1
        outs += processor.decide_pending(store)
        for o in outs:
            if o.spec is topics.REPARTITION:
                queue.append((topics.REPARTITION.base, o.partition or 0, o.key, o.value, o.headers))
            decided += o.spec is topics.DECISIONS
    for source in range(PARTITIONS):  # every input partition idle: trailing deadlines fire
        for o in processor.marks(source, 2**62):
            for d in processor.on_record(
                topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, 0, store, o.headers
            ):
                decided += d.spec is topics.DECISIONS
    decided += sum(o.spec is topics.DECISIONS for o in processor.decide_pending(store))
    return decided


def _pass(name: str, evaluator: RuleEvaluator, records: list[WireRecord], shipments: int,
          profile: bool) -> float:  # fmt: skip
    processor = Processor(evaluator, PARTITIONS)
    cpu, wall = time.process_time(), time.perf_counter()
    if profile:
        prof = cProfile.Profile()
        decided = prof.runcall(feed, processor, records)
    else:
        decided = feed(processor, records)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rate = shipments / wall
    print(f"{name:<34} {rate:8,.0f} shipments/s wall, {shipments / cpu:8,.0f} per CPU second "
          f"({decided:,} decisions)")  # fmt: skip
    if profile:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=321)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    traffic = cached_traffic(
        settings.cache_dir, args.seed, args.shipments, date(2024, 6, 1), date(2024, 12, 31), print
    )
    records = list(read_records(traffic.records))
    print(f"{args.shipments:,} shipments, {len(records):,} events; Redis {settings.redis_url}")
    full = build_evaluator(settings.redis_url, f"bench-{uuid.uuid4().hex[:8]}.")
    without = RuleEvaluator(full.rules, full.refdata, None)
    with_redis = _pass("rules + cross-shipment (Redis)", full, records, args.shipments,
                       args.profile)  # fmt: skip
    alone = _pass("rules, no cross-shipment (baseline)", without, records, args.shipments, False)
    print(f"ratio with Redis / without: {with_redis / alone:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
