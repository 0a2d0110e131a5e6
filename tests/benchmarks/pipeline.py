"""Benchmark of the whole pipeline: worker throughput, its ceiling, latency per load, scale-out,
memory and recovery, and the CPU per shipment beside a bare Faust join, on the local Kafka and
Redis (not collected by pytest).

The logic lives in :mod:`s321.devtools.bench` so that ``s321 bench`` works from an installed package;
this script runs it and, with ``--report``, rewrites ``tests/benchmarks/REPORT.md`` and its plot.

Run: ``.venv/bin/python tests/benchmarks/pipeline.py --quick --report`` (a few minutes) or
without ``--quick`` for the full run (200,000 shipments backlog, a million waiting).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from s321.devtools.bench import BenchConfig, BenchReport, parse_phases, run_bench
from s321.devtools.stack import Stack
from s321.settings import Settings

HERE = Path(__file__).resolve().parent


def write_report(report: BenchReport, command: str, path: Path, plot_name: str) -> None:
    """REPORT.md: the command, the machine, the figures, the targets, the profile, the plot."""
    body = report.as_json()
    m = report.machine
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Pipeline benchmark: latest report",
        "",
        f"Measured {when} with:",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {m.get('cpus')} CPUs ({m.get('cpu')}), {m.get('memory_gb')} GB RAM, Linux "
        f"{m.get('kernel')}, Python {m.get('python')}, Kafka {m.get('kafka')} (KRaft, one "
        f"broker on the same machine) and Redis on the same machine; load average at start "
        f"{m.get('load_average_at_start')}. The machine is shared with other developers: "
        "absolute figures are noisy, ratios within one run less so.",
        "",
        f"Backlog: {report.config.get('shipments'):,} shipments "
        f"({report.config.get('events'):,} events, demo mix: every scenario), "
        f"{report.config.get('partitions')} partitions; latency traffic "
        f"{report.config.get('latency_shipments'):,} shipments.",
        "",
        f"![throughput and latency per load]({plot_name})",
        "",
        "What each change to the hot path did, measured before and after side by side, and what"
        " bounds the worker's cost now: [LEVERS.md](LEVERS.md).",
        "",
        "## Figures",
        "",
        "```",
        *report.lines(),
        "```",
        "",
        "## JSON (`--json`)",
        "",
        "```json",
        json.dumps({k: v for k, v in body.items() if k != "profile_top"}, indent=2),
        "```",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--shipments", type=int)
    parser.add_argument("--waiting", type=int)
    parser.add_argument("--phases", help="Comma-separated phases besides throughput.")
    parser.add_argument("--report", action="store_true", help="Rewrite REPORT.md and the plot.")
    args = parser.parse_args()
    settings = Settings.from_env()
    plot_name = "pipeline-quick.png" if args.quick else "pipeline.png"
    cfg = BenchConfig(
        kafka=settings.kafka(),
        redis_url=settings.redis_url,
        data_dir=settings.data_dir,
        cache_dir=settings.cache_dir,
        partitions=settings.partitions,
        plot=HERE / plot_name if args.report else None,
        servers=Stack.from_settings(settings).pids(),
    )
    if args.quick:
        cfg = BenchConfig.quick_of(cfg)
    if args.shipments is not None:
        cfg = dataclasses.replace(cfg, shipments=args.shipments)
    if args.waiting is not None:
        cfg = dataclasses.replace(cfg, waiting=args.waiting)
    if args.phases is not None:
        cfg = dataclasses.replace(cfg, phases=parse_phases(args.phases))
    report = run_bench(cfg, lambda line: print(line, flush=True))
    for line in report.lines():
        print(line)
    if args.report:
        command = ".venv/bin/python tests/benchmarks/pipeline.py " + shlex.join(sys.argv[1:])
        write_report(report, command, HERE / "REPORT.md", plot_name)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
