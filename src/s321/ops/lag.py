"""Consumer lag, read from the broker alone: how far behind a consumer group is, in records and
in seconds.

For every partition of the topics asked about, :class:`LagProbe` reports

``committed``
    the group's committed offset (the next record it will process), or ``None`` when the group
    has never committed on that partition;
``end``
    the log-end offset (high watermark): the offset the next produced record will get;
``lag``
    ``end - committed``, the number of records still to process (as Kafka's own consumer-group
    tool computes it). With no commit the group starts from the earliest retained record (s321
    resets to earliest), so the lag is ``end - earliest``;
``time_lag_s``
    the age of the oldest unprocessed record: now minus the broker timestamp of the record at
    the committed offset (or at the earliest retained offset when there is no commit, or when
    retention has already deleted the committed one). 0 when the group is caught up.

Offset lag says how much work is queued; time lag says how stale the decisions are. A lag of
10 000 records may be two seconds of work on a busy partition, while a lag of 3 records can
mean a shipment has been waiting an hour on a quiet one: operators alert on time lag.

Only the admin API and a consumer that is assigned partitions (never subscribed) and never
commits are used, with a group id of its own, so measuring never disturbs the measured group
and works while every worker is down.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import OffsetSpec as _OffsetSpec  # type: ignore[attr-defined]  # unlisted

from s321.errors import ConfigError, S321Error
from s321.kafka_config import ClientReport, KafkaClientConfig, cluster_metadata, confluent
from s321.topics import INPUTS, TopicSpec, topic_name

__all__ = [
    "LagError",
    "LagProbe",
    "LagReport",
    "PartitionLag",
    "format_table",
    "input_topics",
    "measure_lag",
]


class LagError(S321Error):
    """The broker could not be asked for the lag figures (unreachable, or it timed out)."""

    retriable = True


@dataclass(frozen=True)
class PartitionLag:
    """The lag figures of one topic partition for one consumer group."""

    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    time_lag_s: float
    #: Broker timestamp (ms) of the oldest unprocessed record, ``None`` when caught up.
    oldest_unprocessed_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``s321 lag --json`` prints for one partition."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
            "time_lag_s": self.time_lag_s,
        }


@dataclass(frozen=True)
class LagReport:
    """One measurement of a group's lag over all partitions of some topics, at one moment."""

    group: str
    #: Wall-clock time (seconds since the epoch) the time lags were computed against.
    taken_at: float
    partitions: tuple[PartitionLag, ...] = field(default_factory=tuple)

    @property
    def total_lag(self) -> int:
        """Records still to process over all partitions."""
        return sum(p.lag for p in self.partitions)

    @property
    def max_time_lag_s(self) -> float:
        """The age of the oldest unprocessed record anywhere: how stale the group is."""
        return max((p.time_lag_s for p in self.partitions), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``s321 lag --json`` prints."""
        return {
            "group": self.group,
            "taken_at": self.taken_at,
            "partitions": [p.to_dict() for p in self.partitions],
            "total_lag": self.total_lag,
            "max_time_lag_s": self.max_time_lag_s,
        }


def input_topics(prefix: str = "", specs: Iterable[TopicSpec] = INPUTS) -> list[str]:
    """The full names of the input topics (the registry's INPUTS) under a deployment prefix."""
    return [topic_name(spec, prefix) for spec in specs]


# The client's OffsetSpec factories carry no annotations; build the two specs once.
_EARLIEST: Any = _OffsetSpec.earliest()  # type: ignore[no-untyped-call]  # untyped library API
_LATEST: Any = _OffsetSpec.latest()  # type: ignore[no-untyped-call]  # untyped library API


def _result(future: Any, timeout_s: float, what: str) -> Any:
    try:
        return future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise LagError(f"{what}: {exc.args[0]}") from exc
    except TimeoutError as exc:
        raise LagError(f"{what}: no answer from the broker within {timeout_s:.0f}s") from exc


class LagProbe:
    """Measures consumer-group lag against one Kafka cluster; reusable for repeated readings.

    Holds an admin client and one non-committing consumer. Close it (or use it as a context
    manager) when done.
    """

    def __init__(
        self,
        kafka: KafkaClientConfig,
        *,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self._kafka = kafka
        self._report = ClientReport()
        common = confluent(kafka, self._report)
        self._admin = AdminClient(common)
        self._consumer = Consumer(
            {
                **common,
                # A group of its own that never joins (partitions are assigned, not
                # subscribed) and never commits: the measured group is never touched.
                "group.id": f"s321-lag-probe-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                # The record at the committed offset may sit in an open transaction; its age
                # counts all the same.
                "isolation.level": "read_uncommitted",
                "fetch.wait.max.ms": 100,
            }
        )

    def __enter__(self) -> LagProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the broker connections."""
        self._consumer.close()

    def measure(self, group: str, topics: Sequence[str]) -> LagReport:
        """The lag of ``group`` on every partition of ``topics``, in topic then partition order.

        Raises :class:`ConfigError` when a topic does not exist or the cluster refuses this
        client (authentication, TLS, security protocol), :class:`LagError` when the broker
        does not answer.
        """
        tps = self._partitions(topics)
        committed = self._committed(group, tps)
        earliest = self._offsets(tps, _EARLIEST, "earliest offsets")
        latest = self._offsets(tps, _LATEST, "end offsets")
        # The oldest unprocessed record of each lagging partition is where the group resumes.
        starts: dict[tuple[str, int], int] = {}
        for key in tps:
            start = committed.get(key)
            start = earliest[key] if start is None else max(start, earliest[key])
            if start < latest[key]:
                starts[key] = start
        stamps = self._timestamps(starts)
        now = self._clock()
        rows = []
        for key in tps:
            done = committed.get(key)
            end = latest[key]
            lag = max(0, end - (earliest[key] if done is None else done))
            ts = stamps.get(key)
            age = 0.0 if ts is None else max(0.0, now - ts / 1000.0)
            rows.append(PartitionLag(key[0], key[1], done, end, lag, age, ts))
        return LagReport(group=group, taken_at=now, partitions=tuple(rows))

    def _partitions(self, topics: Sequence[str]) -> list[tuple[str, int]]:
        try:
            meta = cluster_metadata(self._admin, self._kafka, self._report, self.timeout_s)
        except KafkaException as exc:
            raise LagError(f"listing topics: {exc.args[0]}") from exc
        out: list[tuple[str, int]] = []
        for topic in topics:
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error is not None:
                raise ConfigError(
                    f"topic {topic!r} does not exist on the broker "
                    "(check S321_TOPIC_PREFIX, or pass --topic)"
                )
            out.extend((topic, p) for p in sorted(tmeta.partitions))
        return out

    def _committed(self, group: str, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        from confluent_kafka import ConsumerGroupTopicPartitions

        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in tps])
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout_s)
        answer = _result(futures[group], self.timeout_s, f"committed offsets of group {group!r}")
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in answer.topic_partitions
            if tp.offset != OFFSET_INVALID and tp.offset >= 0
        }

    def _offsets(
        self, tps: list[tuple[str, int]], spec: Any, what: str
    ) -> dict[tuple[str, int], int]:
        if not tps:
            return {}
        futures = self._admin.list_offsets(
            {TopicPartition(t, p): spec for t, p in tps},
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=self.timeout_s,
        )
        return {
            (tp.topic, tp.partition): _result(fut, self.timeout_s, what).offset
            for tp, fut in futures.items()
        }

    def _timestamps(self, starts: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Broker timestamp (ms) of the first record at or after each start offset."""
        if not starts:
            return {}
        assigned = [TopicPartition(t, p, o) for (t, p), o in starts.items()]
        self._consumer.assign(assigned)
        found: dict[tuple[str, int], int] = {}
        pending = set(starts)
        deadline = time.monotonic() + self.timeout_s
        try:
            while pending and time.monotonic() < deadline:
                for msg in self._consumer.consume(num_messages=500, timeout=0.2):
                    key = (msg.topic(), msg.partition())
                    if key not in pending:
                        continue
                    err = msg.error()
                    if err is not None and err.code() == KafkaError._PARTITION_EOF:
                        # Only transaction markers or deleted records were left: caught up.
                        pending.discard(key)
                    elif err is None:
                        found[key] = msg.timestamp()[1]
                        pending.discard(key)
                        self._consumer.pause([TopicPartition(key[0], key[1])])
        finally:
            # A pause outlives unassign(): lift it, or the next reading would never fetch.
            self._consumer.resume(assigned)
            self._consumer.unassign()
        if pending:
            names = ", ".join(f"{t}[{p}]" for t, p in sorted(pending))
            raise LagError(f"could not read the oldest unprocessed record of {names}")
        return found


def measure_lag(
    kafka: KafkaClientConfig,
    group: str,
    topics: Sequence[str],
    *,
    timeout_s: float = 10.0,
    clock: Callable[[], float] = time.time,
) -> LagReport:
    """One-off :meth:`LagProbe.measure` with a probe of its own."""
    with LagProbe(kafka, timeout_s=timeout_s, clock=clock) as probe:
        return probe.measure(group, topics)


def format_table(report: LagReport) -> str:
    """The report as the fixed-width table ``s321 lag`` prints, with a totals line.

    A partition with no commit shows ``-`` as committed offset (its lag counts from the
    earliest retained record). The totals line sums the lag and gives the largest time lag.
    """
    head = ("topic", "partition", "committed", "end", "lag", "time_lag_s")
    rows = [
        (
            p.topic,
            str(p.partition),
            "-" if p.committed is None else str(p.committed),
            str(p.end),
            str(p.lag),
            f"{p.time_lag_s:.3f}",
        )
        for p in report.partitions
    ]
    total = ("total", "", "", str(sum(p.end for p in report.partitions)),
             str(report.total_lag), f"{report.max_time_lag_s:.3f}")  # fmt: skip
    widths = [max(len(r[i]) for r in (head, *rows, total)) for i in range(len(head))]

    def line(cols: tuple[str, ...]) -> str:
        left = cols[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cols[1:], widths[1:], strict=True))
        return f"{left}  {rest}".rstrip()

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(report.taken_at))
    out = [f"group {report.group} at {stamp}", line(head)]
    out += [line(r) for r in rows]
    out.append(line(total) + "  (max)")
    return "\n".join(out)
