"""Shipment-status lookups on the real broker: two workers answer every shipment the same,
and as the decisions topic says."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

from s321.devtools.demo import collect
from tests.integration.test_worker import WorkerRun, _check, _produce, _traffic, run
from tests.unit.test_status import _check_against_spec

__all__ = ["run"]  # the fixture, imported for the tests below


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())
    except OSError:
        return 0, None  # not listening yet


def _wait_ready(base: str, decisions: int, timeout_s: float, run: WorkerRun) -> None:
    """Until the view at ``base`` is ready and has read ``decisions`` decision records."""
    deadline = time.monotonic() + timeout_s
    body: Any = None
    while time.monotonic() < deadline:
        status, body = _get(f"{base}/shipments-view")
        if status == 200 and body["decisions"] >= decisions:
            _check_against_spec("/shipments-view", status, body)
            return
        time.sleep(0.5)
    raise AssertionError(f"view at {base} not caught up: {body}\n{run.log_tails()}")


def test_two_workers_answer_every_shipment_alike_and_as_the_topic_says(run: WorkerRun) -> None:
    """A worker running from the start and one started after the decisions were made (its view
    reads the topic from the beginning) give the same answer for every shipment: the newest
    version and the history on the decisions topic; 404 for a shipment never decided, 400 for
    a malformed key."""
    traffic = _traffic(80, seed=21)
    ports = [_free_port(), _free_port()]
    run.start(extra_env={"S321_STATUS_PORT": str(ports[0])})
    _produce(run.kafka, run.prefix, traffic.events)
    _check(run, traffic)
    truth = traffic.truth_by_key()
    on_topic, _unmatched, _dead = collect(run.kafka, run.prefix, truth, quiet_s=10, timeout_s=60)
    records = sum(len(ds) for ds in on_topic.values())
    run.start(run.tmp_path / "data2", extra_env={"S321_STATUS_PORT": str(ports[1])})
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    for base in bases:
        _wait_ready(base, records, timeout_s=90, run=run)

    for key, decisions in on_topic.items():
        versions = sorted({d.version for d in decisions})
        newest = max(decisions, key=lambda d: d.version)
        answers = [_get(f"{base}/shipments/{key.lower()}") for base in bases]
        assert answers[0] == answers[1], key
        status, body = answers[0]
        assert status == 200, (key, body)
        _check_against_spec("/shipments/{key}", status, body)
        assert [v["version"] for v in body["history"]] == versions
        assert body["newest"]["decision_id"] == newest.decision_id
        assert body["newest"]["outcome"] == newest.outcome.value
        assert sorted(r["rule_id"] for r in body["newest"]["reasons"]) == sorted(
            h.rule_id for h in newest.hits
        )

    undecided = [k for k in truth if k not in on_topic] + ["NEVERSEEN0001"]
    for key in undecided:
        for base in bases:
            status, body = _get(f"{base}/shipments/{key}")
            assert status == 404, (key, body)
            _check_against_spec("/shipments/{key}", status, body)
    for base in bases:
        status, body = _get(f"{base}/shipments/bad%23key")
        assert status == 400
