"""The ``s321`` command line. Reads settings once, here, and hands plain values to the core."""

from __future__ import annotations

import sys
import time

import click

from s321.errors import S321Error
from s321.settings import Settings
from s321.stack import Stack

__all__ = ["main"]


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """s321: Section 321 shipment correlation, risk rules and release/hold decisions."""
    ctx.obj = Settings.from_env()


@cli.group()
def stack() -> None:
    """Start, stop and inspect the local Kafka broker and Redis server."""


@stack.command("up")
@click.pass_obj
def stack_up(settings: Settings) -> None:
    """Fetch what is missing, start Kafka and Redis, and wait until both answer."""
    t0 = time.monotonic()
    started = Stack.from_settings(settings).up()
    took = time.monotonic() - t0
    what = ", ".join(started) if started else "nothing (already running)"
    click.echo(f"started {what} in {took:.1f}s")
    _print_status(settings)


@stack.command("down")
@click.pass_obj
def stack_down(settings: Settings) -> None:
    """Stop the Kafka broker and Redis server that s321 started. Their data is kept."""
    stopped = Stack.from_settings(settings).down()
    click.echo(f"stopped {', '.join(stopped) if stopped else 'nothing (none was running)'}")


@stack.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    """Show whether Kafka and Redis are up, where, and who started them."""
    _print_status(settings)


def _print_status(settings: Settings) -> None:
    for status in Stack.from_settings(settings).status():
        click.echo(status.line())


@cli.command("settings")
@click.pass_obj
def show_settings(settings: Settings) -> None:
    """Print every setting in force (secrets masked)."""
    for name, value in settings.describe():
        click.echo(f"{name:<28} {value}")


def main() -> None:
    """Entry point: run the CLI, turning s321's own errors into a message and exit code 2."""
    try:
        cli(standalone_mode=True)
    except S321Error as exc:
        click.echo(f"s321: {exc}", err=True)
        sys.exit(2)
