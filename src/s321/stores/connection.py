"""The Redis of one deployment: where it is and how to reach it, a client tuned for the decision
path, and its key prefix.

Every Redis client s321 makes comes from :func:`redis_client`. The URL carries the credentials
(``redis://user:password@host:port/db``; ``redis://:password@...`` for the default user) and
``rediss://`` asks for TLS; the TLS files (the CA that signed the server's certificate, and a
client certificate and key for mutual TLS) are separate settings. No message s321 writes holds
the password: :attr:`RedisTarget.redacted` is the URL to print.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from s321.errors import ConfigError

if TYPE_CHECKING:
    from s321.settings import Settings

__all__ = ["RedisTarget", "check_redis", "redact_url", "redis_client", "redis_prefix"]


def redis_prefix(topic_prefix: str) -> str:
    """The Redis key prefix of one deployment (its topic prefix): rule sets, reference data
    and cross-shipment state of deployments sharing a Redis never mix."""
    return f"{topic_prefix}s321:"


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``********`` (the user name is kept)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:********@{host}{port}"))


@dataclass(frozen=True)
class RedisTarget:
    """A Redis to connect to: the URL (credentials in it) and, for ``rediss://``, the TLS files.

    ``str()`` and ``repr()`` show the URL with its password masked."""

    url: str = field(repr=False)
    ca_file: str = ""  # CA certificate(s), PEM, that signed the server's certificate
    cert_file: str = ""  # client certificate, PEM, for mutual TLS
    key_file: str = ""  # its private key, PEM

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisTarget:
        return cls(
            settings.redis_url,
            settings.redis_ca_file,
            settings.redis_cert_file,
            settings.redis_key_file,
        )

    @property
    def redacted(self) -> str:
        return redact_url(self.url)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "rediss"

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"RedisTarget({self.redacted!r})"

    def client_options(self) -> dict[str, Any]:
        """The TLS options :meth:`redis.Redis.from_url` takes for this target (none for a
        plain connection). Raises :class:`ConfigError` when a TLS file is given for a plain
        ``redis://`` URL, or is not a readable file."""
        files = {
            "ssl_ca_certs": ("S321_REDIS_CA_FILE", self.ca_file),
            "ssl_certfile": ("S321_REDIS_CERT_FILE", self.cert_file),
            "ssl_keyfile": ("S321_REDIS_KEY_FILE", self.key_file),
        }
        given = {option: v for option, v in files.items() if v[1]}
        if not self.tls:
            if given:
                names = ", ".join(name for name, _ in given.values())
                raise ConfigError(
                    f"{names} given, but the Redis URL {self.redacted} is not a TLS one: "
                    "use rediss://"
                )
            return {}
        if bool(self.cert_file) != bool(self.key_file):
            raise ConfigError("mutual TLS with Redis needs both S321_REDIS_CERT_FILE and _KEY_FILE")
        for name, path in given.values():
            if not Path(path).is_file():
                raise ConfigError(f"{name}={path}: no such file")
        return {option: path for option, (_, path) in given.items()}


def redis_client(target: RedisTarget | str, timeout_s: float = 0.5) -> redis.Redis:
    """A Redis client for the decision path: short timeouts and no retries, so an outage
    costs a fraction of a second, never a stalled partition. ``target`` is a
    :class:`RedisTarget` or a bare URL (no TLS files)."""
    if isinstance(target, str):
        target = RedisTarget(target)
    try:
        return redis.Redis.from_url(
            target.url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
            **target.client_options(),
        )
    except ValueError as exc:  # the URL's own message; it may quote the URL, so it is not kept
        raise ConfigError(
            f"the Redis URL {target.redacted} is not usable: {type(exc).__name__}"
        ) from None


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error beneath a connection error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def check_redis(target: RedisTarget, timeout_s: float = 5.0) -> bool:
    """PING the Redis of ``target`` with its credentials. True when it answered, False when it
    could not be reached (an outage: the caller carries on and holds what needs Redis).

    Raises :class:`ConfigError` when the answer shows a configuration that will never work:
    credentials refused, a user not allowed to PING, a TLS handshake that fails (unknown CA,
    wrong host name, a client certificate refused). The message names the URL with its
    password masked, never the password."""
    client = redis_client(target, timeout_s=timeout_s)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        raise ConfigError(
            f"Redis at {target.redacted} refused the credentials (check the user and password "
            "in S321_REDIS_URL)"
        ) from None
    except redis.exceptions.NoPermissionError:
        raise ConfigError(
            f"Redis at {target.redacted}: the user has no permission to PING (see the ACL "
            "the worker needs in the README)"
        ) from None
    except redis.ConnectionError as exc:
        tls = _tls_failure(exc)
        if tls is not None:
            reason = getattr(tls, "verify_message", None) or getattr(tls, "reason", None)
            raise ConfigError(
                f"TLS with Redis at {target.redacted} failed: {reason or type(tls).__name__} "
                "(check S321_REDIS_CA_FILE, and S321_REDIS_CERT_FILE and _KEY_FILE for mutual TLS)"
            ) from None
        return False
    except redis.ResponseError as exc:
        if str(exc).startswith(("NOAUTH", "WRONGPASS")):
            raise ConfigError(
                f"Redis at {target.redacted} refused the credentials (check the user and "
                "password in S321_REDIS_URL)"
            ) from None
        raise ConfigError(f"Redis at {target.redacted} refused PING: {exc}") from None
    finally:
        client.close()
