"""Running workers on the real broker follow published rule sets, survive a Redis outage, and
``s321 explain`` tells a shipment's story.

Each test starts ``s321 worker`` as a process with topics, app id and Redis keys of its own,
produces small batches of generated ordinary traffic (ground truth: RELEASE under the default
rule set), and reads the decisions topic back with a reader that keeps what it has seen.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import redis

from s321 import serialization, topics
from s321.admin import ensure_topics
from s321.devtools.demo import start_worker
from s321.devtools.generator import world
from s321.devtools.generator.scenarios import GeneratorConfig, Traffic, generate
from s321.entry_number import make_entry_number
from s321.kafka_config import KafkaClientConfig
from s321.models import Decision, Entry86, Entry86Line, EventHeader, ManifestEvent, Outcome
from s321.regime import EASTERN, default_regimes
from s321.rules import ENTRY_ACTION, ENTRY_MISSING, ENTRY_PENDING, TYPE86_ACTION, default_ruleset
from s321.stores.connection import redis_prefix
from tests.conftest import free_port, start_own_redis

PARTITIONS = 2
WORKER_ARGS = ("--idle-speedup", "7200")


def _batch(seed: int, shipments: int, month: int) -> Traffic:
    """Ordinary shipments arriving on two days of ``month`` 2024 (batches never overlap)."""
    start = date(2024, month, 2)
    return generate(
        GeneratorConfig(
            seed=seed,
            shipments=shipments,
            start=start,
            end=start + timedelta(days=1),
            mix={"ordinary": 1.0},
        )
    )


def _produce(bootstrap: str, prefix: str, traffic: Traffic) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for ev in traffic.events:
        producer.produce(
            topics.topic_name(ev.spec, prefix),
            key=ev.key.encode(),
            value=serialization.encode(ev.value),
        )
    assert producer.flush(30) == 0


class _Decisions:
    """Reads the decisions topic (read-committed) from the start and keeps every version."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{prefix}reader",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        name = topics.topic_name(topics.DECISIONS, prefix)
        self.consumer.assign([TopicPartition(name, p, 0) for p in range(PARTITIONS)])
        self.by_key: dict[str, dict[int, Decision]] = {}

    def wait(
        self, done: Callable[[dict[str, dict[int, Decision]]], bool], timeout_s: float
    ) -> bool:
        """Read until ``done(by_key)`` holds; False if it still does not after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not done(self.by_key):
            if time.monotonic() > deadline:
                return False
            for msg in self.consumer.consume(200, 0.5):
                if msg.error():
                    continue
                d = serialization.decode(msg.value() or b"", Decision)
                self.by_key.setdefault(d.shipment_key, {})[d.version] = d
        return True

    def read_for(self, seconds: float) -> None:
        """Keep whatever arrives within ``seconds``."""
        self.wait(lambda seen: False, seconds)

    def newest(self, key: str) -> Decision:
        versions = self.by_key[key]
        return versions[max(versions)]

    def close(self) -> None:
        self.consumer.close()


def _all_decided(
    keys: set[str] | dict[str, int],
    min_version: int = 1,
    where: Callable[[Decision], bool] | None = None,
) -> Callable[[dict[str, dict[int, Decision]]], bool]:
    """Every key decided (at least ``min_version``); with ``keys`` mapping each to how many
    inputs it has, its newest decision made from all of them (a Type 86 shipment is held until
    its entry is read, then decided again); and ``where`` true of every newest decision."""
    inputs = keys if isinstance(keys, dict) else {}

    def done(seen: dict[str, dict[int, Decision]]) -> bool:
        for k in keys:
            versions = seen.get(k, {})
            if max(versions, default=0) < min_version:
                return False
            newest = versions[max(versions)]
            if len(newest.inputs) < inputs.get(k, 0) or (where is not None and not where(newest)):
                return False
        return True

    return done


def _decided_keys(traffic: Traffic) -> dict[str, int]:
    """The shipments expected to be decided, each with how many inputs it has under its key."""
    parts: dict[str, set[object]] = {}
    for e in traffic.events:
        parts.setdefault(e.key, set()).add(e.spec)
    return {
        t.key: len(parts.get(t.key, ())) for t in traffic.truth if t.outcome in ("RELEASE", "HOLD")
    }


class _Run:
    """One test's worker process, names and reader."""

    def __init__(self, bootstrap: str, redis_url: str, unique: str, tmp: Path) -> None:
        self.bootstrap, self.redis_url, self.unique, self.tmp = bootstrap, redis_url, unique, tmp
        self.prefix = f"{unique}."
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = tmp / "worker.log"
        ensure_topics(KafkaClientConfig(bootstrap), self.prefix, PARTITIONS)
        self.decisions = _Decisions(bootstrap, self.prefix)

    @property
    def env(self) -> dict[str, str]:
        return {
            "S321_TOPIC_PREFIX": self.prefix,
            "S321_APP_ID": self.unique,
            "S321_PARTITIONS": str(PARTITIONS),
            "S321_DATA_DIR": str(self.tmp / "data"),
            "S321_KAFKA_BOOTSTRAP": self.bootstrap,
            "S321_REDIS_URL": self.redis_url,
        }

    def start(self) -> None:
        self.proc = start_worker(self.env, self.log, *WORKER_ARGS)

    def s321(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run an ``s321`` command with this test's settings."""
        return subprocess.run(
            [sys.executable, "-c", "from s321.cli import main; main()", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def log_tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-20:])

    def close(self) -> None:
        self.decisions.close()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        mine = [t for t in admin.list_topics(timeout=15).topics if t.startswith(self.unique)]
        if mine:
            for fut in admin.delete_topics(mine).values():
                fut.result(timeout=30)
        try:
            client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass  # the test's own server is gone with its data


@pytest.fixture
def worker_run(kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path) -> Iterator[_Run]:
    r = _Run(kafka_bootstrap, redis_url, unique, tmp_path)
    yield r
    r.close()


def test_published_rule_set_reaches_a_running_worker_and_a_bad_one_is_refused(
    worker_run: _Run, tmp_path: Path
) -> None:
    """A rule set published with ``s321 rules publish`` (R02 threshold lowered to $1) decides the
    running worker's next shipments under its version; an invalid file is refused and a bad
    version put straight into Redis is ignored, the published set staying in force."""
    run = worker_run
    run.start()
    first, second, third = _batch(31, 20, 9), _batch(32, 20, 10), _batch(33, 20, 11)
    _produce(run.bootstrap, run.prefix, first)
    keys1 = _decided_keys(first)
    assert run.decisions.wait(_all_decided(keys1), 120), run.log_tail()
    default = default_ruleset().version
    for k in keys1:
        d = run.decisions.newest(k)
        assert (d.ruleset_version, d.outcome) == (default, Outcome.RELEASE), d

    new_version = f"t-{run.unique[-8:]}"
    good = tmp_path / "lower.toml"
    good.write_text(
        f'version = "{new_version}"\n[rules.R02]\nseverity = "HIGH"\n'
        "[rules.R02.params]\nthreshold_usd = 1\n"
    )
    published = run.s321("rules", "publish", str(good))
    assert published.returncode == 0, published.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "bad-1"\n[rules.R13]\ncondition = "frieght > 1"\n')
    refused = run.s321("rules", "publish", str(bad))
    assert refused.returncode == 1
    assert "unknown field 'frieght'" in refused.stderr
    time.sleep(2.5)  # longer than the worker's poll interval: its next decision polls first

    _produce(run.bootstrap, run.prefix, second)
    keys2 = _decided_keys(second)
    assert run.decisions.wait(_all_decided(keys2), 120), run.log_tail()
    for k in keys2:
        d = run.decisions.newest(k)
        assert d.ruleset_version == new_version, d
        assert d.outcome is Outcome.HOLD
        r02 = [h for h in d.hits if h.rule_id == "R02"]
        assert r02, d.hits
        assert r02[0].severity.value == "HIGH"
        assert r02[0].evidence["threshold"] == "1.00"

    # a version that reached Redis without validation is refused by the worker itself
    client = redis.Redis.from_url(run.redis_url)
    ns = redis_prefix(run.prefix)
    client.hset(f"{ns}ruleset:v:bad-2", mapping={"text": "version = 'bad-2'\nx = 1\n"})
    client.set(f"{ns}ruleset:current", "bad-2")
    time.sleep(2.5)
    _produce(run.bootstrap, run.prefix, third)
    keys3 = _decided_keys(third)
    assert run.decisions.wait(_all_decided(keys3), 120), run.log_tail()
    assert {run.decisions.newest(k).ruleset_version for k in keys3} == {new_version}


def test_worker_keeps_deciding_through_a_redis_outage_and_recovers(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """With its Redis stopped mid-run a worker keeps deciding, marks decisions stale, holds
    every shipment whose cross-shipment rules could not read state, and once Redis is back
    decides new shipments normally and gives the held ones a new, released version."""
    port = free_port()
    server = start_own_redis(port, tmp_path / "redis")
    run = _Run(kafka_bootstrap, f"redis://127.0.0.1:{port}/0", unique, tmp_path)
    try:
        run.start()
        before, during, after = _batch(41, 15, 9), _batch(42, 15, 10), _batch(43, 15, 11)
        _produce(run.bootstrap, run.prefix, before)
        keys1 = _decided_keys(before)
        assert run.decisions.wait(_all_decided(keys1), 120), run.log_tail()
        assert all(not run.decisions.newest(k).stale_refdata for k in keys1)
        assert {run.decisions.newest(k).outcome for k in keys1} == {Outcome.RELEASE}

        server.terminate()
        server.wait(10)
        _produce(run.bootstrap, run.prefix, during)
        keys2 = _decided_keys(during)
        assert run.decisions.wait(_all_decided(keys2), 120), run.log_tail()
        for k in keys2:
            d = run.decisions.by_key[k][1]
            assert d.stale_refdata, d
            assert d.outcome is Outcome.HOLD, d
            unavailable = {h.rule_id for h in d.hits if h.evidence.get("state") == "unavailable"}
            assert {"R03", "R04"} <= unavailable, d.hits

        server = start_own_redis(port, tmp_path / "redis")
        time.sleep(1.5)  # longer than the worker's back-off after a failed state read
        _produce(run.bootstrap, run.prefix, after)
        keys3 = _decided_keys(after)
        assert run.decisions.wait(_all_decided(keys3), 120), run.log_tail()
        for k in keys3:
            d = run.decisions.newest(k)
            assert (d.outcome, d.stale_refdata) == (Outcome.RELEASE, False), d
        released = _all_decided(keys2, 2, lambda d: d.outcome is Outcome.RELEASE)
        assert run.decisions.wait(released, 120), run.log_tail()
        for k in keys2:
            d = run.decisions.newest(k)
            assert (d.outcome, d.stale_refdata) == (Outcome.RELEASE, False), d
    finally:
        run.close()
        if server.poll() is None:
            server.terminate()
            server.wait(10)


def _strings_of_parties(value: object, out: set[str]) -> None:
    """Every name, street and city of every party inside ``value`` (a generated event)."""
    from dataclasses import fields as dc_fields
    from dataclasses import is_dataclass

    from s321.models import Party

    if isinstance(value, Party):
        out.add(value.name)
        if value.address is not None:
            out.update({value.address.line1, value.address.city})
        return
    if is_dataclass(value) and not isinstance(value, type):
        for f in dc_fields(value):
            _strings_of_parties(getattr(value, f.name), out)
    elif isinstance(value, tuple | list):
        for v in value:
            _strings_of_parties(v, out)


def test_explain_shows_masked_record_every_rule_and_the_decision_history(
    worker_run: _Run,
) -> None:
    """``s321 explain KEY`` for a held shipment prints its record with no name, street or city,
    a result for every rule (fired ones with evidence) and its decision history."""
    import json

    from s321.devtools.generator.scenarios import PRESETS

    run = worker_run
    run.start()
    traffic = generate(
        GeneratorConfig(
            seed=52,
            shipments=12,
            start=date(2024, 9, 2),
            end=date(2024, 9, 3),
            mix=PRESETS["positives"],
        )
    )
    _produce(run.bootstrap, run.prefix, traffic)
    keys = _decided_keys(traffic)
    assert run.decisions.wait(_all_decided(keys), 120), run.log_tail()
    # a shipment whose entry never comes gets one more version at its deadline: not that one
    missing = {t.key for t in traffic.truth if t.scenario == "entry_missing"}
    held = sorted(
        k
        for k in keys
        if run.decisions.newest(k).outcome is Outcome.HOLD
        and len(run.decisions.newest(k).inputs) >= 2
        and k not in missing
    )
    assert held, "no held shipment with two inputs to explain"
    key = held[0]
    newest = run.decisions.newest(key)

    text = run.s321("explain", key)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert f"decision history ({len(run.decisions.by_key[key])} version(s))" in out
    assert f"v{newest.version} HOLD" in out
    for rule_id in (f"R{i:02d}" for i in range(1, 27)):
        assert f"  {rule_id} v" in out, rule_id
    fired = {h.rule_id for h in newest.hits}
    for line in out.splitlines():
        if " fired " in line:
            assert "=" in line, f"a fired rule without evidence: {line}"
    assert any(f"  {r} v1 fired" in out for r in fired), out

    as_json = json.loads(run.s321("explain", key, "--json").stdout)
    assert [d["version"] for d in as_json["history"]] == sorted(run.decisions.by_key[key])
    assert as_json["record"]["manifest"] is not None or as_json["record"]["entry86"] is not None

    personal: set[str] = set()
    for ev in traffic.events:
        if ev.key == key:
            _strings_of_parties(ev.value, personal)
    assert personal, "the shipment has no parties: the masking check would prove nothing"
    both = out + json.dumps(as_json)
    leaked = sorted(s for s in personal if len(s) > 3 and s in both)
    assert not leaked, f"personal data in explain output: {len(leaked)} strings"


def test_read_only_aggregates_match_recorded_ones_and_write_nothing(
    redis_url: str, unique: str
) -> None:
    """The aggregates explain reads equal what recording returns, and reading writes no key."""
    import dataclasses

    from s321.stores.crossshipment import CrossShipmentStore
    from tests.integration.test_crossshipment import _rec

    client = redis.Redis.from_url(redis_url)
    store = CrossShipmentStore(client, prefix=f"{unique}:")
    store.record_and_read(_rec("A", "500"))
    recorded = store.record_and_read(_rec("B", "400"))
    assert store.read(_rec("B", "400")) == dataclasses.replace(recorded, affected=())
    before = sorted(client.scan_iter(match=f"{unique}:*", count=1000))
    assert store.read(_rec("C", "100")).person_day_total == recorded.person_day_total + 100
    assert sorted(client.scan_iter(match=f"{unique}:*", count=1000)) == before
    client.delete(*before)


def _missing_entry_shipment() -> tuple[Traffic, ManifestEvent]:
    """A generated shipment that asks for Type 86 release and whose entry never comes,
    arriving under the 2024 rule (its entry due upon or before arrival), and its manifest."""
    for seed in range(60, 160):
        traffic = generate(
            GeneratorConfig(
                seed=seed,
                shipments=1,
                start=date(2024, 9, 2),
                end=date(2024, 9, 2),
                mix={"entry_missing": 1.0},
            )
        )
        [m] = [e.value for e in traffic.events if isinstance(e.value, ManifestEvent)]
        if m.arrival >= datetime(2024, 4, 13, tzinfo=EASTERN):
            return traffic, m
    raise AssertionError("no seed gave a shipment under the 2024 rule")


def _late_entry(m: ManifestEvent, filed_at: datetime) -> Entry86:
    """The Type 86 entry the manifest asks for, agreeing with it, filed at ``filed_at``."""
    return Entry86(
        header=EventHeader(f"late-entry-{m.house_bill}", filed_at, "FILER-LTE"),
        bill_number=m.house_bill or "",
        entry_number=make_entry_number(world.BROKER_FILERS[0], 4321),
        port_of_entry=m.port_of_entry,
        shipper=m.shipper,
        consignee=m.consignee,
        origin_country=m.origin_country or "",
        lines=tuple(
            Entry86Line(li.hts or "", li.quantity, li.value, li.description, li.pga)
            for li in m.lines
        ),
        filed_at=filed_at,
    )


def test_a_type86_shipment_is_held_for_its_missing_entry_at_its_deadline_across_a_restart(
    worker_run: _Run,
) -> None:
    """A shipment asking for Type 86 release with no entry is held as pending (v1); its worker
    is killed and replaced on an empty data directory; no wall time moves its deadline, but
    traffic dated after its arrival does: v2 holds it for the missing entry (file another
    entry); a late entry then gives v3, R25 for late filing. Every version names its regime."""
    run = worker_run
    shipment, m = _missing_entry_shipment()
    key = shipment.truth[0].key
    # event time moves only with traffic: no idle speed-up, so wall time passes no deadline
    run.proc = start_worker(run.env, run.log)
    _produce(run.bootstrap, run.prefix, shipment)
    assert run.decisions.wait(_all_decided({key}), 120), run.log_tail()
    [v1] = run.decisions.by_key[key].values()
    assert v1.outcome is Outcome.HOLD
    assert [(h.rule_id, h.reason_code) for h in v1.hits] == [("R25", ENTRY_PENDING)]
    assert v1.required_actions == (TYPE86_ACTION,)

    os.killpg(run.proc.pid, signal.SIGKILL)
    run.proc.wait()
    env = {**run.env, "S321_DATA_DIR": str(run.tmp / "fresh")}
    run.proc = start_worker(env, run.log)
    # the replacement takes over (after the killed member's session times out) and idles:
    # wall time passes, event time does not, and no deadline fires
    run.decisions.read_for(25)
    assert list(run.decisions.by_key[key]) == [1], run.log_tail()

    later = _batch(71, 6, 10)  # ordinary traffic arriving weeks after the shipment
    _produce(run.bootstrap, run.prefix, later)
    assert run.decisions.wait(_all_decided({key}, min_version=2), 180), run.log_tail()
    v2 = run.decisions.newest(key)
    assert (v2.version, v2.outcome) == (2, Outcome.HOLD)
    assert [(h.rule_id, h.reason_code) for h in v2.hits] == [("R25", ENTRY_MISSING)]
    assert v2.required_actions == (ENTRY_ACTION,)
    assert run.decisions.wait(_all_decided(_decided_keys(later)), 120), run.log_tail()

    entry = _late_entry(m, m.arrival + timedelta(minutes=5))
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": run.bootstrap})
    producer.produce(
        topics.topic_name(topics.ENTRY86, run.prefix),
        key=key.encode(),
        value=serialization.encode(entry),
    )
    assert producer.flush(30) == 0
    assert run.decisions.wait(_all_decided({key}, min_version=3), 120), run.log_tail()
    v3 = run.decisions.newest(key)
    assert [(h.rule_id, h.reason_code) for h in v3.hits] == [("R25", "TYPE86_INTEGRITY")]
    assert v3.hits[0].evidence["reasons"] == "filed_after_arrival"
    assert sorted(run.decisions.by_key[key]) == [1, 2, 3]
    regime = default_regimes().at(m.arrival).version
    assert {d.regime_version for d in run.decisions.by_key[key].values()} == {regime}
