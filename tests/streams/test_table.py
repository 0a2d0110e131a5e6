"""A batch's table writes: held back, read back, then written each in its partition."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import faust
from s321.streams.internals import in_event_of
from s321.streams.table import _Staged, _TableStore


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

    def write(self, key: str, value: bytes | None, partition: int, event: Any) -> None:
        # as the table store's Faust write does it: in the event's context
        with in_event_of(event):
            if value is not None:
                self[key] = value
            elif self.read(key, partition) is not None:
                del self[key]  # type: ignore[attr-defined]  # the deleting fake has it


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


class _Db(dict[bytes, bytes]):
    """One partition's local database."""

    def put(self, key: bytes, value: bytes) -> None:
        self[key] = value


class _Data:
    """A RocksDB-like store: one database per partition, and its persisted offsets."""

    def __init__(self) -> None:
        self.dbs: dict[int, _Db] = {}
        self.persisted: dict[Any, int] = {}

    def _db_for_partition(self, partition: int) -> _Db:
        return self.dbs.setdefault(partition, _Db())

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp] = offset


class _Table:
    def __init__(self) -> None:
        self.data = _Data()
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: "app-shipments-changelog")


class _Producer:
    """The side producer's changelog half: records sent, and offsets it will acknowledge."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.flushes = 0

    def send_changelog(self, topic: str, key: bytes, value: bytes | None, partition: int) -> None:
        self.sent.append((topic, key, value, partition))

    def changelog_acked(self) -> dict[tuple[str, int], int]:
        acked: dict[tuple[str, int], int] = {}
        for offset, (topic, _, _, partition) in enumerate(self.sent):
            acked[(topic, partition)] = offset
        return acked

    async def flush(self) -> None:
        self.flushes += 1


def test_at_least_once_a_write_goes_to_its_partitions_store_and_the_changelog_directly() -> None:
    """With a changelog producer, a write lands in its partition's local database and is sent
    as a changelog record to that partition; a deletion of a stored key sends a tombstone, of
    a key never stored nothing; the flush records the offsets acknowledged as the store's
    persisted offsets, which a restarted worker resumes the changelog from."""
    table, producer = _Table(), _Producer()
    store = _TableStore(table, changelog=producer)
    store.write("a", b"1", 3, event=None)
    store.write("b", b"2", 5, event=None)
    store.write("a", None, 3, event=None)
    store.write("never", None, 5, event=None)
    assert table.data.dbs == {3: {}, 5: {b"b": b"2"}}
    assert producer.sent == [
        ("app-shipments-changelog", b"a", b"1", 3),
        ("app-shipments-changelog", b"b", b"2", 5),
        ("app-shipments-changelog", b"a", None, 3),
    ]
    assert table.data.persisted == {}, "no offset before the records are acknowledged"
    asyncio.run(store.flush())
    assert producer.flushes == 1
    assert table.data.persisted == {
        faust.types.TP("app-shipments-changelog", 3): 2,
        faust.types.TP("app-shipments-changelog", 5): 1,
    }
    assert store.read("b", 5) == b"2"


def test_exactly_once_a_write_is_fausts_own_in_the_partitions_event() -> None:
    """Without a changelog producer, a write is Faust's table write inside the given event
    (so its changelog record joins that partition's transaction); the flush is Faust's."""
    written: list[tuple[bytes, bytes, Any]] = []

    class _FaustTable(_Table):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            written.append((key, value, faust.current_event()))

        def __delitem__(self, key: bytes) -> None:
            written.append((key, b"<deleted>", faust.current_event()))

    table = _FaustTable()
    table.data._db_for_partition(4).put(b"stored", b"0")
    store = _TableStore(table)
    event = _Event(4, 7)
    store.write("a", b"1", 4, event)
    assert written == [(b"a", b"1", event)]
    # a deletion is Faust's (it sends the tombstone), of a stored key only
    store.write("stored", None, 4, event)
    store.write("never", None, 4, event)
    assert written[1:] == [(b"stored", b"<deleted>", event)]
    asyncio.run(store.flush())  # nothing of its own to flush
