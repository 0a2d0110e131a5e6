"""The order of the steps that make a batch durable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest
from s321.streams.commit import BatchCommit


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
