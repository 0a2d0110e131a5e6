"""Lag figures on the real broker, checked against Kafka's own consumer-group tool."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from s321.devtools.stack import Stack
from s321.errors import ConfigError
from s321.kafka_config import KafkaClientConfig
from s321.ops.lag import LagProbe, LagReport, measure_lag

GROUP_TOOL = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
#: Records per partition of the 3-partition test topic.
COUNTS = {0: 10, 1: 6, 2: 4}
#: The group's commits: partition 0 part-way, partition 1 fully, partition 2 never.
COMMITS = {0: 4, 1: 6}
#: Records are stamped an hour in the past, one second apart, so time lag is deterministic.
BASE_MS = (int(time.time()) - 3600) * 1000


def _stamp(partition: int, offset: int) -> int:
    return BASE_MS + partition * 100_000 + offset * 1000


def _produce(bootstrap: str, topic: str, counts: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for partition, n in counts.items():
        for offset in range(n):
            producer.produce(
                topic,
                value=b"x",
                key=f"k{offset}".encode(),
                partition=partition,
                timestamp=_stamp(partition, offset),
            )
    assert producer.flush(30) == 0


@pytest.fixture
def member(kafka_bootstrap: str, group_id: str) -> Iterator[Callable[[str], Consumer]]:
    """A live member of the group that owns every partition of a topic and commits by hand."""
    made: list[Consumer] = []

    def join(topic: str) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(consumer.assignment()) < len(COUNTS):
            assert time.monotonic() < deadline, "the test member was never assigned partitions"
            consumer.poll(0.2)
        made.append(consumer)
        return consumer

    yield join
    for consumer in made:
        consumer.close()


def _tool_table(stack: Stack, bootstrap: str, group: str, topic: str) -> dict[int, dict[str, str]]:
    """Kafka's consumer-group tool's --describe table for one topic, keyed by partition."""
    run = stack.kafka.tool(
        GROUP_TOOL, "--bootstrap-server", bootstrap, "--describe", "--group", group
    )
    assert run.returncode == 0, run.stderr
    lines = [line.split() for line in run.stdout.splitlines() if line.strip()]
    header = next(cols for cols in lines if cols[:2] == ["GROUP", "TOPIC"])
    rows = [dict(zip(header, cols, strict=False)) for cols in lines if cols != header]
    return {int(r["PARTITION"]): r for r in rows if r.get("TOPIC") == topic}


def _by_partition(report: LagReport) -> dict[int, tuple[int | None, int, int, float]]:
    return {p.partition: (p.committed, p.end, p.lag, p.time_lag_s) for p in report.partitions}


def test_lag_agrees_with_kafkas_consumer_group_tool(
    kafka: KafkaClientConfig,
    stack: Stack,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
    member: Callable[[str], Consumer],
) -> None:
    """Committed offset, end offset and lag match the consumer-group tool partition by partition."""
    topic = new_topic(partitions=3)
    _produce(kafka_bootstrap, topic, COUNTS)
    consumer = member(topic)
    consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in COMMITS.items()], asynchronous=False
    )

    before = measure_lag(kafka, group_id, [topic])
    table = _tool_table(stack, kafka_bootstrap, group_id, topic)
    after = measure_lag(kafka, group_id, [topic])

    assert _by_partition(before).keys() == table.keys() == {0, 1, 2}
    assert [(p.committed, p.end, p.lag) for p in before.partitions] == [
        (p.committed, p.end, p.lag) for p in after.partitions
    ]
    for p in before.partitions:
        row = table[p.partition]
        assert row["LOG-END-OFFSET"] == str(p.end)
        if p.committed is None:
            # The tool shows no figure where nothing was committed; s321 counts from earliest.
            assert (row["CURRENT-OFFSET"], row["LAG"]) == ("-", "-")
            assert p.lag == p.end == COUNTS[p.partition]
        else:
            assert row["CURRENT-OFFSET"] == str(p.committed)
            assert row["LAG"] == str(p.lag)
    assert before.total_lag == (10 - 4) + 0 + 4


def test_time_lag_is_the_age_of_the_record_at_the_committed_offset(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
) -> None:
    """Time lag is now minus the timestamp of the oldest unprocessed record, 0 when caught up."""
    topic = new_topic(partitions=3)
    _produce(kafka_bootstrap, topic, COUNTS)
    admin_consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )
    admin_consumer.commit(
        offsets=[TopicPartition(topic, p, o) for p, o in COMMITS.items()], asynchronous=False
    )
    now = time.time()
    with LagProbe(kafka, clock=lambda: now) as probe:
        first = _by_partition(probe.measure(group_id, [topic]))
    assert first[0][3] == pytest.approx(now - _stamp(0, 4) / 1000, abs=1e-6)
    assert first[1][3] == 0.0
    assert first[2][3] == pytest.approx(now - _stamp(2, 0) / 1000, abs=1e-6)
    assert first[0][3] > 3500

    # Ten minutes on with nothing consumed, every lagging partition is ten minutes staler.
    with LagProbe(kafka, clock=lambda: now + 600) as probe:
        later = _by_partition(probe.measure(group_id, [topic]))
    assert later[0][3] == pytest.approx(first[0][3] + 600, abs=1e-6)
    assert later[2][3] == pytest.approx(first[2][3] + 600, abs=1e-6)
    assert later[1][3] == 0.0

    # Processing three more records on partition 0 makes its oldest record 3 s younger.
    admin_consumer.commit(offsets=[TopicPartition(topic, 0, 7)], asynchronous=False)
    admin_consumer.close()
    with LagProbe(kafka, clock=lambda: now) as probe:
        moved = _by_partition(probe.measure(group_id, [topic]))
    assert moved[0] == (7, 10, 3, pytest.approx(first[0][3] - 3, abs=1e-6))


def test_partition_without_commit_counts_from_earliest_retained_record(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
) -> None:
    """With no commit and old records deleted, lag and time lag count from the earliest kept."""
    topic = new_topic(partitions=1)
    _produce(kafka_bootstrap, topic, {0: 5})
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.delete_records([TopicPartition(topic, 0, 2)]).values():
        fut.result(timeout=30)
    now = time.time()
    report = measure_lag(kafka, group_id, [topic], clock=lambda: now)
    (only,) = report.partitions
    assert (only.committed, only.end, only.lag) == (None, 5, 3)
    assert only.time_lag_s == pytest.approx(now - _stamp(0, 2) / 1000, abs=1e-6)


def test_caught_up_and_empty_partitions_have_zero_time_lag(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
) -> None:
    """A partition consumed to its end and a partition never written to both report 0 s."""
    topic = new_topic(partitions=2)
    _produce(kafka_bootstrap, topic, {0: 3})
    consumer = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )
    consumer.commit(offsets=[TopicPartition(topic, 0, 3)], asynchronous=False)
    consumer.close()
    report = measure_lag(kafka, group_id, [topic])
    assert [(p.committed, p.end, p.lag, p.time_lag_s) for p in report.partitions] == [
        (3, 3, 0, 0.0),
        (None, 0, 0, 0.0),
    ]
    assert report.max_time_lag_s == 0.0


def test_missing_topic_is_a_config_error(kafka: KafkaClientConfig, unique: str) -> None:
    """Asking about a topic the broker does not have fails with a message naming it."""
    with pytest.raises(ConfigError, match=f"no-such-{unique}"):
        measure_lag(kafka, "g", [f"no-such-{unique}"])


def test_one_probe_gives_the_same_answer_on_every_reading(
    kafka: KafkaClientConfig, kafka_bootstrap: str, new_topic: Callable[..., str], group_id: str
) -> None:
    """Repeated readings with one probe (as --watch and --serve take them) keep finding records."""
    topic = new_topic(partitions=2)
    _produce(kafka_bootstrap, topic, {0: 3, 1: 2})
    now = time.time()
    with LagProbe(kafka, clock=lambda: now, timeout_s=20) as probe:
        readings = [_by_partition(probe.measure(group_id, [topic])) for _ in range(3)]
    assert readings[0] == readings[1] == readings[2]
    assert readings[0][0] == (None, 3, 3, pytest.approx(now - _stamp(0, 0) / 1000, abs=1e-6))
