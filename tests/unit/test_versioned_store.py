"""Versioned documents and their watcher: one staleness meaning for rule sets and refdata."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from s321.errors import ConfigError
from s321.refdata import ReferenceSnapshot
from s321.rules import default_ruleset
from s321.stores.refdata import RefdataStore, RefdataWatcher
from s321.stores.rulesets import RulesetStore, RulesetWatcher
from tests.unit.test_rules import SNAP


class _Redis:
    """The few Redis commands the stores use, in memory; ``up = False`` fails every one."""

    def __init__(self) -> None:
        self.up = True
        self.strings: dict[str, str] = {}
        self.hashes: dict[str, dict[str, str]] = {}
        self.published: list[tuple[str, str]] = []

    def _check(self) -> None:
        if not self.up:
            raise redis.ConnectionError("down")

    def get(self, key: str) -> bytes | None:
        self._check()
        v = self.strings.get(key)
        return None if v is None else v.encode()

    def set(self, key: str, value: str) -> None:
        self._check()
        self.strings[key] = value

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        self._check()
        return {k.encode(): v.encode() for k, v in self.hashes.get(key, {}).items()}

    def hset(self, key: str, mapping: dict[str, str]) -> None:
        self._check()
        self.hashes.setdefault(key, {}).update(mapping)

    def publish(self, channel: str, message: str) -> None:
        self._check()
        self.published.append((channel, message))


def _ruleset_text(version: str) -> str:
    return default_ruleset().text.replace(
        f'version = "{default_ruleset().version}"', f'version = "{version}"'
    )


def _rules() -> tuple[_Redis, RulesetStore, RulesetWatcher]:
    client = _Redis()
    store = RulesetStore(client, "p:")  # type: ignore[arg-type]
    return client, store, RulesetWatcher(store, interval_s=0)


def test_keys_pointer_and_channel_follow_the_layout() -> None:
    """A version is a hash under ``<prefix><kind>:v:<version>``, the pointer names it and the
    channel is told; publishing it again with the same content only moves the pointer."""
    client, store, _ = _rules()
    store.publish(_ruleset_text("r-1"))
    assert client.hashes["p:ruleset:v:r-1"]["format"] == "toml"
    assert client.strings["p:ruleset:current"] == "r-1"
    assert client.published == [("p:ruleset:changed", "r-1")]
    store.publish(_ruleset_text("r-1"))
    assert store.current_version() == "r-1"
    with pytest.raises(ConfigError, match="already published with other content"):
        store.publish(_ruleset_text("r-1") + "\n# changed\n")


def test_missing_version_is_refused() -> None:
    """Reading a version that is not stored is a ConfigError naming it."""
    _, store, _ = _rules()
    with pytest.raises(ConfigError, match="'nope' is not in Redis"):
        store.read("nope")


def test_rule_set_watcher_stale_while_unreachable_or_refused() -> None:
    """The rule set in force is stale while Redis cannot be reached and while the current
    version is one the watcher refused; it is fresh again once the pointer names a set in
    force or one it can swap in."""
    client, store, watcher = _rules()
    assert not watcher.stale
    store.publish(_ruleset_text("r-1"))
    assert watcher.poll()
    assert (watcher.ruleset.version, watcher.stale, watcher.unreachable) == ("r-1", False, False)
    client.up = False
    assert not watcher.poll()
    assert (watcher.ruleset.version, watcher.stale, watcher.unreachable) == ("r-1", True, True)
    client.up = True
    assert not watcher.poll()
    assert (watcher.stale, watcher.unreachable) == (False, False)
    client.hashes["p:ruleset:v:bad"] = {"text": 'version = "bad"\n[rules.R13]\nx = 1\n'}
    client.strings["p:ruleset:current"] = "bad"
    assert not watcher.poll()
    assert (watcher.ruleset.version, watcher.stale, watcher.unreachable) == ("r-1", True, False)
    assert not watcher.poll()  # refused once, not parsed again
    assert watcher.stale
    store.publish(_ruleset_text("r-2"))
    assert watcher.poll()
    assert (watcher.ruleset.version, watcher.stale) == ("r-2", False)


def test_refdata_watcher_has_the_same_staleness() -> None:
    """Reference data is stale the same way, and also before the first poll of a watcher
    that started without a snapshot."""
    client = _Redis()
    store = RefdataStore(client, "p:")  # type: ignore[arg-type]
    watcher = RefdataWatcher(store, interval_s=0)
    assert watcher.stale
    assert watcher.snapshot.version == ReferenceSnapshot.empty().version
    store.load(SNAP.tables)
    assert watcher.poll()
    assert (watcher.snapshot.version, watcher.stale) == (SNAP.version, False)
    client.up = False
    assert not watcher.poll()
    assert (watcher.snapshot.version, watcher.stale, watcher.unreachable) == (
        SNAP.version,
        True,
        True,
    )
    client.up = True
    client.hashes["p:refdata:v:broken"] = {"manifest": "{}"}
    client.strings["p:refdata:current"] = "broken"
    assert not watcher.poll()
    assert (watcher.snapshot.version, watcher.stale, watcher.unreachable) == (
        SNAP.version,
        True,
        False,
    )
    assert not RefdataWatcher(store, SNAP).stale


def test_refresh_polls_at_once_when_redis_answers_again() -> None:
    """``refresh`` waits for the interval, except when Redis answers again after the last
    poll could not reach it."""
    client = _Redis()
    store = RulesetStore(client, "p:")  # type: ignore[arg-type]
    watcher = RulesetWatcher(store, interval_s=3600)
    polls: list[Any] = []
    original = watcher.poll

    def counted() -> bool:
        polls.append(None)
        return original()

    watcher.poll = counted  # type: ignore[method-assign]
    watcher.refresh()
    watcher.refresh()
    assert len(polls) == 1  # the second waits for the interval
    client.up = False
    watcher.poll()
    assert watcher.unreachable
    client.up = True
    store.publish(_ruleset_text("r-9"))
    watcher.refresh(redis_answers=True)
    assert watcher.ruleset.version == "r-9"
    assert not watcher.stale
