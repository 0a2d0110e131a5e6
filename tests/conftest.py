"""Shared fixtures: the real Kafka broker and Redis, started once per test session.

A test that takes ``kafka_bootstrap``, ``kafka``, ``redis_url`` or ``new_topic`` runs against the real
servers; the session starts them (or reuses ones already answering on the configured ports)
and stops only what it started. If a server cannot be started, the test fails and says why:
it is never skipped.
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from s321.devtools.stack import RegistryService, SecureKafkaService, Stack
from s321.kafka_config import KafkaClientConfig
from s321.settings import Settings


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[Stack]:
    """The local stack, up for the whole session."""
    s = Stack.from_settings(settings)
    try:
        started = s.up()
    except Exception as exc:  # the reason must reach the reader, not a bare traceback
        pytest.fail(f"could not start the local Kafka/Redis stack: {exc}", pytrace=False)
    yield s
    s.down(only=started)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: Stack, settings: Settings) -> str:
    return settings.kafka_bootstrap


@pytest.fixture(scope="session")
def kafka(stack: Stack, settings: Settings) -> KafkaClientConfig:
    """How s321's clients reach the session's broker (the settings' security, if any)."""
    return settings.kafka()


@pytest.fixture(scope="session")
def redis_url(stack: Stack, settings: Settings) -> str:
    return settings.redis_url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the stack's Redis, closed after the test (a socket left to the garbage
    collector is an unclosed-resource warning, an error in this suite)."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def _slug(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", request.node.name)[:60].strip("-")


@pytest.fixture
def unique(request: pytest.FixtureRequest) -> str:
    """A name no other test uses: the test's name plus a random suffix."""
    return f"{_slug(request)}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def group_id(unique: str) -> str:
    """A consumer group of this test's own."""
    return f"g-{unique}"


NewTopic = Callable[..., str]


@pytest.fixture
def new_topic(kafka_bootstrap: str, unique: str) -> Iterator[NewTopic]:
    """Create topics of this test's own: ``new_topic(partitions=3, config={...}) -> name``."""
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin import NewTopic as KNewTopic

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    made: list[str] = []

    def make(partitions: int = 1, config: dict[str, str] | None = None, name: str = "") -> str:
        topic = f"t-{name or 'x'}-{unique}-{len(made)}"
        fut = admin.create_topics(
            [KNewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})]
        )[topic]
        fut.result(timeout=30)
        made.append(topic)
        return topic

    yield make
    if made:
        for fut in admin.delete_topics(made).values():
            fut.result(timeout=30)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the real servers as ``broker``, so ``-m 'not broker'`` works."""
    real = {"stack", "kafka_bootstrap", "kafka", "redis_url", "new_topic", "secure_kafka"}
    for item in items:
        if real & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_own_redis(
    port: int,
    directory: Path,
    *options: str,
    url: str = "",
    **client_options: Any,
) -> subprocess.Popen[bytes]:
    """A redis-server of a test's own (no persistence), answering PING; the test stops it.

    ``options`` are further server options (``--requirepass``, ``--tls-port``...); with them,
    ``url`` and ``client_options`` say how to PING it (default: plain, no password)."""
    import time

    import redis

    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis.from_url(url or f"redis://127.0.0.1:{port}/0", **client_options)
    for _ in range(200):
        try:
            client.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the test's own redis-server did not start")


@pytest.fixture(scope="session")
def schema_registry(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryService]:
    """A real schema registry (Confluent-compatible API) of the session's own, on a free
    loopback port; its ``url`` is what ``S321_SCHEMA_REGISTRY_URL`` is set to."""
    cfg = replace(
        Stack.from_settings(settings).cfg,
        data_dir=tmp_path_factory.mktemp("registry"),
        registry_port=free_port(),
        timeout_s=180.0,
    )
    service = RegistryService(cfg)
    try:
        service.start()
    except Exception as exc:
        pytest.fail(f"could not start the schema registry: {exc}", pytrace=False)
    yield service
    service.stop()


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive loopback ports nothing listens on right now."""
    from s321.devtools.stack import port_open

    for _ in range(50):
        first = free_port()
        if first + count < 65536 and not any(port_open(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


@pytest.fixture(scope="session")
def secure_kafka(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureKafkaService]:
    """A secured broker of the session's own (SASL_SSL with SCRAM, mutual TLS, ACLs
    enforced) on free loopback ports, with its own data directory; stopped afterwards."""
    cfg = replace(
        Stack.from_settings(settings).cfg,
        data_dir=tmp_path_factory.mktemp("secure-stack"),
        secure_port=_free_ports(3),
        kafka_heap="512m",
        timeout_s=180.0,
    )
    service = SecureKafkaService(cfg)
    try:
        service.start()
    except Exception as exc:
        pytest.fail(f"could not start the secured Kafka broker: {exc}", pytrace=False)
    yield service
    service.stop()
