"""The Faust application: topics, the shipment table, the correlating agent, the tick timer.

Thin on purpose: the agent reads a record, hands it to :class:`s321.core.processor.Processor` with
the table as its store, and sends what comes back. All topic names come from the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import weakref
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import faust
from faust.streams import _current_event

from s321 import metrics, topics
from s321.core.processor import Evaluator, Ledger, Output, Processor
from s321.serialization import Serializer

__all__ = ["WorkerConfig", "build_app", "flush_fully"]


@dataclass(frozen=True)
class WorkerConfig:
    """Plain values the app is built from (the CLI reads them from the settings)."""

    app_id: str
    bootstrap: str
    partitions: int
    data_dir: Path
    prefix: str = ""
    store: str = "rocksdb://"
    processing_guarantee: str = "at_least_once"
    tick_interval_s: float = 1.0
    idle_after_s: float = 5.0
    stall_after_s: float = 30.0  # records waiting, none fetched or delivered: read them again
    log_level: str = "WARNING"  # of s321's own loggers (faust's stay at WARNING)
    batch_size: int = 200
    batch_within_s: float = 0.02
    index_slice_s: float = 0.05  # per batch, while the deadline index is being rebuilt
    # most bytes fetched per partition at a time. Faust hands on everything fetched before it
    # fetches again, so in catch-up the repartition topic's records (forwards, marks,
    # re-evaluations) waited behind up to 1 MB per input partition: over 30 s at 1 MB (the
    # default), none seen at 64 KB, for about a tenth less throughput on a 20,000 backlog
    fetch_partition_bytes: int = 64 * 1024
    idle_speedup: float = 1.0
    web_port: int | None = None


#: RocksDB settings of the shipment table (a copy is passed: Faust pops keys from it)
ROCKSDB_OPTIONS = {
    "write_buffer_size": 8 * 1024**2,
    "max_write_buffer_number": 3,
    "block_cache_size": 16 * 1024**2,
    "block_cache_compressed_size": 8 * 1024**2,
}


class _TableStore(MutableMapping[str, bytes]):
    """The Faust table seen as a str -> bytes mapping (keys are stored as UTF-8 bytes)."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def read(self, key: str, partition: int) -> bytes | None:
        """The value of ``key``, which lives in ``partition`` (the processor reads only keys of
        the partition whose record it handles): one RocksDB read in that partition's store.
        Faust's own lookup, outside its stream's event context, asks every partition's store
        twice (contains, then get)."""
        data = self.table.data
        if hasattr(data, "_db_for_partition"):  # RocksDB; the raw serializer stores bytes as is
            value: bytes | None = data._db_for_partition(partition).get(key.encode())
        else:
            value = self.get(key)
        return value

    def __getitem__(self, key: str) -> bytes:
        value = self.table[key.encode()]
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]  # raw serializer: bytes in, bytes out

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key.encode(), default)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        for key in self.table:
            yield key.decode() if isinstance(key, bytes) else str(key)

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Iterator[tuple[str, bytes]]:  # type: ignore[override]  # a generator suffices
        for key, value in self.table.items():
            yield (key.decode() if isinstance(key, bytes) else str(key)), value


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


class _Staged(MutableMapping[str, bytes]):
    """A batch's table writes, held back until what they record has been sent.

    Reads see the held writes first, so the processor sees its own changes. Each write remembers
    the partition of the record that made it: a table's changelog record must go to that
    partition, so :meth:`apply` writes each one as if inside that partition's last record."""

    def __init__(self, base: _TableStore) -> None:
        self.base = base
        self.writes: dict[str, tuple[bytes, int]] = {}
        self.partition = 0  # of the record being processed

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]  # bytes, as stored

    def get(self, key: str, default: Any = None) -> Any:
        held = self.writes.get(key)
        if held is not None:
            return held[0]
        value = self.base.read(key, self.partition)
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        # a key written again in the batch keeps the partition of its first write (the
        # decisions made when the batch ends write states of every partition it touched)
        held = self.writes.get(key)
        self.writes[key] = (value, self.partition if held is None else held[1])

    def __delitem__(self, key: str) -> None:
        raise NotImplementedError("the processor never deletes")

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def apply(self, last_of: dict[int, Any]) -> None:
        for key, (value, partition) in self.writes.items():
            token = _current_event.set(weakref.ref(last_of[partition]))
            try:
                self.base[key] = value
            finally:
                _current_event.reset(token)
        self.writes.clear()


class _SideProducer:
    """Records sent outside Faust: those that leave the input's partition (re-keyed inputs,
    marks, re-evaluations) and, at least once, decisions, unmatched reports and dead letters.

    Faust's exactly-once transactions are per partition, named after the partition a record is
    sent to; a record for a partition this worker does not own cannot join the input's
    transaction. These records are safe to repeat (events are deduplicated by id, marks only
    move time forward, a repeated decision has the same id), so they go through an idempotent
    producer of their own, flushed before the input that caused them is acknowledged.
    """

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._failed: list[str] = []
        self._made: Any = None

    @property
    def _producer(self) -> Any:
        """Made on first use, so a worker that never forwards never connects it."""
        if self._made is None:
            from confluent_kafka import Producer

            self._made = Producer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                }
            )
        return self._made

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failed.append(f"{msg.topic()}: {err}")

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: tuple[tuple[str, bytes], ...],
        partition: int | None,
    ) -> None:
        self._producer.produce(
            topic,
            value=value,
            key=key,
            headers=list(headers),
            partition=-1 if partition is None else partition,
            on_delivery=self._on_delivery,
        )

    def poll(self) -> None:
        self._producer.poll(0)

    async def flush(self) -> None:
        if self._made is None:
            return
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, self._producer.flush, 30.0):
            pass  # librdkafka keeps retrying (idempotent): wait until all are delivered
        if self._failed:
            # never acknowledge an input whose forwarded record was lost: stop hard so the
            # input's offset is not committed and a restarted worker processes it again
            logging.getLogger("s321.worker").critical(
                "could not deliver forwarded records, stopping: %s", self._failed[:3]
            )
            os._exit(70)


def _stop_hard(message: str, *args: Any) -> NoReturn:
    """Log ``message`` (a %-format of ``args``) as critical and exit with status 70 at once.

    For output that cannot be delivered: going on would let input offsets be committed past
    records whose results are lost, and staying up without working would hide it. Nothing is
    acknowledged after this, so a restarted worker processes those records again."""
    logging.getLogger("s321.worker").critical(message + "; stopping", *args)
    logging.shutdown()
    os._exit(70)


def flush_fully(buffer: Any) -> None:
    """Make Faust's producer buffer (where the table's changelog records wait to be handed to
    the Kafka client) flush for real: ``buffer.flush()`` returns once every record put in it
    before the call has been handed on, however slowly they go (records put meanwhile are the
    next flush's), and at shutdown it sends what is left itself.

    Faust flushes this buffer before it commits input offsets, but its own flush gives up as
    soon as no record has been sent for 100 ms (a batch of decisions holding the event loop
    is enough), and so does a flush while its sender is busy with the last record. A commit
    then covers inputs whose state changes were still in the buffer; a worker killed at that
    moment leaves a changelog without them, and its inputs are never read again, so a
    replacement restoring the table from the changelog decides from an older state.

    A record that cannot be handed on (the Kafka client refuses it) stops the worker
    (:func:`_stop_hard`): the inputs whose state it holds must not be acknowledged."""
    put_n = sent_n = 0  # records put, records handed on (one sender, in the order put)
    waiting: list[tuple[int, asyncio.Future[None]]] = []  # (records to be handed on, flush)
    put, send = buffer.put, buffer._send_pending

    def put_counted(fut: Any) -> None:
        nonlocal put_n
        put(fut)
        put_n += 1

    async def send_counted(fut: Any) -> None:
        nonlocal sent_n
        try:
            await send(fut)
        except Exception as exc:  # the state it records would never be durable
            _stop_hard("a table changelog record could not be sent: %s", type(exc).__name__)
        finally:
            sent_n += 1
            for entry in [w for w in waiting if w[0] <= sent_n]:
                waiting.remove(entry)
                if not entry[1].done():
                    entry[1].set_result(None)

    async def flush() -> None:
        target = put_n
        while sent_n < target:
            if buffer.should_stop:  # its sender takes no more records: send the rest here
                while not buffer.pending.empty():
                    await send_counted(buffer.pending.get_nowait())
                continue
            done = asyncio.get_running_loop().create_future()
            waiting.append((target, done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, 1.0)

    buffer.put = put_counted
    buffer._send_pending = send_counted  # read once, when its sending task starts
    buffer.flush = flush


class _HandedOn(dict[Any, Any]):
    """Faust's record of the last offset it handed on, per partition (its ``_read_offset``).

    Faust drops every fetched record below that offset, and notes the offsets it jumped as a
    gap to commit as if done. Both go wrong after a seek back: records fetched from the new
    position before the offset is reset are dropped, the very records the seek was for. Here
    a read through ``[]`` (the only way Faust reads it) answers None: every fetched record is
    handed on, and :class:`Continuity` skips those already processed. ``get`` still returns
    what was recorded (the stall check watches it move)."""

    def __getitem__(self, tp: Any) -> None:
        return None


class Continuity:
    """Checks that the agent sees every offset of its input partitions, in order.

    Faust drops records it has fetched but not yet handed to the agent (at a rebalance, when
    its flow stops, when a queue is cleared on resume) and relies on seeking back to the
    committed offset to read them again; in several of its paths the seek does not happen, or
    records fetched after it are dropped too, so the next record the agent sees is further on
    and Faust later commits past the ones it skipped. This keeps, per partition, the next
    offset the agent must see, starting from the group's committed offset (or the partition's
    first offset) when the partition is assigned here. :meth:`check` answers:

    - ``"process"``: the expected offset;
    - ``"skip"``: an offset already processed here (a re-delivery after a seek back), or one
      fetched before a seek back that is under way (after the jump that caused it);
    - ``"rewind"``: records are missing before this one: the caller seeks back to the
      expected offset and calls :meth:`sought`. If records after the jump still come
      ``reseek_after_s`` later, the seek was lost (Faust seeks too, at rebalances and
      recoveries) and the answer is ``"rewind"`` again;
    - ``"gap"``: after a seek back, the first record is after the expected one again (at or
      before the jump). The caller asks the broker which record comes first from the expected
      offset: if it is this one, nothing readable is in between (transaction markers) and
      :meth:`accept` makes it the expected offset; if not, records were dropped once more and
      the caller seeks back again.
    """

    def __init__(self, reseek_after_s: float = 5.0) -> None:
        self.reseek_after_s = reseek_after_s
        self._next: dict[Any, int] = {}
        self._done: dict[Any, int] = {}  # tp -> first offset not yet fully processed
        self._sought: dict[Any, tuple[float, int]] = {}  # tp -> (time of the seek, the jump)
        self._moved: dict[Any, float] = {}  # tp -> monotonic time it last moved (or started)

    def start(self, tp: Any, offset: int) -> None:
        """``tp`` was assigned here; its first record to process is at ``offset``."""
        self._next[tp] = offset
        self._done[tp] = offset
        self._sought.pop(tp, None)
        self._moved[tp] = time.monotonic()

    def forget(self, tp: Any) -> None:
        self._next.pop(tp, None)
        self._done.pop(tp, None)
        self._sought.pop(tp, None)
        self._moved.pop(tp, None)

    def expected(self, tp: Any) -> int | None:
        return self._next.get(tp)

    def finished(self, tps: Iterable[Any]) -> None:
        """Everything handed to :meth:`check` for ``tps`` so far is fully processed: its state
        written and what it produced acknowledged by the broker."""
        for tp in tps:
            if tp in self._next:
                self._done[tp] = self._next[tp]

    def committable(self, tp: Any) -> int | None:
        """The offset a commit may reach: the first one not fully processed."""
        return self._done.get(tp)

    def check(self, tp: Any, offset: int) -> str:
        want = self._next.get(tp)
        if want is None or offset == want:
            self._next[tp] = offset + 1
            self._sought.pop(tp, None)
            self._moved[tp] = time.monotonic()
            return "process"
        if offset < want:
            return "skip"
        sought = self._sought.get(tp)
        if sought is None:
            return "rewind"
        if offset <= sought[1]:
            return "gap"
        if time.monotonic() - sought[0] <= self.reseek_after_s:
            return "skip"  # fetched before the seek back: it comes again after the missing ones
        return "rewind"

    def accept(self, tp: Any, offset: int) -> None:
        """Nothing readable lies between the expected offset and ``offset``: expect it."""
        self._next[tp] = offset
        self._sought.pop(tp, None)

    def sought(self, tp: Any, jump: int) -> None:
        """The partition was sought back to the expected offset because ``jump`` came first."""
        before = self._sought.get(tp)
        self._sought[tp] = (time.monotonic(), max(jump, before[1] if before else jump))

    def quiet(self, for_s: float) -> dict[Any, int]:
        """Partitions that processed nothing for ``for_s`` seconds, with their next offset (the
        caller asks the broker whether records are waiting there)."""
        now = time.monotonic()
        return {tp: self._next[tp] for tp, moved in self._moved.items() if now - moved > for_s}

    def restart(self, tp: Any) -> None:
        """``tp`` was looked at (and maybe sought back): wait for it again from now."""
        self._moved[tp] = time.monotonic()


class _Offsets:
    """The group's committed offsets and partitions' first offsets, read from the broker
    (by a client of our own that never joins the group)."""

    def __init__(self, bootstrap: str, group: str, isolation: str = "read_uncommitted") -> None:
        self._conf = {"bootstrap.servers": bootstrap, "group.id": group}
        self._isolation = isolation  # the worker's own consumer's
        self._client: Any = None
        self._reader: Any = None

    @property
    def _consumer(self) -> Any:
        if self._client is None:
            from confluent_kafka import Consumer

            self._client = Consumer({**self._conf, "enable.auto.commit": False})
        return self._client

    def ends(self, tps: list[Any]) -> dict[Any, int]:
        from confluent_kafka import TopicPartition

        return {
            tp: self._consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=30
            )[1]
            for tp in tps
        }

    def first(self, tp: Any, offset: int, timeout_s: float = 10.0) -> int | None:
        """The offset of the first record a consumer reads from ``offset`` on (None if none
        came within ``timeout_s``)."""
        from confluent_kafka import Consumer, TopicPartition

        if self._reader is None:
            self._reader = Consumer(
                {
                    **self._conf,
                    "enable.auto.commit": False,
                    "isolation.level": self._isolation,
                    "enable.partition.eof": False,
                    "fetch.wait.max.ms": 20,
                }
            )
        self._reader.assign([TopicPartition(tp.topic, tp.partition, offset)])
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = self._reader.poll(0.5)
                if msg is not None and not msg.error():
                    return int(msg.offset())
            return None
        finally:
            self._reader.unassign()

    def starts(self, tps: list[Any]) -> dict[Any, int]:
        from confluent_kafka import TopicPartition

        committed = self._consumer.committed(
            [TopicPartition(tp.topic, tp.partition) for tp in tps], timeout=30
        )
        out = {}
        for tp, c in zip(tps, committed, strict=True):
            if c.offset >= 0:
                out[tp] = c.offset
            else:
                low, _ = self._consumer.get_watermark_offsets(c, timeout=30)
                out[tp] = low
        return out


_versions: dict[str, str] = {}


def _observe(o: Any) -> None:
    """Count what an output says (labels are outcomes, reason codes, rule ids, error classes)."""
    if o.decision is not None:
        d = o.decision
        if _versions.get("rules") != d.ruleset_version:
            _versions["rules"] = d.ruleset_version
            metrics.RULE_SET.info({"version": d.ruleset_version})
        if _versions.get("refdata") != d.refdata_version:
            _versions["refdata"] = d.refdata_version
            metrics.REFERENCE_DATA.info({"version": d.refdata_version})
        metrics.DECISIONS.labels(outcome=d.outcome.value).inc()
        for hit in d.hits:
            metrics.DECISION_REASONS.labels(reason=hit.reason_code).inc()
            metrics.RULE_HITS.labels(rule=hit.rule_id).inc()
        metrics.LATENCY_FROM_BROKER.observe(d.latency_ms / 1000)
        metrics.LATENCY_FROM_EVENT.observe(max(0.0, (d.decided_at - d.event_time).total_seconds()))
    elif o.spec is topics.UNMATCHED:
        metrics.UNMATCHED.inc()
    elif o.error_class is not None:
        metrics.DEAD_LETTERS.labels(error_class=o.error_class).inc()


def build_app(
    cfg: WorkerConfig,
    evaluate: Evaluator,
    ledger: Ledger | None = None,
    serializer: Serializer | None = None,
) -> tuple[faust.App, Processor]:
    """Build the Faust app and the processor it drives (``serializer``: the wire format of
    inputs and outputs; single-object encoding by default)."""
    app = faust.App(
        cfg.app_id,
        broker=f"kafka://{cfg.bootstrap}",
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

    def handle(spec: topics.TopicSpec, **kw: Any) -> Any:
        return app.topic(
            topics.topic_name(spec, cfg.prefix),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=cfg.partitions if spec.copartitioned else None,
            **kw,
        )

    names = {spec: topics.topic_name(spec, cfg.prefix) for spec in topics.ALL}
    out = {
        spec: handle(spec)
        for spec in (
            topics.DECISIONS,
            topics.DEAD_LETTERS,
            topics.UNMATCHED,
            topics.REPARTITION,
        )
    }
    inputs = app.topic(
        *(topics.topic_name(s, cfg.prefix) for s in (*topics.INPUTS, *topics.INTERNAL)),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=cfg.partitions,
    )
    table = app.Table(
        "shipments",
        partitions=cfg.partitions,
        key_type=bytes,
        value_type=bytes,
        # Faust opens one RocksDB per partition, by default each with 3 write buffers of 64 MB
        # and a 2 GB block cache: a worker holding a million waiting shipments grew past 1 GB.
        # Bounded here: at most about 24 MB of write buffers and a 16 MB cache per partition.
        options=dict(ROCKSDB_OPTIONS),
    )
    store = _TableStore(table)
    processor = Processor(
        evaluate, cfg.partitions, cfg.prefix, ledger=ledger, serializer=serializer
    )
    last_input = [time.monotonic()]
    assigned: list[frozenset[int]] = [frozenset()]
    input_names = {topics.topic_name(s, cfg.prefix) for s in topics.INPUTS}

    side = _SideProducer(cfg.bootstrap)
    trace = logging.getLogger("s321.records")
    exactly_once = cfg.processing_guarantee == "exactly_once"
    local = (topics.DECISIONS, topics.UNMATCHED, topics.DEAD_LETTERS)

    fed_by = [names[s] for s in (*topics.INPUTS, topics.REPARTITION)]
    continuity = Continuity()
    fetch_seen: dict[Any, tuple[int | None, float]] = {}  # tp -> (Faust's read offset, since)
    offsets = _Offsets(
        cfg.bootstrap,
        cfg.app_id,
        "read_committed" if cfg.processing_guarantee == "exactly_once" else "read_uncommitted",
    )
    expired_seen = [0]

    last_seen: dict[int, float] = {}  # partition -> wall time of its last input (or assignment)

    def _caught_up(partition: int) -> set[str]:
        """The partition's input topics whose every record this worker has processed (not
        just fetched)."""
        consumer = app.consumer
        done = set()
        for name in input_names:
            tp = faust.types.TP(name, partition)
            try:
                end = consumer.highwater(tp)
            except AssertionError:  # aiokafka's way of saying it is no longer assigned here
                continue
            if end is None:
                continue
            at = continuity.expected(tp)
            # one offset of slack: a transaction's commit marker ends a partition unread
            if end == 0 or (at is not None and at >= end - 1):
                done.add(name)
        return done

    @app.agent(inputs)
    async def correlate(stream: Any) -> None:
        try:
            await _correlate(stream)
        except Exception as exc:  # Faust would restart the agent or leave it dead, silently
            _stop_hard("the correlating agent failed: %s", f"{type(exc).__name__}: {exc}"[:300])

    async def _correlate(stream: Any) -> None:
        # records are handled in small batches so that waiting for the broker (forwards,
        # decisions acknowledged before the state recording them) is paid once per batch
        _own_logging(cfg.log_level)
        _cap_commits()
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(cfg.batch_size, within=cfg.batch_within_s):
            now_assigned = frozenset(tp.partition for tp in app.assignor.assigned_actives())
            if now_assigned != assigned[0]:
                for partition in now_assigned - assigned[0]:
                    last_seen[partition] = time.monotonic()
                for partition in assigned[0] - now_assigned:
                    for name in fed_by:
                        continuity.forget(faust.types.TP(name, partition))
                fresh = [
                    faust.types.TP(name, partition)
                    for partition in sorted(now_assigned - assigned[0])
                    for name in fed_by
                ]
                if fresh:
                    starts = await loop.run_in_executor(None, offsets.starts, fresh)
                    for tp, offset in starts.items():
                        continuity.start(tp, offset)
                assigned[0] = now_assigned
                metrics.REBALANCES.inc()
                processor.rebuild_deadlines(store, set(now_assigned), app.consumer_generation_id)
            staged = _Staged(store)
            last_of: dict[int, Any] = {}
            for event in events:
                msg = event.message
                if msg.topic in fed_by:
                    seen = continuity.check(msg.tp, msg.offset)
                    if seen == "skip":
                        if trace.isEnabledFor(logging.DEBUG):
                            trace.debug(
                                "skip %s/%d/%d (next to process: %s)",
                                msg.topic, msg.partition, msg.offset,
                                continuity.expected(msg.tp),
                            )  # fmt: skip
                        continue
                    if seen in ("rewind", "gap"):
                        want = continuity.expected(msg.tp)
                        assert want is not None  # a gap needs a known next offset
                        first = (
                            await loop.run_in_executor(None, offsets.first, msg.tp, want)
                            if seen == "gap"
                            else None
                        )
                        if first is not None and first >= msg.offset:
                            continuity.accept(msg.tp, msg.offset)  # e.g. transaction markers
                            continuity.check(msg.tp, msg.offset)
                        else:
                            logging.getLogger("s321.worker").warning(
                                "%s/%d: offsets %d to %d were not delivered; reading them again",
                                msg.topic, msg.partition, want, msg.offset - 1,
                            )  # fmt: skip
                            metrics.REWINDS.inc()
                            await _seek(msg.tp, want)
                            continuity.sought(msg.tp, msg.offset)
                            continue
                if msg.topic in input_names:
                    last_seen[msg.partition] = last_input[0] = time.monotonic()
                    metrics.INPUT_EVENTS.labels(topic=msg.topic[len(cfg.prefix) :]).inc()
                last_of[msg.partition] = event
                staged.partition = msg.partition
                if trace.isEnabledFor(logging.DEBUG):
                    trace.debug(
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
                    await emit(o, msg.partition)
            for o in processor.decide_pending(staged):
                await emit(o, o.partition)
            # durable before these inputs are acknowledged and before the state that records
            # them, so no offset commits ahead of what it handed on and a crash can repeat a
            # decision (same id) but never lose one
            await side.flush()
            staged.apply(last_of)
            if exactly_once:
                # Faust commits a transaction without flushing its buffer first: the changelog
                # records must be in this batch's transactions before its inputs are acked
                await app.producer.buffer.flush()
            continuity.finished({event.message.tp for event in events})
            # the deadline index, rebuilt after a rebalance a slice per batch: a worker taking
            # over a million waiting shipments decides again at once (their deadlines wait)
            processor.index_deadlines(cfg.index_slice_s)
            metrics.WAITING.set(processor.waiting)
            if processor.expired_total != expired_seen[0]:
                metrics.DEADLINE_EXPIRIES.inc(processor.expired_total - expired_seen[0])
                expired_seen[0] = processor.expired_total

    async def emit(o: Output, partition: int | None) -> None:
        """Send one output. Decisions, unmatched reports and dead letters stay in the partition
        of the shipment or record they are about (``partition``); the rest say their own."""
        if o.decision is not None and trace.isEnabledFor(logging.DEBUG):
            trace.debug(
                "decision %s v%d %s",
                o.decision.shipment_key,
                o.decision.version,
                o.decision.outcome.value,
            )
        if o.spec in local and exactly_once:
            # inside the transaction of the input's partition
            await out[o.spec].send(
                key=o.key, value=o.value, headers=list(o.headers), partition=partition
            )
            _observe(o)
        elif o.spec in local:
            # at least once, they go with the rest through the producer flushed at the end
            # of the batch (a C client: cheaper per record than Faust's)
            side.send(names[o.spec], o.key, o.value, o.headers, partition)
            _observe(o)
        else:
            side.send(names[o.spec], o.key, o.value, o.headers, o.partition)

    async def _seek(tp: Any, offset: int) -> None:
        """Read ``tp`` again from ``offset``.

        The seek runs in the consumer's own thread (as Faust's recovery does): a seek from the
        event loop's thread races the fetcher, which then crashes or stops waking up. The
        records it fetches are all handed on (see :class:`_HandedOn`)."""
        from aiokafka import TopicPartition

        await app.consumer.seek_wait({TopicPartition(tp.topic, tp.partition): offset})

    def _cap_commits() -> None:
        """Faust commits the end of the first run of acknowledged offsets. It acknowledges the
        records the agent skipped, and a whole batch when the agent stops in the middle of it
        (at shutdown), so from here on a commit never passes the first offset whose
        processing is not finished: a worker stopped mid-batch leaves those records to be
        processed again."""
        consumer = app.consumer
        if getattr(consumer, "_s321_capped", False):
            return
        new_offset = consumer._new_offset  # type: ignore[attr-defined]  # no public hook

        def capped(tp: Any) -> int | None:
            offset: int | None = new_offset(tp)  # (forgets the acknowledgements it covers)
            done = continuity.committable(tp)
            if offset is None or done is None or offset <= done:
                return offset
            return done  # those after it are read, and acknowledged, again

        consumer._new_offset = capped  # type: ignore[attr-defined]
        consumer._s321_capped = True  # type: ignore[attr-defined]

    async def _unstall() -> None:
        """A partition with records waiting and none delivered for ``stall_after_s`` (Faust left
        it paused, or dropped its records with nothing after them to show the gap) is resumed
        and read again from the next offset it must process."""
        consumer = app.consumer
        here = consumer.assignment()
        fetched = consumer._read_offset  # type: ignore[attr-defined]  # no public accessor
        now = time.monotonic()
        for tp in here:
            position = fetched.get(tp)
            if tp not in fetch_seen or fetch_seen[tp][0] != position:
                fetch_seen[tp] = (position, now)
        quiet = {}
        for tp, want in continuity.quiet(cfg.stall_after_s).items():
            # a partition whose records are still being fetched is only waiting in the queue
            if tp in here and now - fetch_seen[tp][1] > cfg.stall_after_s:
                quiet[tp] = want
        if not quiet:
            return
        ends = await asyncio.get_running_loop().run_in_executor(None, offsets.ends, list(quiet))
        for tp, want in quiet.items():
            if ends.get(tp, 0) > want + 1:  # one of slack: a transaction marker ends it unread
                logging.getLogger("s321.worker").warning(
                    "%s/%d: nothing delivered for %.0f s while offsets %d to %d wait; "
                    "reading them again", tp.topic, tp.partition, cfg.stall_after_s, want,
                    ends[tp] - 1,
                )  # fmt: skip
                metrics.REWINDS.inc()
                app.consumer.resume_partitions({tp})
                await _seek(tp, want)
            continuity.restart(tp)

    @app.timer(cfg.tick_interval_s)  # type: ignore[untyped-decorator]  # faust is untyped
    async def tick() -> None:
        """Tell every partition how far each input partition owned here has been read (see
        :mod:`s321.core.processor`, event time). An idle one proposes the newest event time seen
        here, moved on by ``idle_speedup`` × the wall time since the last input."""
        remaining = app.tables.recovery.active_remaining_total()  # type: ignore[attr-defined]  # on the concrete TableManager
        metrics.RECOVERY_REMAINING.labels(table="shipments").set(remaining)
        metrics.RECOVERY_PROGRESS.labels(table="shipments").set(1.0 if remaining == 0 else 0.0)
        # during a rebalance the agent's view and the consumer's may differ: mark only what both
        # say is owned here (a mark is sent again within a second anyway)
        owned = assigned[0] & {tp.partition for tp in app.assignor.assigned_actives()}
        if not owned:
            return
        try:
            await _unstall()
        except Exception:  # e.g. the partition was revoked meanwhile; the next tick looks again
            logging.getLogger("s321.worker").warning("stall check failed", exc_info=True)
        try:
            newest = max((*processor.watermarks.values(), *processor.read_ms.values(), 0))
            quiet = time.monotonic() - last_input[0]
            if quiet > cfg.idle_after_s:
                newest += int(quiet * cfg.idle_speedup * 1000)
            for source in sorted(owned):
                # idle: every record in its input topics read, and none came for idle_after_s
                # (since the last one, or since it was assigned here)
                caught_up = _caught_up(source)
                since = time.monotonic() - last_seen.get(source, time.monotonic())
                idle = since > cfg.idle_after_s and caught_up == input_names
                marks = processor.marks(
                    source, newest if idle else None, app.consumer_generation_id, caught_up
                )
                for o in marks:
                    side.send(names[o.spec], o.key, o.value, o.headers, o.partition)
            side.poll()
        except Exception:  # a timer that raises stops the worker; the next tick tries again
            logging.getLogger("s321.worker").warning("marks not sent this tick", exc_info=True)

    async def _flush_side(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        await side.flush()

    async def _revoked(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Faust lets go of a revoked partition's RocksDB and may open it again at once; an
        # unfinished read of the table must not keep the old handle open meanwhile
        processor.pause_indexing()

    if not app.conf.producer_threaded:  # the threaded producer keeps no such buffer
        flush_fully(app.producer.buffer)  # before it starts: see flush_fully
    consumer = app.consumer  # made here, before its fetcher starts and reads the mapping
    consumer._read_offset = _HandedOn(consumer._read_offset)  # type: ignore[attr-defined]
    app.on_before_shutdown.connect(_flush_side)  # type: ignore[arg-type]  # the stub wants a positional-only sender
    app.on_partitions_revoked.connect(_revoked)  # type: ignore[arg-type]  # as above

    return app, processor
