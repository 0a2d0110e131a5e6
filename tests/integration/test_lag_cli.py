"""``s321 lag`` on the real broker: table, JSON, defaults from settings, and the metrics mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from s321.cli import cli
from s321.kafka_config import KafkaClientConfig
from s321.ops.lag import input_topics, measure_lag


def _fill(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, n in per_partition.items():
        for _ in range(n):
            producer.produce(topic, value=b"v", partition=partition)
    assert producer.flush(30) == 0


def _commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    consumer.commit(
        offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
    )
    consumer.close()


@pytest.fixture
def prefixed_inputs(kafka_bootstrap: str, unique: str) -> Iterator[tuple[str, list[str]]]:
    """The three input topics under a prefix of this test's own, 2 partitions each."""
    prefix = f"{unique}."
    names = input_topics(prefix)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(n, 2, 1) for n in names]).values():
        fut.result(timeout=30)
    yield prefix, names
    for fut in admin.delete_topics(names).values():
        fut.result(timeout=30)


def test_lag_defaults_to_app_id_and_input_topics_and_prints_json(
    kafka_bootstrap: str, prefixed_inputs: tuple[str, list[str]], group_id: str
) -> None:
    """Without --group/--topic the JSON covers every input topic partition for the app id."""
    prefix, names = prefixed_inputs
    _fill(kafka_bootstrap, names[0], {0: 5, 1: 2})
    _commit(kafka_bootstrap, group_id, {(names[0], 0): 3})
    env = {"S321_KAFKA_BOOTSTRAP": kafka_bootstrap, "S321_TOPIC_PREFIX": prefix,
           "S321_APP_ID": group_id}  # fmt: skip
    result = CliRunner().invoke(cli, ["lag", "--json"], env=env)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["group"] == group_id
    rows = {(r["topic"], r["partition"]): r for r in doc["partitions"]}
    assert set(rows) == {(n, p) for n in names for p in (0, 1)}
    assert rows[(names[0], 0)] | {"time_lag_s": 0} == {
        "topic": names[0], "partition": 0, "committed": 3, "end": 5, "lag": 2, "time_lag_s": 0,
    }  # fmt: skip
    assert rows[(names[0], 1)]["committed"] is None
    assert rows[(names[0], 1)]["lag"] == 2
    assert doc["total_lag"] == 4
    assert rows[(names[0], 0)]["time_lag_s"] > 0


def test_lag_table_lists_each_partition_and_totals(
    kafka_bootstrap: str, new_topic: Callable[..., str], group_id: str
) -> None:
    """The table has one line per partition with committed, end, lag, and a totals line."""
    topic = new_topic(partitions=2)
    _fill(kafka_bootstrap, topic, {0: 4, 1: 1})
    _commit(kafka_bootstrap, group_id, {(topic, 0): 1, (topic, 1): 1})
    env = {"S321_KAFKA_BOOTSTRAP": kafka_bootstrap}
    result = CliRunner().invoke(cli, ["lag", "--group", group_id, "--topic", topic], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["topic", "partition", "committed", "end", "lag", "time_lag_s"]
    assert lines[2].split()[:5] == [topic, "0", "1", "4", "3"]
    assert lines[3].split()[:5] == [topic, "1", "1", "1", "0"]
    assert lines[3].split()[5] == "0.000"
    assert lines[4].split()[:3] == ["total", "5", "3"]


def test_lag_serve_exports_the_figures_as_prometheus_metrics(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
    tmp_path: Path,
) -> None:
    """``s321 lag --serve`` answers /metrics with the same lag a direct reading gives."""
    topic = new_topic(partitions=2)
    _fill(kafka_bootstrap, topic, {0: 3, 1: 6})
    _commit(kafka_bootstrap, group_id, {(topic, 1): 2})
    expected = measure_lag(kafka, group_id, [topic])
    s321 = Path(sys.executable).with_name("s321")
    log = tmp_path / "serve.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(s321), "lag", "--serve", "0", "--host", "127.0.0.1", "--interval", "0.5",
             "--group", group_id, "--topic", topic],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "S321_KAFKA_BOOTSTRAP": kafka_bootstrap},
        )  # fmt: skip
    try:
        samples: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + 60
        while len(samples) < 4:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
            first = log.read_text().partition("\n")[0]
            if "/metrics" not in first:
                continue
            url = first.split(" at ")[1]
            with urllib.request.urlopen(url, timeout=10) as resp:
                text = resp.read().decode()
            samples = {
                (s.name, s.labels["partition"]): s.value
                for fam in text_string_to_metric_families(text)
                for s in fam.samples
                if s.labels.get("topic") == topic
                and s.name in ("s321_consumer_lag_records", "s321_log_end_offset")
            }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert samples == {
        (name, str(p.partition)): float(p.lag if name.endswith("records") else p.end)
        for p in expected.partitions
        for name in ("s321_consumer_lag_records", "s321_log_end_offset")
    }
