"""``S321_SCHEMA_REGISTRY_URL`` on the real broker: the worker, the generator, the demo and
``explain`` all speak the registry wire format (``00`` + schema id + Avro body).

The registry is a real one (Apicurio Registry's Confluent-compatible API, started by the test
session from Maven Central's distribution), shared over loopback by the test's processes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from s321 import serialization, topics
from s321.cli import cli
from s321.devtools.demo import collect, run_demo
from s321.devtools.stack import RegistryService
from s321.kafka_config import KafkaClientConfig
from tests.integration.test_worker import WorkerRun

DECISION_SUBJECT = f"{serialization.NAMESPACE}.Decision"


def _subjects(url: str) -> set[str]:
    from confluent_kafka.schema_registry import SchemaRegistryClient

    with SchemaRegistryClient({"url": url}) as client:
        return set(client.get_subjects())


def _ids(url: str, subject: str) -> set[int]:
    """The schema ids registered under ``subject``."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    with SchemaRegistryClient({"url": url}) as client:
        return {client.get_version(subject, v).schema_id for v in client.get_versions(subject)}


def _raw_decisions(bootstrap: str, prefix: str, at_least: int, timeout_s: float) -> list[bytes]:
    """The values on the decisions topic, once ``at_least`` are there (or the time is up)."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}raw-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.topic_name(topics.DECISIONS, prefix)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < at_least and time.monotonic() < deadline:
            values += [m.value() or b"" for m in consumer.consume(500, 0.5) if not m.error()]
    finally:
        consumer.close()
    return values


def test_the_demo_runs_exactly_on_the_registry_wire_format(
    kafka: KafkaClientConfig,
    redis_url: str,
    tmp_path: Path,
    schema_registry: RegistryService,
) -> None:
    """With a registry URL, the demo's traffic, its worker and its reader all use the registry:
    the worker registers the decision schema, and every shipment is decided as ground truth
    says."""
    report = run_demo(
        kafka, redis_url, tmp_path, 120, seed=17, partitions=4, progress=False,
        registry_url=schema_registry.url,
    )  # fmt: skip
    assert report.ok, report.lines()
    assert report.decided > 0
    assert report.lost == report.duplicates == report.mismatches == 0
    registered = _subjects(schema_registry.url)
    assert {
        f"{serialization.NAMESPACE}.{t}" for t in ("ManifestEvent", "PilotRecord")
    } <= registered
    # only the worker writes decisions: it registered their schema
    assert DECISION_SUBJECT in registered


def test_generate_worker_and_explain_use_the_registry(
    kafka: KafkaClientConfig,
    kafka_bootstrap: str,
    redis_url: str,
    unique: str,
    tmp_path: Path,
    schema_registry: RegistryService,
) -> None:
    """``s321 generate`` produces registry-framed records, the worker writes registry-framed
    decisions (schema id of ``Decision`` in the registry) and ``s321 explain`` reads them."""
    run = WorkerRun(kafka, redis_url, unique, tmp_path)
    env = {**run.env(tmp_path / "data"), "S321_SCHEMA_REGISTRY_URL": schema_registry.url}
    truth_file = tmp_path / "truth.jsonl"
    result = CliRunner().invoke(
        cli,
        ["generate", "--shipments", "40", "--seed", "5", "--mix", "clean",
         "--ground-truth", str(truth_file), "--no-progress"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    truth = [json.loads(line) for line in truth_file.read_text().splitlines()]
    decided = [t for t in truth if t["outcome"] in ("RELEASE", "HOLD")]
    assert decided

    worker = run.start(extra_env={"S321_SCHEMA_REGISTRY_URL": schema_registry.url})
    serde = serialization.serializer(schema_registry.url)
    try:
        expected = {t["key"]: SimpleNamespace(**t) for t in decided}
        decisions, _, dead = collect(
            kafka, run.prefix, expected, quiet_s=30, timeout_s=120, serde=serde
        )
    finally:
        run.procs.remove(worker)
        worker.terminate()
        worker.wait(30)
        serde.close()
    assert dead == 0, run.log_tails()
    for t in decided:
        newest = max(decisions[t["key"]], key=lambda d: d.version)
        assert newest.outcome.value == t["outcome"], run.log_tails()
    values = _raw_decisions(kafka_bootstrap, run.prefix, len(decided), timeout_s=30)
    assert len(values) >= len(decided)
    decision_ids = _ids(schema_registry.url, DECISION_SUBJECT)
    for value in values:
        assert value[0] == 0  # the registry's magic byte, not single-object encoding
        assert int.from_bytes(value[1:5], "big") in decision_ids

    key = decided[0]["key"]
    shown = CliRunner().invoke(cli, ["explain", key, "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    history = json.loads(shown.output)["history"]
    assert history
    assert history[-1]["outcome"] == decided[0]["outcome"]
