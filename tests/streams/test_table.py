"""A batch's table writes: held back, read back, then written each in its partition."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import faust
from s321.streams.table import _Staged


class _Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = SimpleNamespace(topic="src", partition=partition, offset=offset)


class _Base:
    """A table store that records reads and, for each write, the event Faust would see."""

    def __init__(self, values: dict[str, bytes]) -> None:
        self.values = values
        self.reads: list[tuple[str, int]] = []
        self.written: list[tuple[str, bytes, Any]] = []

    def read(self, key: str, partition: int) -> bytes | None:
        self.reads.append((key, partition))
        return self.values.get(key)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.written.append((key, value, faust.current_event()))


def test_writes_are_read_back_and_applied_each_in_its_partitions_last_event() -> None:
    """Reads see the batch's own writes first, then the table in the partition at hand; when
    applied, each write is made inside the last event of the partition that first wrote it."""
    base = _Base({"old": b"0"})
    staged = _Staged(base)  # type: ignore[arg-type]
    first0, first1, last0 = _Event(0, 10), _Event(1, 20), _Event(0, 11)
    staged.at(first0)
    staged["a"] = b"1"
    assert staged.get("old") == b"0"
    staged.at(first1)
    staged["b"] = b"2"
    staged["a"] = b"3"  # keeps partition 0, of its first write
    assert (staged["a"], staged.get("missing")) == (b"3", None)
    staged.at(last0)
    assert base.written == [], "nothing written before apply"
    staged.apply()
    assert base.reads == [("old", 0), ("missing", 1)]
    assert base.written == [("a", b"3", last0), ("b", b"2", first1)]
    assert staged.writes == {}
    assert faust.current_event() is None


class _DeletingBase(_Base):
    def __delitem__(self, key: str) -> None:
        del self.values[key]
        self.written.append((key, b"<deleted>", faust.current_event()))


def test_a_deletion_is_held_read_as_absent_and_applied_as_a_table_delete_in_its_partition() -> None:
    """A key deleted in the batch reads as absent at once; applied, it is deleted from the table
    (Faust then writes its tombstone) inside the last event of its partition. A key written and
    deleted within the batch, never in the table, is not deleted from it."""
    base = _DeletingBase({"old": b"0", "kept": b"1"})
    staged = _Staged(base)  # type: ignore[arg-type]
    first0, first1 = _Event(0, 10), _Event(1, 20)
    staged.at(first0)
    del staged["old"]
    assert staged.get("old") is None
    assert "old" not in staged
    staged.at(first1)
    staged["new"] = b"2"
    del staged["new"]
    try:
        del staged["never"]
    except KeyError:
        pass
    else:
        raise AssertionError("deleting an absent key must raise KeyError")
    staged.apply()
    assert base.written == [("old", b"<deleted>", first0)]
    assert base.values == {"kept": b"1"}
