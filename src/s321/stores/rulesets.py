"""Rule sets in Redis: publish a validated version, and let running workers pick it up.

Keys: ``<prefix>ruleset:v:<version>`` holds the file's text and format (a hash), and
``<prefix>ruleset:current`` names the version in force, switched with one ``SET`` after the
version is written; a notification goes to ``<prefix>ruleset:changed``. Versions are
immutable. A set that fails validation is refused by :meth:`RulesetStore.publish` and, should
one reach Redis another way, by :class:`RulesetWatcher`, which keeps the running set.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import redis

from s321.errors import ConfigError
from s321.rules.ruleset import Ruleset, default_ruleset, parse_ruleset

__all__ = ["RulesetStore", "RulesetWatcher"]

_log = logging.getLogger(__name__)


def _text(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class RulesetStore:
    """Publishes and reads rule-set versions in one Redis database."""

    def __init__(self, client: redis.Redis, prefix: str = "") -> None:
        self._r = client
        self._prefix = prefix
        self.pointer = f"{prefix}ruleset:current"
        self.channel = f"{prefix}ruleset:changed"

    def _key(self, version: str) -> str:
        return f"{self._prefix}ruleset:v:{version}"

    def publish_file(self, path: Path) -> Ruleset:
        """Validate a rule-set file and publish it (see :meth:`publish`)."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        return self.publish(text, "json" if path.suffix == ".json" else "toml", str(path))

    def publish(self, text: str, fmt: str = "toml", name: str = "rule set") -> Ruleset:
        """Validate, store as a new version and make it current; ConfigError if refused."""
        ruleset = parse_ruleset(text, name, fmt)
        key = self._key(ruleset.version)
        doc = {"text": text, "format": fmt}
        existing = {_text(k): _text(v) for k, v in self._r.hgetall(key).items()}
        if existing and existing != doc:
            raise ConfigError(
                f"{name}: version {ruleset.version!r} is already published with "
                "other content; raise the version"
            )
        if not existing:
            self._r.hset(key, mapping=doc)  # type: ignore[arg-type]  # dict[str, str] is a valid mapping
        self._r.set(self.pointer, ruleset.version)
        self._r.publish(self.channel, ruleset.version)
        return ruleset

    def current_version(self) -> str | None:
        v = self._r.get(self.pointer)
        return None if v is None else _text(v)

    def read(self, version: str) -> Ruleset:
        """Parse (and so validate) one stored version."""
        raw = {_text(k): _text(v) for k, v in self._r.hgetall(self._key(version)).items()}
        if "text" not in raw:
            raise ConfigError(f"rule set version {version!r} is not in Redis")
        return parse_ruleset(raw["text"], f"rule set {version}", raw.get("format", "toml"))


class RulesetWatcher:
    """The rule set in force for a worker; :meth:`poll` between batches picks up new versions.

    Starts from ``initial`` (the packaged default if None). A published version that fails
    validation is logged once and ignored; the running set stays. Redis trouble keeps the
    running set too.
    """

    def __init__(
        self, store: RulesetStore, initial: Ruleset | None = None, interval_s: float = 2.0
    ) -> None:
        self._store = store
        self.ruleset = initial or default_ruleset()
        self.interval_s = interval_s
        self.last_error: str | None = None
        #: True while the last poll could not reach Redis (the running set stays in force)
        self.unreachable = False
        self._rejected: str | None = None
        self._next = 0.0

    def poll(self) -> bool:
        """Check the pointer now; swap in a new valid version if it moved. True if swapped."""
        try:
            version = self._store.current_version()
            self.unreachable = False
            if version is None or version in (self.ruleset.version, self._rejected):
                if self.last_error is not None and self.last_error.startswith("redis"):
                    self.last_error = None
                return False
            ruleset = self._store.read(version)
        except redis.RedisError as exc:
            self.last_error = f"redis unavailable: {type(exc).__name__}"
            self.unreachable = True
            return False
        except ConfigError as exc:
            self._rejected = version
            self.last_error = str(exc)
            _log.error("rule set %s refused, keeping %s: %s", version, self.ruleset.version, exc)
            return False
        self.ruleset = ruleset
        self.last_error = None
        _log.info("rule set: now version %s", ruleset.version)
        return True

    def maybe_poll(self) -> bool:
        """:meth:`poll` if at least ``interval_s`` passed since the last one (call it often)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval_s
        return self.poll()
