"""Reference data in Redis: versioned key sets, one pointer key, and a polling watcher.

Keys (``prefix`` lets tests and deployments share a Redis):

* ``<prefix>refdata:v:<version>``: a hash, one field per table (JSON), written completely
  before anyone is pointed at it;
* ``<prefix>refdata:current``: the current version's name, switched with one ``SET``.

A reader GETs the pointer and then reads that version's hash, so it sees the old or the new
version, never a mix. Versions are immutable: loading a version name that exists with other
content is refused (give the new data a new version).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import redis

from s321.errors import ConfigError
from s321.refdata.loader import RefTables, read_directory
from s321.refdata.snapshot import ReferenceSnapshot

__all__ = ["RefdataStore", "RefdataWatcher"]

_log = logging.getLogger(__name__)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class RefdataStore:
    """Writes and reads reference-data versions in one Redis database."""

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._r = client
        self.pointer = f"{prefix}refdata:current"
        self.channel = f"{prefix}refdata:changed"
        self._prefix = prefix

    def _key(self, version: str) -> str:
        return f"{self._prefix}refdata:v:{version}"

    def load(self, tables: RefTables) -> str:
        """Store ``tables`` under its version and make it current; returns the version."""
        docs = tables.to_json()
        key = self._key(tables.version)
        existing = {_text(k): _text(v) for k, v in self._r.hgetall(key).items()}
        if existing and existing != docs:
            raise ConfigError(
                f"reference data version {tables.version!r} is already loaded "
                "with other content; give the new data a new version"
            )
        if not existing:
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(key, mapping=docs)  # type: ignore[arg-type]  # dict[str, str] is a valid mapping
            pipe.execute()
        self._r.set(self.pointer, tables.version)
        self._r.publish(self.channel, tables.version)
        return tables.version

    def load_directory(self, directory: Path) -> str:
        """Validate a reference-data directory and load it (see :meth:`load`)."""
        return self.load(read_directory(directory))

    def current_version(self) -> str | None:
        v = self._r.get(self.pointer)
        return None if v is None else _text(v)

    def read(self, version: str) -> RefTables:
        """The tables of one stored version; ConfigError if it is not there."""
        raw = self._r.hgetall(self._key(version))
        if not raw:
            raise ConfigError(f"reference data version {version!r} is not in Redis")
        return RefTables.from_json({_text(k): _text(v) for k, v in raw.items()})


class RefdataWatcher:
    """Keeps a current :class:`ReferenceSnapshot`, polling the pointer key between batches.

    :meth:`poll` costs one GET when nothing changed. While Redis cannot be reached the last
    good snapshot stays in force and :attr:`stale` is True (pass it to ``evaluate`` so each
    evaluation records it); the next successful poll clears it, with no restart.
    """

    def __init__(
        self, store: RefdataStore, initial: ReferenceSnapshot | None = None, interval_s: float = 2.0
    ) -> None:
        self._store = store
        self.snapshot = initial or ReferenceSnapshot.empty()
        self.stale = initial is None
        #: True while the last poll could not reach Redis (as opposed to a refused version)
        self.unreachable = False
        self.interval_s = interval_s
        self._next = 0.0
        self._rejected: str | None = None

    def poll(self) -> bool:
        """Check the pointer now; swap in a new version if it moved. True if swapped."""
        try:
            version = self._store.current_version()
            self.unreachable = False
            if version is None or version == self.snapshot.version:
                self.stale = False
                return False
            if version == self._rejected:
                self.stale = True
                return False
            snapshot = ReferenceSnapshot(self._store.read(version))
        except redis.RedisError as exc:
            self.unreachable = True
            if not self.stale:
                _log.warning(
                    "reference data: Redis unavailable (%s); keeping version %s",
                    type(exc).__name__,
                    self.snapshot.version,
                )
            self.stale = True
            return False
        except ConfigError as exc:
            _log.error("reference data: cannot use the current version: %s", exc)
            self._rejected = version
            self.stale = True
            return False
        self.snapshot = snapshot
        self.stale = False
        _log.info("reference data: now version %s", snapshot.version)
        return True

    def maybe_poll(self) -> bool:
        """:meth:`poll` if at least ``interval_s`` passed since the last one (call it often)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval_s
        return self.poll()
