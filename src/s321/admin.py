"""Topic set-up: the registry's topics created where missing, and co-partitioning checked.

The worker calls :func:`ensure_topics` before it starts, the traffic generator before it
produces. Co-partitioned topics (:attr:`s321.topics.TopicSpec.copartitioned`: the inputs, the
repartition topic and the outputs) must all have the same partition count, or the two halves of
a shipment could land in different tasks and never meet; a deployment where they differ is
refused with the counts, never started.
"""

from __future__ import annotations

import time
from typing import Any

from s321 import topics
from s321.errors import ConfigError
from s321.kafka_config import (
    ClientReport,
    KafkaClientConfig,
    cluster_metadata,
    confluent,
    connection_error,
)

__all__ = ["ensure_changelog", "ensure_topics"]


def _wait_for_metadata(admin: Any, names: list[str], timeout_s: float = 30.0) -> Any:
    """The cluster's topic metadata once every name in ``names`` appears in it (a topic just
    created can take a moment to show up in metadata)."""
    deadline = time.monotonic() + timeout_s
    while True:
        existing = admin.list_topics(timeout=15).topics
        missing = [n for n in names if n not in existing or not existing[n].partitions]
        if not missing:
            return existing
        if time.monotonic() > deadline:
            raise ConfigError(f"topics still missing from the cluster metadata: {missing}")
        time.sleep(0.2)


def _admin(kafka: KafkaClientConfig) -> tuple[Any, Any]:
    """An admin client and the cluster's topic metadata; a cluster that cannot be reached or
    refuses the client is a :class:`ConfigError` saying what to check."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    report = ClientReport()
    admin = AdminClient(confluent(kafka, report))
    try:
        return admin, cluster_metadata(admin, kafka, report, 15.0).topics
    except KafkaException as exc:
        raise connection_error(kafka, "listing topics", exc, report) from None


def ensure_topics(
    kafka: KafkaClientConfig,
    prefix: str,
    partitions: int,
    specs: tuple[topics.TopicSpec, ...] = topics.ALL,
) -> dict[str, int]:
    """Create the topics of ``specs`` (every registry topic by default) that are missing, with
    ``partitions`` partitions each; refuse when co-partitioned topics' counts differ.

    Returns the partition count of each topic of ``specs``, by full name, in registry order.
    Raises :class:`ConfigError` naming the topics and counts when the co-partitioned registry
    topics that exist under ``prefix`` (those of ``specs`` and any others already created)
    do not all have the same count, or when a topic cannot be created.
    """
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    admin, existing = _admin(kafka)
    names = [topics.topic_name(s, prefix) for s in specs]
    missing = [name for name in names if name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
        )
        for name, fut in futures.items():
            try:
                fut.result(timeout=30)
            except Exception as exc:  # a concurrent creator is fine; anything else is not
                if "already exists" not in str(exc).lower():
                    raise connection_error(kafka, f"creating topic {name}", exc) from None
        existing = _wait_for_metadata(admin, names)
    co = {
        name: len(existing[name].partitions)
        for name in (topics.topic_name(s, prefix) for s in topics.ALL if s.copartitioned)
        if name in existing
    }
    if len(set(co.values())) > 1:
        listing = ", ".join(f"{n}={c}" for n, c in sorted(co.items()))
        raise ConfigError(
            "co-partitioned topics have different partition counts, so a shipment's events "
            f"could be processed apart: {listing}. Give them all the same count "
            "(S321_PARTITIONS) before starting a worker."
        )
    return {name: len(existing[name].partitions) for name in names}


#: The most a changelog record stays after a newer one (or a tombstone) for its key was written
#: before compaction removes it: a forgotten shipment's personal data leaves the changelog within
#: about this (plus the broker's ``delete.retention.ms`` for the tombstone itself).
_COMPACTED_WITHIN_MS = 7 * 24 * 3600 * 1000


def ensure_changelog(kafka: KafkaClientConfig, app_id: str, partitions: int) -> None:
    """Create the join table's changelog topic (compacted within 7 days, ``partitions``
    partitions) unless it exists, and wait until the cluster's metadata shows its partitions.

    The stream runtime would create it itself at start-up, but a consumer whose first metadata
    lists the topic without partitions yet takes it for a topic of 0 partitions and stops the
    agent on its first table write; created beforehand, it is complete from the first metadata
    on. Raises :class:`ConfigError` when an existing changelog has another partition count.
    """
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    admin, existing = _admin(kafka)
    name = topics.changelog_name(app_id)
    if name not in existing:
        config = {"cleanup.policy": "compact", "max.compaction.lag.ms": str(_COMPACTED_WITHIN_MS)}
        fut = admin.create_topics([NewTopic(name, partitions, 1, config=config)])[name]
        try:
            fut.result(timeout=30)
        except Exception as exc:  # a concurrent creator is fine; anything else is not
            if "already exists" not in str(exc).lower():
                raise connection_error(kafka, f"creating topic {name}", exc) from None
    found = len(_wait_for_metadata(admin, [name])[name].partitions)
    if found != partitions:
        raise ConfigError(
            f"the table's changelog {name} has {found} partitions, the inputs {partitions}: "
            "a worker restores its table from the changelog partition of each input partition, "
            "so they must match"
        )
