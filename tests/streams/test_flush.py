"""Faust's producer buffer, which holds the table's changelog records until they are handed to
the Kafka client, is flushed for real before input offsets are committed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.producer import ProducerBuffer
from s321.streams import internals
from s321.streams.internals import flush_fully

SLOW_S = 0.15  # one record's hand-over: longer than the 100 ms Faust's own flush waits


def _buffer(sent: list[int]) -> Any:
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))

    async def publish(fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(SLOW_S)
        sent.append(fut.i)

    buffer.publish = publish
    return buffer


def _record(buffer: Any, i: int) -> Any:
    channel = SimpleNamespace(publish_message=buffer.publish)
    return SimpleNamespace(i=i, message=SimpleNamespace(channel=channel))


async def _flushed(fully: bool) -> tuple[list[int], int]:
    sent: list[int] = []
    buffer = _buffer(sent)
    if fully:
        flush_fully(buffer)
    await buffer.start()
    try:
        for i in range(5):
            buffer.put(_record(buffer, i))
        await buffer.flush()
        return list(sent), buffer.size
    finally:
        buffer.pending = asyncio.Queue()  # what is left is not this test's concern
        await buffer.stop()


def test_a_flush_returns_only_once_every_record_is_handed_on() -> None:
    """Each record takes 150 ms to go: Faust's own flush gives up with all five still held
    (the commit after it would cover inputs whose state changes were not sent); the full one
    returns when all five are handed on, in order."""
    # Faust's own (if this starts failing, Faust's flush may have been fixed: see flush_fully)
    assert asyncio.run(_flushed(fully=False)) == ([], 4)
    assert asyncio.run(_flushed(fully=True)) == ([0, 1, 2, 3, 4], 0)


def test_a_flush_waits_for_what_was_put_before_it_not_after() -> None:
    """Records keep coming while a flush waits (the agent goes on): it returns once those put
    before it are handed on, so a commit is never held up by a buffer that is never empty."""

    async def main() -> tuple[list[int], list[int]]:
        sent: list[int] = []
        buffer = _buffer(sent)
        flush_fully(buffer)
        await buffer.start()
        try:
            for i in range(2):
                buffer.put(_record(buffer, i))
            flushing = asyncio.ensure_future(buffer.flush())
            for i in range(2, 12):  # one more every 100 ms, faster than they go
                await asyncio.sleep(0.1)
                buffer.put(_record(buffer, i))
                if flushing.done():
                    break
            at_return = list(sent)
            await buffer.flush()
            return at_return, sent
        finally:
            await buffer.stop()

    at_return, sent = asyncio.run(main())
    assert at_return[:2] == [0, 1]
    assert len(at_return) < 5, "the flush waited for records put after it began"
    assert sent == list(range(len(sent)))
    assert len(sent) >= 5


def test_records_left_at_shutdown_are_sent_before_the_buffer_stops() -> None:
    async def main() -> list[int]:
        sent: list[int] = []
        buffer = _buffer(sent)
        flush_fully(buffer)
        await buffer.start()
        for i in range(3):
            buffer.put(_record(buffer, i))
        await buffer.stop()  # stops taking records at once, then flushes
        return sent

    assert asyncio.run(main()) == [0, 1, 2]


def test_a_changelog_record_the_client_refuses_stops_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A record the Kafka client refuses (too large, producer closed) stops the worker with a
    clear message instead of leaving the buffer's sender dead and every later flush waiting."""
    stops: list[int] = []
    monkeypatch.setattr(internals, "stop_hard", stops.append)

    async def main() -> list[int]:
        sent: list[int] = []
        buffer = _buffer(sent)

        async def refuse(fut: Any, wait: bool = False) -> None:
            if fut.i == 1:
                raise ValueError("record too large")
            sent.append(fut.i)

        buffer.publish = refuse
        flush_fully(buffer)
        await buffer.start()
        try:
            for i in range(3):
                buffer.put(_record(buffer, i))
            await asyncio.wait_for(buffer.flush(), 5)
            return sent
        finally:
            await buffer.stop()

    assert asyncio.run(main()) == [0, 2]
    assert stops == [70]
