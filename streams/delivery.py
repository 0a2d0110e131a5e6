"""Output delivery: where each of the processor's outputs goes, the producer that sends those
leaving Faust, and the metrics an output moves."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from s321 import metrics, topics
from s321.core.processor import Output
from s321.kafka_config import KafkaClientConfig, confluent

from .internals import stop_hard

__all__ = ["Delivery"]

_trace = logging.getLogger("s321.records")

#: outputs about the record or shipment at hand, kept in its partition
_LOCAL = (topics.DECISIONS, topics.UNMATCHED, topics.DEAD_LETTERS)


class _SideProducer:
    """Records sent outside Faust: those that leave the input's partition (re-keyed inputs,
    marks, re-evaluations) and, at least once, decisions, unmatched reports and dead letters.

    Faust's exactly-once transactions are per partition, named after the partition a record is
    sent to; a record for a partition this worker does not own cannot join the input's
    transaction. These records are safe to repeat (events are deduplicated by id, marks only
    move time forward, a repeated decision has the same id), so they go through an idempotent
    producer of their own, flushed before the input that caused them is acknowledged.
    """

    def __init__(self, kafka: KafkaClientConfig) -> None:
        self._kafka = kafka
        self._failed: list[str] = []
        self._made: Any = None
        self._acked: dict[tuple[str, int], int] = {}  # changelog partition -> newest offset

    @property
    def _producer(self) -> Any:
        """Made on first use, so a worker that never forwards never connects it."""
        if self._made is None:
            from confluent_kafka import Producer

            self._made = Producer(
                {
                    **confluent(self._kafka),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 2,
                }
            )
        return self._made

    def _on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._failed.append(f"{msg.topic()}: {err}")

    def _on_changelog_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._on_delivery(err, msg)
            return
        tp = (msg.topic(), msg.partition())
        self._acked[tp] = max(msg.offset(), self._acked.get(tp, -1))

    def send_changelog(self, topic: str, key: bytes, value: bytes | None, partition: int) -> None:
        """Send a record of the table's changelog (``None``: a tombstone); its offset is
        reported by :meth:`changelog_acked` once the broker acknowledged it."""
        self._producer.produce(
            topic, value=value, key=key, partition=partition,
            on_delivery=self._on_changelog_delivery,
        )  # fmt: skip

    def changelog_acked(self) -> dict[tuple[str, int], int]:
        """The newest offset acknowledged per changelog partition since the last call."""
        acked, self._acked = self._acked, {}
        return acked

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
        """Return once the broker has acknowledged every record sent; if one was lost, stop
        the process at once."""
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
            stop_hard(70)


class Delivery:
    """Sends the processor's outputs.

    Outputs leaving the input's partition (forwards, marks, re-evaluations) always go through
    the side producer. Decisions, unmatched reports and dead letters stay in the partition of
    what they are about: exactly once, inside the input partition's transaction (Faust's
    producer); at least once, through the side producer too, flushed at the end of the batch
    (a C client: cheaper per record than Faust's).
    """

    def __init__(
        self,
        side: _SideProducer,
        out: dict[topics.TopicSpec, Any],
        names: dict[topics.TopicSpec, str],
        exactly_once: bool,
    ) -> None:
        self.side = side
        self._out = out  # Faust's topic handles
        self._names = names
        self._exactly_once = exactly_once

    async def emit(self, o: Output, partition: int | None) -> None:
        """Send one output. Decisions, unmatched reports and dead letters stay in the partition
        of the shipment or record they are about (``partition``); the rest say their own."""
        if o.decision is not None and _trace.isEnabledFor(logging.DEBUG):
            _trace.debug(
                "decision %s v%d %s",
                o.decision.shipment_key,
                o.decision.version,
                o.decision.outcome.value,
            )
        if o.spec in _LOCAL and self._exactly_once:
            await self._out[o.spec].send(
                key=o.key, value=o.value, headers=list(o.headers), partition=partition
            )
            _observe(o)
        elif o.spec in _LOCAL:
            self.side.send(self._names[o.spec], o.key, o.value, o.headers, partition)
            _observe(o)
        else:
            self.send(o)

    def send(self, o: Output) -> None:
        """Send ``o`` through the side producer, to the partition it names."""
        self.side.send(self._names[o.spec], o.key, o.value, o.headers, o.partition)


_versions: dict[str, str] = {}  # the rule set and reference data last reported


def _observe(o: Output) -> None:
    """Count what an output says (labels are outcomes, reason codes, rule ids, error classes)."""
    if o.decision is not None:
        d = o.decision
        if _versions.get("rules") != d.ruleset_version:
            _versions["rules"] = d.ruleset_version
            metrics.RULE_SET.info({"version": d.ruleset_version})
        if _versions.get("refdata") != d.refdata_version:
            _versions["refdata"] = d.refdata_version
            metrics.REFERENCE_DATA.info({"version": d.refdata_version})
        metrics.counted(metrics.DECISIONS, d.outcome.value).inc()
        for hit in d.hits:
            metrics.counted(metrics.DECISION_REASONS, hit.reason_code).inc()
            metrics.counted(metrics.RULE_HITS, hit.rule_id).inc()
        metrics.LATENCY_FROM_BROKER.observe(d.latency_ms / 1000)
        metrics.LATENCY_FROM_EVENT.observe(max(0.0, (d.decided_at - d.event_time).total_seconds()))
    elif o.spec is topics.UNMATCHED:
        metrics.UNMATCHED.inc()
    elif o.error_class is not None:
        metrics.counted(metrics.DEAD_LETTERS, o.error_class).inc()
