"""The worker's composition root: topics checked, the evaluator assembled, the app started.

This is the edge where settings are read and I/O clients are built; the processor and the
rules below it receive plain values and callables.
"""

from __future__ import annotations

import itertools
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from s321 import topics
from s321.errors import ConfigError
from s321.models import CompleteRecord
from s321.refdata import ReferenceSnapshot
from s321.rules.aggregates import Aggregates
from s321.rules.engine import Evaluation, evaluate
from s321.rules.ruleset import Ruleset, default_ruleset
from s321.settings import Settings
from s321.stores.crossshipment import CrossShipmentStore, VersionLedger
from s321.stores.refdata import RefdataStore, RefdataWatcher
from s321.stores.rulesets import RulesetStore, RulesetWatcher

__all__ = [
    "RuleEvaluator",
    "build_evaluator",
    "claim_state_dir",
    "demo_refdata_dir",
    "ensure_topics",
    "redis_client",
    "redis_prefix",
    "run_worker",
]


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
        existing = _wait_for_metadata(admin, [topics.topic_name(s, prefix) for s in topics.ALL])
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


class RuleEvaluator:
    """Evaluates the whole catalogue with the rule set, reference data and cross-shipment state
    in force, picking up newly published versions between records.

    The worker calls it once per batch (:meth:`many`), on the agent's own task, so the watchers
    are polled here (each at most every ``interval_s``; one GET per source when nothing
    changed) and no background thread ever touches what the rules read. A source may also be a fixed
    :class:`~s321.rules.Ruleset` / :class:`~s321.refdata.ReferenceSnapshot` (tests, tools).

    While Redis cannot be reached, decisions go on with the last good rule set and snapshot
    and say ``stale_refdata=True``; the cross-shipment rules then hold (they cannot show the
    shipment is eligible). After one failed cross-shipment call the store is not asked again
    for ``retry_after_s``, so an outage costs at most one short timeout per interval, not one
    per record. Shipments decided without their state are remembered (up to ``recheck_limit``)
    and, once Redis answers again, handed back as ``affected`` so the processor decides them
    once more: they get a new decision version without waiting for another event.
    """

    def __init__(
        self,
        rules: RulesetWatcher | Ruleset,
        refdata: RefdataWatcher | ReferenceSnapshot,
        cross: CrossShipmentStore | None = None,
        *,
        retry_after_s: float = 1.0,
        recheck_limit: int = 100_000,
        recheck_batch: int = 200,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self.refdata = refdata
        self.cross = cross
        self.retry_after_s = retry_after_s
        self.recheck_limit = recheck_limit
        self.recheck_batch = recheck_batch
        self._clock = clock
        self._cross_retry_at = 0.0
        self._recheck: dict[str, None] = {}

    @property
    def ruleset(self) -> Ruleset:
        """The rule set in force now."""
        r = self.rules
        return r if isinstance(r, Ruleset) else r.ruleset

    @property
    def snapshot(self) -> ReferenceSnapshot:
        """The reference snapshot in force now."""
        d = self.refdata
        return d if isinstance(d, ReferenceSnapshot) else d.snapshot

    def __call__(self, record: CompleteRecord) -> Evaluation:
        [result] = self.many([record])
        if isinstance(result, Exception):
            raise result
        return result

    def many(self, records: Sequence[CompleteRecord]) -> list[Evaluation | Exception]:
        """Evaluate ``records`` in order, their cross-shipment state recorded and read in one
        round trip (each script call sees the ones before it, as if called one by one). A
        record whose rules raise gets the exception in its place."""
        out: list[Evaluation | Exception] = []
        for record, aggregates in zip(records, self._aggregates(records), strict=True):
            try:
                out.append(self._evaluate(record, aggregates))
            except Exception as exc:
                out.append(exc)
        return out

    def _evaluate(self, record: CompleteRecord, aggregates: Aggregates) -> Evaluation:
        # Redis answered the state store: sources that could not reach it poll at once
        back = aggregates.available and self.cross is not None
        stale = False
        rules = self.rules
        if isinstance(rules, RulesetWatcher):
            if back and rules.unreachable:
                rules.poll()
            else:
                rules.maybe_poll()
            stale = rules.unreachable
        refdata = self.refdata
        if isinstance(refdata, RefdataWatcher):
            if back and refdata.unreachable:
                refdata.poll()
            else:
                refdata.maybe_poll()
            stale = stale or refdata.stale
        if not aggregates.available:
            stale = True
            if len(self._recheck) < self.recheck_limit:
                self._recheck[record.key] = None
        ev = evaluate(record, self.ruleset, self.snapshot, aggregates, stale_refdata=stale)
        if aggregates.available and self._recheck:
            self._recheck.pop(record.key, None)
            again = list(itertools.islice(self._recheck, self.recheck_batch))
            for key in again:
                del self._recheck[key]
            ev = replace(ev, affected=(*ev.affected, *again))
        return ev

    def _aggregates(self, records: Sequence[CompleteRecord]) -> list[Aggregates]:
        if self.cross is None:
            return [Aggregates.empty()] * len(records)
        now = self._clock()
        if now < self._cross_retry_at:
            return [Aggregates.unavailable()] * len(records)
        found = self.cross.record_and_read_many(records)
        if not all(a.available for a in found):
            self._cross_retry_at = now + self.retry_after_s
        return found

    @property
    def pending_recheck(self) -> int:
        """Shipments decided without their cross-shipment state, waiting for Redis."""
        return len(self._recheck)


def demo_refdata_dir() -> Path:
    """The synthetic reference set shipped with s321 (for the demo and tests)."""
    return Path(str(resources.files("s321").joinpath("data/refdata/demo")))


def redis_prefix(topic_prefix: str) -> str:
    """The Redis key prefix of one deployment (its topic prefix): rule sets, reference data
    and cross-shipment state of deployments sharing a Redis never mix."""
    return f"{topic_prefix}s321:"


def redis_client(url: str, timeout_s: float = 0.5) -> redis.Redis:
    """A Redis client for the decision path: short timeouts and no retries, so an outage
    costs a fraction of a second, never a stalled partition."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


def build_evaluator(redis_url: str, prefix: str, poll_interval_s: float = 1.0) -> RuleEvaluator:
    """The evaluator a worker uses: the rule set and reference data published in Redis under
    this deployment's prefix (until something is published: the packaged default rule set and
    the demo reference data), polled every ``poll_interval_s``, and live cross-shipment state."""
    client = redis_client(redis_url)
    ns = redis_prefix(prefix)
    return RuleEvaluator(
        RulesetWatcher(RulesetStore(client, ns), default_ruleset(), interval_s=poll_interval_s),
        RefdataWatcher(
            RefdataStore(client, ns),
            ReferenceSnapshot.from_directory(demo_refdata_dir()),
            interval_s=poll_interval_s,
        ),
        CrossShipmentStore(client, prefix=ns),
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
    """Check topics, build the app and run it until SIGTERM/SIGINT."""
    from s321.streams.app import (  # type: ignore[import-not-found]  # streams/ is installed as s321.streams; mypy checks it separately
        WorkerConfig,
        build_app,
        run,
    )

    ensure_topics(settings.kafka_bootstrap, settings.topic_prefix, settings.partitions)
    cfg = WorkerConfig(
        app_id=settings.app_id,
        bootstrap=settings.kafka_bootstrap,
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
    )
    evaluator = build_evaluator(settings.redis_url, settings.topic_prefix)
    ledger = VersionLedger(redis_client(settings.redis_url), redis_prefix(settings.topic_prefix))
    app, _ = build_app(cfg, evaluator, ledger)
    _serve_metrics(settings.metrics_port)
    try:
        run(app)
    except SystemExit as exc:
        if exc.code in (0, None):
            (cfg.data_dir / ".clean").touch()
        raise
    (cfg.data_dir / ".clean").touch()
