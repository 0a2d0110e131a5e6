"""Hostile input on the real broker, interleaved with valid traffic, read by a worker process.

Every hostile class (records that do not decode; records that decode but break a bound of
s321.validation; records near Kafka's size limits; event times far ahead) is sent among valid
shipments, and each record is followed to where it ends up: the dead letters (with which
error class and which field named), an unmatched report, or a held decision. Valid traffic
must stay exact, the worker must stay up, and no clock may be moved by a record far ahead.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from s321 import serialization, topics, validation
from s321.core.routing import murmur2_partition
from s321.devtools.demo import DemoReport, collect, compare, start_worker
from s321.kafka_config import KafkaClientConfig
from s321.models import DeadLetter, Decision, ManifestEvent
from s321.worker import ensure_topics
from tests.contract.bad_inputs import BAD_INPUTS
from tests.factories import T0, entry86, manifest, pilot
from tests.integration.test_worker import (
    PARTITIONS,
    WorkerRun,
    _cleanup,
    _traffic,
    _wait_for_decisions,
)

__all__: list[str] = []


@pytest.fixture
def run(
    kafka: KafkaClientConfig, kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path
) -> Iterator[WorkerRun]:
    """A worker run of the test's own (as in test_worker): topics made, workers and topics and
    Redis keys gone afterwards."""
    ensure_topics(kafka, f"{unique}.", PARTITIONS)
    r = WorkerRun(kafka, redis_url, unique, tmp_path)
    yield r
    for proc in r.procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    _cleanup(kafka_bootstrap, redis_url, unique)


_PRODUCER_MAX_BYTES = 1_048_000  # records near the broker's 1 MB limit must leave the producer


@dataclass(frozen=True)
class Send:
    """One record to produce: topic, Kafka key, value (None: a tombstone), partition."""

    spec: topics.TopicSpec
    key: bytes
    value: bytes | None
    partition: int | None = None


@dataclass(frozen=True)
class Poison:
    """A hostile record and where it must end up: the dead letters, with ``error_class`` and
    a reason naming ``field``; ``reduced`` when the dead letter cannot hold its bytes."""

    cls: str
    send: Send
    error_class: str
    field: str = ""
    reduced: bool = False


def _send(bootstrap: str, prefix: str, sends: Sequence[Send]) -> None:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 5,
            "enable.idempotence": True,
            "message.max.bytes": _PRODUCER_MAX_BYTES + 10_000,
            "partitioner": "murmur2_random",
        }
    )
    for s in sends:
        kw: dict[str, Any] = {} if s.partition is None else {"partition": s.partition}
        producer.produce(topics.topic_name(s.spec, prefix), key=s.key, value=s.value, **kw)
        producer.poll(0)
    assert producer.flush(60) == 0, "some records were not delivered"


def _dead_letters(bootstrap: str, prefix: str, at_least: int, timeout_s: float) -> list[Any]:
    """The dead letters (decoded, with their Kafka key and headers) once ``at_least`` are there
    and nothing new came for 5 s, or at ``timeout_s``."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{prefix}dead-reader-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topics.topic_name(topics.DEAD_LETTERS, prefix)])
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    try:
        while time.monotonic() < deadline:
            msgs = [m for m in consumer.consume(200, 0.5) if not m.error()]
            for m in msgs:
                letter = serialization.decode(m.value() or b"", DeadLetter)
                out.append(
                    SimpleNamespace(letter=letter, key=m.key(), headers=dict(m.headers() or []))
                )
            if msgs:
                last = time.monotonic()
            if len(out) >= at_least and time.monotonic() - last > 5:
                break
    finally:
        consumer.close()
    return out


def _with_negative_line(m: ManifestEvent) -> ManifestEvent:
    line = m.lines[0]
    bad = replace(line, value=Decimal("-200.00"), quantity=-1, weight_kg=Decimal("-0.400"))
    return replace(m, lines=(line, bad))


def _encode(event: object) -> bytes:
    return serialization.encode(event)


def _oversize_manifest(key: str) -> ManifestEvent:
    """A manifest inside every field's bound, of about 900 KB: 999 lines of long
    descriptions."""
    m = manifest(key)
    line = replace(m.lines[0], description=("cotton t-shirt knitted " * 38)[:870])
    return replace(m, lines=(line,) * validation.MAX_LINES)


def _poison_corpus() -> tuple[list[Send], list[Poison], dict[str, str]]:
    """The hostile records, the valid partners some of them need (sent first) and what each
    partner shipment must end as (``UNMATCHED`` or ``HELD``)."""
    poison: list[Poison] = []
    partners: list[Send] = []
    expect: dict[str, str] = {}
    n = 0

    def add(
        cls: str, spec: topics.TopicSpec, value: bytes | None, error: str, field: str = ""
    ) -> None:
        nonlocal n
        n += 1
        key = f"poison-{n}".encode()
        big = value is not None and len(value) > 900_000
        poison.append(Poison(cls, Send(spec, key, value), error, field, reduced=big))

    for name, data, _ in BAD_INPUTS:
        if len(data) <= _PRODUCER_MAX_BYTES:
            add(f"undecodable: {name}", topics.MANIFEST, data, "DecodeError")
    add("undecodable: tombstone", topics.PILOT, None, "DecodeError")
    add(
        "undecodable: pilot record on the manifest topic",
        topics.MANIFEST,
        _encode(pilot("PX1")),
        "DecodeError",
    )
    add(
        "size: 1,040,000 bytes of garbage",
        topics.ENTRY86,
        b"\xc3\x01" + b"\x5a" * 1_039_998,
        "DecodeError",
    )

    big = _oversize_manifest("PXBIG1")
    assert validation.validate(big) == [], "the oversize manifest must be valid but for its size"
    assert 850_000 < len(_encode(big)) <= _PRODUCER_MAX_BYTES
    add(
        "size: a valid 900 KB manifest",
        topics.MANIFEST,
        _encode(big),
        "ValidationError",
        "record size",
    )

    for i in range(3):
        key = f"PXNEG{i}"
        add("negative line beside a $900 line", topics.MANIFEST,
            _encode(_with_negative_line(manifest(key, "900.00"))), "ValidationError", "lines[1].value")  # fmt: skip
        partners.append(Send(topics.PILOT, key.encode(), _encode(pilot(key))))
        expect[key] = "UNMATCHED"
    for i in range(3):
        key = f"PXAMEND{i}"
        partners.append(Send(topics.MANIFEST, key.encode(), _encode(manifest(key))))
        partners.append(Send(topics.PILOT, key.encode(), _encode(pilot(key))))
        change = _with_negative_line(
            manifest(key, at=T0 + timedelta(minutes=5), event_id=f"c-{key}")
        )
        add("invalid amendment of a released shipment", topics.MANIFEST, _encode(change),
            "ValidationError", "lines[1].value")  # fmt: skip
        expect[key] = "HELD"

    m = manifest("PXQ")
    add("zero quantity", topics.MANIFEST,
        _encode(replace(m, lines=(replace(m.lines[0], quantity=0),))), "ValidationError",
        "lines[0].quantity")  # fmt: skip
    add("absurd amount", topics.MANIFEST,
        _encode(replace(manifest("PXA"), lines=(replace(m.lines[0], value=Decimal("999999999999.99")),))),
        "ValidationError", "lines[0].value")  # fmt: skip
    add("negative weight", topics.MANIFEST,
        _encode(replace(manifest("PXW"), shipping_weight_kg=Decimal("-1.000"))), "ValidationError",
        "shipping_weight_kg")  # fmt: skip
    p = pilot("PXY1")
    add("event time in year 1", topics.PILOT,
        _encode(replace(p, header=replace(p.header, event_time=T0.replace(year=1)))),
        "ValidationError", "header.event_time")  # fmt: skip
    m = manifest("PXY9")
    add("arrival in year 9999", topics.MANIFEST,
        _encode(replace(m, estimated_arrival=m.estimated_arrival.replace(year=9999))),
        "ValidationError", "estimated_arrival")  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    for spec, event in (
        (topics.MANIFEST, manifest("PXF1", at=T0.replace(year=2030))),
        (topics.PILOT, pilot("PXF2", at=T0.replace(year=2030))),
        (topics.ENTRY86, entry86("PXF3", at=now + timedelta(days=400))),
    ):
        add("event time far ahead", spec, _encode(event), "ValidationError", "header.event_time")
    m = manifest("PXC")
    add("control characters in a name", topics.MANIFEST,
        _encode(replace(m, consignee=replace(m.consignee, name="Pat\x07\x1b[2J Doe"))),
        "ValidationError", "consignee.name")  # fmt: skip
    p = pilot("PXB")
    assert p.seller is not None
    add("bidirectional override in a name", topics.PILOT,
        _encode(replace(p, seller=replace(p.seller, name="Shop \u202edtL"))), "ValidationError",
        "seller.name")  # fmt: skip
    e = entry86("PXL")
    add("10,000-character name", topics.ENTRY86,
        _encode(replace(e, shipper=replace(e.shipper, name="N" * 10_000))), "ValidationError",
        "shipper.name")  # fmt: skip
    add("5,000-character shipment key", topics.MANIFEST, _encode(manifest("K" * 5000)),
        "ValidationError", "house_bill")  # fmt: skip
    add("amounts in another currency", topics.ENTRY86, _encode(replace(entry86("PXE"), currency="EUR")),
        "ValidationError", "currency")  # fmt: skip
    return partners, poison, expect


def test_every_hostile_class_lands_where_it_should_and_valid_traffic_stays_exact(
    run: WorkerRun,
) -> None:
    """Hostile records of every class, one per 20 valid events on all three inputs: each ends
    in the dead letters, once, with its class's error and field named (records too large for a
    dead letter reduced to size and digest); partners of invalid records end unmatched or
    held, never released; valid traffic is exact; the worker is still running."""
    traffic = _traffic(420, seed=21)
    partners, poison, expect = _poison_corpus()
    stream: list[Send] = list(partners)
    pending = iter(poison)
    for i, ev in enumerate(traffic.events):
        stream.append(Send(ev.spec, ev.key.encode(), _encode(ev.value)))
        if i % 20 == 19:
            p = next(pending, None)
            if p is not None:
                stream.append(p.send)
    left = list(pending)
    assert not left, f"{len(left)} hostile records found no place in the stream"
    worker = run.start()
    _send(run.bootstrap, run.prefix, stream)

    truth = traffic.truth_by_key()
    waited: dict[str, Any] = {
        **truth,
        **{
            k: SimpleNamespace(outcome="UNMATCHED" if v == "UNMATCHED" else "HOLD")
            for k, v in expect.items()
        },
    }
    decisions, unmatched, _ = collect(run.kafka, run.prefix, waited, quiet_s=30, timeout_s=240)
    dead = _dead_letters(run.bootstrap, run.prefix, len(poison), timeout_s=60)
    report = DemoReport(shipments=len(truth), events=len(traffic.events))
    compare(truth, decisions, unmatched, 0, report)
    detail = "\n".join(report.lines()) + f"\n{report.mismatch_examples}\n{run.log_tails()}"
    assert (report.lost, report.duplicates, report.mismatches) == (0, 0, 0), detail
    assert worker.poll() is None, f"the worker stopped\n{run.log_tails()}"

    by_key: dict[bytes, list[Any]] = {}
    for d in dead:
        by_key.setdefault(d.letter.key or b"", []).append(d)
    wrong: list[str] = []
    for p in poison:
        got = by_key.pop(p.send.key, [])
        if len(got) != 1:
            wrong.append(f"{p.cls}: {len(got)} dead letters")
            continue
        letter = got[0].letter
        if letter.error_class != p.error_class or p.field not in letter.reason:
            wrong.append(f"{p.cls}: {letter.error_class} {letter.reason[:200]!r}")
        if p.reduced != (letter.value is None and "s321-reduced" in letter.headers):
            wrong.append(
                f"{p.cls}: reduced={p.reduced} expected, got value {letter.value is not None}"
            )
        if not p.reduced and letter.value != p.send.value:
            wrong.append(f"{p.cls}: the dead letter lost the original bytes")
    assert not wrong, "\n".join(wrong)
    assert not by_key, (
        f"unexpected dead letters: {[(k, [d.letter.reason for d in v]) for k, v in by_key.items()]}"
    )

    for key, fate in expect.items():
        ds = decisions.get(key, [])
        if fate == "UNMATCHED":
            assert key in unmatched, f"{key}: its pilot record was not reported unmatched"
            assert ds == [], f"{key}: decided on data that failed validation"
        else:
            newest = max(ds, key=lambda d: d.version)
            assert newest.outcome.value == "HOLD", key
            assert "DQ" in {h.rule_id for h in newest.hits}, key
    hostile_keys = {
        "PXQ",
        "PXA",
        "PXW",
        "PXY1",
        "PXY9",
        "PXF1",
        "PXF2",
        "PXF3",
        "PXC",
        "PXB",
        "PXL",
        "PXE",
        "PXBIG1",
    }
    assert not hostile_keys & (set(decisions) | set(unmatched)), "a hostile record was decided"


def _in_partition(stem: str, partition: int) -> str:
    """A key of the form ``stem<n>`` whose home is ``partition``."""
    for n in range(10_000):
        key = f"{stem}{n}"
        if murmur2_partition(key.encode(), PARTITIONS) == partition:
            return key
    raise AssertionError("no key found")


def test_far_future_records_amid_live_traffic_move_no_clock(run: WorkerRun) -> None:
    """Live traffic (event time now, idle time at wall speed) with records dated far ahead on
    every topic and partition: those over a year ahead are dead letters, those under are
    accepted; deadline decisions keep their latency (a few seconds after the deadline, never
    before it) and no pilot or Type 86 record waiting for its manifest is reported unmatched."""
    from confluent_kafka import Producer

    data_dir = run.tmp_path / "data"
    log = data_dir / "worker-live.log"
    run.procs.append(start_worker(run.env(data_dir), log, "--idle-speedup", "1"))
    run.logs.append(log)
    producer = Producer(
        {"bootstrap.servers": run.bootstrap, "linger.ms": 2, "enable.idempotence": True}
    )

    def send(spec: topics.TopicSpec, key: str, event: object, partition: int | None = None) -> None:
        part = murmur2_partition(key.encode(), PARTITIONS) if partition is None else partition
        producer.produce(
            topics.topic_name(spec, run.prefix),
            key=key.encode(),
            value=_encode(event),
            partition=part,
        )
        producer.poll(0)

    def now() -> datetime:
        t = datetime.now(UTC)
        return t.replace(microsecond=t.microsecond // 1000 * 1000)

    warm = now()
    send(topics.MANIFEST, "WARM1", manifest("WARM1", at=warm))
    send(topics.PILOT, "WARM1", pilot("WARM1", at=warm))
    producer.flush(30)
    assert _wait_for_decisions(run.kafka, run.prefix, 1, timeout_s=120) >= 1, run.log_tails()

    deadlines: dict[str, datetime] = {}  # missing-pilot shipments -> their deadline
    partnered: list[str] = []  # pilot (or Type 86) first, then the manifest (and pilot) 6 s later
    later: list[tuple[float, str, datetime]] = []
    far_dead: list[str] = []
    far_kept: list[str] = []
    start = time.monotonic()
    tick = 0
    while time.monotonic() - start < 30:
        at = now()
        t = time.monotonic()
        key = f"LIVEM{tick:05d}"
        send(topics.MANIFEST, key, manifest(key, at=at, arrival=timedelta(seconds=3)))
        deadlines[key] = at + timedelta(seconds=3)
        key = f"LIVEP{tick:05d}"
        if tick % 2:
            send(topics.PILOT, key, pilot(key, at=at))
        else:
            send(topics.ENTRY86, key, entry86(key, at=at))
        partnered.append(key)
        later.append((t + 6, key, at))
        while later and later[0][0] <= t:
            _complete(send, *later.pop(0)[1:])
        if tick % 5 == 0:
            slot = (tick // 5) % (3 * PARTITIONS)
            spec = (topics.MANIFEST, topics.PILOT, topics.ENTRY86)[slot % 3]
            partition = slot // 3
            for ahead, bucket, stem in (
                (timedelta(days=400), far_dead, "FUTD"),
                (datetime(2030, 6, 1, tzinfo=UTC) - at, far_dead, "FUTY"),
                (timedelta(days=300), far_kept, "FUTK"),
            ):
                k = _in_partition(f"{stem}{tick}x", partition)
                make = {topics.MANIFEST: manifest, topics.PILOT: pilot, topics.ENTRY86: entry86}[
                    spec
                ]
                send(spec, k, make(k, at=at + ahead), partition)
                bucket.append(k)
        tick += 1
        time.sleep(max(0.0, start + tick * 0.1 - time.monotonic()))
    for _, k, first in later:
        _complete(send, k, first)
    producer.flush(30)

    expected = {k: SimpleNamespace(outcome="DECIDED") for k in [*deadlines, *partnered]}
    decisions, unmatched, _ = collect(run.kafka, run.prefix, expected, quiet_s=20, timeout_s=120)
    assert unmatched == {}, f"false unmatched reports: {sorted(unmatched)[:10]}"
    missing = [k for k in [*deadlines, *partnered] if k not in decisions]
    assert not missing, (
        f"{len(missing)} live shipments never decided: {missing[:5]}\n{run.log_tails()}"
    )
    early_r16 = [k for k in partnered if "R16" in {h.rule_id for h in _newest(decisions[k]).hits}]
    assert not early_r16, f"decided for missing pilot data before the deadline: {early_r16[:5]}"
    latency = []
    for key, due in deadlines.items():
        first = min(decisions[key], key=lambda d: d.version)
        assert "R16" in {h.rule_id for h in first.hits}, key
        latency.append((first.decided_at - due).total_seconds())
    assert min(latency) >= 0, f"a deadline fired {-min(latency):.1f} s early"
    summary = (
        f"deadline latency median {statistics.median(latency):.1f} s, max {max(latency):.1f} s"
    )
    assert statistics.median(latency) < 5, summary
    assert max(latency) < 15, summary
    dead = _dead_letters(run.bootstrap, run.prefix, len(far_dead), timeout_s=30)
    dead_keys = {(d.letter.key or b"").decode() for d in dead}
    assert dead_keys == set(far_dead), f"dead letters: {sorted(dead_keys ^ set(far_dead))[:10]}"
    assert all("header.event_time" in d.letter.reason for d in dead)


def _complete(send: Any, key: str, first: datetime) -> None:
    """The rest of a live shipment whose pilot record or Type 86 entry came first."""
    send(topics.MANIFEST, key, manifest(key, at=first + timedelta(seconds=1)))
    if key.endswith(("0", "2", "4", "6", "8")):  # its Type 86 came first: a pilot too
        send(topics.PILOT, key, pilot(key, at=first + timedelta(seconds=1)))


def _newest(ds: list[Decision]) -> Decision:
    return max(ds, key=lambda d: d.version)
