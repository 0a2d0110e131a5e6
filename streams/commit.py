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
    catch-up it fills (large, for throughput), even when the take's window is shorter than the
    time it takes to hand ``size`` records to the stream."""
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
    def reached(self, tps: Iterable[Any]) -> dict[Any, int]: ...

    def finished(self, reached: dict[Any, int]) -> None: ...


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
    4. ``offsets.finished(...)``: only now may Faust's commits reach these inputs' offsets.

    A step that raises leaves the later ones undone.

    ``acknowledged`` (at least once, where the changelog records go through the outputs'
    producer: records the offsets of those a flush acknowledged): a batch followed at once by
    another (``more``: records were waiting behind it) leaves steps 3 and 4 to the next
    batch's step 1, whose flush acknowledges them with that batch's outputs: one round trip to
    the broker per batch instead of two. Until then the batch's offsets are not finished, the
    state a crash between steps 2 and 3 leaves anyway (its inputs are read again and find
    their state written, which they write again; see :mod:`s321.core.processor`). A batch with
    nothing waiting behind it finishes at once; the timer, a rebalance and a shutdown
    :meth:`settle` a batch left waiting.
    """

    def __init__(
        self,
        outputs: _Flushes,
        changelog: _Flushes,
        offsets: _Finishes,
        acknowledged: Callable[[], None] | None = None,
    ) -> None:
        self.outputs = outputs
        self.changelog = changelog
        self.offsets = offsets
        self.acknowledged = acknowledged
        self._unfinished: dict[Any, int] | None = None  # a batch whose steps 3 and 4 wait

    async def make_durable(self, state: _Applies, tps: Iterable[Any], more: bool = False) -> None:
        """Make the batch that wrote ``state`` and read from ``tps`` durable (steps above);
        ``more``: another batch follows at once."""
        reached = self.offsets.reached(tps)
        await self.outputs.flush()  # 1. outputs acknowledged (and an earlier changelog's)
        if self._unfinished is not None and self.acknowledged is not None:
            self.acknowledged()  # 3. of the batch before, acknowledged by that flush
            self.offsets.finished(self._unfinished)  # 4. of the batch before
            self._unfinished = None
        state.apply()  # 2. then the state recording them
        if self.acknowledged is not None and more:
            self._unfinished = reached  # 3. and 4. ride on the next batch's flush
            return
        await self.changelog.flush()  # 3. its changelog records
        self.offsets.finished(reached)  # 4. then the offsets may be committed

    async def settle(self) -> None:
        """Finish a batch whose steps 3 and 4 wait for the next one: its changelog records
        acknowledged, its offsets freed for a commit."""
        waiting = self._unfinished
        if waiting is None:
            return
        await self.changelog.flush()
        self.offsets.finished(waiting)  # finishing a batch twice changes nothing
        if self._unfinished is waiting:  # the agent may have moved on meanwhile
            self._unfinished = None
