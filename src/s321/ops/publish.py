"""The ``s321 rules`` and ``s321 refdata`` command groups (registered on the main CLI)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import redis

from s321.errors import ConfigError
from s321.settings import Settings

__all__ = ["refdata_group", "rules_group"]


def _redis(settings: Settings) -> tuple[redis.Redis, str]:
    """The client and key prefix the workers of this deployment read (its topic prefix)."""
    from s321.stores.connection import RedisTarget, redis_client, redis_prefix

    target = RedisTarget.from_settings(settings)
    return redis_client(target, timeout_s=5.0), redis_prefix(settings.topic_prefix)


@contextmanager
def _refusals(settings: Settings) -> Iterator[None]:
    """A refused version or an unreachable Redis ends the command: message, exit status 1."""
    try:
        yield
    except ConfigError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    except redis.AuthenticationError:
        click.echo(f"Redis at {_where(settings)} refused the credentials", err=True)
        sys.exit(1)
    except redis.exceptions.NoPermissionError as exc:  # names the command or key, not secrets
        click.echo(f"Redis at {_where(settings)} refused: {exc}", err=True)
        sys.exit(1)
    except redis.RedisError as exc:
        click.echo(f"Redis at {_where(settings)} unavailable: {type(exc).__name__}", err=True)
        sys.exit(1)


def _where(settings: Settings) -> str:
    """The Redis URL, its password masked."""
    from s321.stores.connection import redact_url

    return redact_url(settings.redis_url)


@click.group("rules")
def rules_group() -> None:
    """List, check and publish rule sets."""


@rules_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of rule objects.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="List this rule-set file instead of the packaged default.",
)
def rules_list(as_json: bool, path: Path | None) -> None:
    """List the rules in force: id, version, severity, reason code, description."""
    from s321.rules import default_ruleset, load_ruleset

    rs = load_ruleset(path) if path else default_ruleset()
    rows = [r.describe() for r in rs.rules]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"rule set {rs.version} (hold at {rs.hold_threshold.value} and above)")
    for r in rows:
        flag = "" if r["enabled"] else "  [disabled]"
        click.echo(
            f"{r['id']:<5} v{r['version']} {r['severity']:<8} {r['reason_code']:<26} "
            f"{r['description']}{flag}"
        )


@rules_group.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def rules_check(path: Path) -> None:
    """Validate a rule-set file; on error name the rule and field and exit non-zero."""
    from s321.rules import load_ruleset

    try:
        rs = load_ruleset(path)
    except ConfigError as exc:
        click.echo(f"invalid: {exc}", err=True)
        sys.exit(1)
    click.echo(f"ok: rule set {rs.version}, {sum(r.enabled for r in rs.rules)} rules enabled")


@rules_group.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def rules_publish(settings: Settings, path: Path) -> None:
    """Validate a rule-set file, store it in Redis as a new version and make it current.

    Running workers of this deployment (same S321_TOPIC_PREFIX) use it within seconds.
    """
    from s321.stores.rulesets import RulesetStore

    with _refusals(settings):
        rs = RulesetStore(*_redis(settings)).publish_file(path)
    click.echo(f"published rule set {rs.version}")


@click.group("refdata")
def refdata_group() -> None:
    """Load reference data into Redis."""


@refdata_group.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_obj
def refdata_load(settings: Settings, directory: Path) -> None:
    """Validate a reference-data directory and make it the current version, atomically."""
    from s321.stores.refdata import RefdataStore

    with _refusals(settings):
        version = RefdataStore(*_redis(settings)).load_directory(directory)
    click.echo(f"reference data version {version} is current")
