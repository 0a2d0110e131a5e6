"""Benchmark: median microseconds to evaluate the whole catalogue on one complete record.

Run as a script (not collected by pytest): ``.venv/bin/python tests/benchmarks/bench_rules.py``.
One core, no network I/O: the reference snapshot is the rule tests' fixture directory read
into memory, the aggregates are given. Prints the median and the 99th percentile.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.unit.test_rules import AGG, SNAP, entry86, record  # noqa: E402

from s321.rules import default_ruleset, evaluate  # noqa: E402

__all__ = ["main"]


def main(rounds: int = 20_000) -> float:
    """Evaluate a full three-source record ``rounds`` times; return the median in µs."""
    rec = record(e=entry86())
    rules = default_ruleset()
    for _ in range(500):
        evaluate(rec, rules, SNAP, AGG)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        t0 = clock()
        evaluate(rec, rules, SNAP, AGG)
        samples.append(clock() - t0)
    samples.sort()
    median = statistics.median(samples) / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    print(
        f"evaluate(): {len(rules.rules)} rules, median {median:.1f} us, p99 {p99:.1f} us "
        f"over {rounds} runs (target: median <= 50 us)"
    )
    return median


if __name__ == "__main__":
    main()
