"""Shipment-status lookup: ``GET /shipments/{key}`` answered from a view of the decisions topic.

Every worker keeps a :class:`DecisionView`: a consumer of its own (no consumer group, every
partition of ``s321.decisions.v1`` assigned from the beginning, read_committed) that indexes
each shipment's newest decision versions, and a :class:`StatusServer` that answers lookups
from it. The decisions topic is the source of truth and every view reads all of it, so any
worker answers a lookup the same way, whichever partitions its consumer group gave it; a
worker's answer trails the topic by the view's poll interval (milliseconds when idle).

Endpoints (described in ``deploy/openapi.yaml``):

``GET /shipments/{key}``
    200: the newest decision and its version history (oldest first), each with outcome,
    reasons (rule id and version, reason code, severity, description, evidence), required
    actions, decision id, decision and event times, rule-set, regime and reference-data
    versions. Evidence and every other value go through :func:`s321.ops.explain.masked`, as
    ``s321 explain`` shows them. ``key`` is a bill or tracking number as written (``1z-999
    aa1``) or its shipment key (``1Z999AA1``); 400 when it cannot be one
    (:func:`s321.validation.is_shipment_key` of :func:`s321.models.normalise_bill`, at most
    50 characters); 404 when no decision names it and the view has caught up; 503 (with
    ``Retry-After``) while the view is still reading the topic up to where it stood at start.
``GET /shipments-view``
    the view's state: 200 once it has read every partition up to its end offset at start
    (``ready``), 503 before; how many shipments and decisions it holds, and how many values it
    could not read.

Memory: per shipment the view keeps the encoded values of its newest :data:`KEEP_VERSIONS`
versions (decoded per request), about 0.5 to 1 KB per shipment with one or two versions;
the decisions topic's retention bounds how many shipments that is.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from s321 import serialization, topics
from s321.kafka_config import KafkaClientConfig, confluent
from s321.models import Decision, normalise_bill
from s321.ops.explain import masked
from s321.validation import is_shipment_key

__all__ = [
    "KEEP_VERSIONS",
    "MAX_KEY_INPUT",
    "DecisionView",
    "StatusServer",
    "ViewState",
    "decision_summary",
    "parse_key",
    "serve_status",
]

log = logging.getLogger("s321.status")

#: Versions kept per shipment (the newest ones); older ones are counted, not kept.
KEEP_VERSIONS = 16
#: Longest bill or tracking number accepted as written (the input field's own bound).
MAX_KEY_INPUT = 50


def parse_key(raw: str) -> str | None:
    """The shipment key ``raw`` names (a bill or tracking number as written, or a key), or
    None when it cannot name one."""
    if len(raw) > MAX_KEY_INPUT:
        return None
    key = normalise_bill(raw)
    return key if key is not None and is_shipment_key(key) else None


def decision_summary(d: Decision) -> dict[str, Any]:
    """One decision version as the status endpoint shows it (personal data masked)."""
    return {
        "version": d.version,
        "decision_id": d.decision_id,
        "outcome": d.outcome.value,
        "decided_at": d.decided_at.isoformat(),
        "event_time": d.event_time.isoformat(),
        "reasons": [
            {
                "rule_id": h.rule_id,
                "rule_version": h.rule_version,
                "reason_code": h.reason_code,
                "severity": h.severity.value,
                "description": h.description,
                "evidence": masked(h.evidence),
            }
            for h in d.hits
        ],
        "required_actions": list(d.required_actions),
        "ruleset_version": d.ruleset_version,
        "regime_version": d.regime_version,
        "refdata_version": d.refdata_version,
        "stale_refdata": d.stale_refdata,
    }


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the view holds and whether it has caught up with the topic."""

    ready: bool
    shipments: int
    decisions: int
    unreadable: int

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "shipments": self.shipments,
            "decisions": self.decisions,
            "unreadable": self.unreadable,
        }


@dataclass(slots=True)
class _Entry:
    versions: list[tuple[int, bytes]]  # (version, encoded value), oldest first
    dropped: int = 0  # older versions no longer kept


class DecisionView:
    """Shipment key -> its newest decision versions, kept from the decisions topic.

    :meth:`add` indexes one value (the consumer thread calls it; tests may call it directly);
    :meth:`lookup` and :meth:`state` are safe from any thread. ``decode`` reads a value (the
    deployment's wire format); a value it refuses is counted and skipped, never fatal.
    """

    def __init__(
        self,
        decode: Callable[[bytes], Decision],
        keep: int = KEEP_VERSIONS,
    ) -> None:
        self._decode = decode
        self._keep = keep
        self._lock = threading.Lock()
        self._by_key: dict[str, _Entry] = {}
        self._decisions = 0
        self._unreadable = 0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- indexing ---------------------------------------------------------------------------

    def add(self, value: bytes | None) -> None:
        """Index one value of the decisions topic (a repeated version replaces its copy)."""
        if not value:
            return
        try:
            d = self._decode(value)
        except serialization.DecodeError:
            with self._lock:
                self._unreadable += 1
            return
        with self._lock:
            self._decisions += 1
            entry = self._by_key.get(d.shipment_key)
            if entry is None:
                self._by_key[d.shipment_key] = _Entry([(d.version, value)])
                return
            kept = [v for v in entry.versions if v[0] != d.version]
            kept.append((d.version, value))
            kept.sort(key=lambda v: v[0])
            if len(kept) > self._keep:
                entry.dropped += len(kept) - self._keep
                kept = kept[-self._keep :]
            entry.versions = kept

    def mark_ready(self) -> None:
        """Say the view has read the topic up to where it stood at start."""
        self._ready.set()

    # -- answering --------------------------------------------------------------------------

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The status document of shipment ``key`` (a shipment key), None if none is known."""
        with self._lock:
            entry = self._by_key.get(key)
            if entry is None:
                return None
            versions, dropped = list(entry.versions), entry.dropped
        history = [decision_summary(self._decode(raw)) for _, raw in versions]
        return {
            "shipment_key": key,
            "newest": history[-1],
            "history": history,
            "older_versions_not_kept": dropped,
        }

    def state(self) -> ViewState:
        with self._lock:
            return ViewState(
                self._ready.is_set(), len(self._by_key), self._decisions, self._unreadable
            )

    # -- the consumer -----------------------------------------------------------------------

    def start(self, kafka: KafkaClientConfig, prefix: str, poll_s: float = 0.2) -> DecisionView:
        """Read the decisions topic from the beginning, in a daemon thread, until :meth:`close`."""
        self._thread = threading.Thread(
            target=self._consume,
            args=(kafka, topics.topic_name(topics.DECISIONS, prefix), poll_s),
            name="s321-status-view",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _consume(self, kafka: KafkaClientConfig, topic: str, poll_s: float) -> None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer(
            {
                **confluent(kafka),
                "group.id": "s321-status-view",  # never subscribes or commits: assign only
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
            }
        )
        try:
            partitions = self._partitions(consumer, topic)
            ends = {}
            for p in partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                ends[p] = high
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            while not self._stop.is_set():
                for msg in consumer.consume(500, poll_s):
                    if msg.error() is None:
                        self.add(msg.value())
                if ends:
                    at = consumer.position([TopicPartition(topic, p) for p in ends])
                    for tp in at:
                        if tp.offset >= ends[tp.partition]:
                            ends.pop(tp.partition, None)
                if not ends and not self._ready.is_set():
                    self.mark_ready()
                    log.warning("shipment-status view ready: %s", self.state().as_json())
        except Exception:  # the view must never take the worker down with it
            log.exception("shipment-status view stopped; lookups answer from what it read")
        finally:
            consumer.close()

    def _partitions(self, consumer: Any, topic: str) -> list[int]:
        """The topic's partitions, waiting for it to exist (a worker creates it at start)."""
        while not self._stop.is_set():
            meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
            if meta is not None and meta.error is None and meta.partitions:
                return sorted(meta.partitions)
            self._stop.wait(1.0)
        return []


class StatusServer:
    """``GET /shipments/{key}`` and ``GET /shipments-view`` over HTTP, from ``view``."""

    def __init__(self, view: DecisionView, host: str = "127.0.0.1", port: int = 9322) -> None:
        self.view = view
        self._server = ThreadingHTTPServer((host, port), _handler(view))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="s321-status-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, then stop the view's consumer."""
        self._server.shutdown()
        self._server.server_close()
        self.view.close()


def _handler(view: DecisionView) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path == "/shipments-view":
                state = view.state()
                self._json(200 if state.ready else 503, state.as_json())
            elif path.startswith("/shipments/"):
                self._shipment(urllib.parse.unquote(path.removeprefix("/shipments/")))
            else:
                self._json(404, {"error": "no such resource"})

        def _shipment(self, raw: str) -> None:
            key = parse_key(raw)
            if key is None:
                self._json(
                    400,
                    {
                        "error": "not a shipment key: 1 to 35 letters and digits once spaces "
                        f"and . / _ - are removed, at most {MAX_KEY_INPUT} characters"
                    },
                )
                return
            found = view.lookup(key)
            if found is not None:
                self._json(200, found)
            elif view.state().ready:
                self._json(404, {"error": "no decision for this shipment", "shipment_key": key})
            else:
                self._json(
                    503,
                    {"error": "the view is still reading the decisions topic"},
                    {"Retry-After": "5"},
                )

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a request line names a shipment: not logged

    return _Handler


def serve_status(
    kafka: KafkaClientConfig,
    prefix: str,
    decode: Callable[[bytes], Decision],
    host: str,
    port: int,
) -> StatusServer:
    """Start a view of the decisions topic and serve it on ``host:port`` (both in daemon
    threads); raises OSError when the address is taken."""
    view = DecisionView(decode)
    server = StatusServer(view, host, port)  # bind first: a busy port starts no consumer
    view.start(kafka, prefix)
    return server.start()
