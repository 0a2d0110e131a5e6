"""On the real broker: a worker forgets a quiet shipment's state once event time passes its
retention, leaving a tombstone on the table's changelog, and its decisions stay readable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from s321 import serialization, topics
from s321.devtools.generator.scenarios import Traffic
from tests.integration.test_worker_rules import (
    PARTITIONS,
    _all_decided,
    _batch,
    _decided_keys,
    _Run,
)


@pytest.fixture
def worker_run(kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path) -> Iterator[_Run]:
    r = _Run(kafka_bootstrap, redis_url, unique, tmp_path)
    yield r
    r.close()


def _produce_live(bootstrap: str, prefix: str, traffic: Traffic) -> None:
    """Produce ``traffic`` as a live stream would arrive: each record's broker timestamp is its
    event time (a state is kept for the retention after the later of the two). Keyed with the
    Java client's partitioner, so records reach their shipment's partition directly: a record
    the worker forwards gets the time it is forwarded, which here would be years after its
    stamped receipt."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": "murmur2_random"}
    )
    for ev in traffic.events:
        producer.produce(
            topics.topic_name(ev.spec, prefix),
            key=ev.key.encode(),
            value=serialization.encode(ev.value),
            timestamp=int(ev.value.header.event_time.timestamp() * 1000),
        )
    assert producer.flush(30) == 0


def _changelog(bootstrap: str, app_id: str) -> dict[str, bytes | None]:
    """The newest value of every key on the table's changelog (None: a tombstone)."""
    from confluent_kafka import Consumer, TopicPartition

    name = topics.changelog_name(app_id)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{app_id}-reader",
            "enable.auto.commit": False,
        }
    )
    try:
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(name, p), 10)[1]
            for p in range(PARTITIONS)
        }
        consumer.assign([TopicPartition(name, p, 0) for p in range(PARTITIONS)])
        newest: dict[str, bytes | None] = {}
        read = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + 30
        while any(read[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                newest[(msg.key() or b"").decode()] = msg.value()
                read[msg.partition()] = msg.offset() + 1
        return newest
    finally:
        consumer.close()


def test_a_quiet_shipment_is_forgotten_with_a_tombstone_and_its_decisions_stay(
    worker_run: _Run,
) -> None:
    """Shipments decided in September are deleted from the table once November's traffic moves
    the clock past their 21 days: the changelog's newest record for each is a tombstone, while
    November's are kept; ``s321 explain`` still tells a forgotten shipment's decisions."""
    run = worker_run
    run.start()
    september, november = _batch(81, 10, 9), _batch(82, 10, 11)
    _produce_live(run.bootstrap, run.prefix, september)
    old = _decided_keys(september)
    assert run.decisions.wait(_all_decided(old), 120), run.log_tail()
    kept = _changelog(run.bootstrap, run.unique)
    assert all(kept.get(k) for k in old), "decided states are on the changelog"

    _produce_live(run.bootstrap, run.prefix, november)
    new = _decided_keys(november)
    assert run.decisions.wait(_all_decided(new), 120), run.log_tail()
    deadline = time.monotonic() + 90
    while True:
        log = _changelog(run.bootstrap, run.unique)
        gone = [k for k in old if k in log and log[k] is None]
        if len(gone) == len(old) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert sorted(gone) == sorted(old), run.log_tail()
    assert all(log.get(k) for k in new), "November's states are kept"

    from confluent_kafka.admin import AdminClient, ConfigResource

    resource = ConfigResource("topic", topics.changelog_name(run.unique))
    admin = AdminClient({"bootstrap.servers": run.bootstrap})
    config = admin.describe_configs([resource])[resource].result(timeout=30)
    assert config["cleanup.policy"].value == "compact"
    assert config["max.compaction.lag.ms"].value == str(7 * 24 * 3600 * 1000)

    key = sorted(old)[0]
    shown = run.s321("explain", key)
    assert shown.returncode == 0, shown.stderr
    newest = run.decisions.newest(key)
    versions = len(run.decisions.by_key[key])
    assert f"decision history ({versions} version(s))" in shown.stdout, shown.stdout
    assert f"v{newest.version} {newest.outcome.value} at" in shown.stdout, shown.stdout
