"""How every Kafka client s321 runs connects: address, transport security and authentication.

:class:`KafkaClientConfig` holds plain values (the edge builds it from the settings with
:meth:`s321.settings.Settings.kafka`); every client is configured from it and nowhere else:

- :func:`confluent` gives the confluent-kafka (librdkafka) properties of a producer, consumer
  or admin client, to which the caller adds its own tuning;
- :func:`ssl_context` gives the TLS context of the worker's Faust/aiokafka clients, which
  ``streams/app.py`` wraps in Faust's ``broker_credentials``;
- :func:`as_env` gives the ``S321_*`` variables that hand the same connection to a worker
  process started by s321's tools;
- :func:`connection_error` turns a client's failure to reach or authenticate with the cluster
  into a :class:`ConfigError` saying what to check, never containing the password; a
  :class:`ClientReport` passed to :func:`confluent` keeps what the client said about its
  connections (librdkafka tells the reason in its log and error callback, not in the error a
  call raises).

Protocols: ``PLAINTEXT``, ``SSL`` (TLS; with a client certificate and key, mutual TLS),
``SASL_PLAINTEXT`` and ``SASL_SSL`` (username and password over SASL ``SCRAM-SHA-256``,
``SCRAM-SHA-512`` or ``PLAIN``; PLAIN sends the password itself, so only over TLS in earnest).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from s321.errors import ConfigError
from s321.settings import Secret

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "ClientReport",
    "KafkaClientConfig",
    "as_env",
    "cluster_metadata",
    "confluent",
    "connection_error",
    "ssl_context",
]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")


@dataclass(frozen=True)
class KafkaClientConfig:
    """Where the cluster is and how a client proves who it is; checked when made.

    ``ca_file``: PEM bundle of the CAs trusted to sign the brokers' certificates (empty: the
    system's). ``cert_file`` / ``key_file``: this client's PEM certificate and key, for brokers
    that require mutual TLS. Raises :class:`ConfigError` for an unknown protocol or mechanism,
    SASL without a username or password, or a certificate without its key.
    """

    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    def __post_init__(self) -> None:
        if self.security_protocol not in PROTOCOLS:
            raise ConfigError(
                f"S321_KAFKA_SECURITY_PROTOCOL={self.security_protocol!r} is not one of "
                f"{', '.join(PROTOCOLS)}"
            )
        if self.sasl:
            if self.sasl_mechanism not in MECHANISMS:
                raise ConfigError(
                    f"S321_KAFKA_SASL_MECHANISM={self.sasl_mechanism!r} is not one of "
                    f"{', '.join(MECHANISMS)}"
                )
            if not self.username or not self.password.get():
                raise ConfigError(
                    f"{self.security_protocol} needs S321_KAFKA_SASL_USERNAME and "
                    "S321_KAFKA_SASL_PASSWORD"
                )
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError(
                "a client certificate needs its key and a key its certificate: set both "
                "S321_KAFKA_SSL_CERT_FILE and S321_KAFKA_SSL_KEY_FILE, or neither"
            )

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.security_protocol.endswith("SSL")

    def describe(self) -> str:
        """Where and how this client connects, for messages (never the password)."""
        who = f" as {self.username} ({self.sasl_mechanism})" if self.sasl else ""
        cert = " with a client certificate" if self.cert_file else ""
        return f"{self.bootstrap} over {self.security_protocol}{who}{cert}"


class ClientReport:
    """What a confluent-kafka client reported about its connections (its error callback and
    log), the last few lines kept; the log goes on to the ``s321.kafka`` logger. The client
    hands these over when it is polled (or, for an admin client, after a call)."""

    _log = logging.getLogger("s321.kafka")

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=20)

    def error(self, err: Any) -> None:
        self.lines.append(str(err.str()))

    def log(self, level: int, msg: str, *args: Any) -> None:
        line = msg % args if args else msg
        # confluent-kafka logs (facility, client name, text): the text is what tells
        self.lines.append(str(args[-1]) if args else msg)
        self._log.log(level, "%s", line)

    def refusal(self) -> str:
        """The line saying the cluster refused this client (authentication, TLS, a closed
        connection), or "" when none does."""
        for needle in ("authentication", "ssl handshake", "certificate", "closed by peer"):
            for line in reversed(self.lines):
                if needle in line.lower():
                    return line
        return ""

    def reason(self) -> str:
        """The most telling line: a refusal before anything else."""
        return self.refusal() or (self.lines[-1] if self.lines else "")


def cluster_metadata(
    admin: Any, kafka: KafkaClientConfig, report: ClientReport, timeout_s: float
) -> Any:
    """``admin.list_topics()`` of a client made with ``confluent(kafka, report)``, asked in
    one-second steps so that a refusal (wrong password, untrusted certificate, wrong protocol)
    is a :class:`ConfigError` at once instead of after ``timeout_s``; the client's own
    exception when the cluster simply does not answer within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        step = max(0.1, min(1.0, deadline - time.monotonic()))
        try:
            return admin.list_topics(timeout=step)
        except Exception as exc:
            admin.poll(0)  # hands the client's log and errors over to the report
            if report.refusal():
                raise connection_error(kafka, "connecting", exc, report) from None
            if time.monotonic() >= deadline:
                raise


def confluent(cfg: KafkaClientConfig, report: ClientReport | None = None) -> dict[str, Any]:
    """The confluent-kafka properties connecting a client as ``cfg`` says (reporting to
    ``report`` when one is given)."""
    props: dict[str, Any] = {
        "bootstrap.servers": cfg.bootstrap,
        "security.protocol": cfg.security_protocol.lower(),
    }
    if report is not None:
        props["error_cb"] = report.error
        props["logger"] = report
    if cfg.sasl:
        props["sasl.mechanism"] = cfg.sasl_mechanism
        props["sasl.username"] = cfg.username
        props["sasl.password"] = cfg.password.get()
    if cfg.tls:
        if cfg.ca_file:
            props["ssl.ca.location"] = cfg.ca_file
        if cfg.cert_file:
            props["ssl.certificate.location"] = cfg.cert_file
            props["ssl.key.location"] = cfg.key_file
    return props


def ssl_context(cfg: KafkaClientConfig) -> ssl.SSLContext | None:
    """The TLS context of an aiokafka client (None without TLS): the brokers' certificates
    checked against ``ca_file`` (or the system's CAs) and their host names verified; this
    client's certificate presented when one is given."""
    if not cfg.tls:
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.ca_file or None)
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the Kafka TLS files (S321_KAFKA_SSL_CA_FILE={cfg.ca_file!r}, "
            f"S321_KAFKA_SSL_CERT_FILE={cfg.cert_file!r}, S321_KAFKA_SSL_KEY_FILE="
            f"{cfg.key_file!r}): {exc}"
        ) from None
    return context


def as_env(cfg: KafkaClientConfig) -> dict[str, str]:
    """The ``S321_*`` variables that give a child process this connection."""
    return {
        "S321_KAFKA_BOOTSTRAP": cfg.bootstrap,
        "S321_KAFKA_SECURITY_PROTOCOL": cfg.security_protocol,
        "S321_KAFKA_SASL_MECHANISM": cfg.sasl_mechanism,
        "S321_KAFKA_SASL_USERNAME": cfg.username,
        "S321_KAFKA_SASL_PASSWORD": cfg.password.get(),
        "S321_KAFKA_SSL_CA_FILE": cfg.ca_file,
        "S321_KAFKA_SSL_CERT_FILE": cfg.cert_file,
        "S321_KAFKA_SSL_KEY_FILE": cfg.key_file,
    }


def connection_error(
    cfg: KafkaClientConfig, what: str, exc: BaseException, report: ClientReport | None = None
) -> ConfigError:
    """A :class:`ConfigError` for ``what`` (e.g. "listing topics") failing with ``exc``: the
    address, protocol and user tried, the client's own reason (from ``report`` when it has
    one), and what to check. The password never appears: it is cut from the client's reason
    should that ever quote it."""
    reason = (report.reason() if report is not None else "") or str(exc)
    secret = cfg.password.get()
    if secret:
        reason = reason.replace(secret, "********")
    low = reason.lower()
    if "ssl handshake" in low or "certificate" in low:
        hint = (
            "check that S321_KAFKA_SSL_CA_FILE holds the CA that signed the brokers' "
            "certificates (and, for mutual TLS, the client certificate and key)"
        )
    elif "authentication" in low:
        hint = "check S321_KAFKA_SASL_USERNAME, S321_KAFKA_SASL_PASSWORD and the mechanism"
    elif "closed by peer" in low:
        hint = (
            "the broker closed the connection before answering: a plaintext client on a TLS "
            "listener is closed so; check S321_KAFKA_SECURITY_PROTOCOL against the listener"
        )
    elif "authoriz" in low:
        hint = "the user lacks an ACL for this (deploy/SECURITY.md lists those s321 needs)"
    else:
        hint = (
            "check that the brokers answer there and that S321_KAFKA_SECURITY_PROTOCOL "
            "matches the listener"
        )
    return ConfigError(f"Kafka at {cfg.describe()}: {what} failed: {reason}; {hint}")
