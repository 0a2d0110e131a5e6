"""When input last came: an idle partition's event time moves on with the wall clock."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["Idleness"]


class Idleness:
    """Wall times of the last input record, overall and per partition (or of the partition's
    assignment here, if no record came since).

    A partition is idle when none came for ``idle_after_s``; the tick then proposes, as its
    event time, the newest one seen here moved on by ``speedup`` × the wall time since the
    last input anywhere."""

    def __init__(
        self,
        idle_after_s: float,
        speedup: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_after_s = idle_after_s
        self.speedup = speedup
        self._clock = clock
        self._last_input = clock()
        self._last_seen: dict[int, float] = {}  # partition -> its last input (or assignment)

    def assigned(self, partitions: Iterable[int]) -> None:
        """``partitions`` were just assigned here: each is idle only ``idle_after_s`` from now."""
        now = self._clock()
        for partition in partitions:
            self._last_seen[partition] = now

    def input(self, partition: int) -> None:
        """An input record of ``partition`` was processed."""
        self._last_seen[partition] = self._last_input = self._clock()

    def idle(self, partition: int) -> bool:
        """No input record of ``partition`` for ``idle_after_s`` (a partition never seen is
        not idle)."""
        now = self._clock()
        return now - self._last_seen.get(partition, now) > self.idle_after_s

    def proposal(self, newest_ms: int) -> int:
        """The event time an idle partition proposes, ``newest_ms`` being the newest seen
        here: moved on by ``speedup`` × the wall time since the last input, once that is
        longer than ``idle_after_s``."""
        quiet = self._clock() - self._last_input
        if quiet > self.idle_after_s:
            return newest_ms + int(quiet * self.speedup * 1000)
        return newest_ms
