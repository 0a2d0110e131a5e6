"""The stack explains what is missing instead of failing obscurely."""

from __future__ import annotations

from pathlib import Path

import pytest

from s321.devtools.stack import RedisService, StackConfig
from s321.errors import MissingToolError
from s321.settings import Settings


def _cfg(tmp_path: Path) -> StackConfig:
    return StackConfig(
        data_dir=tmp_path,
        cache_dir=tmp_path / "cache",
        kafka_version="4.1.1",
        kafka_port=1,
        controller_port=2,
        redis_port=1,
    )


def test_missing_redis_server_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no redis-server on PATH, starting Redis raises an error that says how to install it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="apt-get install -y redis-server"):
        RedisService(_cfg(tmp_path)).start()


def test_missing_maven_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no mvn on PATH and no cached jars, fetching Kafka raises an error naming Maven."""
    from s321.devtools.stack import KafkaService

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="maven"):
        KafkaService(_cfg(tmp_path)).fetch()


def test_settings_from_env_moves_clients_with_ports() -> None:
    """Setting only the local ports also points the Kafka and Redis clients at them."""
    s = Settings.from_env({"S321_KAFKA_PORT": "29092", "S321_REDIS_PORT": "26379"})
    assert s.kafka_bootstrap == "127.0.0.1:29092"
    assert s.redis_url == "redis://127.0.0.1:26379/0"
    assert s.kafka_port == 29092


def test_secrets_are_masked_when_printed() -> None:
    """A schema-registry credential never appears in the printed settings."""
    s = Settings.from_env({"S321_SCHEMA_REGISTRY_AUTH": "user:hunter2"})
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s.describe())
    assert s.schema_registry_auth.get() == "user:hunter2"


def test_cluster_id_never_reads_as_an_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """A random id that would start with "-" is drawn again: one in 64 used to break `format`."""
    import uuid

    from s321.devtools import stack

    draws = iter([uuid.UUID(bytes=b"\xf8" + b"\0" * 15), uuid.UUID(bytes=b"\x01" * 16)])
    monkeypatch.setattr(stack.uuid, "uuid4", lambda: next(draws))
    cid = stack.new_cluster_id()
    assert cid == "AQEBAQEBAQEBAQEBAQEBAQ"
    monkeypatch.undo()
    assert all(not stack.new_cluster_id().startswith("-") for _ in range(2000))
