"""The carrier kit's producer examples (deploy/examples/) run against the real broker: the
record each sends is read back with s321's decoder, keyed and partitioned as s321 expects,
valid, and (Java) equal to what was meant."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from s321 import serialization
from s321.core.routing import murmur2_partition
from s321.models import (
    Action,
    Address,
    EventHeader,
    LineItem,
    ManifestEvent,
    Mode,
    Party,
    ReleasePath,
    normalise_bill,
)
from s321.settings import Settings
from s321.validation import validate
from tests.conftest import NewTopic

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "deploy" / "examples"
PARTITIONS = 4


def _read_one(bootstrap: str, topic: str, partition: int) -> tuple[bytes, bytes]:
    """The first record of ``topic``'s ``partition`` (key, value)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "s321-test-carrier-examples",
         "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    )  # fmt: skip
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                return msg.key() or b"", msg.value() or b""
    finally:
        consumer.close()
    raise AssertionError(f"nothing in {topic}[{partition}]")


def _check_record(bootstrap: str, topic: str, bill: str) -> ManifestEvent:
    key = normalise_bill(bill)
    assert key is not None
    got_key, value = _read_one(bootstrap, topic, murmur2_partition(key.encode(), PARTITIONS))
    assert got_key == key.encode()
    event = serialization.decode(value, ManifestEvent)
    assert validate(event, received_ms=int(datetime.now(UTC).timestamp() * 1000),
                    size=len(value)) == []  # fmt: skip
    return event


def test_the_python_example_sends_a_record_s321_finds_valid(
    kafka_bootstrap: str, new_topic: NewTopic
) -> None:
    topic = new_topic(partitions=PARTITIONS, name="manifest")
    bill = "hb-py 0001"
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "produce_manifest.py"), "--schemas", str(ROOT / "schemas"),
         "--bootstrap", kafka_bootstrap, "--topic", topic, "--house-bill", bill],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    event = _check_record(kafka_bootstrap, topic, bill)
    assert event.house_bill == bill
    assert event.lines[0].value == Decimal("12.50")


def _java_libs(cache: Path) -> Path:
    """kafka-clients and Avro with their runtime dependencies, fetched once with Maven."""
    libs = cache / "carrier-example-java" / "libs"
    if (libs / ".complete").exists():
        return libs
    mvn = shutil.which("mvn")
    assert mvn is not None, "Maven (mvn) is needed to fetch the Java example's libraries"
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run(
        [mvn, "-q", "-B", "-f", str(EXAMPLES / "pom.xml"), "dependency:copy-dependencies",
         "-DincludeScope=runtime", f"-DoutputDirectory={staging}"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    (libs / ".complete").touch()
    return libs


def test_the_java_example_sends_exactly_the_record_meant(
    kafka_bootstrap: str, new_topic: NewTopic, tmp_path: Path
) -> None:
    javac, java = shutil.which("javac"), shutil.which("java")
    assert javac is not None, "a JDK (javac) is needed: apt-get install openjdk-17-jdk-headless"
    assert java is not None
    libs = _java_libs(Settings.from_env().cache_dir)
    classpath = f"{libs}/*"
    done = subprocess.run(
        [javac, "-cp", classpath, "-d", str(tmp_path), str(EXAMPLES / "ProduceManifest.java")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    topic = new_topic(partitions=PARTITIONS, name="manifest")
    bill, event_id = "HB-JAVA/0002", "java-ev-1"
    at = datetime(2025, 3, 1, 8, 30, 15, 250000, tzinfo=UTC)
    done = subprocess.run(
        [java, "-cp", f"{classpath}:{tmp_path}", "ProduceManifest", str(ROOT / "schemas"),
         kafka_bootstrap, topic, bill, event_id, str(int(at.timestamp() * 1000))],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    def party(name: str, line1: str, city: str, country: str) -> Party:
        return Party(name, Address(line1, city, country, None, None), None)

    expected = ManifestEvent(
        header=EventHeader(event_id, at, "CARR01", Action.ADD),
        house_bill=bill,
        tracking_number=None,
        master_bill="157-12345675",
        carrier_code="CARR",
        mode=Mode.AIR,
        port_of_entry="4701",
        estimated_arrival=at + timedelta(hours=14),
        shipper=party("Example Trading Co", "12 Harbour Road", "Kowloon Bay", "CN"),
        consignee=party("Jane Q Public", "1 Main St", "Queens", "US"),
        origin_country="CN",
        lines=(
            LineItem(
                "cotton t-shirt, men's",
                2,
                Decimal("12.50"),
                Decimal("0.350"),
                "6109100012",
                "CN",
                None,
                None,
                None,
                None,
            ),
        ),
        shipping_weight_kg=Decimal("0.400"),
        release_path=ReleasePath.SECTION_321,
    )
    assert _check_record(kafka_bootstrap, topic, bill) == expected
