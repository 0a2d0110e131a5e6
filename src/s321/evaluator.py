"""The rule evaluator a worker runs: the catalogue with the rule set, reference data and
cross-shipment state in force, as the processor's :class:`~s321.core.processor.Evaluator`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import redis

from s321.models import CompleteRecord
from s321.refdata import ReferenceSnapshot, demo_refdata_dir
from s321.rules.aggregates import Aggregates
from s321.rules.engine import Evaluation, evaluate
from s321.rules.ruleset import Ruleset, default_ruleset
from s321.stores.connection import RedisTarget, redis_client, redis_prefix
from s321.stores.crossshipment import CrossShipmentStore
from s321.stores.refdata import RefdataStore, RefdataWatcher
from s321.stores.rulesets import RulesetStore, RulesetWatcher
from s321.stores.versioned import VersionWatcher

__all__ = ["RuleEvaluator", "build_evaluator", "published_sources"]


class RuleEvaluator:
    """Evaluates the whole catalogue with the rule set, reference data and cross-shipment state
    in force, picking up newly published versions between records.

    The worker calls it once per batch (:meth:`many`), on the agent's own task, so the watchers
    are polled here (each at most every ``interval_s``; one GET per source when nothing
    changed) and no background thread ever touches what the rules read. A source may also be a
    fixed :class:`~s321.rules.Ruleset` / :class:`~s321.refdata.ReferenceSnapshot` (tests, tools).

    Decisions say ``stale_refdata=True`` while either source is stale (see
    :mod:`s321.stores.versioned`) or the cross-shipment state cannot be read. While Redis cannot
    be reached, decisions go on with the last good rule set and snapshot; the cross-shipment
    rules then hold (they cannot show the shipment is eligible). After one failed cross-shipment
    call the store is not asked again for ``retry_after_s``, so an outage costs at most one
    short timeout per interval, not one per record. Shipments decided without their state are
    remembered (up to ``recheck_limit``) and, once Redis answers again, handed back as
    ``affected`` so the processor decides them once more: they get a new decision version
    without waiting for another event.
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
        for source in (self.rules, self.refdata):
            if isinstance(source, VersionWatcher):
                source.refresh(redis_answers=back)
                stale = stale or source.stale
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


def published_sources(
    client: redis.Redis, prefix: str, poll_interval_s: float = 1.0
) -> tuple[RulesetWatcher, RefdataWatcher]:
    """The rule set and reference data published in Redis under this deployment's prefix
    (until something is published: the packaged default rule set and the demo reference
    data), each polled every ``poll_interval_s``."""
    ns = redis_prefix(prefix)
    return (
        RulesetWatcher(RulesetStore(client, ns), default_ruleset(), interval_s=poll_interval_s),
        RefdataWatcher(
            RefdataStore(client, ns),
            ReferenceSnapshot.from_directory(demo_refdata_dir()),
            interval_s=poll_interval_s,
        ),
    )


def build_evaluator(
    redis: RedisTarget | str, prefix: str, poll_interval_s: float = 1.0
) -> RuleEvaluator:
    """The evaluator a worker uses: the :func:`published_sources` of this deployment and its
    live cross-shipment state, in the Redis of ``redis``."""
    client = redis_client(redis)
    rules, refdata = published_sources(client, prefix, poll_interval_s)
    return RuleEvaluator(rules, refdata, CrossShipmentStore(client, prefix=redis_prefix(prefix)))
