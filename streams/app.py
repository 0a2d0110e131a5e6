"""The Faust application: topics, the shipment table, the correlating agent, the tick timer.

Thin on purpose: the agent reads a batch of records, hands each to
:class:`s321.core.processor.Processor` with the table as its store, sends what comes back and
makes the batch durable. All topic names come from the registry. The collaborators:

- :mod:`.table`: the table as the processor's store, a batch's writes held back;
- :mod:`.delivery`: where each output goes, and the producer sending those leaving Faust;
- :mod:`.continuity`: every input offset processed once, in order; commits capped;
- :mod:`.commit`: the order that makes a batch durable;
- :mod:`.idle`: when a partition is idle, and the event time it then proposes;
- :mod:`.internals`: every use of a private part of Faust or aiokafka.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust

from s321 import metrics, topics
from s321.core.correlation import DEFAULT_RETENTION, Deadlines
from s321.core.processor import Evaluator, Ledger, Processor
from s321.health import Health
from s321.kafka_config import KafkaClientConfig, ssl_context
from s321.serialization import Serializer

from .commit import BatchCommit, batches
from .continuity import OffsetGuard, _Offsets
from .delivery import Delivery, _SideProducer
from .idle import Idleness
from .internals import (
    flush_fully,
    hand_over_in_line,
    recovery_remaining,
    stop_hard,
    without_spinner,
)
from .table import _Staged, _TableStore

__all__ = ["GC_THRESHOLDS", "WorkerConfig", "build_app", "run", "settle_gc"]


@dataclass(frozen=True)
class WorkerConfig:
    """Plain values the app is built from (the CLI reads them from the settings)."""

    app_id: str
    kafka: KafkaClientConfig
    partitions: int
    data_dir: Path
    prefix: str = ""
    store: str = "rocksdb://"
    processing_guarantee: str = "at_least_once"
    tick_interval_s: float = 1.0
    idle_after_s: float = 5.0
    stall_after_s: float = 30.0  # records waiting, none fetched or delivered: read them again
    log_level: str = "WARNING"  # of s321's own loggers (faust's stay at WARNING)
    # live, a batch is what came within batch_within_s (the take's window, paid by every live
    # record); in catch-up, takes are joined until a batch holds batch_size records (see
    # streams.commit.batches). A worker with nothing to read wakes at the window's pace
    batch_size: int = 200
    batch_within_s: float = 0.005
    index_slice_s: float = 0.05  # per batch, while the deadline index is being rebuilt
    # most bytes fetched per partition at a time. Faust hands on everything fetched before it
    # fetches again, so in catch-up the repartition topic's records (forwards, marks,
    # re-evaluations) waited behind up to 1 MB per input partition: over 30 s at 1 MB (the
    # default), none seen at 64 KB, for about a tenth less throughput on a 20,000 backlog
    fetch_partition_bytes: int = 64 * 1024
    idle_speedup: float = 1.0
    web_port: int | None = None
    retention_s: float = DEFAULT_RETENTION.total_seconds()  # a quiet state's, in event time


#: RocksDB settings of the shipment table (a copy is passed: Faust pops keys from it)
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * 1024**2,
    "max_write_buffer_number": 3,
    "block_cache_size": 16 * 1024**2,
    "block_cache_compressed_size": 8 * 1024**2,
}

_log = logging.getLogger("s321.worker")


def broker_credentials(kafka: KafkaClientConfig) -> faust.auth.Credentials | None:
    """Faust's form of ``kafka``'s security (its consumer, producer and topic creation all
    take it): SASL credentials (with the TLS context under SASL_SSL), or TLS alone."""
    if kafka.sasl:
        return faust.SASLCredentials(
            username=kafka.username,
            password=kafka.password.get(),
            mechanism=kafka.sasl_mechanism,
            ssl_context=ssl_context(kafka),
        )
    context = ssl_context(kafka)
    return faust.SSLCredentials(context) if context is not None else None


_trace = logging.getLogger("s321.records")


def build_app(
    cfg: WorkerConfig,
    evaluate: Evaluator,
    ledger: Ledger | None = None,
    serializer: Serializer | None = None,
    health: Health | None = None,
) -> tuple[faust.App, Processor]:
    """Build the Faust app and the processor it drives (``serializer``: the wire format of
    inputs and outputs; single-object encoding by default; ``health``: told of every batch
    and tick)."""
    health = health or Health()
    app = faust.App(
        cfg.app_id,
        broker=f"kafka://{cfg.kafka.bootstrap}",
        broker_credentials=broker_credentials(cfg.kafka),
        store=cfg.store,
        topic_partitions=cfg.partitions,
        topic_replication_factor=1,
        processing_guarantee=cfg.processing_guarantee,
        datadir=str(cfg.data_dir),
        web_enabled=cfg.web_port is not None,
        web_port=cfg.web_port or 6066,
        broker_commit_every=500,
        broker_commit_interval=1.0,
        # a killed worker's partitions move on after 10 s instead of the 60 s default
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        producer_linger_ms=5,
        consumer_max_fetch_size=cfg.fetch_partition_bytes,
        table_cleanup_interval=3600.0,
        key_serializer="raw",
        value_serializer="raw",
    )

    # -- topics and table ----------------------------------------------------------------

    def handle(spec: topics.TopicSpec) -> Any:
        return app.topic(
            topics.topic_name(spec, cfg.prefix),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=cfg.partitions if spec.copartitioned else None,
        )

    names = {spec: topics.topic_name(spec, cfg.prefix) for spec in topics.ALL}
    out = {
        spec: handle(spec)
        for spec in (topics.DECISIONS, topics.DEAD_LETTERS, topics.UNMATCHED, topics.REPARTITION)
    }
    inputs = app.topic(
        *(topics.topic_name(s, cfg.prefix) for s in (*topics.INPUTS, *topics.INTERNAL)),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=cfg.partitions,
    )
    input_names = {topics.topic_name(s, cfg.prefix) for s in topics.INPUTS}
    table = app.Table(
        topics.TABLE,
        partitions=cfg.partitions,
        key_type=bytes,
        value_type=bytes,
        # Faust opens one RocksDB per partition, by default each with 3 write buffers of 64 MB
        # and a 2 GB block cache: a worker holding a million waiting shipments grew past 1 GB.
        # Bounded here: at most about 24 MB of write buffers and a 16 MB cache per partition.
        options=dict(ROCKSDB_OPTIONS),
    )

    # -- collaborators -------------------------------------------------------------------

    exactly_once = cfg.processing_guarantee == "exactly_once"
    side = _SideProducer(cfg.kafka)
    # exactly once, the changelog records must join the input partition's transaction: Faust's
    # own table write sends them; at least once, the side producer does (see .table)
    store = _TableStore(table, changelog=None if exactly_once else side)
    processor = Processor(
        evaluate,
        cfg.partitions,
        cfg.prefix,
        deadlines=Deadlines(retention=timedelta(seconds=cfg.retention_s)),
        ledger=ledger,
        serializer=serializer,
    )
    delivery = Delivery(side, out, names, exactly_once)
    guard = OffsetGuard(
        app,
        fed_by=[names[s] for s in (*topics.INPUTS, topics.REPARTITION)],
        inputs=input_names,
        offsets=_Offsets(
            cfg.kafka, cfg.app_id, "read_committed" if exactly_once else "read_uncommitted"
        ),
        stall_after_s=cfg.stall_after_s,
    )
    idle = Idleness(cfg.idle_after_s, cfg.idle_speedup)
    totals = _Totals()
    if not app.conf.producer_threaded:  # the threaded producer keeps no such buffer
        flush_fully(app.producer.buffer)  # before it starts: see flush_fully
    guard.hand_on_every_record()  # the consumer is made here, before its fetcher starts
    hand_over_in_line(app.consumer)  # no tasks per record where none is needed
    commit = BatchCommit(side, app.producer.buffer if exactly_once else store, guard)

    # -- the agent -----------------------------------------------------------------------

    @app.agent(inputs)
    async def correlate(stream: Any) -> None:
        try:
            await _correlate(stream)
        except Exception as exc:  # Faust would restart the agent or leave it dead, silently
            # nothing the batch produced may be acknowledged: stop before any commit
            logging.getLogger("s321.worker").critical(
                "the correlating agent failed, stopping: %s", f"{type(exc).__name__}: {exc}"[:300]
            )
            stop_hard(70)

    async def _correlate(stream: Any) -> None:
        # records are handled in small batches so that waiting for the broker (forwards,
        # decisions acknowledged before the state recording them) is paid once per batch
        _own_logging(cfg.log_level)
        guard.cap_commits()
        async for events in batches(
            stream.take_events(cfg.batch_size, within=cfg.batch_within_s),
            stream.channel.queue,  # records handed to the stream, not yet taken
            cfg.batch_size,
            steady=lambda: _assigned(app) == guard.partitions,
        ):
            health.batch_started()
            now_assigned = _assigned(app)
            if now_assigned != guard.partitions:
                idle.assigned(now_assigned - guard.partitions)
                await guard.reassign(now_assigned)
                metrics.REBALANCES.inc()
                processor.rebuild_deadlines(store, set(now_assigned), app.consumer_generation_id)
            staged = _Staged(store)
            for event in events:
                msg = event.message
                if not await guard.admit(msg):
                    continue
                if msg.topic in input_names:
                    idle.input(msg.partition)
                    metrics.counted(metrics.INPUT_EVENTS, msg.topic[len(cfg.prefix) :]).inc()
                staged.at(event)
                if _trace.isEnabledFor(logging.DEBUG):
                    _trace.debug(
                        "record %s/%d/%d key=%r", msg.topic, msg.partition, msg.offset, msg.key
                    )
                outputs = processor.on_record(
                    msg.topic,
                    msg.partition,
                    msg.offset,
                    msg.key,
                    msg.value,
                    int(msg.timestamp * 1000),
                    staged,
                    list(msg.headers or ()),
                )
                for o in outputs:
                    await delivery.emit(o, msg.partition)
            for o in processor.decide_pending(staged):
                await delivery.emit(o, o.partition)
            await commit.make_durable(staged, {event.message.tp for event in events})
            # the deadline index, rebuilt after a rebalance a slice per batch: a worker taking
            # over a million waiting shipments decides again at once (their deadlines wait)
            processor.index_deadlines(cfg.index_slice_s)
            totals.report(processor)
            health.batch_done()

    # -- the timer -----------------------------------------------------------------------

    @app.timer(cfg.tick_interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def tick() -> None:
        """Tell every partition how far each input partition owned here has been read (see
        :mod:`s321.core.processor`, event time). An idle one proposes the newest event time seen
        here, moved on by ``idle_speedup`` × the wall time since the last input."""
        remaining = recovery_remaining(app)
        metrics.RECOVERY_REMAINING.labels(table="shipments").set(remaining)
        metrics.RECOVERY_PROGRESS.labels(table="shipments").set(1.0 if remaining == 0 else 0.0)
        # during a rebalance the agent's view and the consumer's may differ: mark only what both
        # say is owned here (a mark is sent again within a second anyway)
        assigned = _assigned(app)
        owned = guard.partitions & assigned
        health.ticked(
            assigned=app.rebalancing_count > 0 and not app.rebalancing,  # over once recovered
            partitions=len(assigned),
            recovery_remaining=remaining,
            waiting=any(guard.caught_up(source) != input_names for source in owned),
        )
        if not owned:
            return
        try:
            await guard.unstall()
        except Exception:  # e.g. the partition was revoked meanwhile; the next tick looks again
            _log.warning("stall check failed", exc_info=True)
        try:
            newest = idle.proposal(
                max((*processor.watermarks.values(), *processor.read_ms.values(), 0))
            )
            for source in sorted(owned):
                # idle: every record in its input topics read, and none came for idle_after_s
                # (since the last one, or since it was assigned here)
                caught_up = guard.caught_up(source)
                proposed = newest if idle.idle(source) and caught_up == input_names else None
                for o in processor.marks(source, proposed, app.consumer_generation_id, caught_up):
                    delivery.send(o)
            side.poll()
        except Exception:  # a timer that raises stops the worker; the next tick tries again
            _log.warning("marks not sent this tick", exc_info=True)

    # -- shutdown and rebalances ---------------------------------------------------------

    async def _flush_side(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await side.flush()
        await store.flush()  # at least once: the changelog offsets acknowledged, persisted
        if not exactly_once:  # every decision acknowledged: the ledger's records are not needed
            processor.sent_all()

    async def _revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust lets go of a revoked partition's RocksDB and may open it again at once; an
        # unfinished read of the table must not keep the old handle open meanwhile
        processor.pause_indexing()

    app.on_before_shutdown.connect(_flush_side)  # type: ignore[arg-type]  # the stub wants a positional-only sender
    app.on_partitions_revoked.connect(_revoked)  # type: ignore[arg-type]  # as above

    return app, processor


#: Python's collector thresholds in a worker (young generation first; the default is 700). A
#: worker keeps recent inputs decoded and recent states for reuse, so many objects outlive a
#: young collection and every 700 more set one off: on a 20,000-shipment backlog the default
#: collected 1,186 times for 3.2 s of CPU (0.16 ms per shipment, with pauses up to 0.28 s);
#: at 100,000 it collected 3 times for 0.2 s. Objects in reference cycles wait longer to be
#: freed: at most this many containers.
GC_THRESHOLDS = (100_000, 10, 10)


def settle_gc() -> None:
    """Collect once, move every object made so far (modules, rules, reference data, the app)
    out of the collector's sight (they live as long as the process), and set
    :data:`GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(app: faust.App) -> None:
    """Run ``app`` in a Faust worker until SIGTERM/SIGINT (exits through ``SystemExit``)."""
    settle_gc()
    worker = without_spinner(faust.Worker(app, loglevel="WARNING", quiet=True))
    worker.execute_from_commandline()


def _assigned(app: faust.App) -> frozenset[int]:
    """The partitions of the agent's inputs the consumer group assigned here."""
    return frozenset(tp.partition for tp in app.assignor.assigned_actives())


class _Totals:
    """The processor's totals as metrics: waiting shipments, and deadlines that ran out and
    states forgotten (counters, moved by what changed since the last report)."""

    def __init__(self) -> None:
        self._expired = 0  # expiries already counted
        self._forgotten = 0

    def report(self, processor: Processor) -> None:
        metrics.WAITING.set(processor.waiting)
        if processor.expired_total != self._expired:
            metrics.DEADLINE_EXPIRIES.inc(processor.expired_total - self._expired)
            self._expired = processor.expired_total
        if processor.forgotten_total != self._forgotten:
            metrics.STATES_FORGOTTEN.inc(processor.forgotten_total - self._forgotten)
            self._forgotten = processor.forgotten_total


def _own_logging(level: str) -> None:
    """s321's loggers at their own level, on a handler of their own (faust's handlers stay at
    WARNING); called once the worker has configured logging."""
    log = logging.getLogger("s321")
    log.setLevel(level)
    if not any(getattr(h, "s321", False) for h in log.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] %(message)s"))
        handler.s321 = True  # type: ignore[attr-defined]  # marks our own handler
        log.addHandler(handler)
        log.propagate = False
