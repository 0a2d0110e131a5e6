"""Input validation alone: CPU time of :func:`s321.validation.validate` per record.

Run: ``.venv/bin/python tests/benchmarks/bench_validation.py [--shipments 5000] [--rounds 5]``
(not a pytest file; needs no servers).

Decodes the benchmark's cached backlog (demo mix, every scenario; generated once, as
``bench_processor.py`` uses it) and validates every input record as the processor does (with
the time received and the encoded size), ``--rounds`` times over. It prints the microseconds
of process CPU time per record of each round and the best, and how many records broke a bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from s321 import serialization
from s321.devtools.bench import cached_traffic
from s321.devtools.generator.ocf import read_records
from s321.models import Entry86, ManifestEvent, PilotRecord
from s321.settings import Settings
from s321.validation import validate

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shipments", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=321)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    traffic = cached_traffic(
        settings.cache_dir, args.seed, args.shipments, date(2024, 6, 1), date(2024, 12, 31), print
    )
    inputs = []
    for r in read_records(traffic.records):
        event = serialization.decode(r.value)
        if isinstance(event, ManifestEvent | PilotRecord | Entry86):
            inputs.append((event, len(r.value)))
    received = int(time.time() * 1000)
    invalid = sum(bool(validate(e, received_ms=received, size=n)) for e, n in inputs)
    print(f"{args.shipments:,} shipments, {len(inputs):,} input records, {invalid:,} invalid")
    best = float("inf")
    for i in range(args.rounds):
        cpu = time.process_time()
        for event, size in inputs:
            validate(event, received_ms=received, size=size)
        per_record = (time.process_time() - cpu) / len(inputs) * 1e6
        best = min(best, per_record)
        print(f"round {i + 1}: {per_record:6.2f} µs per record")
    print(f"validate: {best:.2f} µs per record (best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
