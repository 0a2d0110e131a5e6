"""Reference data in Redis: atomic version switch, watcher swap, and a Redis outage."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from s321.errors import ConfigError
from s321.refdata import read_directory
from s321.rules import default_ruleset
from s321.stores.refdata import RefdataStore, RefdataWatcher
from s321.stores.rulesets import RulesetStore, RulesetWatcher
from tests.conftest import free_port, start_own_redis

FIXTURE = Path(__file__).parents[1] / "unit" / "test_rules_fixture"


def _copy(tmp: Path, version: str) -> Path:
    d = tmp / version
    shutil.copytree(FIXTURE, d)
    (d / "manifest.json").write_text(json.dumps({"version": version, "description": "t"}))
    return d


def test_load_switches_pointer_and_watcher_swaps(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    """Loading a new version moves the pointer and the watcher's next poll swaps it in."""
    store = RefdataStore(redis.Redis.from_url(redis_url), prefix=f"{unique}:")
    store.load_directory(_copy(tmp_path, "v1"))
    watcher = RefdataWatcher(store)
    assert watcher.poll()
    assert watcher.snapshot.version == "v1"
    assert not watcher.stale
    store.load_directory(_copy(tmp_path, "v2"))
    assert watcher.poll()
    assert watcher.snapshot.version == "v2"
    assert watcher.snapshot.has_watchlist


def test_same_version_with_other_content_is_refused(
    redis_url: str, unique: str, tmp_path: Path
) -> None:
    """A version name already loaded with different content cannot be overwritten."""
    store = RefdataStore(redis.Redis.from_url(redis_url), prefix=f"{unique}:")
    d = _copy(tmp_path, "v1")
    store.load(read_directory(d))
    (d / "filers.csv").write_text("filer_code,risk,note\nZZZ,SUSPENDED,x\n")
    with pytest.raises(ConfigError, match="already loaded"):
        store.load(read_directory(d))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own, on a free port, that the test may stop."""
    port = free_port()
    proc = start_own_redis(port, tmp_path)
    yield port, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def test_outage_keeps_last_snapshot_marks_stale_and_recovers(
    own_redis: tuple[int, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """While Redis is down the last snapshot stays and is stale; it recovers by itself."""
    port, proc = own_redis
    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
    store = RefdataStore(client)
    store.load_directory(_copy(tmp_path, "v1"))
    watcher = RefdataWatcher(store)
    watcher.poll()
    proc.terminate()
    proc.wait(10)
    assert not watcher.poll()
    assert watcher.stale
    assert watcher.snapshot.version == "v1"
    proc2 = start_own_redis(port, tmp_path / "v1")
    try:
        store.load_directory(_copy(tmp_path, "v2"))
        assert watcher.poll()
        assert not watcher.stale
        assert watcher.snapshot.version == "v2"
    finally:
        proc2.terminate()
        proc2.wait(10)


def test_ruleset_publish_and_watcher_refuses_bad_set(redis_url: str, unique: str) -> None:
    """A published rule set reaches the watcher; an invalid one is refused, the old stays."""
    store = RulesetStore(redis.Redis.from_url(redis_url), prefix=f"{unique}:")
    watcher = RulesetWatcher(store)
    text = default_ruleset().text.replace('version = "2026.11.1"', 'version = "t-2"')
    store.publish(text)
    assert watcher.poll()
    assert watcher.ruleset.version == "t-2"
    with pytest.raises(ConfigError, match="R13"):
        store.publish('version = "t-3"\n[rules.R13]\ncondition = "freight > 1"\n')
    assert not watcher.poll()
    assert watcher.ruleset.version == "t-2"
