"""Kafka client security settings: one configuration for both client libraries, checked when
made; secrets masked when printed; endpoints on loopback unless told otherwise."""

from __future__ import annotations

import re
import ssl
import urllib.request

import pytest

from s321 import metrics
from s321.cli import cli
from s321.errors import ConfigError
from s321.kafka_config import (
    ClientReport,
    KafkaClientConfig,
    as_env,
    confluent,
    connection_error,
    ssl_context,
)
from s321.settings import Secret, Settings, mask_url

SASL = KafkaClientConfig(
    "b1:9093,b2:9093",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-256",
    username="worker",
    password=Secret("hunter2-secret"),
    ca_file="/etc/ca.pem",
)


def test_plaintext_is_the_bootstrap_alone() -> None:
    assert confluent(KafkaClientConfig("h:1")) == {
        "bootstrap.servers": "h:1",
        "security.protocol": "plaintext",
    }
    assert ssl_context(KafkaClientConfig("h:1")) is None


def test_sasl_ssl_carries_mechanism_credentials_and_ca() -> None:
    assert confluent(SASL) == {
        "bootstrap.servers": "b1:9093,b2:9093",
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "worker",
        "sasl.password": "hunter2-secret",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_mutual_tls_carries_the_client_certificate_and_key() -> None:
    cfg = KafkaClientConfig("h:1", "SSL", cert_file="/c.pem", key_file="/c.key")
    props = confluent(cfg)
    assert props["ssl.certificate.location"] == "/c.pem"
    assert props["ssl.key.location"] == "/c.key"
    assert "sasl.mechanism" not in props


def test_sasl_plaintext_sends_no_tls_settings() -> None:
    cfg = KafkaClientConfig("h:1", "SASL_PLAINTEXT", "PLAIN", "u", Secret("p"), ca_file="/x")
    assert "ssl.ca.location" not in confluent(cfg)
    assert ssl_context(cfg) is None


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"security_protocol": "TLS"}, "S321_KAFKA_SECURITY_PROTOCOL"),
        (
            {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "GSSAPI",
                "username": "u",
                "password": Secret("p"),
            },
            "S321_KAFKA_SASL_MECHANISM",
        ),
        ({"security_protocol": "SASL_SSL", "username": "u"}, "S321_KAFKA_SASL_PASSWORD"),
        ({"security_protocol": "SSL", "cert_file": "/c.pem"}, "S321_KAFKA_SSL_KEY_FILE"),
    ],
)
def test_unusable_combinations_are_refused_when_made(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        KafkaClientConfig("h:1", **kwargs)  # type: ignore[arg-type]


def test_tls_context_verifies_the_broker_and_names_a_missing_ca_file() -> None:
    context = ssl_context(KafkaClientConfig("h:1", "SSL"))
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    with pytest.raises(ConfigError, match=re.escape("S321_KAFKA_SSL_CA_FILE='/no/such/ca.pem'")):
        ssl_context(KafkaClientConfig("h:1", "SSL", ca_file="/no/such/ca.pem"))


def test_settings_build_the_config_and_the_env_gives_it_back() -> None:
    settings = Settings.from_env(
        {
            "S321_KAFKA_BOOTSTRAP": "b1:9093,b2:9093",
            "S321_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "S321_KAFKA_SASL_MECHANISM": "scram-sha-256",
            "S321_KAFKA_SASL_USERNAME": "worker",
            "S321_KAFKA_SASL_PASSWORD": "hunter2-secret",
            "S321_KAFKA_SSL_CA_FILE": "/etc/ca.pem",
        }
    )
    assert settings.kafka() == SASL
    assert Settings.from_env(as_env(SASL)).kafka() == SASL


def test_connection_errors_never_show_the_password() -> None:
    report = ClientReport()
    report.lines.append("SASL authentication error: bad password hunter2-secret")
    err = connection_error(SASL, "listing topics", RuntimeError("transport"), report)
    assert "hunter2-secret" not in str(err)
    assert "as worker (SCRAM-SHA-256)" in str(err)
    assert "S321_KAFKA_SASL_PASSWORD" in str(err)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:********@host:6379/0"),
        ("rediss://:pw@host/1", "rediss://:********@host/1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("127.0.0.1:19092", "127.0.0.1:19092"),
        ("/var/lib/s321", "/var/lib/s321"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_describe_masks_every_secret() -> None:
    settings = Settings.from_env(
        {
            "S321_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "S321_KAFKA_SASL_USERNAME": "worker",
            "S321_KAFKA_SASL_PASSWORD": "kafka-pw-1",
            "S321_SCHEMA_REGISTRY_AUTH": "user:registry-pw-2",
            "S321_REDIS_URL": "redis://user:redis-pw-3@host/0",
            "S321_SCHEMA_REGISTRY_URL": "https://user:url-pw-4@registry/",
        }
    )
    text = "\n".join(f"{k}={v}" for k, v in settings.describe())
    for secret in ("kafka-pw-1", "registry-pw-2", "redis-pw-3", "url-pw-4"):
        assert secret not in text
    assert "S321_KAFKA_SASL_PASSWORD=********" in text


def test_endpoints_bind_loopback_by_default() -> None:
    assert Settings.from_env({}).metrics_host == "127.0.0.1"
    assert Settings.from_env({"S321_METRICS_HOST": "0.0.0.0"}).metrics_host == "0.0.0.0"
    lag = cli.commands["lag"]
    assert next(p for p in lag.params if p.name == "host").default == "127.0.0.1"
    server = metrics.serve_metrics(0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()
