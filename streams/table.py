"""The shipment table as the processor sees it: a str -> bytes mapping, and a batch's writes
held back until what they record has been sent.

A write reaches the partition's local store and the table's changelog topic, which Faust
restores the table from. Exactly once, through Faust's own table write (its changelog records
join the partition's transaction). At least once, the worker writes the local store itself
and sends the changelog record through its own producer (a C client, as for the outputs),
then records the offset the broker acknowledged as the store's persisted offset, as Faust's
own write would: a worker restarting on this store reads the changelog from there on.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any, Protocol

from faust.types import TP

from .internals import in_event_of, partition_db


class _Changelog(Protocol):
    """Sends the table's changelog records and reports the offsets acknowledged."""

    def send_changelog(
        self, topic: str, key: bytes, value: bytes | None, partition: int
    ) -> None: ...

    def changelog_acked(self) -> dict[tuple[str, int], int]:
        """The highest offset acknowledged per changelog partition since the last call."""
        ...

    async def flush(self) -> None:
        """Return once the broker has acknowledged every record sent."""
        ...


class _TableStore(MutableMapping[str, bytes]):
    """The Faust table seen as a str -> bytes mapping (keys are stored as UTF-8 bytes).

    ``changelog``: at least once, the producer the table's changelog records go through (see
    the module's docstring); None: through Faust's own table write."""

    def __init__(self, table: Any, changelog: _Changelog | None = None) -> None:
        self.table = table
        self._changelog = changelog
        self._topic: str = table.changelog_topic.get_topic_name()

    def read(self, key: str, partition: int) -> bytes | None:
        """The value of ``key``, which lives in ``partition`` (the processor reads only keys of
        the partition whose record it handles): one RocksDB read in that partition's store.
        Faust's own lookup, outside its stream's event context, asks every partition's store
        twice (contains, then get)."""
        db = partition_db(self.table, partition)
        if db is None:
            return self.get(key)  # type: ignore[no-any-return]  # bytes, as stored
        value: bytes | None = db.get(key.encode())  # the raw serializer stores bytes as is
        return value

    def write(self, key: str, value: bytes | None, partition: int, event: Any) -> None:
        """Write ``key`` (None: delete it, if present) in ``partition`` and on its changelog;
        ``event``: a record of that partition, for Faust's own write."""
        if self._changelog is None:
            with in_event_of(event):
                if value is not None:
                    self[key] = value
                elif self.read(key, partition) is not None:
                    del self[key]  # Faust sends the tombstone
            return
        raw = key.encode()
        db = partition_db(self.table, partition)
        local = self.table.data if db is None else db  # memory://: the store itself
        if value is not None:
            local[raw] = value
        elif local.get(raw) is not None:
            del local[raw]
        else:
            return  # never stored: no tombstone
        self._changelog.send_changelog(self._topic, raw, value, partition)

    async def flush(self) -> None:
        """Return once the changelog records sent so far are acknowledged, their offsets
        recorded as the local store's persisted offsets (Faust records those of its own
        writes itself)."""
        if self._changelog is None:
            return
        await self._changelog.flush()
        for (topic, partition), offset in self._changelog.changelog_acked().items():
            self.table.data.set_persisted_offset(TP(topic, partition), offset)

    def __getitem__(self, key: str) -> bytes:
        value = self.table[key.encode()]
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]  # raw serializer: bytes in, bytes out

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key.encode(), default)

    def __setitem__(self, key: str, value: bytes) -> None:
        self.table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        for key in self.table:
            yield key.decode() if isinstance(key, bytes) else str(key)

    def __len__(self) -> int:
        return len(self.table)

    def items(self) -> Iterator[tuple[str, bytes]]:  # type: ignore[override]  # a generator suffices
        for key, value in self.table.items():
            yield (key.decode() if isinstance(key, bytes) else str(key)), value


class _Staged(MutableMapping[str, bytes]):
    """A batch's table writes and deletions, held back until what they record has been sent.

    Reads see the held writes first, so the processor sees its own changes (a deleted key is
    absent). Each write remembers the partition of the record that made it: a table's changelog
    record (a tombstone for a deletion) must go to that partition, so :meth:`apply` writes each
    one as if inside that partition's last record."""

    def __init__(self, base: _TableStore) -> None:
        self.base = base
        self.writes: dict[str, tuple[bytes | None, int]] = {}  # None: deleted
        self.partition = 0  # of the record being processed
        self._last_of: dict[int, Any] = {}  # partition -> its last event in the batch

    def at(self, event: Any) -> None:
        """``event``'s record is being processed: reads and writes from now on are its
        partition's."""
        self.partition = event.message.partition
        self._last_of[self.partition] = event

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]  # bytes, as stored

    def get(self, key: str, default: Any = None) -> Any:
        held = self.writes.get(key)
        if held is not None:
            return default if held[0] is None else held[0]
        value = self.base.read(key, self.partition)
        return default if value is None else value

    def __setitem__(self, key: str, value: bytes) -> None:
        # a key written again in the batch keeps the partition of its first write (the
        # decisions made when the batch ends write states of every partition it touched)
        held = self.writes.get(key)
        self.writes[key] = (value, self.partition if held is None else held[1])

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        held = self.writes.get(key)
        self.writes[key] = (None, self.partition if held is None else held[1])

    def __iter__(self) -> Iterator[str]:
        return iter(self.base)

    def __len__(self) -> int:
        return len(self.base)

    def apply(self) -> None:
        """Write the held writes to the table and delete the deleted keys, each in its
        partition (and on its changelog: a deleted key's record is a tombstone)."""
        for key, (value, partition) in self.writes.items():
            self.base.write(key, value, partition, self._last_of[partition])
        self.writes.clear()
