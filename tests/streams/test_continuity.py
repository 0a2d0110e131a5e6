"""The agent's check that it sees every offset of its input partitions, in order."""

from __future__ import annotations

import time

from s321.streams.continuity import Continuity

TP = ("s321.manifest.v1", 0)


def _run(c: Continuity, offsets: list[int]) -> list[str]:
    return [c.check(TP, o) for o in offsets]


def test_offsets_in_order_are_processed() -> None:
    c = Continuity()
    c.start(TP, 5)
    assert _run(c, [5, 6, 7]) == ["process"] * 3
    assert c.expected(TP) == 8


def test_a_partition_never_started_accepts_its_first_offset() -> None:
    c = Continuity()
    assert _run(c, [40, 41]) == ["process", "process"]


def test_missing_offsets_are_read_again_and_nothing_is_processed_twice() -> None:
    """Faust dropped 7..9: the agent seeks back to 7, skips what was already queued after the
    jump, processes 7..12 once each when they come again, and skips the repeat of 5..6."""
    c = Continuity()
    c.start(TP, 5)
    assert _run(c, [5, 6]) == ["process", "process"]
    assert c.check(TP, 10) == "rewind"
    assert c.expected(TP) == 7
    c.sought(TP, 10)
    assert _run(c, [11, 12]) == ["skip", "skip"]  # queued before the seek took effect
    assert _run(c, [7, 8, 9, 10, 11, 12]) == ["process"] * 6
    assert _run(c, [6]) == ["skip"]


def test_the_first_record_of_an_assignment_may_not_skip_the_committed_ones() -> None:
    """The scale-out loss: no commit yet, records 0..7 dropped, the first one seen is 8."""
    c = Continuity()
    c.start(TP, 0)
    assert c.check(TP, 8) == "rewind"
    c.sought(TP, 8)
    assert _run(c, [0, 1]) == ["process", "process"]


def test_a_gap_the_seek_back_brings_again_is_checked_then_accepted() -> None:
    """Offset 7 is a transaction marker: after the seek back to 7, 8 comes first again. That
    is a ``gap`` (the agent asks the broker, whose first record from 7 on is 8) and 8 is then
    accepted."""
    c = Continuity()
    c.start(TP, 7)
    assert c.check(TP, 8) == "rewind"
    c.sought(TP, 8)
    assert c.check(TP, 8) == "gap"
    c.accept(TP, 8)
    assert _run(c, [8, 9]) == ["process", "process"]


def test_records_dropped_again_after_the_seek_back_are_not_skipped_past() -> None:
    """After the seek back to 7, 9 comes first (7 and 8 were dropped once more): a ``gap``
    the broker will not confirm, so the agent seeks back again; 7 is still expected."""
    c = Continuity()
    c.start(TP, 7)
    assert c.check(TP, 10) == "rewind"
    c.sought(TP, 10)
    assert c.check(TP, 9) == "gap"
    c.sought(TP, 9)
    assert c.expected(TP) == 7
    assert c.check(TP, 11) == "skip"
    assert c.check(TP, 10) == "gap", "the first jump is still remembered"


def test_a_lost_seek_is_made_again() -> None:
    """After a seek back to 7, records after the jump keep coming: the seek was lost (Faust
    seeks at rebalances too), so once ``reseek_after_s`` has passed the answer is to rewind
    again."""
    c = Continuity(reseek_after_s=0.05)
    c.start(TP, 7)
    assert c.check(TP, 10) == "rewind"
    c.sought(TP, 10)
    assert c.check(TP, 11) == "skip"
    time.sleep(0.06)
    assert c.check(TP, 12) == "rewind"
    c.sought(TP, 12)
    assert c.check(TP, 13) == "skip"
    assert _run(c, [7, 8, 9, 10, 11, 12, 13]) == ["process"] * 7


def test_commits_wait_until_a_batch_is_finished() -> None:
    """Offsets handed to the agent may be committed only once their batch is finished (state
    written, outputs acknowledged): Faust acknowledges a whole batch when the agent stops in
    the middle of it."""
    c = Continuity()
    c.start(TP, 5)
    assert c.committable(TP) == 5
    assert _run(c, [5, 6, 7]) == ["process"] * 3
    assert c.committable(TP) == 5, "the batch is still being processed"
    c.finished([TP])
    assert c.committable(TP) == 8


def test_forgetting_a_revoked_partition_resets_it() -> None:
    c = Continuity()
    c.start(TP, 5)
    c.forget(TP)
    assert c.expected(TP) is None
    assert c.check(TP, 99) == "process"
    c.start(TP, 3)
    assert c.check(TP, 3) == "process"


def test_a_commit_never_passes_the_first_unfinished_offset() -> None:
    """Faust would commit the end of what it acknowledged (a whole batch when the agent stops
    in the middle of it): the cap holds it at the first offset not finished, leaves lower
    offsets and "nothing to commit" as they are, and commits nothing for a partition not
    started here (the agent never processed a record of it)."""
    c = Continuity()
    c.start(TP, 5)
    assert _run(c, [5, 6, 7]) == ["process"] * 3
    c.finished([TP])
    assert _run(c, [8, 9]) == ["process"] * 2
    assert c.cap(TP, 10) == 8, "8 and 9 are still being processed"
    assert c.cap(TP, 7) == 7
    assert c.cap(TP, None) is None
    assert c.cap(("other", 0), 42) is None, "a partition not started here commits nothing"
