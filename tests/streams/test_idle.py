"""When a partition is idle, and the event time an idle partition proposes."""

from __future__ import annotations

from s321.streams.idle import Idleness


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_partition_is_idle_once_no_input_came_for_idle_after_s() -> None:
    """Counted from its last input record, or from its assignment here if none came since; a
    partition never seen here is not idle."""
    clock = _Clock()
    idle = Idleness(idle_after_s=5.0, clock=clock)
    idle.assigned([0, 1])
    clock.now += 4
    idle.input(1)
    clock.now += 2
    assert (idle.idle(0), idle.idle(1), idle.idle(7)) == (True, False, False)
    clock.now += 4
    assert idle.idle(1)


def test_the_proposal_moves_on_with_the_wall_time_since_the_last_input() -> None:
    """Until ``idle_after_s`` has passed since the last input anywhere, the newest event time
    as is; then moved on by ``speedup`` × all the time since that input."""
    clock = _Clock()
    idle = Idleness(idle_after_s=5.0, speedup=10.0, clock=clock)
    idle.input(0)
    clock.now += 5
    assert idle.proposal(1_000) == 1_000
    clock.now += 1
    assert idle.proposal(1_000) == 1_000 + 60_000
