"""The worker's Faust clients get the same security as the confluent-kafka ones."""

from __future__ import annotations

from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from s321.streams.app import broker_credentials

from s321.kafka_config import KafkaClientConfig
from s321.settings import Secret


def test_sasl_ssl_reaches_aiokafka_with_mechanism_credentials_and_tls() -> None:
    cfg = KafkaClientConfig("h:1", "SASL_SSL", "SCRAM-SHA-512", "worker", Secret("pw"))
    auth = credentials_to_aiokafka_auth(broker_credentials(cfg))
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (auth["sasl_plain_username"], auth["sasl_plain_password"]) == ("worker", "pw")
    assert auth["ssl_context"].check_hostname


def test_sasl_plaintext_has_no_tls() -> None:
    cfg = KafkaClientConfig("h:1", "SASL_PLAINTEXT", "PLAIN", "worker", Secret("pw"))
    auth = credentials_to_aiokafka_auth(broker_credentials(cfg))
    assert auth["security_protocol"] == "SASL_PLAINTEXT"
    assert auth["ssl_context"] is None


def test_tls_alone_and_plaintext() -> None:
    tls = credentials_to_aiokafka_auth(broker_credentials(KafkaClientConfig("h:1", "SSL")))
    assert tls["security_protocol"] == "SSL"
    assert tls["ssl_context"] is not None
    plain = credentials_to_aiokafka_auth(broker_credentials(KafkaClientConfig("h:1")))
    assert plain == {"security_protocol": "PLAINTEXT"}
