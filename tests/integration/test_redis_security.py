"""s321 against a Redis that asks for credentials and one that speaks TLS only.

Each test starts a redis-server of its own (Debian's): one with a password for the default user
and an ACL user allowed only this deployment's keys and the commands s321 uses; one with TLS
only (no plain port), client certificates required, certificates made here with ``openssl``.
The worker decides generated traffic through the ACL user over TLS; the commands that publish
to Redis work with the password; a wrong password or CA stops a worker at once, non-zero, with
a message that names the URL but never the password.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import redis

from s321.devtools.stack import RedisService, Stack
from s321.errors import ConfigError, StackError
from s321.refdata.loader import demo_refdata_dir
from s321.settings import Settings
from s321.stores.connection import RedisTarget, check_redis, redis_prefix
from tests.conftest import free_port, start_own_redis
from tests.integration.test_worker_rules import (
    _all_decided,
    _batch,
    _decided_keys,
    _produce,
    _Run,
)

ADMIN_PASSWORD = "admin-Secret-4711"
USER = "s321worker"
USER_PASSWORD = "user pass:with@odd/chars"  # quoted into URLs


def _quoted(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def _grant(client: redis.Redis, prefix: str) -> None:
    """An ACL user allowed this deployment's keys and channels and what s321 does with them, no
    more (the ACL in deploy/SECURITY.md)."""
    client.acl_setuser(
        USER,
        enabled=True,
        passwords=[f"+{USER_PASSWORD}"],
        keys=[f"{redis_prefix(prefix)}*"],
        channels=[f"{redis_prefix(prefix)}*"],
        commands=[
            "+@read",
            "+@write",
            "+@scripting",
            "+@pubsub",
            "+@connection",
            "+ping",
            "-@dangerous",
        ],
        reset=True,
        reset_keys=True,
        reset_channels=True,
    )


@dataclass(frozen=True)
class _Certs:
    ca: Path
    other_ca: Path  # a CA that signed nothing the server has
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> _Certs:
    """A CA, a server certificate for 127.0.0.1 and a client certificate signed by it, and a
    second CA that signed neither."""
    d = tmp_path_factory.mktemp("certs")
    for ca in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
            "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN=s321 test {ca}", cwd=d,
        )  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out",
            f"{who}.csr", "-subj", f"/CN=s321 test {who}", cwd=d,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.crt", "-days", "2", "-extfile", f"{who}.ext",
            cwd=d,
        )  # fmt: skip
    return _Certs(
        d / "ca.crt",
        d / "other-ca.crt",
        d / "server.crt",
        d / "server.key",
        d / "client.crt",
        d / "client.key",
    )


class _SecureRun(_Run):
    """A test's worker run whose Redis settings (URL with credentials, TLS files) are its own."""

    def __init__(self, *args: object, redis_env: dict[str, str]) -> None:
        super().__init__(*args)  # type: ignore[arg-type]  # _Run's own positional arguments
        self.redis_env = redis_env

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.redis_env}

    def with_redis(self, **redis_env: str) -> _SecureRun:
        """The same run with other Redis settings (for a command or a worker started next)."""
        other = object.__new__(_SecureRun)
        other.__dict__.update(self.__dict__)
        other.redis_env = {**self.redis_env, **redis_env}
        return other


def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc.poll()


@pytest.fixture
def password_redis(tmp_path: Path, unique: str) -> Iterator[tuple[int, str]]:
    """A redis-server with a password for the default user and the ACL user of this test's
    deployment; yields its port and the deployment's topic prefix."""
    port = free_port()
    url = f"redis://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0"
    server = start_own_redis(port, tmp_path / "redis", "--requirepass", ADMIN_PASSWORD, url=url)
    prefix = f"{unique}."
    _grant(redis.Redis.from_url(url), prefix)
    yield port, prefix
    server.terminate()
    server.wait(10)


def test_publishing_commands_work_with_password_and_acl_user_and_a_wrong_password_stops_them(
    password_redis: tuple[int, str], kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """``s321 refdata load`` and ``s321 rules publish`` work through the ACL user and with the
    default user's password; a wrong password refuses them (exit 1) and a worker exits non-zero
    within seconds, each saying so without printing the password."""
    port, prefix = password_redis
    acl_url = f"redis://{USER}:{_quoted(USER_PASSWORD)}@127.0.0.1:{port}/0"
    run = _SecureRun(kafka_bootstrap, acl_url, unique, tmp_path, redis_env={})
    try:
        loaded = run.s321("refdata", "load", str(demo_refdata_dir()))
        assert loaded.returncode == 0, loaded.stderr
        rules = tmp_path / "rules.toml"
        rules.write_text(f'version = "sec-{unique[-8:]}"\n')
        published = run.s321("rules", "publish", str(rules))
        assert published.returncode == 0, published.stderr
        admin = redis.Redis.from_url(f"redis://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0")
        ns = redis_prefix(prefix)
        assert admin.get(f"{ns}ruleset:current") == f"sec-{unique[-8:]}".encode()
        assert admin.get(f"{ns}refdata:current") is not None

        default_user = run.with_redis(
            S321_REDIS_URL=f"redis://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0"
        )
        rules.write_text(f'version = "sec2-{unique[-8:]}"\n')
        again = default_user.s321("rules", "publish", str(rules))
        assert again.returncode == 0, again.stderr

        wrong = run.with_redis(
            S321_REDIS_URL=f"redis://{USER}:not-{_quoted(USER_PASSWORD)}@127.0.0.1:{port}/0"
        )
        refused = wrong.s321("rules", "publish", str(rules))
        assert refused.returncode == 1
        assert "refused the credentials" in refused.stderr
        assert "not-" not in refused.stderr
        assert USER_PASSWORD not in refused.stderr

        t0 = time.monotonic()
        wrong.start()
        assert wrong.proc is not None
        code = _wait_exit(wrong.proc, 30)
        log = wrong.log.read_text(errors="replace")
        assert code not in (None, 0), log
        assert time.monotonic() - t0 < 30
        assert "refused the credentials" in log, log
        assert f"redis://{USER}:********@127.0.0.1:{port}/0" in log, log
        assert "not-" not in log, log
        assert _quoted(USER_PASSWORD) not in log, log
    finally:
        run.close()


def _tls_only(port: int, certs: _Certs, directory: Path) -> subprocess.Popen[bytes]:
    """A redis-server speaking TLS only (no plain port), client certificates required, with a
    password for the default user."""
    return start_own_redis(
        port,
        directory,
        "--port", "0",
        "--tls-port", str(port),
        "--tls-cert-file", str(certs.server_cert),
        "--tls-key-file", str(certs.server_key),
        "--tls-ca-cert-file", str(certs.ca),
        "--tls-auth-clients", "yes",
        "--requirepass", ADMIN_PASSWORD,
        url=f"rediss://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0",
        ssl_ca_certs=str(certs.ca),
        ssl_certfile=str(certs.client_cert),
        ssl_keyfile=str(certs.client_key),
    )  # fmt: skip


def test_worker_decides_through_an_acl_user_over_mutual_tls_and_explain_reads_it(
    certs: _Certs, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """Over TLS only, through the ACL user with a client certificate: the rule set published
    reaches the worker, which decides generated traffic with its cross-shipment state in Redis
    (nothing stale), and ``s321 explain`` reads a shipment back."""
    port = free_port()
    server = _tls_only(port, certs, tmp_path / "redis")
    prefix = f"{unique}."
    tls = {
        "ssl_ca_certs": str(certs.ca),
        "ssl_certfile": str(certs.client_cert),
        "ssl_keyfile": str(certs.client_key),
    }
    admin = redis.Redis.from_url(f"rediss://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0", **tls)
    _grant(admin, prefix)
    env = {
        "S321_REDIS_URL": f"rediss://{USER}:{_quoted(USER_PASSWORD)}@127.0.0.1:{port}/0",
        "S321_REDIS_CA_FILE": str(certs.ca),
        "S321_REDIS_CERT_FILE": str(certs.client_cert),
        "S321_REDIS_KEY_FILE": str(certs.client_key),
    }
    run = _SecureRun(kafka_bootstrap, env["S321_REDIS_URL"], unique, tmp_path, redis_env=env)
    try:
        rules = tmp_path / "rules.toml"
        rules.write_text(f'version = "tls-{unique[-8:]}"\n')
        published = run.s321("rules", "publish", str(rules))
        assert published.returncode == 0, published.stderr
        run.start()
        traffic = _batch(71, 12, 9)
        _produce(run.bootstrap, run.prefix, traffic)
        keys = _decided_keys(traffic)
        assert run.decisions.wait(_all_decided(keys), 120), run.log_tail()
        for k in keys:
            d = run.decisions.newest(k)
            assert d.ruleset_version == f"tls-{unique[-8:]}", d
            assert not d.stale_refdata, d
            assert not [h for h in d.hits if h.evidence.get("state") == "unavailable"], d.hits
        ns = redis_prefix(prefix)
        assert list(admin.scan_iter(match=f"{ns}xs:*", count=1000)), "no cross-shipment state"
        assert all(k.startswith(ns.encode()) for k in admin.scan_iter(count=1000) if b"xs:" in k)
        key = sorted(keys)[0]
        shown = run.s321("explain", key)
        assert shown.returncode == 0, shown.stderr
        assert key in shown.stdout
        assert "stale" not in shown.stdout.lower(), shown.stdout
    finally:
        run.close()
        server.terminate()
        server.wait(10)


def test_tls_failures_are_configuration_errors_and_a_worker_with_the_wrong_ca_exits(
    certs: _Certs, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    """A server certificate from an unknown CA, or no client certificate where one is required,
    raises ConfigError at the start check; a worker given the wrong CA exits non-zero within
    seconds. An unreachable Redis is an outage, not an error."""
    port = free_port()
    server = _tls_only(port, certs, tmp_path / "redis")
    url = f"rediss://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0"
    try:
        good = RedisTarget(url, str(certs.ca), str(certs.client_cert), str(certs.client_key))
        assert check_redis(good)
        with pytest.raises(
            ConfigError, match="TLS with Redis at rediss://:\\*\\*\\*\\*\\*\\*\\*\\*@"
        ):
            check_redis(RedisTarget(url, str(certs.other_ca)))
        with pytest.raises(ConfigError, match="TLS with Redis"):
            check_redis(RedisTarget(url, str(certs.ca)))  # no client certificate
        with pytest.raises(ConfigError, match="not a TLS one"):
            check_redis(RedisTarget(f"redis://127.0.0.1:{port}/0", str(certs.ca)))
        assert not check_redis(RedisTarget(f"rediss://127.0.0.1:{free_port()}/0", str(certs.ca)))

        env = {
            "S321_REDIS_URL": url,
            "S321_REDIS_CA_FILE": str(certs.other_ca),
            "S321_REDIS_CERT_FILE": str(certs.client_cert),
            "S321_REDIS_KEY_FILE": str(certs.client_key),
        }
        run = _SecureRun(kafka_bootstrap, url, unique, tmp_path, redis_env=env)
        try:
            run.start()
            assert run.proc is not None
            code = _wait_exit(run.proc, 30)
            log = run.log.read_text(errors="replace")
            assert code not in (None, 0), log
            assert "TLS with Redis" in log, log
            assert ADMIN_PASSWORD not in log, log
        finally:
            run.close()
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("user", ["", USER])
def test_local_stack_redis_asks_for_and_is_checked_with_the_configured_credentials(
    user: str, settings: Settings, tmp_path: Path
) -> None:
    """``stack up`` with credentials in S321_REDIS_URL starts a Redis that asks for them (a
    password for the default user, or an ACL user), its readiness check uses them, and a
    Redis that refuses them is a StackError at once, not a wait until the start times out."""
    port = free_port()
    auth = f"{user}:{_quoted(USER_PASSWORD)}@"
    cfg = replace(
        Stack.from_settings(settings).cfg,
        data_dir=tmp_path / "stack",
        redis_port=port,
        redis_url=f"redis://{auth}127.0.0.1:{port}/0",
        timeout_s=30.0,
    )
    service = RedisService(cfg)
    assert service.start()
    try:
        assert service.ready()
        conf = service.home / "auth.conf"
        assert conf.stat().st_mode & 0o777 == 0o600
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert redis.Redis.from_url(cfg.redis_url).ping()
        wrong = RedisService(replace(cfg, redis_url=f"redis://{user}:wrong@127.0.0.1:{port}/0"))
        with pytest.raises(StackError, match="refused the user and password") as caught:
            wrong.ready()
        assert "wrong" not in str(caught.value)
    finally:
        service.stop()
