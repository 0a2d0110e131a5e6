"""The live dashboard page, loaded in headless Chromium while records flow into a test topic."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge

from s321.kafka_config import KafkaClientConfig
from s321.metrics import serve_metrics
from s321.ops.dashboard import Dashboard
from s321.ops.lag import measure_lag

#: Records are stamped this long ago, one second apart per offset, so time lag is known.
BASE_MS = (int(time.time()) - 7200) * 1000

#: Reads what a person sees: header figures, the partition table and each chart's lines.
READ_PAGE = """JSON.stringify({
  readings: Number(document.body.dataset.readings || 0),
  takenAt: document.getElementById("taken-at").dataset.takenAt || null,
  totalLag: document.getElementById("total-lag").textContent,
  waiting: document.getElementById("waiting").textContent,
  deadLetters: document.getElementById("dead-letters").textContent,
  workersUp: document.getElementById("workers-up").textContent,
  rows: [...document.querySelectorAll("#partitions tbody tr")].map(
    r => Object.fromEntries([...r.children].map(td => [td.dataset.k, td.textContent]))),
  charts: Object.fromEntries([...document.querySelectorAll("svg.chart")].map(svg => [svg.id,
    Object.fromEntries([...svg.querySelectorAll("path.series")].map(p => [p.dataset.series,
      {points: Number(p.dataset.points), last: Number(p.dataset.last),
       segments: (p.getAttribute("d").match(/[ML]/g) || []).length}]))])),
})"""


def _stamp(partition: int, offset: int) -> int:
    return BASE_MS + partition * 1_000_000 + offset * 1000


class _Feed:
    """Produces stamped records into the test topic and commits for the group."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.topic = topic
        self.producer = Producer({"bootstrap.servers": bootstrap})
        self.committer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        self.ends = {0: 0, 1: 0}

    def produce(self, partition: int, n: int) -> None:
        for _ in range(n):
            offset = self.ends[partition]
            self.producer.produce(
                self.topic, b"v", partition=partition, timestamp=_stamp(partition, offset)
            )
            self.ends[partition] += 1
        assert self.producer.flush(30) == 0

    def commit(self, partition: int, offset: int) -> None:
        self.committer.commit(
            offsets=[TopicPartition(self.topic, partition, offset)], asynchronous=False
        )


class _FakeWorker:
    """A worker's /metrics endpoint with the series the page shows, set by the test."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter("s321_decisions", "", ["outcome"], registry=self.registry)
        self.dead = Counter("s321_dead_letters", "", ["error_class"], registry=self.registry)
        self.waiting = Gauge("s321_shipments_waiting", "", registry=self.registry)
        self.server = serve_metrics(0, "127.0.0.1", registry=self.registry)
        self.url = f"http://127.0.0.1:{self.server.server_port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Browser:
    """Headless Chromium driven over the DevTools protocol."""

    def __init__(self, url: str, profile: Path) -> None:
        chromium = shutil.which("chromium")
        assert chromium, "Debian's chromium is not installed (deploy/s321 installs it)"
        self.proc = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-port=0",
             "--window-size=1280,1000", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 90
        while not port_file.exists() or not port_file.read_text().strip():
            assert self.proc.poll() is None, "chromium exited during start-up"
            assert time.monotonic() < deadline, "chromium never opened its DevTools port"
            time.sleep(0.2)
        self.devtools = f"http://127.0.0.1:{port_file.read_text().split()[0]}"

    def page_socket(self) -> str:
        with urllib.request.urlopen(f"{self.devtools}/json/list", timeout=10) as resp:
            targets = json.load(resp)
        return str(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


async def _evaluate(ws: aiohttp.ClientWebSocketResponse, ident: int, expression: str) -> Any:
    await ws.send_json({"id": ident, "method": "Runtime.evaluate",
                        "params": {"expression": expression, "returnByValue": True}})  # fmt: skip
    while True:
        msg = await ws.receive_json(timeout=30)
        if msg.get("id") == ident:
            return msg["result"]["result"].get("value")


def _watch(socket_url: str, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read the page repeatedly until ``until(page)`` holds; return that reading."""

    async def run() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(socket_url) as ws:
            page: dict[str, Any] = {}
            deadline = time.monotonic() + 90
            for ident in range(1, 100_000):
                raw = await _evaluate(ws, ident, READ_PAGE)
                page = json.loads(raw) if raw else {}
                if page and until(page):
                    return page
                assert time.monotonic() < deadline, f"the page never showed it: {page}"
                await asyncio.sleep(0.25)
            raise AssertionError("unreachable")

    return asyncio.run(run())


@pytest.fixture
def worker() -> Iterator[_FakeWorker]:
    fake = _FakeWorker()
    yield fake
    fake.close()


def _rows(page: dict[str, Any]) -> dict[int, dict[str, str]]:
    return {int(r["partition"]): r for r in page["rows"]}


def test_page_charts_live_lag_and_worker_figures_as_records_flow(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    group_id: str,
    worker: _FakeWorker,
    tmp_path: Path,
) -> None:
    """A person sees charts whose numbers follow the records and match the lag computation."""
    topic = new_topic(partitions=2)
    feed = _Feed(kafka_bootstrap, topic, group_id)
    feed.produce(0, 5)
    feed.produce(1, 3)
    feed.commit(0, 2)
    worker.decisions.labels(outcome="RELEASE").inc(7)
    worker.decisions.labels(outcome="HOLD").inc(2)
    worker.dead.labels(error_class="DecodeError").inc()
    worker.waiting.set(4)

    board = Dashboard(kafka, group_id, [topic], [worker.url], interval_s=0.5).start()
    browser = _Browser(f"http://127.0.0.1:{board.port}/", tmp_path / "profile")
    try:
        socket_url = browser.page_socket()
        first = _watch(socket_url, lambda p: p["readings"] >= 2 and p["totalLag"] == "6")

        # The table and header show exactly what the lag computation gives for the group.
        direct = measure_lag(kafka, group_id, [topic])
        taken = float(first["takenAt"])
        for p in direct.partitions:
            row = _rows(first)[p.partition]
            committed = "-" if p.committed is None else str(p.committed)
            assert (row["committed"], row["end"], row["lag"]) == (committed, str(p.end), str(p.lag))
            oldest = p.committed or 0
            assert row["time_lag_s"] == f"{taken - _stamp(p.partition, oldest) / 1000:.3f}"
        assert first["totalLag"] == str(direct.total_lag)
        assert (first["waiting"], first["deadLetters"], first["workersUp"]) == ("4", "1", "1/1")

        # Every chart is drawn, one line per partition or per outcome.
        charts = first["charts"]
        assert set(charts["chart-lag"]) == {f"{topic}[0]", f"{topic}[1]"}
        assert charts["chart-lag"][f"{topic}[0]"]["last"] == 3
        time_line = charts["chart-time-lag"][f"{topic}[1]"]["last"]
        assert time_line == pytest.approx(float(_rows(first)[1]["time_lag_s"]), abs=0.001)
        assert time_line > 6000  # its records were stamped 6200 s before the reading
        assert charts["chart-decisions"]["RELEASE"]["last"] == 7
        assert charts["chart-decisions"]["HOLD"]["last"] == 2
        assert charts["chart-backlog"]["waiting"]["last"] == 4
        assert "produced" in charts["chart-throughput"]

        # Records keep flowing and the worker decides more: the page follows.
        feed.produce(1, 4)
        feed.commit(0, 5)
        worker.decisions.labels(outcome="RELEASE").inc(3)
        worker.dead.labels(error_class="DecodeError").inc(2)
        moved = _watch(
            socket_url,
            lambda p: (
                _rows(p)[1]["lag"] == "7"
                and _rows(p)[0]["lag"] == "0"
                and p["charts"]["chart-decisions"]["RELEASE"]["last"] == 10
            ),
        )
        direct = measure_lag(kafka, group_id, [topic])
        assert [(r["end"], r["lag"]) for _, r in sorted(_rows(moved).items())] == [
            (str(p.end), str(p.lag)) for p in direct.partitions
        ]
        assert _rows(moved)[0]["time_lag_s"] == "0.000"
        assert moved["deadLetters"] == "3"
        lag_line = moved["charts"]["chart-lag"][f"{topic}[1]"]
        assert lag_line["last"] == 7
        assert lag_line["points"] > charts["chart-lag"][f"{topic}[1]"]["points"]
        assert lag_line["segments"] == lag_line["points"]
        assert moved["charts"]["chart-throughput"]["produced"]["points"] >= 1
    finally:
        browser.close()
        board.close()
        feed.committer.close()
