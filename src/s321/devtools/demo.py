"""``s321 demo``: the whole pipeline on the local stack, checked against ground truth.

Brings up Kafka and Redis, starts a worker process, generates traffic with every scenario in
the mix, reads the decisions back and compares the newest version of each shipment's decision
with what the generator says the rules should conclude.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from s321 import serialization, topics
from s321.devtools.stats import percentile
from s321.kafka_config import KafkaClientConfig, as_env, confluent
from s321.models import DeadLetter, Decision

__all__ = ["DemoReport", "collect", "run_demo", "start_worker"]


@dataclass
class DemoReport:
    """What the demo measured: counts, correctness against ground truth, latency."""

    shipments: int = 0
    events: int = 0
    decided: int = 0
    unmatched: int = 0
    lost: int = 0
    duplicates: int = 0
    redelivered: int = 0
    mismatches: int = 0
    dead_letters: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    latency_ms: dict[str, float] = field(default_factory=dict)
    mismatch_examples: list[dict[str, Any]] = field(default_factory=list)
    lost_examples: list[dict[str, Any]] = field(default_factory=list)  # key, versions seen
    mismatch_by_scenario: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.mismatches == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "shipments": self.shipments,
            "events": self.events,
            "decided": self.decided,
            "unmatched": self.unmatched,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "redelivered": self.redelivered,
            "mismatches": self.mismatches,
            "dead_letters": self.dead_letters,
            "by_outcome": self.by_outcome,
            "top_reasons": [{"reason": r, "count": n} for r, n in self.top_reasons],
            "latency_ms": self.latency_ms,
            "mismatch_by_scenario": self.mismatch_by_scenario,
            "mismatch_examples": self.mismatch_examples,
            "seconds": round(self.seconds, 1),
        }

    def lines(self) -> list[str]:
        out = [
            f"shipments generated  {self.shipments:>8}   ({self.events} events)",
            f"decided              {self.decided:>8}",
            f"unmatched            {self.unmatched:>8}",
            f"lost                 {self.lost:>8}",
            f"duplicated           {self.duplicates:>8}",
            f"redelivered (same id){self.redelivered:>8}",
            f"differ from truth    {self.mismatches:>8}",
            f"dead letters         {self.dead_letters:>8}",
            "by outcome           "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.by_outcome.items())),
            "top reasons          " + ", ".join(f"{r} {n}" for r, n in self.top_reasons[:8]),
            "latency ms (ingest to decision)  "
            + ", ".join(f"{k} {v:.0f}" for k, v in self.latency_ms.items()),
        ]
        return out


def start_worker(env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """Start ``s321 worker`` as its own process (its own session, so a kill hits it alone)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", "from s321.cli import main; main()", "worker", *extra],
            env={
                **os.environ,
                "S321_METRICS_PORT": "0",
                "S321_STATUS_PORT": "0",
                "S321_HEALTH_PORT": "0",
                **env,
            },
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_worker(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers_consumer(
    kafka: KafkaClientConfig, prefix: str, group: str, **config: object
) -> tuple[Any, dict[str, topics.TopicSpec]]:
    """A consumer of a deployment's answers (decisions, unmatched reports and dead letters),
    read-committed from their start under a group of its own that never commits, subscribed;
    and the registry topic of each full topic name. ``config`` adds client settings."""
    from confluent_kafka import Consumer

    names = {
        topics.topic_name(s, prefix): s
        for s in (topics.DECISIONS, topics.UNMATCHED, topics.DEAD_LETTERS)
    }
    consumer = Consumer(
        {
            **confluent(kafka),
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **config,
        }
    )
    consumer.subscribe(list(names))
    return consumer, names


def collect(
    kafka: KafkaClientConfig,
    prefix: str,
    expected: dict[str, Any],
    *,
    quiet_s: float,
    timeout_s: float,
    progress: bool = False,
    serde: serialization.Serializer | None = None,
) -> tuple[dict[str, list[Decision]], dict[str, DeadLetter], int]:
    """Read decisions, unmatched reports and dead letters (read-committed) until every
    expected shipment has a final answer, or nothing new came for ``quiet_s`` seconds
    (``serde``: the deployment's wire format; single-object encoding by default)."""
    serde = serde or serialization.serializer()
    consumer, names = answers_consumer(kafka, prefix, f"{prefix}demo-reader-{time.time()}")
    decisions: dict[str, list[Decision]] = {}
    unmatched: dict[str, DeadLetter] = {}
    dead = 0
    deadline = time.monotonic() + timeout_s
    last_new = time.monotonic()
    from tqdm import tqdm

    bar = tqdm(total=len(expected), desc="answered", unit="shipment", disable=not progress)
    try:
        while time.monotonic() < deadline:
            msgs = consumer.consume(500, 0.5)
            for msg in msgs:
                if msg.error():
                    continue
                spec = names[msg.topic() or ""]
                if spec is topics.DECISIONS:
                    d = serde.decode(msg.value() or b"", Decision)
                    decisions.setdefault(d.shipment_key, []).append(d)
                elif spec is topics.UNMATCHED:
                    u = serde.decode(msg.value() or b"", DeadLetter)
                    unmatched[(u.key or b"").decode()] = u
                else:
                    dead += 1
            if msgs:
                last_new = time.monotonic()
            answered = sum(
                1
                for k, t in expected.items()
                if _final(decisions.get(k), unmatched.get(k), t) is not None
            )
            bar.update(answered - bar.n)
            if answered >= len(expected) and time.monotonic() - last_new > 2:
                break
            if time.monotonic() - last_new > quiet_s:
                break
    finally:
        bar.close()
        consumer.close()
    return decisions, unmatched, dead


def _final(ds: list[Decision] | None, u: DeadLetter | None, truth: Any) -> str | None:
    if truth.outcome == "UNMATCHED":
        return "UNMATCHED" if u is not None else None
    if not ds:
        return None
    newest = max(ds, key=lambda d: d.version)
    return newest.outcome.value


def _repeats(ds: list[Decision]) -> tuple[int, int]:
    """(second decisions, redeliveries) among one shipment's decision records.

    A second decision is another record for a (shipment, version) already seen that differs
    from it (id, outcome or reasons): a defect. A redelivery is an identical record again (same
    id, outcome and reasons), which an at-least-once worker may publish after a crash and a
    consumer drops by decision id."""
    first: dict[int, tuple[str, str, tuple[str, ...]]] = {}
    dupes = again = 0
    for d in ds:
        ident = (d.decision_id, d.outcome.value, tuple(sorted(h.reason_code for h in d.hits)))
        seen = first.setdefault(d.version, ident)
        if seen is ident:
            continue
        if seen == ident:
            again += 1
        else:
            dupes += 1
    return dupes, again


def _lost(report: DemoReport, key: str, versions: Counter[int]) -> None:
    report.lost += 1
    if len(report.lost_examples) < 10:
        report.lost_examples.append({"key": key, "versions seen": sorted(versions)})


def compare(
    truth: dict[str, Any],
    decisions: dict[str, list[Decision]],
    unmatched: dict[str, DeadLetter],
    dead: int,
    report: DemoReport,
) -> None:
    """Fill ``report`` with lost / duplicated / mismatched counts and the summary figures."""
    latencies: list[float] = []
    reasons: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for key, t in truth.items():
        ds = decisions.get(key, [])
        versions = Counter(d.version for d in ds)
        dupes, again = _repeats(ds)
        report.duplicates += dupes
        report.redelivered += again
        if versions and sorted(versions) != list(range(1, max(versions) + 1)):
            _lost(report, key, versions)  # a gap in the version sequence: a version went missing
        if t.outcome == "UNMATCHED":
            if key in unmatched:
                report.unmatched += 1
                outcomes["UNMATCHED"] += 1
            else:
                _lost(report, key, versions)
            if ds:
                report.mismatches += 1
            continue
        if not ds:
            _lost(report, key, versions)
            continue
        report.decided += 1
        newest = max(ds, key=lambda d: d.version)
        outcomes[newest.outcome.value] += 1
        latencies.extend(d.latency_ms for d in ds)
        fired = tuple(sorted({h.rule_id for h in newest.hits}))
        for h in newest.hits:
            reasons[h.reason_code] += 1
        if newest.outcome.value != t.outcome or (
            t.outcome != "CANCELLED" and fired != tuple(sorted(t.rules))
        ):
            report.mismatches += 1
            report.mismatch_by_scenario[t.scenario] = (
                report.mismatch_by_scenario.get(t.scenario, 0) + 1
            )
            if len(report.mismatch_examples) < 10:
                report.mismatch_examples.append(
                    {
                        "key": key,
                        "scenario": t.scenario,
                        "expected": t.outcome,
                        "expected_rules": sorted(t.rules),
                        "got": newest.outcome.value,
                        "got_rules": list(fired),
                    }
                )
    report.dead_letters = dead
    report.by_outcome = dict(outcomes)
    report.top_reasons = reasons.most_common(10)
    latencies.sort()
    report.latency_ms = {
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
    }


def run_demo(
    kafka: KafkaClientConfig,
    redis_url: str,
    data_dir: Path,
    shipments: int,
    seed: int,
    partitions: int,
    progress: bool = True,
    registry_url: str = "",
    registry_auth: str = "",
) -> DemoReport:
    """Run the demo end to end on the stack at ``kafka`` / ``redis_url``; with
    ``registry_url``, its traffic, worker and reader use that schema registry's wire format."""
    from s321.admin import ensure_topics
    from s321.devtools.generator.scenarios import GeneratorConfig, generate

    t0 = time.monotonic()
    run = f"demo{int(time.time())}"
    prefix = f"{run}."
    ensure_topics(kafka, prefix, partitions)
    env = {
        "S321_TOPIC_PREFIX": prefix,
        "S321_APP_ID": run,
        **as_env(kafka),
        "S321_REDIS_URL": redis_url,
        "S321_PARTITIONS": str(partitions),
        "S321_DATA_DIR": str(data_dir),
        "S321_SCHEMA_REGISTRY_URL": registry_url,
        "S321_SCHEMA_REGISTRY_AUTH": registry_auth,
    }
    serde = serialization.serializer(registry_url, registry_auth)
    worker = start_worker(env, data_dir / "demo" / f"{run}.log", "--idle-speedup", "7200")
    try:
        traffic = generate(GeneratorConfig(seed=seed, shipments=shipments))
        _produce(kafka, prefix, traffic.events, progress, serde)
        truth = traffic.truth_by_key()
        decisions, unmatched, dead = collect(
            kafka, prefix, truth, quiet_s=60, timeout_s=3600, progress=progress, serde=serde
        )
    finally:
        stop_worker(worker)
        serde.close()
    report = DemoReport(shipments=len(truth), events=len(traffic.events))
    compare(truth, decisions, unmatched, dead, report)
    report.seconds = time.monotonic() - t0
    return report


def _produce(
    kafka: KafkaClientConfig,
    prefix: str,
    events: Any,
    progress: bool,
    serde: serialization.Serializer,
) -> None:
    from confluent_kafka import Producer
    from tqdm import tqdm

    producer = Producer(
        {
            **confluent(kafka),
            "linger.ms": 20,
            "compression.type": "lz4",
            "enable.idempotence": True,
        }
    )
    for ev in tqdm(events, desc="producing", unit="ev", disable=not progress):
        producer.produce(
            topics.topic_name(ev.spec, prefix),
            key=ev.key.encode(),
            value=serde.encode(ev.value),
        )
        producer.poll(0)
    producer.flush(60)
