"""The worker's health verdicts from its heartbeats, on a fake clock, and their HTTP answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from s321.health import Health, serve_health


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> Health:
    return Health(
        tick_within_s=15, progress_within_s=120, deliver_within_s=30, start_within_s=300,
        clock=clock,
    )  # fmt: skip


def _tick(h: Health, *, waiting: bool = False, remaining: int = 0, assigned: bool = True) -> None:
    h.ticked(assigned=assigned, partitions=4, recovery_remaining=remaining, waiting=waiting)


def test_starting_worker_is_alive_but_not_ready_until_its_start_budget_runs_out(
    health: Health, clock: Clock
) -> None:
    assert health.liveness().ok
    assert health.readiness().failed == ("assigned", "recovered")
    clock.now += 301
    assert health.liveness().failed == ("stuck_tick",)


def test_ready_once_assigned_and_recovered(health: Health, clock: Clock) -> None:
    _tick(health, assigned=False, remaining=0)
    assert health.readiness().failed == ("assigned",)
    _tick(health, assigned=True, remaining=5000)
    verdict = health.readiness()
    assert verdict.failed == ("recovered",)
    assert verdict.detail["recovery_remaining"] == 5000
    _tick(health, assigned=True, remaining=0)
    assert health.readiness().ok
    assert health.liveness().ok


def test_a_tick_late_past_its_budget_means_a_blocked_event_loop(
    health: Health, clock: Clock
) -> None:
    _tick(health)
    clock.now += 15
    assert health.liveness().ok
    clock.now += 0.5
    live = health.liveness()
    assert live.failed == ("stuck_tick",)
    assert live.detail["since_tick_s"] == 15.5
    assert not health.readiness().ok  # a dead worker is not ready either
    _tick(health)
    assert health.liveness().ok


def test_records_waiting_with_no_batch_for_long_means_stuck_input(
    health: Health, clock: Clock
) -> None:
    health.batch_started()
    health.batch_done()
    for _ in range(120):
        clock.now += 1
        _tick(health, waiting=True)
    assert health.liveness().ok  # waiting 119 s since the tick that first saw them
    clock.now += 2
    _tick(health, waiting=True)
    assert health.liveness().failed == ("stuck_input",)
    health.batch_started()  # one batch taken: the consumer hands records on again
    assert health.liveness().ok


def test_records_waiting_during_recovery_or_a_slow_batch_are_not_stuck_input(
    health: Health, clock: Clock
) -> None:
    _tick(health, waiting=True, remaining=10)
    clock.now += 200
    _tick(health, waiting=True, remaining=10)
    assert health.liveness().ok  # the table is still being replayed: nothing to process yet
    _tick(health, waiting=True, remaining=0)
    health.batch_started()
    clock.now += 200
    _tick(health, waiting=True, remaining=0)
    assert health.liveness().ok  # a batch is in progress: waiting on the broker, not stuck


def test_a_batch_waiting_on_the_broker_makes_the_worker_unready_not_dead(
    health: Health, clock: Clock
) -> None:
    _tick(health)
    health.batch_started()
    clock.now += 10
    _tick(health)
    assert health.readiness().ok
    clock.now += 21
    _tick(health)
    assert health.readiness().failed == ("delivering",)
    assert health.liveness().ok
    health.batch_done()
    assert health.readiness().ok
    assert health.readiness().detail["batches"] == 1


def test_nothing_waiting_means_an_idle_worker_stays_alive(health: Health, clock: Clock) -> None:
    for _ in range(10):
        clock.now += 60
        _tick(health, waiting=False)
    assert health.liveness().ok
    assert health.readiness().ok


def test_http_answers_200_or_503_with_a_json_body(health: Health, clock: Clock) -> None:
    server = serve_health(health, 0, host="127.0.0.1")
    base = f"http://127.0.0.1:{server.server_port}"
    try:

        def get(path: str) -> tuple[int, dict[str, object]]:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        status, body = get("/healthz")
        assert (status, body["status"]) == (200, "ok")
        status, body = get("/readyz")
        assert (status, body["status"], body["failed"]) == (503, "fail", ["assigned", "recovered"])
        _tick(health)
        status, body = get("/readyz?verbose")
        assert (status, body["partitions"], body["recovery_remaining"]) == (200, 4, 0)
        clock.now += 16
        status, body = get("/healthz")
        assert (status, body["failed"]) == (503, ["stuck_tick"])
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "/metrics", timeout=5)
        assert err.value.code == 404
        err.value.close()
    finally:
        server.shutdown()
        server.server_close()
