"""The worker's /healthz and /readyz on the real broker: unready while its table is replayed
from the changelog, ready after; alive in normal operation, dead while its event loop is
blocked, alive again after.

The wedge is real, not simulated: the worker runs in a process whose handler of a real-time
signal (SIGRTMIN+3: the Faust worker takes SIGUSR1 and SIGUSR2 for itself) sleeps in the main
thread, the thread of the event loop (Python runs signal handlers there), so the loop
stops for as long as the handler sleeps while the health server's own thread keeps answering.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from s321 import topics
from s321.admin import ensure_changelog
from s321.core.correlation import ShipmentState
from s321.core.state import encode_state
from tests.integration.test_worker import (
    PARTITIONS,
    WORKER_ARGS,
    WorkerRun,
    _cleanup,
    _produce,
    _traffic,
)
from tests.integration.test_worker import run as run  # the fixture

_BLOCK_S = 25  # how long the signal blocks the worker's event loop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict[str, Any]] | None:
    """The endpoint's status and JSON body; None while nothing answers on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _until(port: int, path: str, status: int, timeout_s: float) -> list[tuple[int, dict[str, Any]]]:
    """Poll ``path`` every 0.1 s until it answers ``status``; every answer seen, in order."""
    seen: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = _get(port, path)
        if answer is not None:
            seen.append(answer)
            if answer[0] == status:
                return seen
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status} in {timeout_s} s: last {seen[-3:]}")


def _fill_changelog(run: WorkerRun, states: int) -> None:
    """Write ``states`` shipment states straight into the table's changelog (no deadline, so
    a worker restores them and otherwise leaves them alone)."""
    from confluent_kafka import Producer

    ensure_changelog(run.kafka, run.unique, PARTITIONS)
    producer = Producer({"bootstrap.servers": run.bootstrap, "linger.ms": 50})
    name = topics.changelog_name(run.unique)
    for i in range(states):
        key, partition = f"HEALTH{i:08d}", i % PARTITIONS
        producer.produce(
            name,
            key=key.encode(),
            value=encode_state(ShipmentState(key=key, partition=partition)),
            partition=partition,
        )
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


def test_worker_is_unready_while_its_table_is_replayed_and_ready_after(run: WorkerRun) -> None:
    """A worker on an empty data directory over a changelog of 400,000 states answers /readyz
    503 while the table is replayed (Faust's rebalance ends only once its tables are
    recovered, and its timers start only then), then 200 with nothing left to replay; it is
    alive throughout."""
    _fill_changelog(run, 400_000)
    port = _free_port()
    run.start(extra_env={"S321_HEALTH_PORT": str(port)})
    started = time.monotonic()
    answers = _until(port, "/readyz", 200, timeout_s=240)
    unready_s = time.monotonic() - started
    ready = answers[-1][1]
    assert ready["recovery_remaining"] == 0
    assert ready["assigned"] is True
    assert ready["partitions"] == PARTITIONS
    unready = [body for status, body in answers if status == 503]
    assert len(unready) > 10, f"ready at once: {answers[:3]}\n{run.log_tails()}"
    assert all(set(body["failed"]) & {"assigned", "recovered"} for body in unready)
    assert all("stuck_tick" not in body["failed"] for _, body in answers), "dead while recovering"
    live = _get(port, "/healthz")
    assert live is not None
    assert live[0] == 200, live
    # a second worker with the same start and no changelog to replay is ready much sooner
    other = WorkerRun(run.kafka, run.redis_url, run.unique + "-empty", run.tmp_path / "e")
    other_port = _free_port()
    try:
        from s321.admin import ensure_topics

        ensure_topics(run.kafka, other.prefix, PARTITIONS)
        other.start(extra_env={"S321_HEALTH_PORT": str(other_port)})
        started = time.monotonic()
        _until(other_port, "/readyz", 200, timeout_s=120)
        assert time.monotonic() - started < unready_s, "the replay took no time"
    finally:
        for proc in other.procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        _cleanup(run.bootstrap, run.redis_url, other.unique)


def test_worker_with_a_blocked_event_loop_is_dead_until_it_runs_again(run: WorkerRun) -> None:
    """A processing worker answers /healthz 200; while its event loop is blocked by a long
    synchronous call, 503 (tick overdue); once the loop runs again, 200."""
    port = _free_port()
    data_dir = run.tmp_path / "data"
    log = data_dir / "worker-blocked.log"
    log.parent.mkdir(parents=True)
    wrapper = (
        "import signal, time\n"
        f"signal.signal(signal.SIGRTMIN + 3, lambda *_: time.sleep({_BLOCK_S}))\n"
        "from s321.cli import main\n"
        "main()\n"
    )
    env = {**os.environ, "S321_METRICS_PORT": "0", **run.env(data_dir)}
    env["S321_HEALTH_PORT"] = str(port)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", wrapper, "worker", *WORKER_ARGS],
            env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    run.procs.append(proc)
    run.logs.append(log)
    _until(port, "/readyz", 200, timeout_s=120)
    _produce(run.kafka, run.prefix, _traffic(40, seed=21).events)
    time.sleep(3)
    status_body = _get(port, "/healthz")
    assert status_body is not None
    assert status_body[0] == 200, status_body
    assert status_body[1]["batches"] > 0, f"no batch processed\n{run.log_tails()}"

    blocked_at = time.monotonic()
    os.kill(proc.pid, signal.SIGRTMIN + 3)
    dead = _until(port, "/healthz", 503, timeout_s=_BLOCK_S)
    assert dead[-1][1]["failed"] == ["stuck_tick"]
    # the budget runs from the last tick, up to a second before the signal
    assert time.monotonic() - blocked_at > 13, "dead sooner than the tick budget"
    ready = _get(port, "/readyz")
    assert ready is not None
    assert ready[0] == 503, ready  # a dead worker is not ready either
    _until(port, "/healthz", 200, timeout_s=_BLOCK_S + 30)
    assert proc.poll() is None, f"the worker exited\n{run.log_tails()}"
