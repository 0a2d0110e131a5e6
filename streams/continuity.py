"""Offset continuity: the agent processes every offset of its input partitions once, in
order, and Faust commits none whose batch is not finished.

:class:`Continuity` keeps the expected offsets, :class:`_Offsets` asks the broker, and
:class:`OffsetGuard` acts on Faust's consumer: it starts and forgets partitions as they are
assigned, seeks back over records Faust dropped, reads stalled partitions again and caps
Faust's commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from faust.types import TP

from s321 import metrics
from s321.kafka_config import KafkaClientConfig, confluent

from .internals import cap_commits, fetch_position, hand_on_every_record, highwater

__all__ = ["Continuity", "OffsetGuard"]

_log = logging.getLogger("s321.worker")
_trace = logging.getLogger("s321.records")


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

    def cap(self, tp: Any, offset: int | None) -> int | None:
        """The offset a commit of ``tp`` reaches when Faust would commit ``offset``.

        Faust commits the end of the first run of acknowledged offsets. It acknowledges the
        records the agent skipped, and a whole batch when the agent stops in the middle of it
        (at shutdown), so a commit never passes :meth:`committable`: a worker stopped mid-batch
        leaves those records to be processed (and acknowledged) again.

        A partition not started here commits nothing: the agent starts every partition it is
        assigned before it processes a record of the batch that shows it the assignment, so
        records Faust acknowledged for one not started (a worker stopped while it was still
        asking the broker where to start) were never processed."""
        done = self.committable(tp)
        if offset is None or done is None:
            return None
        return min(offset, done)

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

    def __init__(
        self, kafka: KafkaClientConfig, group: str, isolation: str = "read_uncommitted"
    ) -> None:
        self._conf = {**confluent(kafka), "group.id": group}
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


class OffsetGuard:
    """Makes Faust's consumer deliver every offset of the agent's input partitions and keeps
    its commits behind what is finished.

    ``fed_by`` are the topics whose offsets are checked (the inputs and the repartition
    topic), ``inputs`` the input topics alone (a partition is caught up when it has
    processed all of theirs). :attr:`partitions` are those the agent processes, as of its last
    batch."""

    def __init__(
        self,
        app: Any,
        fed_by: list[str],
        inputs: set[str],
        offsets: _Offsets,
        stall_after_s: float,
    ) -> None:
        self.app = app
        self.fed_by = fed_by
        self.inputs = inputs
        self.offsets = offsets
        self.stall_after_s = stall_after_s
        self.continuity = Continuity()
        self.partitions: frozenset[int] = frozenset()
        self._fetch_seen: dict[Any, tuple[int | None, float]] = {}  # tp -> (read offset, since)

    def hand_on_every_record(self) -> None:
        """Faust hands every record it fetches to the agent (see
        :func:`~.internals.hand_on_every_record`); the continuity check skips repeats. Before
        the consumer's fetcher starts."""
        hand_on_every_record(self.app.consumer)

    def cap_commits(self) -> None:
        """From now on Faust's commits never pass :meth:`Continuity.committable`."""
        cap_commits(self.app.consumer, self.continuity.cap)

    async def reassign(self, partitions: frozenset[int]) -> None:
        """The agent processes ``partitions`` from now on: those it lost are forgotten, those
        it gained start at the group's committed offset (or their first offset)."""
        for partition in self.partitions - partitions:
            for name in self.fed_by:
                self.continuity.forget(TP(name, partition))
        fresh = [
            TP(name, partition)
            for partition in sorted(partitions - self.partitions)
            for name in self.fed_by
        ]
        if fresh:
            loop = asyncio.get_running_loop()
            starts = await loop.run_in_executor(None, self.offsets.starts, fresh)
            for tp, offset in starts.items():
                self.continuity.start(tp, offset)
        self.partitions = partitions

    async def admit(self, msg: Any) -> bool:
        """Whether the agent processes ``msg`` (a Faust message) now. Not when it was already
        processed, nor when records before it are missing: the partition is then read again
        from the first missing one (unless the broker shows nothing readable is missing)."""
        if msg.topic not in self.fed_by:
            return True
        continuity = self.continuity
        seen = continuity.check(msg.tp, msg.offset)
        if seen == "skip":
            if _trace.isEnabledFor(logging.DEBUG):
                _trace.debug(
                    "skip %s/%d/%d (next to process: %s)",
                    msg.topic, msg.partition, msg.offset, continuity.expected(msg.tp),
                )  # fmt: skip
            return False
        if seen in ("rewind", "gap"):
            want = continuity.expected(msg.tp)
            assert want is not None  # a gap needs a known next offset
            first = (
                await asyncio.get_running_loop().run_in_executor(
                    None, self.offsets.first, msg.tp, want
                )
                if seen == "gap"
                else None
            )
            if first is not None and first >= msg.offset:
                continuity.accept(msg.tp, msg.offset)  # e.g. transaction markers
                continuity.check(msg.tp, msg.offset)
            else:
                _log.warning(
                    "%s/%d: offsets %d to %d were not delivered; reading them again",
                    msg.topic, msg.partition, want, msg.offset - 1,
                )  # fmt: skip
                metrics.REWINDS.inc()
                await self._seek(msg.tp, want)
                continuity.sought(msg.tp, msg.offset)
                return False
        return True

    def finished(self, tps: Iterable[Any]) -> None:
        """Everything the agent was handed of ``tps`` is durable: commits may reach it."""
        self.continuity.finished(tps)

    def caught_up(self, partition: int) -> set[str]:
        """The partition's input topics whose every record this worker has processed (not
        just fetched)."""
        consumer = self.app.consumer
        done = set()
        for name in self.inputs:
            tp = TP(name, partition)
            end = highwater(consumer, tp)
            if end is None:
                continue
            at = self.continuity.expected(tp)
            # one offset of slack: a transaction's commit marker ends a partition unread
            if end == 0 or (at is not None and at >= end - 1):
                done.add(name)
        return done

    async def unstall(self) -> None:
        """A partition with records waiting and none delivered for ``stall_after_s`` (Faust left
        it paused, or dropped its records with nothing after them to show the gap) is resumed
        and read again from the next offset it must process."""
        consumer = self.app.consumer
        here = consumer.assignment()
        now = time.monotonic()
        for tp in here:
            position = fetch_position(consumer, tp)
            if tp not in self._fetch_seen or self._fetch_seen[tp][0] != position:
                self._fetch_seen[tp] = (position, now)
        quiet = {}
        for tp, want in self.continuity.quiet(self.stall_after_s).items():
            # a partition whose records are still being fetched is only waiting in the queue
            if tp in here and now - self._fetch_seen[tp][1] > self.stall_after_s:
                quiet[tp] = want
        if not quiet:
            return
        loop = asyncio.get_running_loop()
        ends = await loop.run_in_executor(None, self.offsets.ends, list(quiet))
        for tp, want in quiet.items():
            if ends.get(tp, 0) > want + 1:  # one of slack: a transaction marker ends it unread
                _log.warning(
                    "%s/%d: nothing delivered for %.0f s while offsets %d to %d wait; "
                    "reading them again", tp.topic, tp.partition, self.stall_after_s, want,
                    ends[tp] - 1,
                )  # fmt: skip
                metrics.REWINDS.inc()
                consumer.resume_partitions({tp})
                await self._seek(tp, want)
            self.continuity.restart(tp)

    async def _seek(self, tp: Any, offset: int) -> None:
        """Read ``tp`` again from ``offset``.

        The seek runs in the consumer's own thread (as Faust's recovery does): a seek from the
        event loop's thread races the fetcher, which then crashes or stops waking up. The
        records it fetches are all handed on (see :meth:`hand_on_every_record`)."""
        from aiokafka import TopicPartition

        await self.app.consumer.seek_wait({TopicPartition(tp.topic, tp.partition): offset})
