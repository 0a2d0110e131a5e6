"""Reference data in Redis: versioned key sets, one pointer key, and a polling watcher.

A version's hash (:mod:`s321.stores.versioned`, kind ``refdata``) holds one field per table,
each a JSON document (:meth:`s321.refdata.loader.RefTables.to_json`).
"""

from __future__ import annotations

from pathlib import Path

from s321.refdata.loader import RefTables, read_directory
from s321.refdata.snapshot import ReferenceSnapshot
from s321.stores.versioned import VersionedStore, VersionWatcher

__all__ = ["RefdataStore", "RefdataWatcher"]


class RefdataStore(VersionedStore[ReferenceSnapshot]):
    """Writes and reads reference-data versions in one Redis database."""

    kind = "refdata"
    label = "reference data"

    def load(self, tables: RefTables) -> str:
        """Store ``tables`` under its version and make it current; returns the version."""
        self._store(
            tables.version,
            tables.to_json(),
            f"reference data version {tables.version!r} is already loaded "
            "with other content; give the new data a new version",
        )
        return tables.version

    def load_directory(self, directory: Path) -> str:
        """Validate a reference-data directory and load it (see :meth:`load`)."""
        return self.load(read_directory(directory))

    def _parse(self, version: str, fields: dict[str, str]) -> ReferenceSnapshot:
        return ReferenceSnapshot(RefTables.from_json(fields))


class RefdataWatcher(VersionWatcher[ReferenceSnapshot]):
    """The reference snapshot in force for a worker, from ``initial``; without one it starts
    from an empty snapshot, stale until the first poll."""

    def __init__(
        self, store: RefdataStore, initial: ReferenceSnapshot | None = None, interval_s: float = 2.0
    ) -> None:
        super().__init__(
            store,
            initial or ReferenceSnapshot.empty(),
            stale=initial is None,
            interval_s=interval_s,
        )

    @property
    def snapshot(self) -> ReferenceSnapshot:
        """The reference snapshot in force."""
        return self.current
