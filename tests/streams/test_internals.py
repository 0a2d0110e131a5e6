"""The private parts of Faust and aiokafka the worker relies on (see ``streams/internals.py``)
still behave as relied on: each test fails when the library changes under one touch.

The producer buffer's touch (``flush_fully``) is tested in ``test_flush.py``."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from s321.streams import internals


@pytest.fixture
def make_app() -> Iterator[Callable[..., faust.App]]:
    """Makes apps that never connect (inside a running event loop); the event loop of each
    one's consumer thread, made with the consumer and never started, is closed afterwards."""
    made: list[faust.App] = []

    def make(name: str, **kw: Any) -> faust.App:
        app = faust.App(
            name,
            broker="kafka://127.0.0.1:1",
            key_serializer="raw",
            value_serializer="raw",
            **{"store": "memory://", **kw},
        )
        made.append(app)
        return app

    yield make
    for app in made:
        thread = getattr(app._consumer, "_thread", None)
        if thread is not None and not thread.thread_loop.is_closed():
            thread.thread_loop.close()


class _Event:
    """Just what a table write reads of the event being processed."""

    def __init__(self, topic: str, partition: int) -> None:
        self.message = SimpleNamespace(topic=topic, partition=partition)


def test_a_table_write_in_an_event_goes_to_its_partition_changelog_and_database(
    tmp_path: Path, make_app: Callable[..., faust.App]
) -> None:
    """``faust.streams._current_event`` and the RocksDB store's ``_db_for_partition``: a write
    made inside ``in_event_of`` is sent to the event's changelog partition and stored in that
    partition's database, where ``partition_db`` reads it (and no other partition's has it);
    outside, Faust sees no current event."""

    async def main() -> tuple[list[int], bytes | None, bytes | None, Any, Any]:
        app = make_app("internals-rocksdb", store="rocksdb://", datadir=str(tmp_path))
        table = app.Table("t", partitions=4, key_type=bytes, value_type=bytes)
        sent: list[int] = []

        def send_soon(*, partition: int, **kw: Any) -> Any:
            sent.append(partition)
            return SimpleNamespace(message=SimpleNamespace(partition=partition))

        table.changelog_topic.send_soon = send_soon  # no broker: record where it would go
        event = _Event("src", 2)
        with internals.in_event_of(event):
            inside = faust.current_event()
            table[b"k"] = b"v"
        outside = faust.current_event()
        assert inside is event
        return (
            sent,
            internals.partition_db(table, 2).get(b"k"),
            internals.partition_db(table, 1).get(b"k"),
            outside,
            table.data,
        )

    sent, here, elsewhere, outside, _ = asyncio.run(main())
    assert sent == [2], "the changelog record goes to the event's partition"
    assert (here, elsewhere) == (b"v", None)
    assert outside is None


def test_a_store_without_partition_databases_has_none(make_app: Callable[..., faust.App]) -> None:
    """``memory://`` keeps no database per partition: ``partition_db`` says so, and the table
    store falls back to Faust's own lookup."""

    async def main() -> Any:
        table = make_app("internals-memory").Table("t", partitions=2)
        return internals.partition_db(table, 0)

    assert asyncio.run(main()) is None


def test_new_offset_is_what_faust_commits_and_can_be_capped(
    make_app: Callable[..., faust.App],
) -> None:
    """The consumer's ``_new_offset``: the offset Faust commits for a partition is the end of
    the first run of acknowledged offsets, worked out by ``_new_offset`` on the instance, so
    ``cap_commits`` lowers it (installed once: a second call changes nothing). The
    acknowledgements above the cap are handed back: once committed, Faust commits nothing more
    while its first acknowledged offset is past the committed one."""

    async def main() -> tuple[Any, ...]:
        consumer = make_app("internals-commit").consumer
        tp = TP("t", 0)

        def ack(*offsets: int) -> None:
            for offset in offsets:
                consumer._acked[tp].append(offset)
                consumer._acked_index[tp].add(offset)

        ack(3, 4, 5, 7)
        uncapped = consumer._filter_committable_offsets([tp])
        asked: list[Any] = []
        limit = 4

        def cap(tp: Any, offset: int | None) -> int | None:
            asked.append((tp, offset))
            return None if offset is None else min(offset, limit)

        internals.cap_commits(consumer, cap)
        internals.cap_commits(consumer, lambda tp, offset: 0)
        ack(8, 9)
        capped = consumer._filter_committable_offsets([tp])
        consumer._committed_offset[tp] = capped[tp]  # as Faust records a commit
        limit = 100  # the batch holding 4 to 9 is finished now
        later = consumer._filter_committable_offsets([tp])
        return uncapped, capped, later, asked

    uncapped, capped, later, asked = asyncio.run(main())
    assert uncapped == {TP("t", 0): 6}
    assert asked[0] == (TP("t", 0), 10), "Faust's own offset, handed to the cap"
    assert capped == {TP("t", 0): 4}
    assert later == {TP("t", 0): 10}, "the acknowledgements above the cap were kept"


@pytest.mark.parametrize(("handed_on", "delivered"), [(False, [5, 6]), (True, [5, 6, 3, 4])])
def test_read_offset_decides_which_fetched_records_are_handed_on(
    handed_on: bool, delivered: list[int], make_app: Callable[..., faust.App]
) -> None:
    """The consumer's ``_read_offset``: Faust's fetch loop drops a fetched record below the
    last offset it handed on (as after a seek back), reading the mapping through ``[]``; with
    ``hand_on_every_record`` every record is handed on, and ``fetch_position`` still shows the
    last one."""

    async def main() -> tuple[list[int], int | None]:
        consumer = make_app("internals-read").consumer
        if handed_on:
            internals.hand_on_every_record(consumer)
        tp = TP("t", 0)
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        got: list[int] = []

        async def callback(message: Any) -> None:
            got.append(message.offset)

        async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Any]]:
            for offset in (5, 6, 3, 4):  # 3 and 4 fetched again after a seek back
                yield tp, SimpleNamespace(offset=offset, topic="t", key=None, value=None)
            fetcher._stopped.set()

        consumer.callback = callback
        consumer.getmany = getmany
        await consumer._drain_messages(fetcher)
        return got, internals.fetch_position(consumer, tp)

    got, position = asyncio.run(main())
    assert got == delivered
    assert position == delivered[-1]


def test_records_are_handed_over_in_line_unless_the_hand_over_must_wait(
    make_app: Callable[..., faust.App],
) -> None:
    """The consumer's ``wait_first``, as Faust's fetch loop calls it per record: with
    ``hand_over_in_line`` a hand-over that finishes without waiting never reaches mode's
    ``wait_first`` (no tasks); one that waits goes on there, finishing in order, and one
    still waiting when the flow is suspended (a rebalance) is cancelled, as before."""

    async def main() -> tuple[list[int], list[int], list[int]]:
        consumer = make_app("internals-in-line").consumer
        internals.hand_on_every_record(consumer)
        original = consumer.wait_first
        through_mode: list[int] = []

        async def counted(*coros: Any, timeout: Any = None) -> Any:
            through_mode.append(len(coros))
            return await original(*coros, timeout=timeout)

        consumer.wait_first = counted
        internals.hand_over_in_line(consumer)
        tp = TP("t", 0)
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        got: list[int] = []
        cancelled: list[int] = []
        loop = asyncio.get_running_loop()

        async def callback(message: Any) -> None:
            if message.offset in (2, 3):  # these must wait (say, for room in a queue)
                gate = loop.create_future()
                if message.offset == 2:
                    loop.call_later(0.01, gate.set_result, None)
                else:  # a rebalance suspends the flow while it waits
                    loop.call_later(0.01, consumer.suspend_flow.set)
                try:
                    await gate
                except asyncio.CancelledError:
                    cancelled.append(message.offset)
                    raise
            got.append(message.offset)

        async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Any]]:
            for offset in (0, 1, 2, 3):
                yield tp, SimpleNamespace(offset=offset, topic="t", key=None, value=None)
            consumer.suspend_flow.clear()
            yield tp, SimpleNamespace(offset=4, topic="t", key=None, value=None)
            fetcher._stopped.set()

        consumer.callback = callback
        consumer.getmany = getmany
        await consumer._drain_messages(fetcher)
        return got, cancelled, through_mode

    got, cancelled, through_mode = asyncio.run(main())
    assert got == [0, 1, 2, 4]
    assert cancelled == [3]
    assert through_mode == [2, 2]  # only the two that had to wait went through mode


def test_recovery_remaining_counts_changelog_records_left_to_read(
    make_app: Callable[..., faust.App],
) -> None:
    """``app.tables.recovery.active_remaining_total()``: the changelog records active tables
    have still to read (highwater minus offset read, summed)."""

    async def main() -> tuple[int, int]:
        app = make_app("internals-recovery")
        before = internals.recovery_remaining(app)
        recovery = app.tables.recovery
        recovery.active_highwaters[TP("c", 0)] = 10
        recovery.active_offsets[TP("c", 0)] = 4
        recovery.active_highwaters[TP("c", 1)] = 3
        recovery.active_offsets[TP("c", 1)] = 3
        return before, internals.recovery_remaining(app)

    assert asyncio.run(main()) == (0, 6)


def test_highwater_of_a_partition_not_assigned_here_is_none() -> None:
    """aiokafka's ``highwater`` and ``last_stable_offset`` assert the partition is assigned
    (Faust calls one or the other): ``internals.highwater`` turns that into None."""

    async def main() -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
        try:
            tp = TopicPartition("t", 0)
            for method in (consumer.highwater, consumer.last_stable_offset):
                with pytest.raises(AssertionError):
                    method(tp)
            assert internals.highwater(SimpleNamespace(highwater=consumer.highwater), tp) is None
        finally:
            await consumer.stop()

    asyncio.run(main())


def test_a_worker_spinner_puts_the_root_logger_at_debug(make_app: Callable[..., faust.App]) -> None:
    """A Faust worker's ``spinner``: while it has one, the worker's root-logger hook puts the
    logger at DEBUG (every debug call in faust and aiokafka is then handled); without it the
    level stays."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app = make_app("internals-spinner")
        levels = []
        for worker in (
            faust.Worker(app, loglevel="WARNING", quiet=True),
            internals.without_spinner(faust.Worker(app, loglevel="WARNING", quiet=True)),
        ):
            logger = logging.getLogger(f"internals-spinner-{len(levels)}")
            logger.addHandler(logging.NullHandler())
            logger.setLevel(logging.WARNING)
            worker.on_setup_root_logger(logger, logging.WARNING)
            levels.append(logger.level)
    finally:
        loop.close()
        asyncio.set_event_loop(None)
    assert levels == [logging.DEBUG, logging.WARNING]


def test_stop_hard_ends_the_process_at_once() -> None:
    """``os._exit``: the process ends with the code given, and no ``finally`` block or exit
    hook runs (one could commit offsets on the way out)."""
    script = (
        "import atexit\n"
        "from s321.streams.internals import stop_hard\n"
        "atexit.register(print, 'exit hook')\n"
        "try:\n"
        "    stop_hard(70)\n"
        "finally:\n"
        "    print('finally')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (70, "")
