"""How the agent's batches are formed, and the order of the steps that make one durable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from s321.streams.commit import BatchCommit, batches


class _Step:
    """A fake collaborator that records each call in a shared log."""

    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def _record(self, what: str) -> None:
        self.calls.append(f"{self.name}.{what}")
        if self.fail:
            raise RuntimeError(f"{self.name} failed")

    async def flush(self) -> None:
        await asyncio.sleep(0)  # a real flush yields to the event loop
        self._record("flush")

    def apply(self) -> None:
        self._record("apply")

    def finished(self, tps: Iterable[Any]) -> None:
        self._record(f"finished({sorted(tps)})")


def test_the_four_steps_run_in_order() -> None:
    """Outputs flushed, then the state written, then its changelog records handed on, then
    the offsets freed for a commit; each once (the same order under either guarantee: only
    what flushes the changelog differs)."""
    calls: list[str] = []
    commit = BatchCommit(
        _Step("outputs", calls), _Step("changelog", calls), _Step("offsets", calls)
    )
    asyncio.run(commit.make_durable(_Step("state", calls), {("t", 1), ("t", 0)}))
    assert calls == [
        "outputs.flush",
        "state.apply",
        "changelog.flush",
        "offsets.finished([('t', 0), ('t', 1)])",
    ]


@pytest.mark.parametrize(
    ("failing", "done"),
    [
        ("outputs", ["outputs.flush"]),
        ("state", ["outputs.flush", "state.apply"]),
        ("changelog", ["outputs.flush", "state.apply", "changelog.flush"]),
    ],
)
def test_a_failed_step_leaves_the_offsets_unfinished(failing: str, done: list[str]) -> None:
    """A step that raises stops the sequence: no later step runs, so the batch's offsets are
    never freed for a commit."""
    calls: list[str] = []

    def step(name: str) -> _Step:
        return _Step(name, calls, fail=name == failing)

    commit = BatchCommit(step("outputs"), step("changelog"), step("offsets"))
    with pytest.raises(RuntimeError, match=failing):
        asyncio.run(commit.make_durable(step("state"), [("t", 0)]))
    assert calls == done


class _Queue:
    """A stand-in for the stream's queue: how many records wait, as each take is handed on."""

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes

    def qsize(self) -> int:
        return self.sizes.pop(0)


async def _takes(*takes: list[int]) -> AsyncIterator[list[int]]:
    for t in takes:
        yield t


def _batches(takes: list[list[int]], waiting: list[int], steady: bool = True) -> list[list[int]]:
    async def main() -> list[list[int]]:
        queue = _Queue(waiting)
        out = [b async for b in batches(_takes(*takes), queue, 5, lambda: steady)]
        assert not queue.sizes, "the queue was looked at once per take not yet full"
        return out

    return asyncio.run(main())


def test_a_take_cut_short_while_records_wait_is_joined_by_the_next() -> None:
    """Catch-up: the window ended the take at 2 and then 2 records while enough to fill the
    batch were waiting; they are held until it is full. Live (fewer waiting than would fill
    it, or none), a take is a batch."""
    assert _batches([[1, 2], [3, 4], [5, 6], [7]], waiting=[9, 3, 0]) == [[1, 2, 3, 4, 5, 6], [7]]
    assert _batches([[1], [2, 3]], waiting=[0, 2]) == [[1], [2, 3]]
    assert _batches([[1, 2, 3, 4, 5]], waiting=[]) == [[1, 2, 3, 4, 5]], "full: not held"


def test_nothing_is_held_across_a_change_of_assignment() -> None:
    """A rebalance between takes: the batch is processed at once (the agent then starts the
    new assignment before processing it, as for any batch)."""
    assert _batches([[1, 2], [3]], waiting=[9, 9], steady=False) == [[1, 2], [3]]
