"""The correlating Faust agent in memory: no broker, the in-memory table store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
import pytest
from s321.streams import app as app_module
from s321.streams.app import WorkerConfig, build_app
from s321.streams.delivery import _SideProducer

from s321 import serialization, topics
from s321.kafka_config import KafkaClientConfig
from s321.models import DeadLetter, Decision, Outcome
from tests.factories import PerRecord, manifest, pilot, value_rule


def _app(tmp_path: Path) -> Any:
    cfg = WorkerConfig(
        app_id="agent-test",
        kafka=KafkaClientConfig("127.0.0.1:1"),
        partitions=1,
        data_dir=tmp_path,
        store="memory://",
        processing_guarantee="at_least_once",
    )
    app, _ = build_app(cfg, PerRecord(value_rule))
    app.finalize()
    app.flow_control.resume()
    return app


def test_agent_decides_a_shipment_and_parks_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fed a manifest, its pilot record and garbage, the agent sends one decision and one dead letter."""
    sent: list[tuple[str, bytes | None, bytes]] = []

    async def capture(
        self: faust.Topic, *, key: Any = None, value: Any = None, **kw: Any
    ) -> asyncio.Future[None]:
        sent.append((self.get_topic_name(), key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)  # as if the broker acknowledged it at once
        return delivered

    def side_send(
        self: Any, topic: str, key: bytes | None, value: bytes, headers: Any, partition: Any
    ) -> None:
        sent.append((topic, key, value))

    changelog: list[tuple[str, bytes, int]] = []

    def side_send_changelog(
        self: Any, topic: str, key: bytes, value: bytes | None, partition: int
    ) -> None:
        assert value is not None
        changelog.append((topic, key, partition))

    async def side_flush(self: Any) -> None:
        return None  # as if the broker acknowledged everything at once

    monkeypatch.setattr(faust.Topic, "send", capture)  # Faust's producer (exactly once)
    monkeypatch.setattr(_SideProducer, "send", side_send)  # at least once
    monkeypatch.setattr(_SideProducer, "send_changelog", side_send_changelog)
    monkeypatch.setattr(_SideProducer, "flush", side_flush)
    loop = asyncio.new_event_loop()  # one loop for the app, closed at the end
    asyncio.set_event_loop(loop)
    app = _app(tmp_path)
    agent = (
        app.agents["streams.app.correlate"]
        if "streams.app.correlate" in app.agents
        else next(iter(app.agents.values()))
    )

    async def run() -> None:
        async with agent.test_context() as ctx:
            await ctx.put(serialization.encode(manifest("HB1")), key=b"HB1")
            await ctx.put(serialization.encode(pilot("HB1")), key=b"HB1")
            await ctx.put(b"\x00not avro", key=b"x")

    try:
        loop.run_until_complete(run())
    finally:
        # the consumer's worker thread made a loop of its own that never started here
        thread = getattr(app.consumer, "_thread", None)
        if thread is not None and not thread.thread_loop.is_closed():
            thread.thread_loop.close()
        loop.close()
        asyncio.set_event_loop(None)
    by_topic: dict[str, list[bytes]] = {}
    for topic, _, value in sent:
        by_topic.setdefault(topic, []).append(value)
    [raw_decision] = by_topic[topics.DECISIONS.base]
    decision = serialization.decode(raw_decision, Decision)
    assert (decision.shipment_key, decision.version, decision.outcome) == (
        "HB1",
        1,
        Outcome.RELEASE,
    )
    [raw_letter] = by_topic[topics.DEAD_LETTERS.base]
    assert serialization.decode(raw_letter, DeadLetter).value == b"\x00not avro"
    # at least once, the shipment's state went to the table's changelog through the side
    # producer, in its partition (the table's own write would have used Faust's producer)
    assert set(changelog) == {("agent-test-shipments-changelog", b"HB1", 0)}


def test_an_agent_whose_output_fails_stops_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When sending an output raises (the client refuses a record), the agent stops the worker
    with a clear message rather than dying quietly inside a process that stays up."""
    stops: list[int] = []
    said: list[str] = []

    def refuse(self: Any, topic: str, key: Any, value: bytes, headers: Any, partition: Any) -> None:
        raise BufferError("Local: Message size too large")

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    monkeypatch.setattr(_SideProducer, "send", refuse)
    monkeypatch.setattr(app_module, "stop_hard", stops.append)
    handler = Said(logging.CRITICAL)
    logging.getLogger("s321.worker").addHandler(handler)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = _app(tmp_path)
    agent = next(iter(app.agents.values()))

    async def run() -> None:
        async with agent.test_context() as ctx:
            await ctx.put(b"\x00not avro", key=b"x")  # its dead letter cannot be sent

    try:
        loop.run_until_complete(run())
    finally:
        thread = getattr(app.consumer, "_thread", None)
        if thread is not None and not thread.thread_loop.is_closed():
            thread.thread_loop.close()
        loop.close()
        asyncio.set_event_loop(None)
        logging.getLogger("s321.worker").removeHandler(handler)
    assert stops == [70]
    assert said == [
        "the correlating agent failed, stopping: BufferError: Local: Message size too large"
    ]
