"""Rule sets in Redis: publish a validated version, and let running workers pick it up.

A version's hash (:mod:`s321.stores.versioned`, kind ``ruleset``) holds the file's ``text``
and its ``format`` (``toml`` or ``json``). A set that fails validation is refused by
:meth:`RulesetStore.publish` and, should one reach Redis another way, by
:class:`RulesetWatcher`, which keeps the running set.
"""

from __future__ import annotations

from pathlib import Path

from s321.errors import ConfigError
from s321.rules.ruleset import Ruleset, default_ruleset, parse_ruleset
from s321.stores.versioned import VersionedStore, VersionWatcher

__all__ = ["RulesetStore", "RulesetWatcher"]


class RulesetStore(VersionedStore[Ruleset]):
    """Publishes and reads rule-set versions in one Redis database."""

    kind = "ruleset"
    label = "rule set"

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
        self._store(
            ruleset.version,
            {"text": text, "format": fmt},
            f"{name}: version {ruleset.version!r} is already published with other content; "
            "raise the version",
        )
        return ruleset

    def _parse(self, version: str, fields: dict[str, str]) -> Ruleset:
        if "text" not in fields:
            raise ConfigError(f"rule set version {version!r} has no text in Redis")
        return parse_ruleset(fields["text"], f"rule set {version}", fields.get("format", "toml"))


class RulesetWatcher(VersionWatcher[Ruleset]):
    """The rule set in force for a worker, from ``initial`` (the packaged default if None)."""

    def __init__(
        self, store: RulesetStore, initial: Ruleset | None = None, interval_s: float = 2.0
    ) -> None:
        super().__init__(store, initial or default_ruleset(), interval_s=interval_s)

    @property
    def ruleset(self) -> Ruleset:
        """The rule set in force."""
        return self.current
