"""The worker process on the real broker: one decision per version, equal to ground truth.

Each test starts ``s321 worker`` as a process of its own (topics, consumer group, data
directory and Redis keys unique to the test), produces generated traffic, reads decisions,
unmatched reports and dead letters back, and compares them with the generator's ground truth.
``--idle-speedup`` makes idle partitions' event time run fast once traffic stops, so the
deadlines of the last shipments fire within seconds.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
import redis

from s321 import serialization, topics
from s321.admin import ensure_topics
from s321.core.routing import murmur2_partition
from s321.devtools.demo import DemoReport, collect, compare, start_worker, stop_worker
from s321.devtools.generator.scenarios import Event, GeneratorConfig, Traffic, generate
from s321.kafka_config import KafkaClientConfig, as_env, confluent

PARTITIONS = 4
WORKER_ARGS = ("--idle-speedup", "7200", *os.environ.get("S321_TEST_WORKER_ARGS", "").split())


@dataclass
class WorkerRun:
    """One test's worker processes and the names they share."""

    kafka: KafkaClientConfig
    redis_url: str
    unique: str
    tmp_path: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap

    @property
    def prefix(self) -> str:
        return f"{self.unique}."

    def env(self, data_dir: Path) -> dict[str, str]:
        return {
            "S321_TOPIC_PREFIX": self.prefix,
            "S321_APP_ID": self.unique,
            "S321_PARTITIONS": str(PARTITIONS),
            "S321_DATA_DIR": str(data_dir),
            **as_env(self.kafka),
            "S321_REDIS_URL": self.redis_url,
        }

    def start(
        self,
        data_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        extra_args: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        """Start one more worker (by default on the test's own data directory)."""
        data_dir = data_dir or self.tmp_path / "data"
        log = data_dir / f"worker-{len(self.procs) + 1}.log"
        env = {**self.env(data_dir), **(extra_env or {})}
        proc = start_worker(env, log, *WORKER_ARGS, *extra_args)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            out.append(f"--- {log} (last {lines} lines)\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


@pytest.fixture
def run(
    kafka: KafkaClientConfig, kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path
) -> Iterator[WorkerRun]:
    """A worker run with the input topics created; stops its workers and removes its topics and
    Redis keys afterwards."""
    ensure_topics(kafka, f"{unique}.", PARTITIONS)
    r = WorkerRun(kafka, redis_url, unique, tmp_path)
    yield r
    for proc in r.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _cleanup(kafka_bootstrap, redis_url, unique)


def _cleanup(bootstrap: str, redis_url: str, unique: str) -> None:
    import redis
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    mine = [t for t in admin.list_topics(timeout=15).topics if t.startswith(unique)]
    if mine:
        for fut in admin.delete_topics(mine).values():
            fut.result(timeout=30)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{unique}.*", count=1000))
    if keys:
        client.delete(*keys)


def _traffic(shipments: int, seed: int, days: int = 0) -> Traffic:
    """The demo mix over the generator's default dates, or packed into ``days`` days so that
    shipments interleave and any cut through the stream splits many of them."""
    if not days:
        return generate(GeneratorConfig(seed=seed, shipments=shipments))
    start = date(2024, 9, 2)
    return generate(
        GeneratorConfig(
            seed=seed, shipments=shipments, start=start, end=start + timedelta(days=days - 1)
        )
    )


def _perturb(events: Sequence[Event], seed: int, window: int, resend: float) -> list[Event]:
    """Shuffle the events within consecutive windows and send a fraction of them twice (the
    second copy a few positions later), as an at-least-once producer with retries would."""
    rng = random.Random(seed)
    out: list[Event] = []
    for i in range(0, len(events), window):
        chunk = list(events[i : i + window])
        rng.shuffle(chunk)
        out.extend(chunk)
    for i in reversed(range(len(out))):
        if rng.random() < resend:
            out.insert(min(len(out), i + rng.randint(1, window)), out[i])
    return out


def _produce(
    kafka: KafkaClientConfig,
    prefix: str,
    events: Sequence[Event],
    partitioner: dict[topics.TopicSpec, str] | None = None,
) -> None:
    """Produce ``events`` in order, keyed as the generator gives; ``partitioner`` chooses
    librdkafka's partitioner per input topic (its default, CRC32, elsewhere)."""
    from confluent_kafka import Producer

    def producer(name: str) -> Producer:
        return Producer(
            {
                **confluent(kafka),
                "linger.ms": 10,
                "enable.idempotence": True,
                "partitioner": name,
            }
        )

    by_name: dict[str, Producer] = {}
    chosen = partitioner or {}
    for ev in events:
        name = chosen.get(ev.spec, "consistent_random")
        p = by_name.get(name) or by_name.setdefault(name, producer(name))
        p.produce(
            topics.topic_name(ev.spec, prefix),
            key=ev.key.encode(),
            value=serialization.encode(ev.value),
        )
        p.poll(0)
    for p in by_name.values():
        assert p.flush(60) == 0, "some records were not delivered"


def _wait_for_decisions(
    kafka: KafkaClientConfig, prefix: str, at_least: int, timeout_s: float
) -> int:
    """Block until ``at_least`` committed decisions are on the decisions topic; their count."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            **confluent(kafka),
            "group.id": f"{prefix}probe-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topics.topic_name(topics.DECISIONS, prefix)])
    seen = 0
    deadline = time.monotonic() + timeout_s
    try:
        while seen < at_least and time.monotonic() < deadline:
            seen += sum(1 for m in consumer.consume(500, 0.5) if not m.error())
    finally:
        consumer.close()
    return seen


def _check(
    run: WorkerRun, traffic: Traffic, timeout_s: float = 120, quiet_s: float = 30
) -> DemoReport:
    """Collect the worker's answers for ``traffic`` (giving up after ``quiet_s`` without a new
    one) and assert none is lost, duplicated or different from ground truth."""
    truth = traffic.truth_by_key()
    decisions, unmatched, dead = collect(
        run.kafka, run.prefix, truth, quiet_s=quiet_s, timeout_s=timeout_s
    )
    report = DemoReport(shipments=len(truth), events=len(traffic.events))
    compare(truth, decisions, unmatched, dead, report)
    summary = "\n".join(report.lines())
    repeated = {
        key: [(d.version, d.outcome.value, sorted(h.rule_id for h in d.hits)) for d in ds]
        for key, ds in decisions.items()
        if len({d.version for d in ds}) < len(ds)
    }
    detail = (
        f"{summary}\nmismatches: {report.mismatch_examples}\n"
        f"repeated versions: {dict(list(repeated.items())[:5])}\n"
        f"lost (a version missing, or no answer): {report.lost_examples[:5]}\n{run.log_tails()}"
    )
    assert report.decided > 0, f"no decisions at all\n{detail}"
    assert report.lost == 0, f"lost answers\n{detail}"
    assert report.duplicates == 0, f"duplicated decision versions\n{detail}"
    assert report.mismatches == 0, f"decisions differ from ground truth\n{detail}"
    assert report.dead_letters == 0, f"generated traffic went to the dead letters\n{detail}"
    return report


def _straddling(events: Sequence[Event], cut: int) -> set[str]:
    """Shipments with events on both sides of position ``cut``."""
    before = {e.key for e in events[:cut]}
    return before & {e.key for e in events[cut:]}


@pytest.mark.slow
def test_reordered_and_resent_traffic_gets_one_decision_per_version(run: WorkerRun) -> None:
    """Demo-mix traffic shuffled within windows, with some events sent twice, gets exactly one
    decision per shipment version, each shipment's newest equal to ground truth."""
    traffic = _traffic(1500, seed=11)
    run.start()
    _produce(run.kafka, run.prefix, _perturb(traffic.events, seed=11, window=8, resend=0.03))
    _check(run, traffic)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["same data directory", "fresh data directory"])
def test_killed_worker_is_replaced_without_loss_or_duplicates(run: WorkerRun, where: str) -> None:
    """A worker killed with SIGKILL mid-run and replaced (restarted on its data directory, or
    started on an empty one, so its table comes from the changelog alone) loses and duplicates
    nothing, and shipments straddling the kill correlate from the recovered table."""
    traffic = _traffic(300, seed=12, days=1)
    cut = len(traffic.events) * 3 // 5
    assert len(_straddling(traffic.events, cut)) >= 5, "the kill would split no shipment"
    first = run.start()
    _produce(run.kafka, run.prefix, traffic.events[:cut])
    seen = _wait_for_decisions(run.kafka, run.prefix, 50, timeout_s=90)
    assert seen >= 50, f"the first worker made only {seen} decisions\n{run.log_tails()}"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    run.start(None if where == "same data directory" else run.tmp_path / "fresh")
    _produce(run.kafka, run.prefix, traffic.events[cut:])
    # the killed member keeps its partitions until its session (10 s here) expires
    _check(run, traffic, timeout_s=180, quiet_s=90)


@pytest.mark.slow
def test_a_stopped_workers_store_records_how_far_the_changelog_reached(run: WorkerRun) -> None:
    """Once a worker has stopped, each partition's local store names as persisted the offset of
    the last record on its changelog partition: a worker restarted on that store reads only
    the changelog's tail. (At least once the worker sends the changelog records itself and
    records the offsets the broker acknowledged; Faust's own table write did both before.) Its
    version ledger keeps the versions and lets the decision records go."""
    from confluent_kafka import Consumer, TopicPartition
    from rocksdict import AccessType, Options, Rdict

    traffic = _traffic(200, seed=14)
    worker = run.start()
    _produce(run.kafka, run.prefix, traffic.events)
    _check(run, traffic)
    stop_worker(worker)
    changelog = topics.changelog_name(run.unique)
    probe = Consumer({**confluent(run.kafka), "group.id": f"{run.prefix}probe-changelog"})
    try:
        ends = {
            p: probe.get_watermark_offsets(TopicPartition(changelog, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        probe.close()
    persisted = {}
    for p in range(PARTITIONS):
        [path] = (run.tmp_path / "data").glob(f"**/*shipments-{p}.db")
        db = Rdict(str(path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            raw = db.get(b"__faust\0offset__")
        finally:
            db.close()
        persisted[p] = None if raw is None else int(raw)
    assert all(end > 0 for end in ends.values()), f"a changelog partition is empty: {ends}"
    assert persisted == {p: end - 1 for p, end in ends.items()}, (persisted, ends)
    # its decisions all acknowledged, the stopped worker left no decision record in the ledger
    client = redis.Redis.from_url(run.redis_url)
    try:
        versions = list(client.scan_iter(match=f"{run.prefix}*xs:dv:*", count=1000))
        records = list(client.scan_iter(match=f"{run.prefix}*xs:dr:*", count=1000))
    finally:
        client.close()
    assert versions, "the ledger was written"
    assert records == []


@pytest.mark.slow
def test_worker_joining_and_leaving_mid_run_changes_nothing(run: WorkerRun) -> None:
    """A second worker that joins while traffic flows and then leaves with SIGTERM changes no
    decision: nothing lost, nothing duplicated, all equal to ground truth."""
    traffic = _traffic(500, seed=13, days=1)
    thirds = [len(traffic.events) * i // 3 for i in range(4)]
    run.start()
    _produce(run.kafka, run.prefix, traffic.events[: thirds[1]])
    second = run.start(run.tmp_path / "second")
    _produce(run.kafka, run.prefix, traffic.events[thirds[1] : thirds[2]])
    _wait_for_decisions(run.kafka, run.prefix, len(traffic.truth) // 3, timeout_s=90)
    stop_worker(second)
    assert second.returncode is not None
    _produce(run.kafka, run.prefix, traffic.events[thirds[2] :])
    _check(run, traffic, timeout_s=180)


def test_java_and_librdkafka_partitioners_still_correlate(run: WorkerRun) -> None:
    """Manifests partitioned like Java clients (murmur2) and pilot records like librdkafka
    (CRC32), keyed as generated, still meet their partners: every answer equals ground truth."""
    traffic = _traffic(400, seed=14)
    pilots = [e for e in traffic.events if e.spec is topics.PILOT]
    assert any(
        murmur2_partition(e.key.encode(), PARTITIONS) != _crc32_partition(e.key) for e in pilots
    ), "no pilot record lands off its home partition: the test would prove nothing"
    run.start()
    _produce(
        run.kafka,
        run.prefix,
        traffic.events,
        {topics.MANIFEST: "murmur2_random", topics.PILOT: "consistent_random"},
    )
    _check(run, traffic)


def _crc32_partition(key: str) -> int:
    import zlib

    return zlib.crc32(key.encode()) % PARTITIONS


def test_worker_serves_prometheus_metrics_of_what_it_did(run: WorkerRun) -> None:
    """A running worker's /metrics counts the input events it read and the decisions it published, by outcome."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run.start(extra_env={"S321_METRICS_PORT": str(port)})
    traffic = _traffic(60, seed=11)
    _produce(run.kafka, run.prefix, traffic.events)
    _check(run, traffic)

    def sample(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{") or line.startswith(name + " ")
        )

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert sample(text, "s321_input_events_total") >= len(traffic.events)
    decided = sample(text, "s321_decisions_total")
    assert decided >= len([t for t in traffic.truth if t.outcome != "UNMATCHED"])
    assert 's321_decisions_total{outcome="RELEASE"}' in text
    assert sample(text, "s321_decision_latency_from_broker_seconds_count") == decided
    assert 's321_rule_set_info{version="' in text
    assert 's321_reference_data_info{version="' in text
