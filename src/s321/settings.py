"""The one settings object, read from the environment once, at the edge.

Every setting is an ``S321_*`` environment variable; the table in the README lists them all
(and ``s321 settings`` prints the values in force, with secrets masked). Core functions never
take a :class:`Settings`: the edge (CLI, worker start-up) reads the values they need and passes
plain arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from s321.kafka_config import KafkaClientConfig

__all__ = ["KAFKA_VERSION", "Secret", "Settings", "mask_url"]

#: The Apache Kafka release the local stack runs. Pinned: tests and benchmarks are measured on it.
KAFKA_VERSION = "4.1.1"


@dataclass(frozen=True)
class Secret:
    """A value that must not be printed: ``str()`` and ``repr()`` mask it."""

    value: str = field(repr=False)

    def __str__(self) -> str:
        return "********" if self.value else ""

    def __repr__(self) -> str:
        return f"Secret({self!s})"

    def get(self) -> str:
        """The value itself, for the one place that needs it."""
        return self.value


def mask_url(url: str) -> str:
    """``url`` with the password of its user part (``scheme://user:password@host``) masked."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:********@{host}"))


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base else Path.home() / fallback


@dataclass(frozen=True)
class Settings:
    """Everything s321 can be configured with. Build it with :meth:`from_env`."""

    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    kafka_version: str = KAFKA_VERSION
    kafka_heap: str = "1g"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: Secret = field(default_factory=lambda: Secret(""))
    kafka_ssl_ca_file: str = ""
    kafka_ssl_cert_file: str = ""
    kafka_ssl_key_file: str = ""
    kafka_secure_port: int = 19094
    redis_url: str = "redis://127.0.0.1:16379/0"
    redis_port: int = 16379
    redis_ca_file: str = ""
    redis_cert_file: str = ""
    redis_key_file: str = ""
    state_retention_days: float = 21.0
    data_dir: Path = field(default_factory=lambda: _xdg("XDG_DATA_HOME", ".local/share") / "s321")
    cache_dir: Path = field(default_factory=lambda: _xdg("XDG_CACHE_HOME", ".cache") / "s321")
    registry_port: int = 18081
    schema_registry_url: str = ""
    schema_registry_auth: Secret = field(default_factory=lambda: Secret(""))
    app_id: str = "s321"
    topic_prefix: str = ""
    partitions: int = 8
    stack_timeout_s: float = 90.0
    metrics_port: int = 9321
    status_host: str = "127.0.0.1"
    status_port: int = 9322
    health_host: str = "127.0.0.1"
    health_port: int = 9320
    metrics_host: str = "127.0.0.1"
    log_level: str = "WARNING"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every ``S321_<FIELD>`` variable present; the rest keep their defaults.

        The local stack's ports also set the client addresses unless those are given
        explicitly, so ``S321_KAFKA_PORT=29092`` alone is enough to move everything.
        """
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"S321_{f.name.upper()}")
            if raw is None:
                continue
            if f.type == "int":
                values[f.name] = int(raw)
            elif f.type == "float":
                values[f.name] = float(raw)
            elif f.type == "Path":
                values[f.name] = Path(raw).expanduser()
            elif f.type == "Secret":
                values[f.name] = Secret(raw)
            else:
                values[f.name] = raw
        if "kafka_port" in values and "kafka_bootstrap" not in values:
            values["kafka_bootstrap"] = f"127.0.0.1:{values['kafka_port']}"
        if "redis_port" in values and "redis_url" not in values:
            values["redis_url"] = f"redis://127.0.0.1:{values['redis_port']}/0"
        return cls(**values)  # type: ignore[arg-type]  # values are converted per field type above

    def kafka(self) -> KafkaClientConfig:
        """How s321's Kafka clients connect (raises ConfigError when the values do not fit)."""
        from s321.kafka_config import KafkaClientConfig

        return KafkaClientConfig(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol.upper(),
            sasl_mechanism=self.kafka_sasl_mechanism.upper(),
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password,
            ca_file=self.kafka_ssl_ca_file,
            cert_file=self.kafka_ssl_cert_file,
            key_file=self.kafka_ssl_key_file,
        )

    def describe(self) -> list[tuple[str, str]]:
        """(environment variable, value in force) pairs, secrets masked: :class:`Secret`
        values, and the password of any URL that carries one."""
        return [
            (f"S321_{f.name.upper()}", mask_url(str(getattr(self, f.name)))) for f in fields(self)
        ]
