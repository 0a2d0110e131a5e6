"""Topic set-up: every registry topic exists and co-partitioned ones agree, or the worker refuses."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from s321 import topics
from s321.admin import ensure_changelog, ensure_topics
from s321.errors import ConfigError
from s321.kafka_config import KafkaClientConfig


def test_missing_topics_are_created_with_the_configured_partitions(
    kafka: KafkaClientConfig, unique: str
) -> None:
    """Starting against an empty cluster creates every registry topic with equal partition counts."""
    prefix = f"{unique}."
    counts = ensure_topics(kafka, prefix, 3)
    assert set(counts) == {topics.topic_name(s, prefix) for s in topics.ALL}
    assert {counts[topics.topic_name(s, prefix)] for s in topics.ALL if s.copartitioned} == {3}


def test_worker_refuses_co_partitioned_topics_with_different_counts(
    kafka: KafkaClientConfig, kafka_bootstrap: str, unique: str
) -> None:
    """A pilot topic with more partitions than the manifest topic stops start-up with a message naming both."""
    prefix = f"{unique}."
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    pilot = topics.topic_name(topics.PILOT, prefix)
    admin.create_topics([NewTopic(pilot, num_partitions=5, replication_factor=1)])[pilot].result(30)
    with pytest.raises(ConfigError, match="different partition counts") as err:
        ensure_topics(kafka, prefix, 3)
    assert f"{pilot}=5" in str(err.value)
    assert f"{topics.topic_name(topics.MANIFEST, prefix)}=3" in str(err.value)


def test_the_generator_creates_only_the_inputs_and_checks_what_exists(
    kafka: KafkaClientConfig, kafka_bootstrap: str, unique: str
) -> None:
    """Asked for the input topics (as ``s321 generate`` does), only those are created; an
    existing co-partitioned topic with another count is refused there too."""
    prefix = f"{unique}."
    counts = ensure_topics(kafka, prefix, 3, topics.INPUTS)
    assert counts == {topics.topic_name(s, prefix): 3 for s in topics.INPUTS}
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    listed = admin.list_topics(timeout=15).topics
    assert topics.topic_name(topics.DECISIONS, prefix) not in listed
    other = f"{unique}.b."
    decisions = topics.topic_name(topics.DECISIONS, other)
    admin.create_topics([NewTopic(decisions, num_partitions=5, replication_factor=1)])[
        decisions
    ].result(30)
    with pytest.raises(ConfigError, match="different partition counts") as err:
        ensure_topics(kafka, other, 3, topics.INPUTS)
    assert f"{decisions}=5" in str(err.value)


def test_the_changelog_is_created_compacted_before_the_worker_starts(
    kafka: KafkaClientConfig, kafka_bootstrap: str, unique: str
) -> None:
    """The table's changelog exists, compacted, with the inputs' partition count, before any
    worker runs (so a worker's first metadata never shows it without partitions)."""
    from confluent_kafka.admin import ConfigResource

    ensure_changelog(kafka, unique, 3)
    name = topics.changelog_name(unique)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert len(admin.list_topics(timeout=15).topics[name].partitions) == 3
    resource = ConfigResource("topic", name)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["cleanup.policy"].value == "compact"
    ensure_changelog(kafka, unique, 3)  # already there: nothing to do
    with pytest.raises(ConfigError, match="changelog"):
        ensure_changelog(kafka, unique, 4)
    admin.delete_topics([name])[name].result(30)
