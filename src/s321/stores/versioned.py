"""Versioned documents in Redis, and the watcher that keeps a worker on the current version.

One kind of document (rule sets, reference data) is kept as immutable named versions:

* ``<prefix><kind>:v:<version>``: a hash holding the version's content, written completely
  before anyone is pointed at it;
* ``<prefix><kind>:current``: the name of the version in force, switched with one ``SET``;
* ``<prefix><kind>:changed``: a channel told each new current version.

A reader GETs the pointer and then reads that version's hash, so it sees the old or the new
version, never a mix. Storing a version name again with other content is refused (the new
content needs a new version name); storing it with the same content only moves the pointer.

:class:`VersionWatcher` is what a running worker holds: the version in force, swapped for the
current one when :meth:`~VersionWatcher.poll` finds the pointer moved. A version that cannot be
read or fails validation is refused once and logged; the running version stays in force, as it
does while Redis cannot be reached.

**Staleness.** :attr:`VersionWatcher.stale` is True while the version in force may not be the
one published as current: the last poll could not reach Redis, or the current version was
refused, or the watcher started from a placeholder and has not polled yet. Decisions made
meanwhile say so (``stale_refdata``). :attr:`VersionWatcher.unreachable` is the narrower
"the last poll could not reach Redis": once Redis answers again the worker polls at once
instead of waiting for the next interval.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar, Generic, Protocol, TypeVar

import redis

from s321.errors import ConfigError

__all__ = ["VersionWatcher", "VersionedStore"]

_log = logging.getLogger(__name__)


class _Versioned(Protocol):
    @property
    def version(self) -> str: ...


V = TypeVar("V", bound=_Versioned)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class VersionedStore(Generic[V]):
    """Stores and reads the versions of one kind of document in one Redis database.

    A subclass names its kind (the key segment, and how messages call it) and turns a stored
    hash into a value with :meth:`_parse`."""

    kind: ClassVar[str]
    label: ClassVar[str]

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._r = client
        self._prefix = prefix
        self.pointer = f"{prefix}{self.kind}:current"
        self.channel = f"{prefix}{self.kind}:changed"

    def _key(self, version: str) -> str:
        return f"{self._prefix}{self.kind}:v:{version}"

    def _fields(self, version: str) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self._r.hgetall(self._key(version)).items()}

    def _store(self, version: str, doc: dict[str, str], conflict: str) -> None:
        """Write ``doc`` as ``version`` (unless it is there already with this content), make it
        current and announce it; ConfigError with ``conflict`` if it holds other content."""
        existing = self._fields(version)
        if existing and existing != doc:
            raise ConfigError(conflict)
        if not existing:
            self._r.hset(self._key(version), mapping=doc)  # type: ignore[arg-type]  # dict[str, str] is a valid mapping
        self._r.set(self.pointer, version)
        self._r.publish(self.channel, version)

    def current_version(self) -> str | None:
        """The name of the version in force, or None when none was ever stored."""
        v = self._r.get(self.pointer)
        return None if v is None else _text(v)

    def read(self, version: str) -> V:
        """One stored version, parsed (and so validated); ConfigError if it is not there or
        is not valid."""
        fields = self._fields(version)
        if not fields:
            raise ConfigError(f"{self.label} version {version!r} is not in Redis")
        return self._parse(version, fields)

    def _parse(self, version: str, fields: dict[str, str]) -> V:
        raise NotImplementedError


class VersionWatcher(Generic[V]):
    """The version of one kind in force for a worker; :meth:`poll` between batches swaps in
    the current one. See the module docstring for :attr:`stale` and :attr:`unreachable`."""

    def __init__(
        self,
        store: VersionedStore[V],
        initial: V,
        *,
        stale: bool = False,
        interval_s: float = 2.0,
    ) -> None:
        self._store = store
        self.current = initial
        self.interval_s = interval_s
        #: the version in force may not be the one published as current
        self.stale = stale
        #: the last poll could not reach Redis
        self.unreachable = False
        self._rejected: str | None = None
        self._next = 0.0

    def poll(self) -> bool:
        """Check the pointer now; swap in the current version if it moved and is valid.
        True if swapped."""
        label = self._store.label
        try:
            version = self._store.current_version()
            self.unreachable = False
            if version is None or version == self.current.version:
                self.stale = False
                return False
            if version == self._rejected:
                self.stale = True
                return False
            value = self._store.read(version)
        except redis.RedisError as exc:
            if not self.unreachable:
                _log.warning(
                    "%s: Redis unavailable (%s); keeping version %s",
                    label,
                    type(exc).__name__,
                    self.current.version,
                )
            self.unreachable = True
            self.stale = True
            return False
        except ConfigError as exc:
            _log.error(
                "%s: version %s refused, keeping %s: %s", label, version, self.current.version, exc
            )
            self._rejected = version
            self.stale = True
            return False
        self.current = value
        self.stale = False
        _log.info("%s: now version %s", label, value.version)
        return True

    def maybe_poll(self) -> bool:
        """:meth:`poll` if at least ``interval_s`` passed since the last one (call it often)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval_s
        return self.poll()

    def refresh(self, redis_answers: bool = False) -> None:
        """Poll when due (:meth:`maybe_poll`), or at once when Redis is known to answer again
        (``redis_answers``) and the last poll could not reach it."""
        if redis_answers and self.unreachable:
            self.poll()
        else:
            self.maybe_poll()
