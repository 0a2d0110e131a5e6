"""Serialization throughput: domain objects <-> single-object Avro, against raw fastavro.

Run: ``.venv/bin/python tests/benchmarks/bench_serde.py [--seconds 1.0]`` (not a pytest file).

For each full record (manifest with 4 lines, pilot record, Type 86 entry with 2 lines,
decision with 3 hits) it measures, in CPU time of this process, decodes and encodes per second
through :mod:`s321.serialization`, and the same for the baseline: fastavro's schemaless
reader/writer on plain dicts with the full (logical-type) schema, no domain mapping, no framing.
It then prints the share of one core that the pipeline's load would take: 15,000 decodes per
second of inputs (mixed as the sources' volumes are: per shipment one manifest, 0.23 pilot
records, 0.49 Type 86 entries) plus 5,000 decision encodes per second.
The target is under a third of one core.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from tests.contract import samples

from s321.serialization import decode, encode, schema

__all__ = ["main"]

DECODES_PER_S = 15_000
ENCODES_PER_S = 5_000
TARGET_SHARE = 1 / 3
MIX = {"ManifestEvent": 1.0, "PilotRecord": 0.23, "Entry86": 0.49}


def _rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of ``fn``, measured for about ``seconds`` of CPU time."""
    fn()
    n, batch, spent = 0, 64, 0.0
    while spent < seconds:
        start = time.process_time()
        for _ in range(batch):
            fn()
        spent += time.process_time() - start
        n += batch
        batch = min(batch * 2, 4096)
    return n / spent


def _baseline(name: str, data: bytes) -> tuple[Callable[[], object], Callable[[], object]]:
    parsed = parse_schema(schema(name))
    body = data[10:]
    record: Any = schemaless_reader(io.BytesIO(body), parsed)

    def read() -> object:
        return schemaless_reader(io.BytesIO(body), parsed)

    def write() -> object:
        buf = io.BytesIO()
        schemaless_writer(buf, parsed, record)
        return buf.getvalue()

    return read, write


def main() -> None:
    """Measure and print the table and the CPU share."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    args = parser.parse_args()
    records = {
        "ManifestEvent": samples.manifest(lines=4),
        "PilotRecord": samples.pilot(),
        "Entry86": samples.entry86(lines=2),
        "Decision": samples.decision(hits=3),
    }
    rows: dict[str, tuple[float, float, float, float]] = {}
    print(
        f"{'record':14} {'bytes':>5} {'decode/s':>9} {'base':>9} {'ratio':>5}"
        f" {'encode/s':>9} {'base':>9} {'ratio':>5}"
    )
    for name, obj in records.items():
        data = encode(obj)
        expected = type(obj)
        dec = _rate(lambda d=data, e=expected: decode(d, e), args.seconds)
        enc = _rate(lambda o=obj: encode(o), args.seconds)
        base_read, base_write = _baseline(name, data)
        bdec = _rate(base_read, args.seconds)
        benc = _rate(base_write, args.seconds)
        rows[name] = (dec, enc, bdec, benc)
        print(
            f"{name:14} {len(data):5d} {dec:9.0f} {bdec:9.0f} {bdec / dec:5.2f}"
            f" {enc:9.0f} {benc:9.0f} {benc / enc:5.2f}"
        )

    def share(decode_col: int, encode_col: int) -> float:
        weight = sum(MIX.values())
        per_decode = sum(w / rows[n][decode_col] for n, w in MIX.items()) / weight
        per_encode = 1 / rows["Decision"][encode_col]
        return DECODES_PER_S * per_decode + ENCODES_PER_S * per_encode

    ours, base = share(0, 1), share(2, 3)
    print()
    print(f"load: {DECODES_PER_S} decodes/s (mix {MIX}) + {ENCODES_PER_S} decision encodes/s")
    print(
        f"CPU share of one core: s321 {ours:.1%}, raw fastavro baseline {base:.1%},"
        f" target < {TARGET_SHARE:.0%}: {'MET' if ours < TARGET_SHARE else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()
