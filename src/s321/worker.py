"""Worker start-up: topics checked, the evaluator and version ledger built, the app run.

This is the edge where settings are read and I/O clients are built; the processor and the
rules below it receive plain values and callables.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from s321 import topics
from s321.admin import ensure_changelog, ensure_topics
from s321.core.processor import Evaluator
from s321.errors import ConfigError
from s321.evaluator import build_evaluator
from s321.health import Health
from s321.models import Decision
from s321.serialization import serializer
from s321.settings import Settings
from s321.stores.connection import RedisTarget, check_redis, redis_client, redis_prefix
from s321.stores.crossshipment import VersionLedger

__all__ = ["claim_state_dir", "run_worker"]


def _serve(what: str, host: str, port: int, start: Callable[[], int], paths: str) -> None:
    """Start one of the worker's HTTP endpoints (``start`` binds it and returns its port); a
    busy address costs that endpoint, never the worker, and is logged (an orchestrator probing
    a missing health endpoint restarts the worker, which the log then explains)."""
    log = logging.getLogger("s321.worker")
    try:
        bound = start()
    except OSError as exc:
        log.warning("%s endpoint not started on %s:%d: %s", what, host, port, exc.strerror)
        return
    log.warning("%s at http://%s:%d%s", what, host, bound, paths)


def _serve_endpoints(settings: Settings, health: Health, decode: Callable[[bytes], Any]) -> None:
    """The worker's metrics, health and (unless its port is 0) shipment-status endpoints."""
    from s321 import metrics
    from s321.health import serve_health
    from s321.ops.status import serve_status

    s = settings
    _serve("metrics", s.metrics_host, s.metrics_port,
           lambda: metrics.serve_metrics(s.metrics_port, s.metrics_host).server_port,
           "/metrics")  # fmt: skip
    _serve("health", s.health_host, s.health_port,
           lambda: serve_health(health, s.health_port, s.health_host).server_port,
           "/healthz and /readyz")  # fmt: skip
    if s.status_port:
        _serve("shipment status", s.status_host, s.status_port,
               lambda: serve_status(s.kafka(), s.topic_prefix, decode, s.status_host,
                                    s.status_port).port,
               "/shipments/{key}")  # fmt: skip


_claimed: list[Any] = []  # open lock files, held for the life of the process


def claim_state_dir(base: Path, slots: int = 64, *, keep_after_crash: bool = True) -> Path:
    """A local state directory no other running worker uses: ``base/slot<N>``.

    Two worker processes on one machine must not share a table store. Each takes the first slot
    whose lock it can hold; the lock dies with the process, so a worker restarted after a crash
    takes the same slot back and reuses its local store: Faust then reads only the changelog
    written since (a million shipments are not restored from scratch).

    That is safe at least once: outputs are flushed before the state recording them is
    written, so the local store is never ahead of what was sent, and a state written here whose
    changelog record was lost is written again when its record is replayed (duplicates rewrite
    their state). Exactly once it is not: a crash aborts the transaction holding a batch's
    outputs while the local store keeps its effects, so with ``keep_after_crash=False`` a slot
    whose last worker did not stop cleanly is emptied and restored from the changelog.
    """
    import fcntl

    for n in range(slots):
        slot = base / f"slot{n}"
        slot.mkdir(parents=True, exist_ok=True)
        lock = (slot / ".lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _claimed.append(lock)
        clean = slot / ".clean"
        if clean.exists():
            clean.unlink()  # a crash from here on must leave no marker behind
        elif not keep_after_crash:
            for child in slot.iterdir():
                if child.name != ".lock":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        return slot
    raise ConfigError(f"all {slots} worker state directories under {base} are in use")


def run_worker(
    settings: Settings,
    *,
    store: str = "rocksdb://",
    processing_guarantee: str = "at_least_once",
    idle_speedup: float = 1.0,
) -> None:
    """Check Redis and the topics, build the app and run it until SIGTERM/SIGINT.

    Redis is asked once, with the configured credentials, before anything starts: refused
    credentials or a failed TLS handshake will not mend by waiting, so they raise
    :class:`ConfigError` (the process exits non-zero with the reason). Redis merely out of reach
    is an outage like any later one: the worker starts and holds what needs Redis until it is
    back."""
    from s321.streams.app import (  # type: ignore[import-not-found]  # streams/ is installed as s321.streams; mypy checks it separately
        WorkerConfig,
        build_app,
        run,
    )

    if not settings.state_retention_days >= 1:
        raise ConfigError(
            f"S321_STATE_RETENTION_DAYS={settings.state_retention_days}: a shipment's state must "
            "be kept at least a day (the manifest wait is 24 h)"
        )
    redis = RedisTarget.from_settings(settings)
    if not check_redis(redis):
        logging.getLogger("s321.worker").warning(
            "Redis at %s is out of reach: starting all the same; shipments whose rules need it "
            "are held until it is back",
            redis.redacted,
        )
    kafka = settings.kafka()
    counts = ensure_topics(kafka, settings.topic_prefix, settings.partitions)
    inputs = counts[topics.topic_name(topics.MANIFEST, settings.topic_prefix)]
    ensure_changelog(kafka, settings.app_id, inputs)
    cfg = WorkerConfig(
        app_id=settings.app_id,
        kafka=kafka,
        partitions=settings.partitions,
        data_dir=claim_state_dir(
            settings.data_dir / "worker" / settings.app_id,
            keep_after_crash=processing_guarantee != "exactly_once",
        ),
        prefix=settings.topic_prefix,
        store=store,
        processing_guarantee=processing_guarantee,
        idle_speedup=idle_speedup,
        log_level=settings.log_level,
        retention_s=settings.state_retention_days * 86_400,
    )
    evaluator: Evaluator = build_evaluator(redis, settings.topic_prefix)
    ledger = VersionLedger(redis_client(redis), redis_prefix(settings.topic_prefix))
    serde = serializer(settings.schema_registry_url, settings.schema_registry_auth.get())
    health = Health()
    app, _ = build_app(cfg, evaluator, ledger, serde, health)
    _serve_endpoints(settings, health, lambda value: serde.decode(value, Decision))
    try:
        run(app)
    except SystemExit as exc:
        if exc.code in (0, None):
            (cfg.data_dir / ".clean").touch()
        raise
    (cfg.data_dir / ".clean").touch()
