"""The worker's health: is it alive (liveness), may it be counted on (readiness).

The worker's event loop reports heartbeats to a :class:`Health` (the agent at the start and end
of every batch, the tick timer once a second); a small HTTP server of its own
(:func:`serve_health`), on a thread, answers ``/healthz`` and ``/readyz`` from them. The server
runs beside the event loop, not in it, so it still answers while the loop is blocked: that is
the case liveness is for.

Alive (``/healthz`` 200) unless:

- ``stuck_tick``: the tick has not run for ``tick_within_s`` (the event loop is blocked by a
  synchronous call, or the timer died); before the first tick, ``start_within_s`` since start.
  15 s by default: the group's heartbeats run on the same loop, so a loop blocked past the
  10 s session timeout has already cost this worker its partitions;
- ``stuck_input``: records wait in partitions owned here, no batch is in progress and none
  started for ``progress_within_s``, outside a table recovery (the consumer stopped handing
  records on, and reading them again did not help).

Ready (``/readyz`` 200) when alive and:

- ``assigned``: the consumer group gave this worker its partitions (possibly none: a worker
  beyond the partition count is a ready spare) and the rebalance is over;
- ``recovered``: no changelog record is left to replay into the table;
- ``delivering``: no batch has been waiting for ``deliver_within_s`` (its outputs and
  changelog records are flushed to the broker before it ends: a batch that long in progress
  means the broker does not take them).

A batch waiting on the broker makes the worker unready, never dead: restarting it would not
bring the broker back. An output the broker refuses for good stops the process (exit 70).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Health", "Verdict", "serve_health"]


@dataclass(frozen=True)
class Verdict:
    """One answer: ``ok`` and, when not, the names of the failed checks; ``detail`` is what
    the answer was made from (counts and ages in seconds, never a record)."""

    ok: bool
    failed: tuple[str, ...]
    detail: dict[str, Any]

    def body(self) -> bytes:
        return json.dumps(
            {"status": "ok" if self.ok else "fail", "failed": list(self.failed), **self.detail},
            sort_keys=True,
        ).encode()


class Health:
    """Heartbeats of the worker's event loop, and the verdicts read from them (thread-safe:
    written by the event loop, read by the HTTP thread). ``clock`` is monotonic seconds."""

    def __init__(
        self,
        tick_within_s: float = 15.0,
        progress_within_s: float = 120.0,
        deliver_within_s: float = 30.0,
        start_within_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tick_within_s = tick_within_s
        self.progress_within_s = progress_within_s
        self.deliver_within_s = deliver_within_s
        self.start_within_s = start_within_s
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last_tick: float | None = None
        self._batch_since: float | None = None  # when the batch in progress started
        self._last_batch: float | None = None  # when the last batch started
        self._batches = 0
        self._waiting_since: float | None = None  # records waiting here since
        self._assigned: bool = False
        self._partitions = 0
        self._recovery_remaining: int | None = None

    # -- written by the event loop --------------------------------------------------------

    def batch_started(self) -> None:
        """The agent took a batch of records and starts processing it."""
        with self._lock:
            self._batch_since = self._last_batch = self._clock()

    def batch_done(self) -> None:
        """The batch is durable (outputs acknowledged, state written, offsets committable)."""
        with self._lock:
            self._batch_since = None
            self._batches += 1

    def ticked(
        self, *, assigned: bool, partitions: int, recovery_remaining: int, waiting: bool
    ) -> None:
        """The tick ran: whether an assignment is in force (``assigned``: the rebalance is
        over), how many input partitions are processed here, changelog records still to
        replay, and whether records wait in an owned partition (read by the group, not yet
        processed here)."""
        with self._lock:
            now = self._last_tick = self._clock()
            self._assigned = assigned
            self._partitions = partitions
            self._recovery_remaining = recovery_remaining
            if not waiting:
                self._waiting_since = None
            elif self._waiting_since is None:
                self._waiting_since = now

    # -- read by the HTTP thread ----------------------------------------------------------

    def liveness(self) -> Verdict:
        with self._lock:
            return self._liveness(self._clock())

    def readiness(self) -> Verdict:
        with self._lock:
            now = self._clock()
            live = self._liveness(now)
            failed = list(live.failed)
            if not self._assigned:
                failed.append("assigned")
            if self._recovery_remaining != 0:
                failed.append("recovered")
            if self._batch_since is not None and now - self._batch_since > self.deliver_within_s:
                failed.append("delivering")
            detail = {
                **live.detail,
                "assigned": self._assigned,
                "partitions": self._partitions,
                "recovery_remaining": self._recovery_remaining,
            }
            return Verdict(not failed, tuple(failed), detail)

    def _liveness(self, now: float) -> Verdict:
        failed = []
        if self._last_tick is None:
            if now - self._started > self.start_within_s:
                failed.append("stuck_tick")
        elif now - self._last_tick > self.tick_within_s:
            failed.append("stuck_tick")
        if (
            self._waiting_since is not None
            and self._batch_since is None
            and self._recovery_remaining == 0
            and now - max(self._waiting_since, self._last_batch or 0.0) > self.progress_within_s
        ):
            failed.append("stuck_input")
        detail = {
            "since_tick_s": _age(now, self._last_tick),
            "since_batch_s": _age(now, self._last_batch),
            "batch_in_progress_s": _age(now, self._batch_since),
            "records_waiting_s": _age(now, self._waiting_since),
            "batches": self._batches,
        }
        return Verdict(not failed, tuple(failed), detail)


def _age(now: float, since: float | None) -> float | None:
    return None if since is None else round(now - since, 3)


class _Handler(BaseHTTPRequestHandler):
    health: Health  # set on the subclass made per server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            verdict = self.health.liveness()
        elif path == "/readyz":
            verdict = self.health.readiness()
        else:
            self.send_error(404)
            return
        body = verdict.body()
        self.send_response(200 if verdict.ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes come every few seconds: not logged."""


def serve_health(
    health: Health,
    port: int,
    host: str = "127.0.0.1",
) -> ThreadingHTTPServer:
    """Serve ``/healthz`` and ``/readyz`` of ``health`` at ``http://host:port`` from a daemon
    thread (200 or 503, a short JSON body). ``port=0`` picks a free port: read it back from
    ``server.server_port``. ``server.shutdown()`` stops it."""
    handler = type("HealthHandler", (_Handler,), {"health": health})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="s321-health", daemon=True).start()
    return server
