"""Benchmark: median microseconds to evaluate the whole catalogue on one complete record.

Run as a script (not collected by pytest): ``.venv/bin/python tests/benchmarks/bench_rules.py``.
One core, no network I/O: the reference snapshot is the rule tests' fixture directory read
into memory, the aggregates are given. Prints the median and the 99th percentile.

A speed change to the rules must not change what they conclude. ``--outcomes FILE`` writes
every evaluation of a few thousand generated shipments (several record, aggregate and rule-set
variants each) to FILE as JSON; ``--outcomes FILE --check`` evaluates the same records again
and compares with FILE, byte for byte, printing the first differences::

    PYTHONPATH=/tmp/old/src .venv/bin/python tests/benchmarks/bench_rules.py --outcomes before.json
    .venv/bin/python tests/benchmarks/bench_rules.py --outcomes before.json --check
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.unit.test_rules import AGG, SNAP, entry86, record  # noqa: E402

from s321.models import CompleteRecord, Entry86, ManifestEvent, PilotRecord  # noqa: E402
from s321.refdata import ReferenceSnapshot  # noqa: E402
from s321.rules import Ruleset, default_ruleset, evaluate, parse_ruleset  # noqa: E402
from s321.rules.aggregates import Aggregates  # noqa: E402

__all__ = ["main", "outcomes"]

#: A rule set unlike the default: R06 on, a higher hold threshold, changed parameters, guards
#: and analyst conditions (so that plans, guards and conditions are compared too).
_VARIANT_RULESET = """
version = "bench-variant"
hold_threshold = "HIGH"
[rules.R06]
enabled = true
[rules.R02]
when = 'mode == "AIR"'
[rules.R02.params]
threshold_usd = 400
[rules.R10.params]
min_meaningful_words = 2
denylist = ["gift", "parts", "accessories"]
[rules.R12]
enabled = false
[rules.R14.params]
min_ratio = 0.8
[rules.R15.params]
value_tolerance = 0.05
[rules.R19.params]
min_score = 80
[rules.R22.params]
min_signals = 2
[rules.R24]
when = 'has_manifest and line_count > 1'
[rules.X01]
description = "heavy parcel from a risk origin"
reason_code = "HEAVY_RISK_ORIGIN"
severity = "HIGH"
source = "bench"
condition = 'weight_kg > 2 and origin in ["CN", "HK"]'
[rules.X02]
description = "listed price over the declared value"
reason_code = "LISTED_OVER_DECLARED"
severity = "LOW"
source = "bench"
condition = 'listed_price * quantity > declared_value + 1'
"""


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


def _records(seed: int, shipments: int) -> list[CompleteRecord]:
    """One record per generated shipment from its newest manifest, pilot and Type 86."""
    from s321.devtools.generator.scenarios import GeneratorConfig, generate

    newest: dict[str, dict[type, Any]] = {}
    entries: dict[str, list[str]] = {}
    for ev in generate(GeneratorConfig(seed=seed, shipments=shipments)).events:
        parts = newest.setdefault(ev.key, {})
        old = parts.get(type(ev.value))
        if old is None or ev.value.header.event_time >= old.header.event_time:
            parts[type(ev.value)] = ev.value
        if isinstance(ev.value, Entry86):
            numbers = entries.setdefault(ev.key, [])
            if ev.value.entry_number not in numbers:
                numbers.append(ev.value.entry_number)
    return [
        CompleteRecord(
            key,
            parts.get(ManifestEvent),
            parts.get(PilotRecord),
            parts.get(Entry86),
            entry_numbers=tuple(entries.get(key, ())),
        )
        for key, parts in sorted(newest.items())
    ]


def _aggregates(key: str) -> Aggregates:
    """Cross-shipment totals drawn from the key: quiet, over limits, absent or unavailable."""
    h = hashlib.blake2b(key.encode(), digest_size=8).digest()
    kind = h[0] % 6
    if kind == 0:
        return Aggregates.unavailable()
    if kind == 1:
        return Aggregates.empty()
    return Aggregates(
        person_day_total=Decimal(h[1] * 7) + Decimal("0.37"),
        person_day_count=1 + h[2] % 4,
        pair_total=Decimal(h[3] * 5) + Decimal("0.05") if kind != 2 else None,
        pair_count=1 + h[4] % 3,
        order_total=Decimal(h[5] * 6) if kind == 3 else None,
        order_count=1 + h[6] % 3,
        bill_entries=1 + h[7] % 2 if kind == 4 else None,
        address_day_parcels=h[1] % 30,
        address_day_names=h[2] % 8,
        consignee_history=1 + h[3] % 3,
    )


def _variants(rec: CompleteRecord) -> list[tuple[str, CompleteRecord]]:
    import dataclasses

    out = [("full", rec), ("late", dataclasses.replace(rec, pilot_deadline_passed=True))]
    if rec.pilot is not None:
        out.append(("no-pilot", dataclasses.replace(rec, pilot=None)))
    if rec.manifest is not None:
        out.append(("no-manifest", dataclasses.replace(rec, manifest=None)))
    if rec.entry86 is not None and rec.manifest is not None:
        out.append(("manifest-only", dataclasses.replace(rec, pilot=None, entry86=None)))
    return out


def outcomes(seed: int = 7, shipments: int = 3000) -> dict[str, Any]:
    """Every evaluation of the generated records: key/variant/ruleset -> what was concluded."""
    from s321.refdata import demo_refdata_dir

    snaps = {"demo": ReferenceSnapshot.from_directory(demo_refdata_dir()), "fixture": SNAP}
    rulesets: dict[str, Ruleset] = {
        "default": default_ruleset(),
        "variant": parse_ruleset(_VARIANT_RULESET, "variant"),
    }
    now = datetime(2024, 9, 2, 16, 0, tzinfo=UTC)
    out: dict[str, Any] = {}
    for i, base in enumerate(_records(seed, shipments)):
        agg = _aggregates(base.key)
        for name, rec in _variants(base):
            for rname, rules in rulesets.items():
                sname = "demo" if (i + len(name)) % 5 else "fixture"
                ev = evaluate(rec, rules, snaps[sname], agg, now)
                out[f"{base.key}/{name}/{rname}/{sname}"] = [
                    ev.outcome.value,
                    [
                        [
                            h.rule_id,
                            h.rule_version,
                            h.severity.value,
                            h.reason_code,
                            h.description,
                            list(h.evidence.items()),
                        ]
                        for h in ev.hits
                    ],
                    list(ev.not_applicable),
                    list(ev.required_actions),
                    ev.eligible,
                    list(ev.errors),
                    ev.regime_version,
                ]
    return out


def _outcomes_file(path: Path, check: bool, seed: int, shipments: int) -> int:
    current = outcomes(seed, shipments)
    text = json.dumps(current, indent=0)
    if not check:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {len(current)} evaluations to {path}")
        return 0
    saved = json.loads(path.read_text(encoding="utf-8"))
    if text == path.read_text(encoding="utf-8"):
        print(f"identical: {len(current)} evaluations match {path}")
        return 0
    differ = [k for k in sorted(set(saved) | set(current)) if saved.get(k) != current.get(k)]
    print(f"DIFFERENT: {len(differ)} of {len(saved)} evaluations differ from {path}")
    for k in differ[:5]:
        print(f"  {k}\n    saved:   {saved.get(k)}\n    current: {current.get(k)}")
    return 1


if __name__ == "__main__":
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=20_000)
    cli.add_argument("--outcomes", type=Path, help="write (or with --check compare) outcomes")
    cli.add_argument("--check", action="store_true", help="compare with --outcomes FILE")
    cli.add_argument("--seed", type=int, default=7)
    cli.add_argument("--shipments", type=int, default=3000)
    args = cli.parse_args()
    if args.outcomes is not None:
        sys.exit(_outcomes_file(args.outcomes, args.check, args.seed, args.shipments))
    main(args.rounds)
