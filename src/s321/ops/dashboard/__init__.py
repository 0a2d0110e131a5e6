"""A live lag dashboard: one self-contained page and the JSON it draws from.

``s321 dashboard --port P`` serves

``/``
    a page with inline script and styles only (no CDN, no external service) that charts, per
    partition, offset lag and time lag, plus throughput, decisions by outcome, waiting
    shipments and dead letters, redrawing as new readings arrive;
``/api/state``
    the newest reading as JSON: the lag figures of :mod:`s321.ops.lag` for the group (the same
    objects ``s321 lag --json`` prints), rates derived from successive readings, and totals
    scraped from each worker ``/metrics`` URL given with ``--metrics-url``.

A background sampler takes a reading every ``interval_s`` seconds; page requests only read
the newest one, so any number of viewers costs the broker nothing extra.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from s321.errors import S321Error
from s321.kafka_config import KafkaClientConfig
from s321.ops.lag import LagProbe, LagReport

__all__ = ["Dashboard", "WorkerTotals", "scrape_worker"]

#: The worker series the page shows, and the label each is broken down by ("" = summed).
_WORKER_SERIES = {
    "s321_input_events_total": "topic",
    "s321_decisions_total": "outcome",
    "s321_dead_letters_total": "error_class",
    "s321_shipments_waiting": "",
    "s321_unmatched_shipments_total": "",
}


@dataclass
class WorkerTotals:
    """Worker metrics summed over every scraped URL, broken down as the page shows them."""

    by_series: dict[str, dict[str, float]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: dict[str, dict[str, float]]) -> None:
        for name, parts in other.items():
            mine = self.by_series.setdefault(name, {})
            for key, value in parts.items():
                mine[key] = mine.get(key, 0.0) + value

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "input_events": self.by_series.get("s321_input_events_total", {}),
            "decisions": self.by_series.get("s321_decisions_total", {}),
            "dead_letters": self.by_series.get("s321_dead_letters_total", {}),
            "waiting": sum(self.by_series.get("s321_shipments_waiting", {}).values()),
            "unmatched": sum(self.by_series.get("s321_unmatched_shipments_total", {}).values()),
        }


def scrape_worker(url: str, timeout_s: float = 5.0) -> dict[str, dict[str, float]]:
    """The page's worker series from one ``/metrics`` URL: ``{series: {label value: sum}}``."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310  # operator's URL
        text = resp.read().decode("utf-8", "replace")
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = _WORKER_SERIES.get(sample.name)
            if label is None:
                continue
            key = sample.labels.get(label, "") if label else ""
            parts = out.setdefault(sample.name, {})
            parts[key] = parts.get(key, 0.0) + sample.value
    return out


def _rate(now: float, before: float | None, then: float | None, since: float | None) -> Any:
    if before is None or then is None or since is None or now <= since:
        return None
    return max(0.0, (then - before) / (now - since))


class Dashboard:
    """The sampler thread and the HTTP server of one dashboard. ``start()``, then ``close()``."""

    def __init__(
        self,
        kafka: KafkaClientConfig,
        group: str,
        topics: Sequence[str],
        metrics_urls: Sequence[str] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        interval_s: float = 2.0,
    ) -> None:
        self.group = group
        self.topics = list(topics)
        self.metrics_urls = list(metrics_urls)
        self.interval_s = interval_s
        self._probe = LagProbe(kafka)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"group": group, "partitions": [], "error": "starting"}
        self._previous: tuple[float, int, int] | None = None
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._threads = [
            threading.Thread(target=self._sample_forever, name="s321-dashboard-sampler"),
            threading.Thread(target=self._server.serve_forever, name="s321-dashboard-http"),
        ]

    @property
    def port(self) -> int:
        """The port the page is served on (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    def start(self) -> Dashboard:
        """Start sampling and serving in background threads."""
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def close(self) -> None:
        """Stop serving and sampling, and release the broker connections."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        self._probe.close()

    def state(self) -> dict[str, Any]:
        """The newest reading, as ``/api/state`` serves it."""
        with self._lock:
            return self._state

    def sample(self) -> dict[str, Any]:
        """Take one reading now (the sampler thread calls this every ``interval_s``)."""
        try:
            report = self._probe.measure(self.group, self.topics)
        except S321Error as exc:
            state = {**self.state(), "error": str(exc)}
        else:
            state = self._with_rates(report)
            state["workers"] = self._scrape().to_dict()
            state["error"] = None
        with self._lock:
            self._state = state
        return state

    def _with_rates(self, report: LagReport) -> dict[str, Any]:
        produced = sum(p.end for p in report.partitions)
        done = sum(p.end - p.lag for p in report.partitions)
        since, before_end, before_done = self._previous or (None, None, None)
        self._previous = (report.taken_at, produced, done)
        state = report.to_dict()
        state["produced_per_s"] = _rate(report.taken_at, before_end, produced, since)
        state["processed_per_s"] = _rate(report.taken_at, before_done, done, since)
        state["interval_s"] = self.interval_s
        return state

    def _scrape(self) -> WorkerTotals:
        totals = WorkerTotals()
        for url in self.metrics_urls:
            try:
                totals.add(scrape_worker(url))
            except (OSError, ValueError) as exc:
                totals.targets.append({"url": url, "up": False, "error": str(exc)})
            else:
                totals.targets.append({"url": url, "up": True, "error": None})
        return totals

    def _sample_forever(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))


def _page() -> bytes:
    return files("s321.ops.dashboard").joinpath("static/index.html").read_bytes()


def _handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    page = _page()

    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/api/state":
                body = json.dumps(dashboard.state()).encode()
                self._send(200, "application/json", body)
            else:
                self._send(404, "text/plain", b"not found\n")

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a page polling every second would flood the terminal."""

    return _Handler
