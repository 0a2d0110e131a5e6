"""s321 on a secured broker: SASL_SSL with SCRAM, mutual TLS, and ACLs enforced.

The session's secured broker (``secure_kafka``) has a super user ``admin``; each test makes
users of its own and grants them exactly the ACLs under test. A refused client must fail with
a message that says why, and no message, printed setting or log may contain a password.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from s321 import topics
from s321.admin import ensure_topics
from s321.devtools.stack import SecureKafkaService, worker_acls
from s321.errors import ConfigError
from s321.kafka_config import KafkaClientConfig, as_env, confluent
from s321.ops.lag import measure_lag
from s321.settings import Secret
from tests.integration.test_worker import WorkerRun, _check, _produce, _traffic


def _user(broker: SecureKafkaService, unique: str) -> KafkaClientConfig:
    """A new SCRAM user of this test's own, with no ACL yet."""
    name = f"u-{unique}"[:60]
    password = f"pw-{uuid.uuid4().hex}"
    broker.add_user(name, password)
    return replace(broker.client(), username=name, password=Secret(password))


def _authorizer_denials(broker: SecureKafkaService, principal: str) -> list[str]:
    log = broker.home / "logs" / "server.log"
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if f"Principal = {principal} is Denied" in line
    ]


def _wait_for_topics(kafka: KafkaClientConfig, names: list[str], run: WorkerRun) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(confluent(kafka))
    deadline = time.monotonic() + 90
    while not set(names) <= set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, run.log_tails()
        time.sleep(0.5)


@pytest.fixture(params=["at_least_once", "exactly_once"])
def secure_run(
    request: pytest.FixtureRequest,
    secure_kafka: SecureKafkaService,
    redis_url: str,
    unique: str,
    tmp_path: Path,
) -> Iterator[tuple[WorkerRun, KafkaClientConfig, str]]:
    """A worker run on the secured broker under each processing guarantee: the test's reader
    and producer are ``admin``; the worker is a user of its own holding exactly
    :func:`worker_acls`."""
    import redis

    guarantee = request.param
    worker = _user(secure_kafka, unique)
    acls = worker_acls(f"User:{worker.username}", unique, f"{unique}.", guarantee == "exactly_once")
    secure_kafka.grant(acls)
    run = WorkerRun(secure_kafka.client(), redis_url, unique, tmp_path)
    yield run, worker, guarantee
    for proc in run.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{unique}.*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_worker_decides_over_sasl_ssl_with_exactly_the_documented_acls(
    secure_run: tuple[WorkerRun, KafkaClientConfig, str], secure_kafka: SecureKafkaService
) -> None:
    run, worker, guarantee = secure_run
    traffic = _traffic(100, seed=21)
    # the worker creates its topics itself: its Create ACL is exercised too
    run.start(extra_env=as_env(worker), extra_args=("--guarantee", guarantee))
    _wait_for_topics(run.kafka, [topics.topic_name(s, run.prefix) for s in topics.ALL], run)
    _produce(run.kafka, run.prefix, traffic.events)
    _check(run, traffic, timeout_s=120, quiet_s=20)
    assert _authorizer_denials(secure_kafka, f"User:{worker.username}") == []
    logs = "\n".join(log.read_text(errors="replace") for log in run.logs)
    assert worker.password.get() not in logs


def test_wrong_password_is_refused_clearly_and_never_shown(
    secure_kafka: SecureKafkaService, unique: str
) -> None:
    wrong = replace(secure_kafka.client(), password=Secret(f"not-it-{unique}"))
    t0 = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        ensure_topics(wrong, f"{unique}.", 1)
    message = str(caught.value)
    assert "SASL authentication error" in message
    assert "S321_KAFKA_SASL_PASSWORD" in message
    assert wrong.password.get() not in message
    assert time.monotonic() - t0 < 10  # refused at once, not after the metadata timeout


def test_plaintext_client_on_the_tls_listener_is_refused_clearly(
    secure_kafka: SecureKafkaService, unique: str
) -> None:
    plain = KafkaClientConfig(secure_kafka.address)
    with pytest.raises(ConfigError) as caught:
        measure_lag(plain, "g", [f"{unique}-none"])
    assert "closed by peer" in str(caught.value)
    assert "S321_KAFKA_SECURITY_PROTOCOL" in str(caught.value)


def test_client_that_does_not_trust_the_ca_is_refused_clearly(
    secure_kafka: SecureKafkaService, unique: str
) -> None:
    untrusting = replace(secure_kafka.client(), ca_file="")  # the system's CAs only
    with pytest.raises(ConfigError) as caught:
        ensure_topics(untrusting, f"{unique}.", 1)
    assert "certificate verify failed" in str(caught.value)
    assert "S321_KAFKA_SSL_CA_FILE" in str(caught.value)


def test_a_principal_without_acls_cannot_read_the_decisions(
    secure_kafka: SecureKafkaService, unique: str
) -> None:
    from confluent_kafka import Consumer, KafkaError, Producer

    admin = secure_kafka.client()
    decisions = topics.topic_name(topics.DECISIONS, f"{unique}.")
    ensure_topics(admin, f"{unique}.", 1, (topics.DECISIONS,))
    producer = Producer(confluent(admin))
    producer.produce(decisions, key=b"k", value=b"a decision")
    assert producer.flush(30) == 0
    nosy = _user(secure_kafka, unique)
    # its own consumer group it may use: the decisions topic is all it lacks
    secure_kafka.grant(
        [
            AclBinding(ResourceType.GROUP, f"g-{unique}", ResourcePatternType.LITERAL,
                       f"User:{nosy.username}", "*", AclOperation.READ, AclPermissionType.ALLOW)
        ]
    )  # fmt: skip
    consumer = Consumer(
        {**confluent(nosy), "group.id": f"g-{unique}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([decisions])
    errors: list[int] = []
    records = []
    try:
        deadline = time.monotonic() + 20
        while KafkaError.TOPIC_AUTHORIZATION_FAILED not in errors and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                errors.append(msg.error().code())
            else:
                records.append(msg)
    finally:
        consumer.close()
    assert records == []
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in errors


def test_mutual_tls_client_is_known_by_its_certificate(
    secure_kafka: SecureKafkaService, unique: str
) -> None:
    prefix = f"{unique}."
    ensure_topics(secure_kafka.client(), prefix, 2, topics.INPUTS)
    mtls = secure_kafka.mtls_client()
    with pytest.raises(ConfigError, match="ACL"):
        ensure_topics(mtls, prefix, 2, topics.INPUTS)  # not yet allowed to see them
    secure_kafka.grant(
        [
            AclBinding(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED,
                       "User:CN=s321-client", "*", AclOperation.DESCRIBE,
                       AclPermissionType.ALLOW)
        ]
    )  # fmt: skip
    assert set(ensure_topics(mtls, prefix, 2, topics.INPUTS).values()) == {2}
    without_key = replace(mtls, cert_file="", key_file="")
    with pytest.raises(ConfigError):
        ensure_topics(without_key, prefix, 2, topics.INPUTS)


def _s321(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from s321.cli import main; main()", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_secrets_are_never_printed(secure_kafka: SecureKafkaService, unique: str) -> None:
    password = f"kafka-secret-{unique}"
    redis_password = f"redis-secret-{unique}"
    registry_password = f"registry-secret-{unique}"
    env = {
        **as_env(replace(secure_kafka.client(), password=Secret(password))),
        "S321_REDIS_URL": f"redis://s321:{redis_password}@127.0.0.1:1/0",
        "S321_SCHEMA_REGISTRY_AUTH": f"s321:{registry_password}",
    }
    shown = _s321("settings", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "S321_KAFKA_SASL_PASSWORD" in shown.stdout
    assert "redis://s321:********@127.0.0.1:1/0" in shown.stdout
    lag = _s321("lag", env=env)
    assert lag.returncode == 2
    assert "SASL authentication error" in lag.stderr
    for secret in (password, redis_password, registry_password):
        for text in (shown.stdout, shown.stderr, lag.stdout, lag.stderr):
            assert secret not in text
