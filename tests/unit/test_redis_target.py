"""Redis URLs and TLS files as s321 takes them: passwords masked, misconfiguration refused
before any connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from s321.errors import ConfigError
from s321.settings import Settings
from s321.stores.connection import RedisTarget, redact_url, redis_client


def test_the_password_is_masked_and_the_user_kept() -> None:
    assert redact_url("redis://u:p%40ss@h:6379/0") == "redis://u:********@h:6379/0"
    assert redact_url("rediss://:secret@[::1]:6380/1?x=1") == "rediss://:********@[::1]:6380/1?x=1"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    target = RedisTarget("redis://u:topsecret@h/0")
    assert "topsecret" not in f"{target} {target!r}"


def test_tls_settings_are_read_and_refused_where_they_cannot_work(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    env = {"S321_REDIS_URL": "rediss://h:6380/0", "S321_REDIS_CA_FILE": str(ca)}
    target = RedisTarget.from_settings(Settings.from_env(env))
    assert target.client_options() == {"ssl_ca_certs": str(ca)}
    with pytest.raises(ConfigError, match="not a TLS one"):
        RedisTarget("redis://:pw@h/0", str(ca)).client_options()
    with pytest.raises(ConfigError, match="no such file"):
        RedisTarget("rediss://h/0", str(tmp_path / "missing.pem")).client_options()
    with pytest.raises(ConfigError, match="needs both"):
        RedisTarget("rediss://h/0", cert_file=str(ca)).client_options()
    with pytest.raises(ConfigError, match="not usable") as caught:
        redis_client("http://u:hidden@h/0")
    assert "hidden" not in str(caught.value)


def test_a_worker_refuses_a_retention_under_a_day() -> None:
    from s321.worker import run_worker

    with pytest.raises(ConfigError, match="S321_STATE_RETENTION_DAYS"):
        run_worker(Settings.from_env({"S321_STATE_RETENTION_DAYS": "0.5"}))
