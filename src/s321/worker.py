"""The worker's composition root: topics checked, the evaluator assembled, the app started.

This is the edge where settings are read and I/O clients are built; the processor and the
rules below it receive plain values and callables.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from s321 import topics
from s321.errors import ConfigError
from s321.models import CompleteRecord
from s321.settings import Settings

__all__ = ["RuleEvaluator", "ensure_topics", "run_worker"]


def ensure_topics(bootstrap: str, prefix: str, partitions: int) -> dict[str, int]:
    """Create missing registry topics; refuse when co-partitioned topics' counts differ.

    Returns each topic's partition count. Raises :class:`ConfigError` naming the topics and
    counts when the inputs and the join's internal topics are not co-partitioned (the two
    halves of a shipment could then land in different tasks and never meet).
    """
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=15).topics
    missing = [
        topics.topic_name(s, prefix)
        for s in topics.ALL
        if topics.topic_name(s, prefix) not in existing
    ]
    if missing:
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
        )
        for name, fut in futures.items():
            try:
                fut.result(timeout=30)
            except Exception as exc:  # a concurrent creator is fine; anything else is not
                if "already exists" not in str(exc).lower():
                    raise ConfigError(f"cannot create topic {name}: {exc}") from None
        existing = admin.list_topics(timeout=15).topics
    counts = {
        topics.topic_name(s, prefix): len(existing[topics.topic_name(s, prefix)].partitions)
        for s in topics.ALL
    }
    co = {
        name: counts[name]
        for name in (topics.topic_name(s, prefix) for s in topics.ALL if s.copartitioned)
    }
    if len(set(co.values())) > 1:
        listing = ", ".join(f"{n}={c}" for n, c in sorted(co.items()))
        raise ConfigError(
            "co-partitioned topics have different partition counts, so a shipment's events "
            f"could be processed apart: {listing}. Give them all the same count "
            "(S321_PARTITIONS) before starting a worker."
        )
    return counts


@dataclass
class RuleEvaluator:
    """Evaluates the whole catalogue: the rule set, reference snapshot and cross-shipment state
    in force. The sources are swapped between records when a new version is published."""

    ruleset: Any
    snapshot: Any
    cross: Any | None = None
    stale: bool = False

    def __call__(self, record: CompleteRecord) -> Any:
        from s321.crossshipment import Aggregates
        from s321.rules.engine import evaluate

        aggregates = self.cross.record_and_read(record) if self.cross else Aggregates.empty()
        return evaluate(record, self.ruleset, self.snapshot, aggregates, stale_refdata=self.stale)


def demo_refdata_dir() -> Path:
    """The synthetic reference set shipped with s321 (for the demo and tests)."""
    return Path(str(resources.files("s321").joinpath("data/refdata/demo")))


def build_evaluator(redis_url: str, prefix: str) -> RuleEvaluator:
    """The evaluator a worker uses: packaged rules and demo reference data, live Redis state."""
    import redis

    from s321.crossshipment import CrossShipmentStore
    from s321.refdata.snapshot import ReferenceSnapshot
    from s321.rules.ruleset import default_ruleset

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    return RuleEvaluator(
        default_ruleset(),
        ReferenceSnapshot.from_directory(demo_refdata_dir()),
        CrossShipmentStore(client, prefix=f"{prefix}{'s321'}:"),
    )


def _serve_metrics(port: int) -> None:
    """Expose /metrics; a busy port costs the metrics, never the worker."""
    import logging

    from s321 import metrics

    log = logging.getLogger("s321.worker")
    try:
        server = metrics.serve_metrics(port)
    except OSError as exc:
        log.warning("metrics endpoint not started on port %d: %s", port, exc.strerror)
        return
    log.warning("metrics at http://0.0.0.0:%d/metrics", server.server_port)


def run_worker(
    settings: Settings,
    *,
    store: str = "rocksdb://",
    processing_guarantee: str = "exactly_once",
    idle_speedup: float = 1.0,
) -> None:
    """Check topics, build the app and run it until SIGTERM/SIGINT."""
    import faust

    from s321.streams.app import (  # type: ignore[import-not-found]  # streams/ is installed as s321.streams; mypy checks it separately
        WorkerConfig,
        build_app,
    )

    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.partitions)
    cfg = WorkerConfig(
        app_id=settings.app_id,
        bootstrap=settings.kafka_bootstrap,
        partitions=settings.partitions,
        data_dir=settings.data_dir / "worker" / settings.app_id,
        prefix=settings.topic_prefix,
        store=store,
        processing_guarantee=processing_guarantee,
        idle_speedup=idle_speedup,
    )
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    evaluator = build_evaluator(settings.redis_url, settings.topic_prefix)
    app, _ = build_app(cfg, evaluator)
    _serve_metrics(settings.metrics_port)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()
