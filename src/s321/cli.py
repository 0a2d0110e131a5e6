"""The ``s321`` command line. Reads settings once, here, and hands plain values to the core."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from s321.errors import S321Error
from s321.ops.publish import refdata_group, rules_group
from s321.settings import Settings

__all__ = ["main"]


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """s321: Section 321 shipment correlation, risk rules and release/hold decisions."""
    ctx.obj = Settings.from_env()


def _stack(settings: Settings) -> Any:
    """The local development stack (imported only by the commands that start it)."""
    from s321.devtools.stack import Stack

    return Stack.from_settings(settings)


def _serializer(settings: Settings) -> Any:
    """The wire format the settings ask for (a schema registry's, or single-object encoding)."""
    from s321.serialization import serializer

    return serializer(settings.schema_registry_url, settings.schema_registry_auth.get())


@cli.group()
def stack() -> None:
    """Start, stop and inspect the local Kafka broker and Redis server."""


@stack.command("up")
@click.option(
    "--registry",
    is_flag=True,
    help="Also start a schema registry (Confluent-compatible API) on S321_REGISTRY_PORT.",
)
@click.option(
    "--secure",
    is_flag=True,
    help="Also start a secured broker (SASL_SSL, mutual TLS, ACLs) on S321_KAFKA_SECURE_PORT.",
)
@click.pass_obj
def stack_up(settings: Settings, registry: bool, secure: bool) -> None:
    """Fetch what is missing, start Kafka and Redis, and wait until both answer."""
    t0 = time.monotonic()
    s = _stack(settings)
    started = s.up(registry=registry, secure=secure)
    took = time.monotonic() - t0
    what = ", ".join(started) if started else "nothing (already running)"
    click.echo(f"started {what} in {took:.1f}s")
    _print_status(settings)
    if secure:
        from s321.devtools.stack import SECURE_WORKER, worker_acls

        s.secure.grant(worker_acls(f"User:{SECURE_WORKER}", settings.app_id, settings.topic_prefix))
        worker = s.secure.client(SECURE_WORKER)
        click.echo(
            f"secured broker: a worker connects as user {SECURE_WORKER} (the worker's ACLs for "
            f"app id {settings.app_id!r}, topic prefix {settings.topic_prefix!r}) with\n"
            f"  S321_KAFKA_BOOTSTRAP={worker.bootstrap} S321_KAFKA_SECURITY_PROTOCOL=SASL_SSL "
            f"S321_KAFKA_SASL_MECHANISM=SCRAM-SHA-512 S321_KAFKA_SASL_USERNAME={SECURE_WORKER} "
            f"S321_KAFKA_SSL_CA_FILE={worker.ca_file}\n"
            f"  and S321_KAFKA_SASL_PASSWORD from {s.secure.home / 'secrets'}/"
            f"{SECURE_WORKER}.password (user admin, a super user, beside it)"
        )


@stack.command("down")
@click.pass_obj
def stack_down(settings: Settings) -> None:
    """Stop the Kafka broker and Redis server that s321 started. Their data is kept."""
    stopped = _stack(settings).down()
    click.echo(f"stopped {', '.join(stopped) if stopped else 'nothing (none was running)'}")


@stack.command("status")
@click.pass_obj
def stack_status(settings: Settings) -> None:
    """Show whether Kafka and Redis are up, where, and who started them."""
    _print_status(settings)


def _print_status(settings: Settings) -> None:
    for status in _stack(settings).status():
        click.echo(status.line())


@cli.command("demo")
@click.option("--shipments", type=int, default=20_000, show_default=True)
@click.option("--seed", type=int, default=321, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def demo(settings: Settings, shipments: int, seed: int, as_json: bool) -> None:
    """Start the stack and a worker, generate traffic, check every decision against truth.

    Exits non-zero when any shipment was lost, duplicated or decided differently from the
    generator's ground truth.
    """
    import json

    from s321.devtools.demo import run_demo

    t0 = time.monotonic()
    _stack(settings).up()
    if not as_json:
        click.echo(f"stack ready in {time.monotonic() - t0:.1f}s; starting a worker")
    report = run_demo(
        settings.kafka(),
        settings.redis_url,
        settings.data_dir,
        shipments,
        seed,
        settings.partitions,
        progress=not as_json,
        registry_url=settings.schema_registry_url,
        registry_auth=settings.schema_registry_auth.get(),
    )
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
        for ex in report.mismatch_examples[:5]:
            click.echo(f"  mismatch: {ex}")
    if not report.ok:
        sys.exit(1)


@cli.command("bench")
@click.option(
    "--quick",
    is_flag=True,
    help="A few minutes: smaller backlog, two loads, no million-shipment phases.",
)
@click.option("--shipments", type=int, help="Backlog size.  [default: 200000; quick 2000]")
@click.option(
    "--waiting",
    type=int,
    help="Shipments left waiting for the memory and recovery phases; 0 skips them."
    "  [default: 1000000; quick 0]",
)
@click.option("--seed", type=int, default=321, show_default=True)
@click.option(
    "--profile-seconds",
    type=float,
    help="py-spy sampling of a worker on the backlog; 0 skips.  [default: 30; quick 15]",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a PNG of throughput and latency per load here.",
)
@click.option(
    "--guarantee",
    type=click.Choice(["exactly_once", "at_least_once"]),
    help="Processing guarantee of the measured workers (default: the worker's).",
)
@click.option(
    "--phases",
    help="Comma-separated phases to run besides throughput, of: contenders, scale, latency,"
    " profile, million.  [default: all]",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def bench(
    settings: Settings,
    quick: bool,
    shipments: int | None,
    waiting: int | None,
    seed: int,
    profile_seconds: float | None,
    plot: Path | None,
    guarantee: str | None,
    phases: str | None,
    as_json: bool,
) -> None:
    """Measure throughput, its ceiling, latency per load, scale-out, memory and recovery of
    worker processes on the local Kafka and Redis, each checked against ground truth; and the
    CPU per shipment of a worker, of a bare Faust join, of Faust consuming only and of a plain
    loop (with the broker's and Redis's) on the same backlog.

    Exits non-zero when any answer was lost, duplicated or differs from ground truth.
    """
    import dataclasses
    import json

    from s321.devtools.bench import BenchConfig, parse_phases, run_bench

    try:
        chosen = parse_phases(phases) if phases is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--phases") from None
    stack = _stack(settings)
    stack.up()
    cfg = BenchConfig(kafka=settings.kafka(), redis_url=settings.redis_url,
                      data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                      partitions=settings.partitions, seed=seed, plot=plot,
                      progress=not as_json, servers=stack.pids())  # fmt: skip
    if quick:
        cfg = BenchConfig.quick_of(cfg)
    if shipments is not None:
        cfg = dataclasses.replace(cfg, shipments=shipments)
    if waiting is not None:
        cfg = dataclasses.replace(cfg, waiting=waiting)
    if profile_seconds is not None:
        cfg = dataclasses.replace(cfg, profile_s=profile_seconds)
    if guarantee is not None:
        cfg = dataclasses.replace(cfg, worker_args=("--guarantee", guarantee))
    if chosen is not None:
        cfg = dataclasses.replace(cfg, phases=chosen)

    def log(line: str) -> None:
        click.echo(line, err=as_json)

    report = run_bench(cfg, log)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    if not report.ok:
        sys.exit(1)


@cli.command("worker")
@click.option(
    "--store",
    default="rocksdb://",
    show_default=True,
    help="Table store: rocksdb:// (durable, bounded memory) or memory://.",
)
@click.option(
    "--guarantee",
    type=click.Choice(["exactly_once", "at_least_once"]),
    default="at_least_once",
    show_default=True,
    help="at_least_once: decisions durable before the state recording them (a crash "
    "may repeat a decision, same id); exactly_once: Faust transactions.",
)
@click.option(
    "--idle-speedup",
    type=float,
    default=1.0,
    show_default=True,
    help="Event-time seconds an idle partition advances per wall-clock second.",
)
@click.pass_obj
def worker(settings: Settings, store: str, guarantee: str, idle_speedup: float) -> None:
    """Run the correlating processor against the Kafka and Redis in the settings."""
    from s321.worker import run_worker

    run_worker(settings, store=store, processing_guarantee=guarantee, idle_speedup=idle_speedup)


@cli.group()
def kubernetes() -> None:
    """Kubernetes resources generated from the code."""


@kubernetes.command("topics")
@click.option("--replicas", type=int, default=3, show_default=True, help="Replicas per topic.")
@click.option(
    "--cluster", default="kafka", show_default=True, help="The Strimzi Kafka resource's name."
)
@click.pass_obj
def kubernetes_topics(settings: Settings, replicas: int, cluster: str) -> None:
    """Print a Strimzi KafkaTopic for every s321 topic (the settings' app id, prefix and
    partition count)."""
    from s321.ops.kubernetes import render_topics

    click.echo(
        render_topics(
            settings.app_id, settings.topic_prefix, settings.partitions, replicas, cluster
        ),
        nl=False,
    )


@cli.command("settings")
@click.pass_obj
def show_settings(settings: Settings) -> None:
    """Print every setting in force (secrets masked)."""
    for name, value in settings.describe():
        click.echo(f"{name:<28} {value}")


@cli.command("lag")
@click.option("--group", help="Consumer group to measure.  [default: the settings' app id]")
@click.option(
    "--topic", "topics", multiple=True,
    help="Topic to measure, repeatable.  [default: the input topics, with the topic prefix]",
)  # fmt: skip
@click.option("--watch", type=float, metavar="SECONDS", help="Refresh every SECONDS until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True, help="Print each reading as one JSON object.")
@click.option(
    "--serve", type=int, metavar="PORT",
    help="Instead of printing, export the figures as Prometheus metrics at :PORT/metrics.",
)  # fmt: skip
@click.option(
    "--host", default="127.0.0.1", show_default=True,
    help="Address --serve binds (0.0.0.0: every interface, for a Prometheus elsewhere).",
)  # fmt: skip
@click.option("--interval", type=float, default=5.0, show_default=True,
              help="Seconds between readings with --serve.")  # fmt: skip
@click.pass_obj
def lag(
    settings: Settings,
    group: str | None,
    topics: tuple[str, ...],
    watch: float | None,
    as_json: bool,
    serve: int | None,
    host: str,
    interval: float,
) -> None:
    """Show a consumer group's lag per partition: committed, end, lag and time lag (seconds).

    Reads the broker only, so it works while every worker is down.
    """
    import json
    import threading

    from s321 import metrics
    from s321.ops.lag import LagProbe, format_table, input_topics

    group = group or settings.app_id
    names = list(topics) or input_topics(settings.topic_prefix)
    with LagProbe(settings.kafka()) as probe:
        if serve is not None:
            server = metrics.serve_metrics(serve, host)
            click.echo(
                f"exporting lag of group {group} at http://{host}:{server.server_port}/metrics"
            )
            stop = threading.Event()
            try:
                metrics.export_lag(probe, group, names, interval, stop, _report_lag_error)
            except KeyboardInterrupt:
                stop.set()
            finally:
                server.shutdown()
            return
        while True:
            report = probe.measure(group, names)
            if as_json:
                click.echo(json.dumps(report.to_dict()))
            else:
                if watch is not None and sys.stdout.isatty():
                    click.clear()
                click.echo(format_table(report))
            if watch is None:
                return
            try:
                time.sleep(watch)
            except KeyboardInterrupt:
                return


def _report_lag_error(_report: object, error: Exception | None) -> None:
    if error is not None:
        click.echo(f"s321 lag: reading failed, keeping the previous figures: {error}", err=True)


@cli.command("dashboard")
@click.option("--port", type=int, default=8321, show_default=True, help="Port to serve on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--group", help="Consumer group to show.  [default: the settings' app id]")
@click.option("--topic", "topics", multiple=True,
              help="Topic to show, repeatable.  [default: the input topics]")  # fmt: skip
@click.option("--metrics-url", "metrics_urls", multiple=True,
              help="A worker's /metrics URL to scrape, repeatable.")  # fmt: skip
@click.option("--interval", type=float, default=2.0, show_default=True,
              help="Seconds between readings.")  # fmt: skip
@click.pass_obj
def dashboard(
    settings: Settings,
    port: int,
    host: str,
    group: str | None,
    topics: tuple[str, ...],
    metrics_urls: tuple[str, ...],
    interval: float,
) -> None:
    """Serve a live page charting lag, time lag, throughput, decisions and dead letters."""
    from s321.ops.dashboard import Dashboard
    from s321.ops.lag import input_topics

    names = list(topics) or input_topics(settings.topic_prefix)
    board = Dashboard(settings.kafka(), group or settings.app_id, names, metrics_urls,
                      host=host, port=port, interval_s=interval).start()  # fmt: skip
    click.echo(f"dashboard at http://{host}:{board.port}/ (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        board.close()


cli.add_command(rules_group)
cli.add_command(refdata_group)


@cli.command("explain")
@click.argument("shipment_key")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def explain(settings: Settings, shipment_key: str, as_json: bool) -> None:
    """Show a shipment's record (personal data masked), every rule's result now, and all its
    decision versions with reasons, versions and inputs. Reads the decisions topic."""
    import json

    from s321.ops.explain import explain_live, render
    from s321.stores.connection import RedisTarget

    with _serializer(settings) as serde:
        found = explain_live(shipment_key, kafka=settings.kafka(),
                             redis=RedisTarget.from_settings(settings),
                             prefix=settings.topic_prefix,
                             serde=serde)  # fmt: skip
    click.echo(json.dumps(found.as_json(), indent=2) if as_json else render(found))
    if not found.history:
        sys.exit(1)


@cli.command("validate")
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--type", "type_name", type=click.Choice(["ManifestEvent", "PilotRecord", "Entry86"]),
    help="The record type of every JSON line (else each line's \"type\" field says it).",
)  # fmt: skip
@click.option("--quiet", is_flag=True, help="Print only the records that fail, and the summary.")
def validate_records(source: Any, type_name: str | None, quiet: bool) -> None:
    """Check input records offline as the worker checks them: the schemas, then every field
    bound (personal data never printed). SOURCE: a file of JSON lines or an Avro container
    file, or - for stdin (the default). Exits 1 if any record fails.

    The JSON form and the rules are in deploy/CARRIERS.md."""
    from fastavro.read import SchemaResolutionError

    from s321.ops.records import check_stream

    total = failed = 0
    try:
        for verdict in check_stream(source, type_name):
            total += 1
            failed += not verdict.ok
            if not (quiet and verdict.ok):
                for line in verdict.lines():
                    click.echo(line)
    except (ValueError, SchemaResolutionError, EOFError) as exc:
        click.echo(f"s321 validate: unreadable input after {total} records: "
                   f"{type(exc).__name__}", err=True)  # fmt: skip
        sys.exit(2)
    click.echo(f"{total} records: {total - failed} valid, {failed} invalid")
    if failed or not total:
        sys.exit(1)


@cli.command("generate")
@click.option("--shipments", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=321, show_default=True)
@click.option(
    "--from",
    "start",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2024-06-01",
    show_default=True,
    help="First arrival date.",
)
@click.option(
    "--to",
    "end",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2024-12-31",
    show_default=True,
    help="Last arrival date.",
)
@click.option(
    "--mix",
    default="demo",
    show_default=True,
    help="Preset (demo, clean, positives) and/or scenario=weight, comma-separated.",
)
@click.option("--enable", multiple=True, help="Rule disabled by default to expect (e.g. R06).")
@click.option(
    "--ground-truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write expected outcomes per shipment key here (JSON lines).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write an Avro container file for --replay instead of producing.",
)
@click.option(
    "--replay",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Produce the records of a file written with --out.",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Events per second; 0 is as fast as possible.",
)
@click.option(
    "--partitioner",
    type=click.Choice(["murmur2", "crc32"]),
    default="murmur2",
    show_default=True,
    help="Emulate the Java client (murmur2) or librdkafka (crc32).",
)
@click.option(
    "--bad-keys",
    type=float,
    default=0.0,
    show_default=True,
    help="Fraction of Kafka keys that disagree with the payload.",
)
@click.option("--topic-prefix", help="Topic name prefix.  [default: the settings' prefix]")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def generate(
    settings: Settings,
    shipments: int,
    seed: int,
    start: datetime,
    end: datetime,
    mix: str,
    enable: tuple[str, ...],
    ground_truth: Path | None,
    out: Path | None,
    replay: Path | None,
    rate: float,
    partitioner: str,
    bad_keys: float,
    topic_prefix: str | None,
    no_progress: bool,
) -> None:
    """Produce synthetic Section 321 traffic with ground truth (or write/replay a file)."""
    from s321.devtools.generator.command import GenerateOptions, run_generate

    with _serializer(settings) as serde:
        what, figures, counts = run_generate(
            GenerateOptions(
                kafka=settings.kafka(),
                seed=seed,
                shipments=shipments,
                start=start.date(),
                end=end.date(),
                mix=mix,
                enable=enable,
                ground_truth=ground_truth,
                out=out,
                replay=replay,
                rate=rate,
                partitioner=partitioner,
                bad_keys=bad_keys,
                topic_prefix=settings.topic_prefix if topic_prefix is None else topic_prefix,
                partitions=settings.partitions,
                progress=not no_progress,
                encode=serde.encode,
            )
        )
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    if isinstance(figures, int):
        click.echo(f"{what} {figures} records to {out}" + (f" ({outcomes})" if outcomes else ""))
    else:
        click.echo(
            f"{what} {figures.records} events, {figures.bytes} bytes in "
            f"{figures.seconds:.2f}s ({figures.rate:,.0f} events/s, "
            f"{figures.failed} failed)" + (f"; shipments: {outcomes}" if outcomes else "")
        )


def main() -> None:
    """Entry point: run the CLI, turning s321's own errors into a message and exit code 2."""
    try:
        cli(standalone_mode=True)
    except S321Error as exc:
        click.echo(f"s321: {exc}", err=True)
        sys.exit(2)
