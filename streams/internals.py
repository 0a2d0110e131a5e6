"""Every place the worker relies on a private part of Faust or aiokafka, or on behaviour they
do not document. Nothing else in ``streams/`` reads or replaces a private attribute.

Checked against faust-streaming 0.15.3, mode-streaming 0.7.1 and aiokafka 0.14.0 (faust and
aiokafka are pinned to those versions in ``pyproject.toml``). Each touch below has a test in
``tests/streams/test_internals.py`` (the producer buffer's in ``tests/streams/test_flush.py``)
that fails when the library stops behaving as relied on here; read it before upgrading either.

1. :func:`in_event_of` sets ``faust.streams._current_event``. A table write goes to the
   changelog partition and the RocksDB of the record being processed, which Faust finds in
   that context variable; exactly once, the batch's writes are applied after the batch, each
   as if inside the last record of its own partition (at least once the worker writes the
   partition's RocksDB itself, see 2).
2. :func:`partition_db` calls the RocksDB store's ``_db_for_partition``. The processor reads
   only keys of the partition whose record it handles: one RocksDB read in that partition's
   database, where Faust's own lookup outside a stream's event context asks every
   partition's database twice (contains, then get). At least once, the table's writes go
   to that database too (their changelog records are sent by the worker, see
   ``streams/table.py``).
3. :func:`flush_fully` replaces the producer buffer's ``put``, ``_send_pending`` and
   ``flush`` and reads its ``pending`` queue and ``should_stop``. Faust's own flush gives up
   after 100 ms without a record sent, so a commit could cover inputs whose changelog
   records were still in the buffer.
4. :func:`cap_commits` wraps the consumer's ``_new_offset``, the offset each commit reaches
   (there is no public hook): commits never pass the first offset whose batch is finished.
5. :func:`hand_on_every_record` replaces the consumer's ``_read_offset`` with
   :class:`_HandedOn` and :func:`fetch_position` reads it: Faust drops fetched records below
   that offset, which after a seek back are the very records the seek was for.
6. :func:`recovery_remaining` calls ``app.tables.recovery.active_remaining_total()``, on the
   concrete table manager only (the metrics of table recovery).
7. :func:`highwater` relies on aiokafka's ``highwater`` (and ``last_stable_offset``)
   asserting that the partition is assigned: an ``AssertionError`` means "not here any more".
8. :func:`without_spinner` sets a Faust worker's ``spinner`` to None: with a spinner, Faust
   puts the root logger at DEBUG, so every debug call in faust and aiokafka (several per
   record) builds and handles a log record only for the spinner to drop it.
9. :func:`stop_hard` ends the process with ``os._exit``: no shutdown handler runs, so Faust
   commits nothing on the way out (its graceful stop commits acknowledged offsets).
10. :func:`hand_over_in_line` wraps the consumer's ``wait_first`` (mode's ``Service``) for
    the one call its fetch loop makes per record, ``wait_first(callback(message),
    suspend_flow.wait())``: four tasks made and three cancelled per record, about 27 µs of
    CPU. When the hand-over finishes without waiting (the stream's queue has room, the flow
    is not suspended: nearly always), it is now run in line; when it must wait, the call
    goes on in ``wait_first`` exactly as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from faust.streams import _current_event
from mode.services import WaitResults

__all__ = [
    "cap_commits",
    "fetch_position",
    "flush_fully",
    "hand_on_every_record",
    "hand_over_in_line",
    "highwater",
    "in_event_of",
    "partition_db",
    "recovery_remaining",
    "stop_hard",
    "without_spinner",
]


# 1. faust.streams._current_event


@contextlib.contextmanager
def in_event_of(event: Any) -> Iterator[None]:
    """Table writes inside this block go where they would inside ``event``'s processing: its
    partition's changelog and RocksDB."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


# 2. the RocksDB store's _db_for_partition


def partition_db(table: Any, partition: int) -> Any | None:
    """The database holding ``partition`` of ``table`` (its ``get`` takes the key as stored:
    with the raw serializer, the key's bytes), or None for a store without one database per
    partition (``memory://``)."""
    data = table.data
    if not hasattr(data, "_db_for_partition"):
        return None
    return data._db_for_partition(partition)


# 3. the producer buffer's put, _send_pending, flush, pending and should_stop


def flush_fully(buffer: Any) -> None:
    """Make Faust's producer buffer (where, exactly once, the table's changelog records wait to
    be handed to the Kafka client) flush for real: ``buffer.flush()`` returns once every record
    put in it before the call has been handed on, however slowly they go (records put meanwhile
    are the next flush's), and at shutdown it sends what is left itself.

    Faust flushes this buffer before it commits input offsets, but its own flush gives up as
    soon as no record has been sent for 100 ms (a batch of decisions holding the event loop
    is enough), and so does a flush while its sender is busy with the last record. A commit
    then covers inputs whose state changes were still in the buffer; a worker killed at that
    moment leaves a changelog without them, and its inputs are never read again, so a
    replacement restoring the table from the changelog decides from an older state.

    A record that cannot be handed on (the Kafka client refuses it) stops the process
    (:func:`stop_hard`): the inputs whose state it holds must not be acknowledged, and Faust
    would otherwise lose its sending task and leave every later flush waiting.

    Call it before the buffer starts: its sending task reads ``_send_pending`` once."""
    put_n = sent_n = 0  # records put, records handed on (one sender, in the order put)
    waiting: list[tuple[int, asyncio.Future[None]]] = []  # (records to be handed on, flush)
    put, send = buffer.put, buffer._send_pending

    def put_counted(fut: Any) -> None:
        nonlocal put_n
        put(fut)
        put_n += 1

    async def send_counted(fut: Any) -> None:
        nonlocal sent_n
        try:
            await send(fut)
        except Exception as exc:  # the state it records would never be durable
            logging.getLogger("s321.worker").critical(
                "a table changelog record could not be sent, stopping: %s", type(exc).__name__
            )
            stop_hard(70)
        finally:
            sent_n += 1
            for entry in [w for w in waiting if w[0] <= sent_n]:
                waiting.remove(entry)
                if not entry[1].done():
                    entry[1].set_result(None)

    async def flush() -> None:
        target = put_n
        while sent_n < target:
            if buffer.should_stop:  # its sender takes no more records: send the rest here
                while not buffer.pending.empty():
                    await send_counted(buffer.pending.get_nowait())
                continue
            done = asyncio.get_running_loop().create_future()
            waiting.append((target, done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done, 1.0)

    buffer.put = put_counted
    buffer._send_pending = send_counted
    buffer.flush = flush


# 4. the consumer's _new_offset


def cap_commits(consumer: Any, cap: Callable[[Any, int | None], int | None]) -> None:
    """Each offset Faust's ``consumer`` commits for a partition ``tp`` is ``cap(tp, offset)``,
    where ``offset`` is the one Faust would commit (the end of the first run of acknowledged
    offsets). Once per consumer.

    Working ``offset`` out forgets the acknowledgements it covers, and once it has committed,
    Faust never commits again while its first acknowledged offset is past the committed one:
    the acknowledgements above a lower cap are handed back, or the partition would commit
    nothing more until its next assignment (Faust acknowledges a take the agent holds, and
    records it skipped, before they are finished). Those handed back are all below ``offset``,
    so the cap still bounds what they let through."""
    if getattr(consumer, "_s321_capped", False):
        return
    new_offset = consumer._new_offset

    def capped(tp: Any) -> int | None:
        offset = new_offset(tp)
        limit = cap(tp, offset)
        if offset is not None and (limit is None or limit < offset):
            start = consumer._committed_offset.get(tp) if limit is None else limit
            if start is not None:
                index = consumer._acked_index[tp]
                back = [o for o in range(start, offset) if o not in index]
                consumer._acked[tp][:0] = back  # Faust keeps the list sorted: these come first
                index.update(back)
        return limit

    consumer._new_offset = capped
    consumer._s321_capped = True


# 5. the consumer's _read_offset


class _HandedOn(dict[Any, Any]):
    """Faust's record of the last offset it handed on, per partition (its ``_read_offset``).

    Faust drops every fetched record below that offset, and notes the offsets it jumped as a
    gap to commit as if done. Both go wrong after a seek back: records fetched from the new
    position before the offset is reset are dropped, the very records the seek was for. Here
    a read through ``[]`` (the only way Faust reads it) answers None: every fetched record is
    handed on, and the agent's continuity check skips those already processed. ``get`` still
    returns what was recorded (the stall check watches it move)."""

    def __getitem__(self, tp: Any) -> None:
        return None


def hand_on_every_record(consumer: Any) -> None:
    """Faust's ``consumer`` hands every record it fetches to the agent, even one below the
    last offset it handed on. Call it before the consumer's fetcher starts (the fetcher reads
    the mapping once)."""
    consumer._read_offset = _HandedOn(consumer._read_offset)


def fetch_position(consumer: Any, tp: Any) -> int | None:
    """The last offset of ``tp`` Faust's ``consumer`` handed on (or sought to), if any."""
    offset: int | None = consumer._read_offset.get(tp)
    return offset


# 6. app.tables.recovery.active_remaining_total()


def recovery_remaining(app: Any) -> int:
    """Changelog records the app's active tables have still to read before they are
    recovered."""
    remaining: int = app.tables.recovery.active_remaining_total()
    return remaining


# 7. aiokafka's assertion that a partition is assigned


def highwater(consumer: Any, tp: Any) -> int | None:
    """The end offset of ``tp`` as Faust's ``consumer`` last heard it, or None if not known
    or the partition is no longer assigned here."""
    try:
        end: int | None = consumer.highwater(tp)
    except AssertionError:  # aiokafka's way of saying it is no longer assigned here
        return None
    return end


# 8. the Faust worker's spinner


def without_spinner(worker: Any) -> Any:
    """``worker`` (a ``faust.Worker``) with no terminal spinner, so that the root logger stays
    at the worker's level."""
    worker.spinner = None
    return worker


# 9. os._exit


def stop_hard(code: int) -> NoReturn:
    """End the process at once with ``code``: no exception handler, ``finally`` block or exit
    hook runs, so Faust commits no offset on the way out."""
    os._exit(code)


# 10. the consumer's wait_first, as its fetch loop calls it for each record


class _Resumed:
    """Awaiting it goes on with ``coro``, started already and now waiting for ``pending``
    (what its first step yielded): it hands to the awaiting task what ``coro`` yields, and
    back to ``coro`` what the task sends or throws in (a cancellation, say)."""

    def __init__(self, coro: Any, pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Any:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # handed to the coroutine as it came
                step = coro.throw
                arg: Any = exc
            else:
                step = coro.send
                arg = sent
            try:
                pending = step(arg)
            except StopIteration as done:
                return done.value


def hand_over_in_line(consumer: Any) -> None:
    """Faust's ``consumer`` hands each fetched record to the streams in line, without making
    tasks, whenever the hand-over does not have to wait (see 10 above). Once per consumer."""
    if getattr(consumer, "_s321_in_line", False):
        return
    wait_first = consumer.wait_first
    waits_for_flow = asyncio.Event.wait.__code__
    suspended = consumer.suspend_flow.is_set

    async def in_line(*coros: Any, timeout: Any = None) -> Any:
        if (
            len(coros) != 2
            or timeout is not None
            or getattr(coros[1], "cr_code", None) is not waits_for_flow
            or suspended()
        ):
            return await wait_first(*coros, timeout=timeout)
        handing, flow = coros
        try:
            pending = handing.send(None)  # the hand-over's first step, here and now
        except StopIteration as done:  # finished without waiting: the usual case
            flow.close()
            return WaitResults([handing], [done.value], False)
        except BaseException:
            flow.close()
            raise
        return await wait_first(_Resumed(handing, pending), flow)

    consumer.wait_first = in_line
    consumer._s321_in_line = True
