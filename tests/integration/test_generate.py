"""s321 generate against the real broker: topics, keys, partitioners, decoded payloads."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from s321 import topics
from s321.admin import ensure_topics
from s321.cli import cli
from s321.devtools.generator import GeneratorConfig, generate
from s321.devtools.generator.produce import encode_events, produce_records
from s321.kafka_config import KafkaClientConfig
from s321.models import normalise_bill
from s321.serialization import decode


def _delete(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.delete_topics(names).values():
        fut.result(timeout=30)


def _read_all(bootstrap: str, group: str, names: list[str]) -> list[tuple[str, int, bytes, bytes]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        wanted = 0
        assignments = []
        for name in names:
            meta = consumer.list_topics(name, timeout=10).topics[name]
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                wanted += high - low
                assignments.append(TopicPartition(name, p, low))
        consumer.assign(assignments)
        out: list[tuple[str, int, bytes, bytes]] = []
        while len(out) < wanted:
            msg = consumer.poll(10)
            assert msg is not None, f"only {len(out)} of {wanted} records came back"
            assert msg.error() is None
            out.append((msg.topic(), msg.partition(), msg.key(), msg.value()))
        return out
    finally:
        consumer.close()


def test_generated_events_reach_their_topics_and_decode(
    kafka: KafkaClientConfig, kafka_bootstrap: str, unique: str, group_id: str
) -> None:
    """A few hundred events land on the prefixed input topics, keyed and decodable."""
    prefix = f"{unique}."
    events = generate(GeneratorConfig(seed=9, shipments=150)).events
    names = list(ensure_topics(kafka, prefix, 3, topics.INPUTS))
    try:
        stats = produce_records(encode_events(events), kafka=kafka, prefix=prefix)
        assert stats.records == len(events)
        assert stats.failed == 0
        got = _read_all(kafka_bootstrap, group_id, names)
        assert len(got) == len(events)
        by_topic = {topics.topic_name(s, prefix): s for s in topics.INPUTS}
        decoded = []
        for topic, _, key, value in got:
            obj = decode(value)
            assert type(obj).__name__ == by_topic[topic].value_type
            bill = (
                getattr(obj, "bill_number", None)
                or getattr(obj, "house_bill", None)
                or getattr(obj, "tracking_number", None)
            )
            assert key.decode() == normalise_bill(bill)
            decoded.append(obj)
        assert {o.header.event_id: o for o in decoded} == {
            e.value.header.event_id: e.value for e in events
        }
    finally:
        _delete(kafka_bootstrap, names)


def test_partitioners_place_keys_like_their_clients(
    kafka: KafkaClientConfig, kafka_bootstrap: str, unique: str, group_id: str
) -> None:
    """murmur2 and crc32 spread the same keys differently; each is stable per key."""
    events = generate(GeneratorConfig(seed=10, shipments=60, mix={"ordinary": 1.0})).events
    placements = []
    made: list[str] = []
    try:
        for i, part in enumerate(("murmur2", "crc32")):
            prefix = f"{unique}.{i}."
            names = list(ensure_topics(kafka, prefix, 6, topics.INPUTS))
            made += names
            produce_records(encode_events(events), kafka=kafka, prefix=prefix, partitioner=part)
            got = _read_all(kafka_bootstrap, f"{group_id}-{i}", names)
            where: dict[bytes, set[int]] = {}
            for _, p, key, _ in got:
                where.setdefault(key, set()).add(p)
            assert all(len(ps) == 1 for ps in where.values())
            placements.append({k: next(iter(v)) for k, v in where.items()})
        assert placements[0] != placements[1]
    finally:
        _delete(kafka_bootstrap, made)


def test_cli_writes_truth_and_replays_a_file(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """s321 generate --out/--ground-truth then --replay produces every written record."""
    out, truth = tmp_path / "t.avro", tmp_path / "t.jsonl"
    runner = CliRunner()
    first = runner.invoke(
        cli,
        [
            "generate",
            "--shipments",
            "80",
            "--seed",
            "3",
            "--out",
            str(out),
            "--ground-truth",
            str(truth),
        ],
    )
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert len(rows) == 80
    assert {"key", "outcome", "rules"} <= set(rows[0])
    written = int(first.output.split()[1])
    prefix = f"{unique}."
    second = runner.invoke(
        cli,
        ["generate", "--replay", str(out), "--topic-prefix", prefix, "--no-progress"],
        env={"S321_KAFKA_BOOTSTRAP": kafka_bootstrap},
    )
    try:
        assert second.exit_code == 0, second.output
        assert f"produced {written} events" in second.output
    finally:
        _delete(kafka_bootstrap, [topics.topic_name(s, prefix) for s in topics.INPUTS])
