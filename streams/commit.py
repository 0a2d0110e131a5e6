"""The agent's batches: how they are formed (:func:`batches`), and the steps that make one
durable, in the order that keeps a crash from losing anything (:class:`BatchCommit`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol

__all__ = ["BatchCommit", "batches"]


class _Sized(Protocol):
    def qsize(self) -> int: ...


async def batches(
    taken: AsyncIterator[list[Any]], waiting: _Sized, size: int, steady: Callable[[], bool]
) -> AsyncIterator[list[Any]]:
    """The batches to process from ``taken`` (Faust's take: up to ``size`` records, or what
    came within its window): a take cut short by its window while the records that would fill
    the batch are already ``waiting`` is held and joined by the next, as long as the assignment
    is ``steady``. Live, a batch is what came within the window (small, for latency); in
    catch-up it fills (large, for throughput), even when the window is shorter than the time it
    takes to hand ``size`` records to the stream."""
    held: list[Any] = []
    async for events in taken:
        held.extend(events)
        if len(held) < size and waiting.qsize() >= size - len(held) and steady():
            continue
        yield held
        held = []


class _Flushes(Protocol):
    async def flush(self) -> None: ...


class _Applies(Protocol):
    def apply(self) -> None: ...


class _Finishes(Protocol):
    def finished(self, tps: Iterable[Any]) -> None: ...


class BatchCommit:
    """Makes a processed batch durable, then lets its input offsets be committed.

    1. ``outputs.flush()``: what the batch sent outside Faust's transactions (the side
       producer) is acknowledged by the broker first, so no offset commits ahead of what it
       handed on, and a crash can repeat a decision (same id) but never lose one;
    2. ``state.apply()``: then the batch's table writes, so the local store and its changelog
       never record an output that was not sent;
    3. ``changelog.flush()``: the changelog records of those writes are handed on: at least
       once, acknowledged by the broker (sent by the side producer); exactly once, handed to
       Faust's producer, into this batch's transactions (Faust commits a transaction without
       flushing its producer buffer);
    4. ``offsets.finished(tps)``: only now may Faust's commits reach these inputs' offsets.

    A step that raises leaves the later ones undone.
    """

    def __init__(self, outputs: _Flushes, changelog: _Flushes, offsets: _Finishes) -> None:
        self.outputs = outputs
        self.changelog = changelog
        self.offsets = offsets

    async def make_durable(self, state: _Applies, tps: Iterable[Any]) -> None:
        """Make the batch that wrote ``state`` and read from ``tps`` durable (steps above)."""
        await self.outputs.flush()  # 1. outputs acknowledged
        state.apply()  # 2. then the state recording them
        await self.changelog.flush()  # 3. and its changelog records
        self.offsets.finished(tps)  # 4. then the offsets may be committed
