"""s321's Prometheus metrics: one registry, one ``/metrics`` endpoint per process.

Every metric lives in :data:`REGISTRY`; a process exposes it with :func:`serve_metrics`. Label
values come from small, fixed sets (topic base names, outcomes, reason codes, rule ids, error
class names, table names): never a shipment key, bill number or person.

Updated by the worker (``streams/``)
------------------------------------

========================  ================================================  ====================
object                    exported as                                       labels
========================  ================================================  ====================
``INPUT_EVENTS``          ``s321_input_events_total`` (counter):            ``topic`` (base name)
                          records read from an input topic
``DECISIONS``             ``s321_decisions_total`` (counter): decisions     ``outcome``
                          published (RELEASE / HOLD)
``DECISION_REASONS``      ``s321_decision_reasons_total`` (counter): reason ``reason``
                          codes cited by published decisions
``RULE_HITS``             ``s321_rule_hits_total`` (counter): rules that    ``rule``
                          fired
``DEAD_LETTERS``          ``s321_dead_letters_total`` (counter): records    ``error_class``
                          sent to the dead-letter topic
``UNMATCHED``             ``s321_unmatched_shipments_total`` (counter):     none
                          shipments published to the unmatched topic
``WAITING``               ``s321_shipments_waiting`` (gauge): shipments     none
                          held in the join table waiting for a partner
``DEADLINE_EXPIRIES``     ``s321_deadline_expiries_total`` (counter):       none
                          partner deadlines that ran out
``STATES_FORGOTTEN``      ``s321_states_forgotten_total`` (counter):        none
                          shipment states deleted, their retention over
``LATENCY_FROM_EVENT``    ``s321_decision_latency_from_event_seconds``      none
                          (histogram): decision time minus the event time
                          of the event that completed the shipment
``LATENCY_FROM_BROKER``   ``s321_decision_latency_from_broker_seconds``     none
                          (histogram): decision time minus the broker
                          timestamp of that event (s321's own delay)
``REBALANCES``            ``s321_rebalances_total`` (counter): consumer     none
                          group rebalances seen by this worker
``RECOVERY_REMAINING``    ``s321_table_recovery_remaining_records``         ``table``
                          (gauge): changelog records still to replay
``RECOVERY_PROGRESS``     ``s321_table_recovery_progress_ratio`` (gauge):   ``table``
                          0..1, 1 when the table is fully recovered
``RULE_SET``              ``s321_rule_set_info`` (info): the rule set in    ``version`` (value)
                          force, e.g. ``RULE_SET.info({"version": "v7"})``
``REFERENCE_DATA``        ``s321_reference_data_info`` (info): reference    ``version`` (value)
                          data in force
========================  ================================================  ====================

For example ``metrics.DECISIONS.labels(outcome="HOLD").inc()`` or
``metrics.LATENCY_FROM_BROKER.observe(seconds)``.

Updated by ``s321 lag --serve`` (from :mod:`s321.ops.lag`)
------------------------------------------------------

``LAG`` publishes a whole :class:`~s321.ops.lag.LagReport` at once (``LAG.publish(report)``), so a
scrape never sees half of one reading. Per ``group``, ``topic`` and ``partition``:
``s321_consumer_lag_records``, ``s321_consumer_lag_seconds`` (time lag: age of the oldest
unprocessed record), ``s321_consumer_committed_offset`` (absent when nothing is committed) and
``s321_log_end_offset``; plus ``s321_lag_last_success_timestamp_seconds`` and
``LAG_ERRORS`` = ``s321_lag_errors_total`` (readings that failed).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from s321.errors import S321Error
from s321.ops.lag import LagProbe, LagReport

__all__ = [
    "DEADLINE_EXPIRIES",
    "DEAD_LETTERS",
    "DECISIONS",
    "DECISION_REASONS",
    "INPUT_EVENTS",
    "LAG",
    "LAG_ERRORS",
    "LATENCY_FROM_BROKER",
    "LATENCY_FROM_EVENT",
    "REBALANCES",
    "RECOVERY_PROGRESS",
    "RECOVERY_REMAINING",
    "REFERENCE_DATA",
    "REGISTRY",
    "RULE_HITS",
    "RULE_SET",
    "STATES_FORGOTTEN",
    "UNMATCHED",
    "WAITING",
    "LagCollector",
    "counted",
    "export_lag",
    "exported_names",
    "serve_metrics",
]

# ``_created`` series double the number of series and no dashboard or alert reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped library API

#: The one registry every s321 metric is registered in.
REGISTRY = CollectorRegistry(auto_describe=True)

#: Seconds: from 5 ms (broker-to-decision on a quiet worker) to a day (event time of a
#: manifest filed long before its pilot record arrived).
_LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    900.0, 3600.0, 14400.0, 86400.0,
)  # fmt: skip

INPUT_EVENTS = Counter(
    "s321_input_events", "Records read from an input topic.", ["topic"], registry=REGISTRY
)
DECISIONS = Counter(
    "s321_decisions", "Release/hold decisions published, by outcome.", ["outcome"],
    registry=REGISTRY,
)  # fmt: skip
DECISION_REASONS = Counter(
    "s321_decision_reasons", "Reason codes cited by published decisions.", ["reason"],
    registry=REGISTRY,
)  # fmt: skip
RULE_HITS = Counter("s321_rule_hits", "Rules that fired, by rule id.", ["rule"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "s321_dead_letters", "Records sent to the dead-letter topic, by error class.",
    ["error_class"], registry=REGISTRY,
)  # fmt: skip
UNMATCHED = Counter(
    "s321_unmatched_shipments", "Shipments published as unmatched (partner never came).",
    registry=REGISTRY,
)  # fmt: skip
WAITING = Gauge(
    "s321_shipments_waiting", "Shipments in the join table waiting for a partner record.",
    registry=REGISTRY,
)  # fmt: skip
DEADLINE_EXPIRIES = Counter(
    "s321_deadline_expiries", "Partner deadlines that ran out.", registry=REGISTRY
)
STATES_FORGOTTEN = Counter(
    "s321_states_forgotten",
    "Shipment states deleted from the join table, their retention over.",
    registry=REGISTRY,
)
LATENCY_FROM_EVENT = Histogram(
    "s321_decision_latency_from_event_seconds",
    "Decision time minus the event time of the record that completed the shipment.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)  # fmt: skip
LATENCY_FROM_BROKER = Histogram(
    "s321_decision_latency_from_broker_seconds",
    "Decision time minus the broker timestamp of the record that completed the shipment.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY,
)  # fmt: skip
REBALANCES = Counter(
    "s321_rebalances", "Consumer-group rebalances this worker went through.", registry=REGISTRY
)
REWINDS = Counter(
    "s321_rewinds",
    "Times records of an input partition were missing before the one delivered, and were read "
    "again from the first missing offset.",
    registry=REGISTRY,
)
RECOVERY_REMAINING = Gauge(
    "s321_table_recovery_remaining_records",
    "Changelog records still to replay before a table is recovered.", ["table"],
    registry=REGISTRY,
)  # fmt: skip
RECOVERY_PROGRESS = Gauge(
    "s321_table_recovery_progress_ratio",
    "Table recovery progress, 0 to 1 (1 = recovered).", ["table"], registry=REGISTRY,
)  # fmt: skip
RULE_SET = Info("s321_rule_set", "The rule set in force.", registry=REGISTRY)
REFERENCE_DATA = Info("s321_reference_data", "The reference data in force.", registry=REGISTRY)
LAG_ERRORS = Counter(
    "s321_lag_errors", "Lag readings that failed (broker unreachable, topic missing).",
    registry=REGISTRY,
)  # fmt: skip

_LAG_LABELS = ["group", "topic", "partition"]


class LagCollector(Collector):
    """Exports the newest :class:`~s321.ops.lag.LagReport` as gauges, all from one snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._report: LagReport | None = None
        self._last_success: float | None = None

    def publish(self, report: LagReport) -> None:
        """Make ``report`` the reading every following scrape sees."""
        with self._lock:
            self._report = report
            self._last_success = report.taken_at

    def clear(self) -> None:
        """Forget the reading (for tests and for a process switching groups)."""
        with self._lock:
            self._report = None
            self._last_success = None

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "s321_consumer_lag_records",
                "Records the group still has to process (end minus committed offset).",
                labels=_LAG_LABELS,
            ),
            GaugeMetricFamily(
                "s321_consumer_lag_seconds",
                "Time lag: age of the oldest record the group has not processed (0 caught up).",
                labels=_LAG_LABELS,
            ),
            GaugeMetricFamily(
                "s321_consumer_committed_offset",
                "The group's committed offset (absent where nothing was committed).",
                labels=_LAG_LABELS,
            ),
            GaugeMetricFamily(
                "s321_log_end_offset", "The partition's log-end offset.", labels=_LAG_LABELS
            ),
            GaugeMetricFamily(
                "s321_lag_last_success_timestamp_seconds",
                "When the newest successful lag reading was taken (Unix time).",
                labels=["group"],
            ),
        ]

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            report, last = self._report, self._last_success
        records, seconds, committed, end, success = self._families()
        if report is not None and last is not None:
            for p in report.partitions:
                labels = [report.group, p.topic, str(p.partition)]
                records.add_metric(labels, p.lag)
                seconds.add_metric(labels, p.time_lag_s)
                end.add_metric(labels, p.end)
                if p.committed is not None:
                    committed.add_metric(labels, p.committed)
            success.add_metric([report.group], last)
        return [records, seconds, committed, end, success]


#: The lag figures ``s321 lag --serve`` exports.
LAG = LagCollector()
REGISTRY.register(LAG)


@functools.cache
def counted(metric: Counter, label: str) -> Counter:
    """``metric``'s child for ``label`` (its one label's value), looked up once: finding it
    costs about three times what counting does, and the worker counts several times per
    record."""
    return metric.labels(label)


def _sample_names(metric: Metric) -> Iterator[str]:
    if metric.type == "counter":
        yield f"{metric.name}_total"
    elif metric.type == "histogram":
        yield from (f"{metric.name}_bucket", f"{metric.name}_count", f"{metric.name}_sum")
    elif metric.type == "summary":
        yield from (metric.name, f"{metric.name}_count", f"{metric.name}_sum")
    elif metric.type == "info":
        yield f"{metric.name}_info"
    else:
        yield metric.name


def exported_names(registry: CollectorRegistry = REGISTRY) -> frozenset[str]:
    """Every series name the registry can export, with its ``_total``/``_bucket``/... suffix.

    Every family is collected even before it has samples, so labelled metrics that were
    never incremented count too.
    """
    return frozenset(name for family in registry.collect() for name in _sample_names(family))


def serve_metrics(
    port: int,
    host: str = "127.0.0.1",
    registry: CollectorRegistry = REGISTRY,
) -> WSGIServer:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread.

    Binds loopback unless ``host`` says otherwise (``0.0.0.0``: every interface, for a
    Prometheus on another host). ``port=0`` picks a free port: read it back from
    ``server.server_port``. ``server.shutdown()`` stops it.
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def export_lag(
    probe: LagProbe,
    group: str,
    topics: Sequence[str],
    interval_s: float,
    stop: threading.Event,
    on_reading: Callable[[LagReport | None, Exception | None], None] | None = None,
) -> None:
    """Measure the group's lag every ``interval_s`` seconds into :data:`LAG` until ``stop``.

    A failed reading (broker away, topic missing) counts in ``s321_lag_errors_total`` and
    leaves the previous figures in place, so ``s321_lag_last_success_timestamp_seconds``
    shows how old they are; the loop keeps trying. ``on_reading`` sees each outcome.
    """
    while not stop.is_set():
        try:
            report = probe.measure(group, topics)
        except S321Error as exc:
            LAG_ERRORS.inc()
            if on_reading is not None:
                on_reading(None, exc)
        else:
            LAG.publish(report)
            if on_reading is not None:
                on_reading(report, None)
        stop.wait(interval_s)
