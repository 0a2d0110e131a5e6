"""The real parts: Kafka 4 through both clients, transactions, groups, compaction, restarts, Redis."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTP
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from s321.devtools.stack import KafkaService, StackConfig
from tests.conftest import NewTopic, free_port


def _consume_all(
    bootstrap: str, topic: str, expected: int, group: str, timeout: float = 30.0, **extra: object
) -> list[tuple[int, bytes, bytes]]:
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **extra,
    }
    c = Consumer(conf)
    c.subscribe([topic])
    out: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.partition(), msg.key(), msg.value()))
        if extra.get("commit"):
            c.commit(asynchronous=False)
    finally:
        c.close()
    return out


def test_multi_partition_topic_round_trip_through_confluent_kafka(
    kafka_bootstrap: str, new_topic: NewTopic, group_id: str
) -> None:
    """Keyed records produced to a 3-partition topic all come back, spread over partitions, one key per partition."""
    topic = new_topic(partitions=3)
    p = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for i in range(300):
        p.produce(topic, key=f"k{i % 30}".encode(), value=f"v{i}".encode())
    assert p.flush(30) == 0
    got = _consume_all(kafka_bootstrap, topic, 300, group_id)
    assert len(got) == 300
    assert {v for _, _, v in got} == {f"v{i}".encode() for i in range(300)}
    assert len({part for part, _, _ in got}) == 3
    partitions_of_key: dict[bytes, set[int]] = {}
    for part, key, _ in got:
        partitions_of_key.setdefault(key, set()).add(part)
    assert all(len(parts) == 1 for parts in partitions_of_key.values())


def test_aiokafka_idempotent_producer_and_consumer(
    kafka_bootstrap: str, new_topic: NewTopic, group_id: str
) -> None:
    """aiokafka (Faust's client) negotiates with Kafka 4: an idempotent producer's records are consumed in order."""
    topic = new_topic(partitions=2)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            for i in range(50):
                await producer.send_and_wait(topic, f"m{i}".encode(), key=b"same", partition=1)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            while len(values) < 50:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    values.extend(r.value for r in records)
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(asyncio.wait_for(run(), 60))
    assert values == [f"m{i}".encode() for i in range(50)]


def test_aiokafka_transactions_commit_and_abort(
    kafka_bootstrap: str, new_topic: NewTopic, group_id: str, unique: str
) -> None:
    """A read_committed consumer sees a committed transaction's records and none of an aborted one's."""
    topic = new_topic(partitions=1)

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{unique}"
        )
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send(topic, b"committed-1")
                await producer.send(topic, b"committed-2")
            await producer.begin_transaction()
            await producer.send(topic, b"aborted")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(topic, b"committed-3")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group_id,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await consumer.start()
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    values.extend(r.value for r in records)
                if len(values) >= 3:
                    # one more poll: an aborted record would show up after the last commit
                    batch = await consumer.getmany(timeout_ms=1000)
                    for records in batch.values():
                        values.extend(r.value for r in records)
                    break
            end = await consumer.end_offsets([AioTP(topic, 0)])
        finally:
            await consumer.stop()
        # 4 data records + 3 transaction markers occupy offsets 0..6
        assert end[AioTP(topic, 0)] == 7
        return values

    values = asyncio.run(asyncio.wait_for(run(), 60))
    assert values == [b"committed-1", b"committed-2", b"committed-3"]


def test_consumer_group_commit_and_lag_through_admin_api(
    kafka_bootstrap: str, new_topic: NewTopic, group_id: str
) -> None:
    """A group that consumed and committed 40 of 100 records shows committed 40 and lag 60, read back through the admin API."""
    topic = new_topic(partitions=1)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(100):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0
    c = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.assign([TopicPartition(topic, 0, 0)])
    seen = 0
    while seen < 40:
        msg = c.poll(5)
        assert msg is not None
        assert msg.error() is None
        seen += 1
    c.commit(offsets=[TopicPartition(topic, 0, 40)], asynchronous=False)
    c.close()

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group_id)])[group_id]
    committed = {tp.partition: tp.offset for tp in fut.result(timeout=30).topic_partitions}
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group_id + "-probe"})
    _, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    probe.close()
    assert committed == {0: 40}
    assert high - committed[0] == 60


def test_compacted_topic_keeps_the_newest_value_per_key(
    kafka_bootstrap: str, new_topic: NewTopic, group_id: str
) -> None:
    """The log cleaner really compacts: after rewriting keys, only the newest value of each remains."""
    topic = new_topic(
        partitions=1,
        config={
            "cleanup.policy": "compact",
            "segment.ms": "100",
            "min.cleanable.dirty.ratio": "0.001",
            "delete.retention.ms": "100",
            "min.compaction.lag.ms": "0",
        },
    )
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for round_ in range(5):
        for k in range(10):
            p.produce(topic, key=f"k{k}".encode(), value=f"r{round_}".encode())
        p.flush(10)
        time.sleep(0.2)  # let the segment roll so earlier rounds become cleanable
    deadline = time.monotonic() + 90
    got: list[tuple[int, bytes, bytes]] = []
    while time.monotonic() < deadline:
        # a fresh record rolls the active segment, making the rest eligible for cleaning
        p.produce(topic, key=b"roll", value=b"x")
        p.flush(10)
        got = _consume_all(
            kafka_bootstrap, topic, 10**6, f"{group_id}-{time.monotonic()}", timeout=3
        )
        if sum(1 for _, k, _ in got if k != b"roll") == 10:
            break
        time.sleep(2)
    newest = {k: v for _, k, v in got if k != b"roll"}
    counts = Counter(k for _, k, _ in got if k != b"roll")
    assert newest == {f"k{k}".encode(): b"r4" for k in range(10)}
    assert set(counts.values()) == {1}, "older values were not compacted away"


@pytest.mark.slow
def test_broker_restart_with_same_data_dir_loses_no_acknowledged_record(
    stack: object, settings: object, tmp_path: Path
) -> None:
    """A second broker killed with SIGKILL and started again on the same data directory still has every acknowledged record, and a second start is a no-op."""
    from s321.settings import Settings

    assert isinstance(settings, Settings)
    cfg = StackConfig(
        data_dir=tmp_path,
        cache_dir=settings.cache_dir,
        kafka_version=settings.kafka_version,
        kafka_port=free_port(),
        controller_port=free_port(),
        redis_port=free_port(),
        kafka_heap="512m",
    )
    broker = KafkaService(cfg)
    assert broker.start() is True
    try:
        assert broker.start() is False  # idempotent: already up
        admin = AdminClient({"bootstrap.servers": broker.address})
        from confluent_kafka.admin import NewTopic as KNewTopic

        admin.create_topics([KNewTopic("durable", 2, 1)])["durable"].result(timeout=30)
        acked: list[bytes] = []
        p = Producer(
            {"bootstrap.servers": broker.address, "acks": "all", "enable.idempotence": True}
        )
        for i in range(2000):
            p.produce(
                "durable",
                key=str(i).encode(),
                value=str(i).encode(),
                on_delivery=lambda err, msg: acked.append(msg.value()) if err is None else None,
            )
        assert p.flush(30) == 0
        assert len(acked) == 2000
        broker.proc.kill()
        assert broker.start() is True
        got = _consume_all(broker.address, "durable", 2000, "after-restart", timeout=60)
        assert sorted(v for _, _, v in got) == sorted(acked)
    finally:
        broker.stop()


def test_redis_round_trip(redis_url: str, unique: str) -> None:
    """A value written to the real Redis reads back, and an atomic pipeline applies all or nothing."""
    r = redis.Redis.from_url(redis_url)
    key = f"test:{unique}"
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={"a": "1", "b": "2"})
        pipe.expire(key, 60)
        pipe.execute()
    assert r.hgetall(key) == {b"a": b"1", b"b": b"2"}
    assert r.delete(key) == 1
