"""The pure core (``s321.core``) loads no Kafka client and no Redis client."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import s321.core

CLIENTS = ("confluent_kafka", "aiokafka", "faust", "kafka", "redis")

_PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def _loaded_after_importing(modules: list[str]) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *modules], capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout))


def _clients_in(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in CLIENTS)


def test_every_core_module_imports_without_a_kafka_or_redis_client() -> None:
    """Every module under s321/core, imported in a fresh interpreter, leaves no Kafka or Redis
    client module in ``sys.modules`` (directly or through what it imports)."""
    core = [m.name for m in pkgutil.iter_modules(s321.core.__path__, "s321.core.")]
    assert {"s321.core.processor", "s321.core.state", "s321.core.routing"} <= set(core)
    loaded = _loaded_after_importing(core)
    assert set(core) <= loaded
    assert _clients_in(loaded) == []


def test_the_probe_sees_a_client_when_one_is_imported() -> None:
    """The check can fail: importing a Redis-backed store does show up."""
    loaded = _loaded_after_importing(["s321.stores.rulesets"])
    assert "redis" in _clients_in(loaded)
