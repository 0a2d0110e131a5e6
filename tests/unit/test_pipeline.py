"""The processor and the pure join: ordering, duplicates, amendments, deadlines, bad input."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace as dc_replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from s321 import serialization, topics
from s321.core.processor import Output, Processor
from s321.core.routing import murmur2_partition
from s321.core.state import deadline_of, decode_state
from s321.models import (
    REVIEW_ACTION,
    Action,
    CompleteRecord,
    DeadLetter,
    Decision,
    Outcome,
    RuleHit,
    Severity,
    engine_error_hit,
)
from tests.factories import T0, PerRecord, StubVerdict, entry86, manifest, pilot, value_rule
from tests.legacy_state import encode_json

P = 4
#: The broker timestamp of the records fed: a year after the events (as if replayed), so
#: none is ahead of the time it was received.
BROKER_MS = int((T0 + timedelta(days=365)).timestamp() * 1000)


class Feed:
    """Feeds encoded events to a processor as if they came from correctly keyed topics."""

    def __init__(self, evaluate: Any = None) -> None:
        self.store: dict[str, bytes] = {}
        self.proc = Processor(evaluate or PerRecord(value_rule), P)
        self.offset = 0
        self.out: list[Output] = []

    def send(
        self,
        event: object,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int = BROKER_MS,
    ) -> list[Output]:
        spec = {
            "ManifestEvent": topics.MANIFEST,
            "PilotRecord": topics.PILOT,
            "Entry86": topics.ENTRY86,
        }[type(event).__name__]
        raw = serialization.encode(event)
        bill = getattr(event, "house_bill", None) or getattr(event, "bill_number", None)
        k = bill.encode() if key is None else key
        part = murmur2_partition(k, P) if partition is None else partition
        self.offset += 1
        outs = self.record(spec.base, part, self.offset, k, raw, timestamp_ms, self.store)
        # forward re-keyed records the way Kafka would deliver them, until none is left
        pending = [o for o in outs if o.spec is topics.REPARTITION]
        outs = [o for o in outs if o.spec is not topics.REPARTITION]
        while pending:
            o = pending.pop(0)
            self.offset += 1
            more = self.record(
                topics.REPARTITION.base,
                o.partition or 0,
                self.offset,
                o.key,
                o.value,
                BROKER_MS,
                self.store,
                o.headers,
            )
            pending += [m for m in more if m.spec is topics.REPARTITION]
            outs += [m for m in more if m.spec is not topics.REPARTITION]
        self.out += outs
        return outs

    def record(self, *args: Any) -> list[Output]:
        """One record to the processor, then the decisions it asked for (a batch of one)."""
        return self.proc.on_record(*args) + self.proc.decide_pending(self.store)

    def send_batches(self, events: list[object], cuts: list[int]) -> None:
        """Send ``events`` as the worker's batches would: split at ``cuts``, each batch's
        decisions made when it ends, re-keyed records delivered in the batch after."""
        bounds = sorted({0, len(events), *(c for c in cuts if 0 < c < len(events))})
        for lo, hi in itertools.pairwise(bounds):
            batch: list[tuple[Any, ...]] = []
            for event in events[lo:hi]:
                spec = {"ManifestEvent": topics.MANIFEST, "PilotRecord": topics.PILOT}.get(
                    type(event).__name__, topics.ENTRY86
                )
                bill = getattr(event, "house_bill", None) or getattr(event, "bill_number", "")
                k = bill.encode()
                self.offset += 1
                raw = serialization.encode(event)
                batch.append((spec.base, murmur2_partition(k, P), self.offset, k, raw, BROKER_MS))
            while batch:
                outs: list[Output] = []
                for rec in batch:
                    outs += self.proc.on_record(*rec, self.store)
                outs += self.proc.decide_pending(self.store)
                batch = [
                    (topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, BROKER_MS)
                    for o in outs
                    if o.spec is topics.REPARTITION and o.key is not None
                ]
                self.out += [o for o in outs if o.spec is not topics.REPARTITION]

    def tick(self, at_ms: int) -> None:
        """Every input partition reports itself idle, proposing ``at_ms`` as the time."""
        for source in range(P):
            for o in self.proc.marks(source, at_ms):
                self.out += self.record(
                    topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, 0,
                    self.store, o.headers,
                )  # fmt: skip

    def decisions(self) -> list[Decision]:
        return [
            serialization.decode(o.value, Decision) for o in self.out if o.spec is topics.DECISIONS
        ]

    def of(self, spec: topics.TopicSpec) -> list[Output]:
        return [o for o in self.out if o.spec is spec]


def test_manifest_then_pilot_decides_once() -> None:
    """A manifest and its pilot record produce exactly one decision, version 1, naming both inputs."""
    f = Feed()
    assert f.send(manifest("HB1")) == []
    f.send(pilot("HB1", at=T0 + timedelta(minutes=1)))
    [d] = f.decisions()
    assert (d.shipment_key, d.version, d.outcome) == ("HB1", 1, Outcome.RELEASE)
    assert {i.topic for i in d.inputs} == {topics.MANIFEST.base, topics.PILOT.base}


def test_duplicates_and_later_type86_without_change_publish_nothing_new() -> None:
    """Resending the same events, or a Type 86 entry that changes no reason, publishes no new version."""
    f = Feed()
    m, p = manifest("HB2"), pilot("HB2")
    f.send(m)
    f.send(p)
    f.send(m)
    f.send(p)
    f.send(entry86("HB2"))
    assert [d.version for d in f.decisions()] == [1]


def test_manifest_change_over_threshold_publishes_version_two() -> None:
    """A manifest CHANGE that raises the value over $800 publishes version 2 as a HOLD with R02."""
    f = Feed()
    f.send(manifest("HB3"))
    f.send(pilot("HB3"))
    f.send(manifest("HB3", "900.00", at=T0 + timedelta(minutes=5), action=Action.CHANGE))
    d1, d2 = f.decisions()
    assert (d1.version, d1.outcome) == (1, Outcome.RELEASE)
    assert (d2.version, d2.outcome) == (2, Outcome.HOLD)
    assert [h.rule_id for h in d2.hits] == ["R02"]
    assert d2.decision_id != d1.decision_id


def test_older_amendment_arriving_late_changes_nothing() -> None:
    """A manifest event older than the stored one (out of order) does not replace it."""
    f = Feed()
    f.send(manifest("HB4", "900.00", at=T0 + timedelta(minutes=5), action=Action.CHANGE))
    f.send(manifest("HB4", "40.00", at=T0))
    f.send(pilot("HB4"))
    [d] = f.decisions()
    assert d.outcome is Outcome.HOLD


def test_delete_publishes_cancellation_version() -> None:
    """A manifest DELETE after a decision publishes a CANCELLED version."""
    f = Feed()
    f.send(manifest("HB5"))
    f.send(pilot("HB5"))
    f.send(manifest("HB5", at=T0 + timedelta(minutes=3), action=Action.DELETE))
    assert [(d.version, d.outcome) for d in f.decisions()] == [
        (1, Outcome.RELEASE),
        (2, Outcome.CANCELLED),
    ]


def test_missing_pilot_decides_at_deadline_with_r16() -> None:
    """With no pilot record, the shipment is decided when its partition's event time passes 30 minutes."""
    f = Feed()
    f.send(manifest("HB6"))
    f.tick(int((T0 + timedelta(minutes=29)).timestamp() * 1000))
    assert f.decisions() == []
    f.tick(int((T0 + timedelta(minutes=31)).timestamp() * 1000))
    [d] = f.decisions()
    assert [h.rule_id for h in d.hits] == ["R16"]
    assert f.proc.expired_total == 1


def _ms(delta: timedelta) -> int:
    return int((T0 + delta).timestamp() * 1000)


def _mark(
    f: Feed,
    source: int,
    read: timedelta | None,
    idle: timedelta | None = None,
    caught_up: frozenset[str] | set[str] = frozenset(),
) -> None:
    """Input partition ``source`` reports how far it has been read (as another worker would)."""
    if read is not None:
        for spec in topics.INPUTS:
            f.proc.read_ms[(spec.base, source)] = _ms(read)
    for o in f.proc.marks(source, None if idle is None else _ms(idle), caught_up=caught_up):
        f.out += f.record(
            topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, 0, f.store, o.headers
        )


def test_a_partition_clock_waits_for_the_slowest_input_partition() -> None:
    """In catch-up one input partition is read far ahead of another that may still forward a
    partner: the clock is the slowest busy input partition's, so no deadline fires early."""
    f = Feed()
    f.send(manifest("HB6"))
    slow = (murmur2_partition(b"HB6", P) + 1) % P
    for source in range(P):
        _mark(f, source, timedelta(minutes=10) if source == slow else timedelta(hours=5))
    assert f.decisions() == [], "a partition still behind could forward the pilot record"
    _mark(f, slow, timedelta(minutes=31))
    [d] = f.decisions()
    assert [h.rule_id for h in d.hits] == ["R16"]


def test_an_input_partition_is_read_as_far_as_its_slowest_topic() -> None:
    """After a restart the manifest topic of an input partition can be replayed hours ahead of
    its pilot topic (each resumes from its own committed offset): the partition's mark is the
    slower topic's, so a pilot record still unread there cannot miss its deadline."""
    f = Feed()
    f.send(manifest("HB6"))
    home = murmur2_partition(b"HB6", P)
    for source in range(P):
        if source != home:
            _mark(f, source, timedelta(hours=5))
    f.proc.read_ms[(topics.MANIFEST.base, home)] = _ms(timedelta(hours=5))
    f.proc.read_ms[(topics.PILOT.base, home)] = _ms(timedelta(minutes=10))
    assert f.proc.read_to(home) == 0, "a topic not read yet holds the partition at 0"
    f.proc.read_ms[(topics.ENTRY86.base, home)] = _ms(timedelta(hours=5))
    _mark(f, home, None)
    assert f.decisions() == [], "the pilot topic is read only to 10 minutes"
    _mark(f, home, None, caught_up={topics.PILOT.base})  # all pilot records read
    assert [[h.rule_id for h in d.hits] for d in f.decisions()] == [["R16"]]


def test_no_clock_until_every_input_partition_has_reported() -> None:
    f = Feed()
    f.send(manifest("HB6"))
    for source in range(P - 1):
        _mark(f, source, None, idle=timedelta(hours=5))
    assert f.decisions() == []
    _mark(f, P - 1, None, idle=timedelta(hours=5))
    assert len(f.decisions()) == 1


def test_idle_input_partitions_do_not_hold_the_clock_back() -> None:
    f = Feed()
    f.send(manifest("HB6"))
    for source in range(P):
        _mark(f, source, None, idle=timedelta(minutes=5))
    _mark(f, 0, timedelta(minutes=40))  # the one busy partition decides the time
    assert len(f.decisions()) == 1


def test_deadline_is_estimated_arrival_when_sooner() -> None:
    """A manifest arriving within 10 minutes is decided at its estimated arrival, not 30 minutes."""
    f = Feed()
    f.send(manifest("HB7", arrival=timedelta(minutes=10)))
    f.tick(int((T0 + timedelta(minutes=11)).timestamp() * 1000))
    assert len(f.decisions()) == 1


def test_pilot_without_manifest_is_reported_unmatched() -> None:
    """Pilot data whose manifest never comes is reported on the unmatched topic after 24 hours, not decided."""
    f = Feed()
    f.send(pilot("HB8"))
    f.tick(int((T0 + timedelta(hours=23)).timestamp() * 1000))
    assert f.of(topics.UNMATCHED) == []
    f.tick(int((T0 + timedelta(hours=25)).timestamp() * 1000))
    [u] = f.of(topics.UNMATCHED)
    letter = serialization.decode(u.value, DeadLetter)
    assert type(letter).__name__ == topics.UNMATCHED.value_type
    assert letter.error_class == "Unmatched"
    assert f.decisions() == []


def test_wrong_key_and_partition_are_rekeyed_so_halves_meet() -> None:
    """Records keyed or partitioned unlike the payload go through the repartition topic and still meet."""
    f = Feed()
    outs = f.send(manifest("HB9"), key=b"something-else", partition=0)
    assert outs == []
    f.send(pilot("hb-9".replace("-", "")), key=None, partition=3)
    [d] = f.decisions()
    assert d.shipment_key == "HB9"


def test_bad_bytes_go_to_dead_letters_with_reason() -> None:
    """Undecodable bytes become a dead letter carrying the original bytes and the reason."""
    f = Feed()
    outs = f.record(topics.MANIFEST.base, 0, 7, b"k", b"\xc3\x01garbage", 0, f.store)
    [o] = outs
    assert o.spec is topics.DEAD_LETTERS
    letter = serialization.decode(o.value, DeadLetter)
    assert letter.value == b"\xc3\x01garbage"
    assert (letter.source_topic, letter.offset) == (topics.MANIFEST.base, 7)
    assert letter.reason
    assert dict(o.headers)["s321-error-class"] == letter.error_class.encode()


def test_pilot_record_on_manifest_topic_is_a_dead_letter() -> None:
    """A valid record of the wrong type for its topic is refused, not joined."""
    f = Feed()
    raw = serialization.encode(pilot("HB10"))
    [o] = f.record(topics.MANIFEST.base, 0, 1, b"HB10", raw, 0, f.store)
    assert o.spec is topics.DEAD_LETTERS


def test_rule_exception_holds_instead_of_releasing() -> None:
    """When evaluation raises, the shipment is held with an engine-error reason."""

    def broken(record: CompleteRecord) -> object:
        raise ZeroDivisionError("boom")

    f = Feed(PerRecord(broken))
    f.send(manifest("HB11"))
    f.send(pilot("HB11"))
    [d] = f.decisions()
    assert d.outcome is Outcome.HOLD
    assert d.hits == (engine_error_hit(ZeroDivisionError()),)
    assert d.hits[0].severity is Severity.CRITICAL
    assert d.required_actions == (REVIEW_ACTION,)


def test_deadline_index_is_rebuilt_from_the_store() -> None:
    """After a restart (new processor, same store), a waiting shipment's deadline still fires."""
    f = Feed()
    f.send(manifest("HB12"))
    restarted = Processor(PerRecord(value_rule), P)
    restarted.rebuild_deadlines(f.store, set(range(P)))
    assert restarted.index_deadlines()
    assert restarted.waiting == 1
    f.proc = restarted
    f.tick(int((T0 + timedelta(minutes=31)).timestamp() * 1000))
    assert len(f.decisions()) == 1


def test_deadlines_wait_until_the_whole_table_is_indexed_again() -> None:
    """The index is rebuilt a slice at a time while shipments are decided; until all of the
    table is read, marks move no clock (a deadline not yet indexed could otherwise be passed)."""
    f = Feed()
    for n in range(2000):
        f.send(manifest(f"HBW{n}"))
    restarted = Processor(PerRecord(value_rule), P)
    restarted.rebuild_deadlines(f.store, set(range(P)))
    f.proc = restarted
    f.send(manifest("HBD1"))
    f.send(pilot("HBD1"))
    assert [d.shipment_key for d in f.decisions()] == ["HBD1"]  # decided while indexing
    later = int((T0 + timedelta(minutes=31)).timestamp() * 1000)
    f.tick(later)
    assert len(f.decisions()) == 1  # no deadline fired: the index is incomplete
    slices = 0
    while not restarted.index_deadlines(budget_s=0.0):
        slices += 1
    assert slices >= 2  # it took more than one slice
    assert restarted.waiting >= 2000
    f.tick(later + 1)
    assert len(f.decisions()) == 2001  # every waiting manifest's deadline fired once


def test_a_state_is_read_for_its_deadline_from_its_head_or_in_full() -> None:
    """The index reads partition and deadline from the head of a state's encoding; a state
    written in the older layout is decoded in full and gives the same answer."""
    f = Feed()
    f.send(manifest("HBH1"))
    raw = f.store["HBH1"]
    state = decode_state(raw)
    assert state.deadline_ms is not None
    assert deadline_of(raw) == (state.partition, state.deadline_ms)
    older = json.loads(encode_json(state))  # as the old code wrote it
    older = {"k": older.pop("k"), **{k: v for k, v in older.items()}}  # head not first
    older_raw = json.dumps(older).encode()
    assert not older_raw.startswith(b'{"p":')
    assert deadline_of(older_raw) == (state.partition, state.deadline_ms)
    f.send(pilot("HBH1"))
    assert deadline_of(f.store["HBH1"])[1] is None


class _Writes(dict[str, bytes]):
    """A store that counts its writes."""

    writes = 0

    def __setitem__(self, key: str, value: bytes) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_a_duplicate_writes_its_state_again() -> None:
    """A record replayed after a crash can find a state whose changelog record was lost: the
    duplicate writes the state again (unchanged), so the changelog gets it, and decides nothing."""
    f = Feed()
    f.store = _Writes()
    m = manifest("HBR1")
    f.send(m)
    f.send(pilot("HBR1"))
    before, writes = dict(f.store), f.store.writes
    f.send(m)
    assert f.store.writes == writes + 1
    assert dict(f.store) == before
    assert [d.version for d in f.decisions()] == [1]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(6)), st.lists(st.integers(0, 5), max_size=4))
def test_any_order_with_duplicates_gives_the_same_final_decision(
    order: list[int], dups: list[int]
) -> None:
    """Whatever the arrival order and duplication of a shipment's events, the newest decision is the same."""
    events = [
        manifest("HBX"),
        pilot("HBX", at=T0 + timedelta(minutes=1)),
        entry86("HBX", at=T0 + timedelta(minutes=2)),
        manifest("HBX", "900.00", at=T0 + timedelta(minutes=3), action=Action.CHANGE),
        pilot("HBX", at=T0 + timedelta(minutes=4)),
        entry86("HBX", at=T0 + timedelta(minutes=5)),
    ]
    f = Feed()
    for i in [*order, *dups]:
        f.send(events[i])
    decisions = f.decisions()
    assert decisions, "manifest and pilot were both sent"
    assert [d.version for d in decisions] == list(range(1, len(decisions) + 1))
    final = decisions[-1]
    assert final.outcome is Outcome.HOLD
    assert [h.rule_id for h in final.hits] == ["R02"]


class _Crowd:
    """An evaluator with state across shipments, as the cross-shipment rules have: a shipment
    decided after two others is held. It takes a batch at once (``many``), in order."""

    def __init__(self) -> None:
        self.seen: dict[str, None] = {}
        self.batches: list[list[str]] = []

    def many(self, records: list[CompleteRecord]) -> list[object]:
        self.batches.append([r.key for r in records])
        out = []
        for r in records:
            self.seen.setdefault(r.key)
            base = value_rule(r)
            if list(self.seen).index(r.key) >= 2:
                hit = RuleHit("R03", 1, Severity.HIGH, "CROWD", "third shipment or later")
                base = StubVerdict(Outcome.HOLD, (*base.hits, hit))
            out.append(base)
        return out


def _shipment_events() -> list[object]:
    return [
        manifest("HBA"),
        pilot("HBA", at=T0 + timedelta(minutes=1)),
        manifest("HBB"),
        pilot("HBB", at=T0 + timedelta(minutes=2)),
        entry86("HBA", at=T0 + timedelta(minutes=3)),
        manifest("HBA", "900.00", at=T0 + timedelta(minutes=4), action=Action.CHANGE),
        manifest("HBC"),
        pilot("HBC", at=T0 + timedelta(minutes=5)),
        manifest("HBB", at=T0 + timedelta(minutes=6), action=Action.DELETE),
        pilot("HBA", at=T0 + timedelta(minutes=7)),
    ]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(10)), st.lists(st.integers(1, 9), max_size=5))
def test_decisions_made_per_batch_equal_decisions_made_one_record_at_a_time(
    order: list[int], cuts: list[int]
) -> None:
    """However a stream is cut into batches, the decisions (ids, versions, outcomes, reasons)
    are those made one record at a time, and the evaluator sees each batch's records once, in
    the order they asked."""
    events = [_shipment_events()[i] for i in order]
    one, batched = Feed(_Crowd()), Feed(_Crowd())
    for event in events:
        one.send(event)
    batched.send_batches(events, cuts)

    def seen(f: Feed) -> list[tuple[str, int, str, list[str]]]:
        return [
            (d.decision_id, d.version, d.outcome.value, [h.reason_code for h in d.hits])
            for d in f.decisions()
        ]

    assert seen(batched) == seen(one)

    def states(f: Feed) -> dict[str, object]:  # but the wall time each decision was made
        return {k: dc_replace(decode_state(v), decided_ms=0) for k, v in f.store.items()}

    assert states(batched) == states(one)
    crowd = batched.proc.evaluate
    assert isinstance(crowd, _Crowd)
    assert len(crowd.batches) <= len(set(cuts)) + 1


def test_a_record_whose_evaluation_fails_in_a_batch_is_held_alone() -> None:
    """One record's rules raising holds that shipment (engine error); the others in the
    batch are decided normally."""

    class Picky:
        def many(self, records: list[CompleteRecord]) -> list[object]:
            return [ValueError("bad") if r.key == "HBF" else value_rule(r) for r in records]

    f = Feed(Picky())
    f.send_batches([manifest("HBE"), pilot("HBE"), manifest("HBF"), pilot("HBF")], [])
    outcome = {d.shipment_key: (d.outcome, [h.reason_code for h in d.hits]) for d in f.decisions()}
    assert outcome == {
        "HBE": (Outcome.RELEASE, []),
        "HBF": (Outcome.HOLD, ["ENGINE_ERROR"]),
    }


def test_shipments_affected_by_a_later_one_get_a_new_version() -> None:
    """When a later shipment pushes a shared aggregate over its limit, the earlier shipment is re-evaluated and gets a new version."""
    crossed = {"yes": False}

    def person_day(record: CompleteRecord) -> object:
        verdict = value_rule(record)
        if record.key == "HBB":
            crossed["yes"] = True
            return dc_replace(verdict, affected=("HBA",))
        if crossed["yes"]:
            from s321.models import RuleHit, Severity
            from tests.factories import StubVerdict

            return StubVerdict(Outcome.HOLD, (RuleHit("R03", 1, Severity.HIGH, "PERSON_DAY", "x"),))
        return verdict

    f = Feed(PerRecord(person_day))
    f.send(manifest("HBA"))
    f.send(pilot("HBA"))
    f.send(manifest("HBB"))
    f.send(pilot("HBB"))
    by_key = {(d.shipment_key, d.version): d.outcome for d in f.decisions()}
    assert by_key == {
        ("HBA", 1): Outcome.RELEASE,
        ("HBB", 1): Outcome.RELEASE,
        ("HBA", 2): Outcome.HOLD,
    }
    assert all(o.decision is not None for o in f.of(topics.DECISIONS))


def test_shipments_kept_over_a_limit_are_named_again_only_with_a_new_version() -> None:
    """A decision that publishes a version sends re-evaluations to the shipments its presence
    keeps over a limit (a replay after a crash repeats the signal its first run may have
    lost); one that changes nothing sends none, so two shipments cannot re-evaluate each
    other for ever."""

    def presence(record: CompleteRecord) -> object:
        return dc_replace(value_rule(record), affected_by_presence=("HBZ",))

    f = Feed(PerRecord(presence))
    named: list[bytes | None] = []  # re-evaluations delivered, as the repartition topic would
    deliver = f.proc.on_record

    def on_record(topic: str, partition: int, offset: int, key: bytes | None, *rest: Any) -> Any:
        if key == b"HBZ":
            named.append(key)
        return deliver(topic, partition, offset, key, *rest)

    f.proc.on_record = on_record  # type: ignore[method-assign]
    f.send(manifest("HBA"))
    f.send(pilot("HBA"))
    assert named == [b"HBZ"], "the first version names HBZ"
    f.send(entry86("HBA"))  # evaluated again, same outcome and reasons: no new version
    assert [(d.shipment_key, d.version) for d in f.decisions()] == [("HBA", 1)]
    assert named == [b"HBZ"]


def test_pilot_keyed_by_tracking_number_meets_manifest_keyed_by_house_bill() -> None:
    """A pilot record that knows only the tracking number joins the manifest that carries both identifiers, in either order."""
    from dataclasses import replace as dc_replace

    for pilot_first in (True, False):
        f = Feed()
        m = dc_replace(manifest("HB20"), tracking_number="9400 1000 0000 0000 0001")
        p = dc_replace(pilot("HB20"), house_bill=None, tracking_number="94001000000000000001")
        first, second = (p, m) if pilot_first else (m, p)
        key_of = {id(m): b"HB20", id(p): b"94001000000000000001"}
        f.send(first, key=key_of[id(first)])
        f.send(second, key=key_of[id(second)])
        [d] = f.decisions()
        assert d.shipment_key == "HB20"
        assert {i.topic for i in d.inputs} == {topics.MANIFEST.base, topics.PILOT.base}
        assert f.of(topics.UNMATCHED) == []


def test_pilot_dated_after_the_deadline_keeps_r16_but_one_dated_before_clears_it() -> None:
    """Late pilot data is judged by its event time: dated after the deadline R16 stays, dated before it R16 clears."""
    late = Feed()
    late.send(manifest("HB30"))
    late.tick(int((T0 + timedelta(minutes=31)).timestamp() * 1000))
    late.send(pilot("HB30", at=T0 + timedelta(minutes=40)))
    assert [[h.rule_id for h in d.hits] for d in late.decisions()] == [["R16"]]

    early = Feed()
    early.send(manifest("HB31"))
    early.tick(int((T0 + timedelta(minutes=31)).timestamp() * 1000))
    early.send(pilot("HB31", at=T0 + timedelta(minutes=5)))
    assert [[h.rule_id for h in d.hits] for d in early.decisions()] == [["R16"], []]


def test_a_second_type86_entry_for_the_bill_reaches_the_rules_even_if_older() -> None:
    """Two Type 86 entries for one bill are both visible to the rules, whatever their order."""
    from dataclasses import replace as dc_replace

    seen: list[tuple[str, ...]] = []

    def spy(record: CompleteRecord) -> object:
        seen.append(record.entry_numbers)
        return value_rule(record)

    f = Feed(PerRecord(spy))
    f.send(manifest("HB32"))
    f.send(pilot("HB32"))
    f.send(entry86("HB32", at=T0 + timedelta(minutes=10)))
    f.send(dc_replace(entry86("HB32", at=T0), entry_number="XYZ00000019"))
    assert seen[-1] == ("ABC12345675", "XYZ00000019")


def test_marks_from_before_a_rebalance_are_ignored() -> None:
    """After a rebalance, records counted by an earlier generation's marks may be read again,
    so those marks move no clock; the new generation's marks do."""
    f = Feed()
    f.proc.rebuild_deadlines(f.store, set(range(P)), generation=2)
    assert f.proc.index_deadlines()
    f.send(manifest("HB6"))
    for source in range(P):
        for o in f.proc.marks(source, _ms(timedelta(hours=5)), generation=1):
            f.out += f.record(
                topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, 0, f.store, o.headers
            )
    assert f.decisions() == []
    for source in range(P):
        for o in f.proc.marks(source, _ms(timedelta(hours=5)), generation=2):
            f.out += f.record(
                topics.REPARTITION.base, o.partition or 0, 0, o.key, o.value, 0, f.store, o.headers
            )
    assert len(f.decisions()) == 1


class _Ledger:
    """The version ledger, in memory (records are let go by the next write, as in Redis)."""

    def __init__(self) -> None:
        self.kept: dict[str, tuple[int, str]] = {}
        self.records: dict[tuple[str, int], bytes] = {}
        self.writes = 0

    def read(self, shipments: Any) -> dict[str, tuple[int, str]]:
        return {s: self.kept[s] for s in shipments if s in self.kept}

    def sent(self, versions: dict[str, range]) -> dict[str, list[tuple[int, bytes]]]:
        out: dict[str, list[tuple[int, bytes]]] = {}
        for s, vs in versions.items():
            for v in vs:
                if (s, v) in self.records:
                    out.setdefault(s, []).append((v, self.records[s, v]))
        return out

    def write(
        self, versions: dict[str, tuple[int, str]], records: dict[tuple[str, int], bytes]
    ) -> None:
        self.kept.update(versions)
        self.records = dict(records)
        self.writes += 1

    def let_go(self) -> None:
        self.records = {}

    def copy(self) -> _Ledger:
        other = _Ledger()
        other.kept, other.records = dict(self.kept), dict(self.records)
        return other


def test_a_version_sent_before_a_crash_is_never_given_to_another_outcome() -> None:
    """A worker sent HBL v1 RELEASE and died before its state reached the changelog; its
    replacement replays the records from an empty state while the cross-shipment totals have
    moved on (HOLD now). It sends v2 HOLD, not a second v1 that a consumer dropping repeats by
    id would ignore; with the same outcome it sends v1 again, the same decision id."""
    ledger = _Ledger()
    first = Feed()
    first.proc.ledger = ledger
    first.send(manifest("HBL"))
    first.send(pilot("HBL"))
    assert [(d.version, d.outcome) for d in first.decisions()] == [(1, Outcome.RELEASE)]

    def now_held(record: CompleteRecord) -> object:
        return StubVerdict(Outcome.HOLD, (RuleHit("R03", 1, Severity.HIGH, "PERSON_DAY", "x"),))

    ledger.records.clear()  # its batch was durable: the record was let go

    def replay(evaluate: Any) -> list[Decision]:
        replacement = Feed(PerRecord(evaluate))  # an empty table: the state was lost
        replacement.proc.ledger = ledger.copy()
        replacement.send(manifest("HBL"))
        replacement.send(pilot("HBL"))
        return replacement.decisions()

    held = replay(now_held)
    assert [(d.version, d.outcome) for d in held] == [(2, Outcome.HOLD)]
    again = replay(value_rule)
    assert [(d.version, d.outcome) for d in again] == [(1, Outcome.RELEASE)]
    assert again[0].decision_id == first.decisions()[0].decision_id


def test_a_version_given_before_a_crash_is_sent_as_it_was_before_the_next() -> None:
    """A worker gave HBM v1 RELEASE (ledger written) and died before the broker acknowledged it,
    so whether v1 went out is unknown. Its replacement, replaying from an empty state with the
    totals moved on (HOLD now), sends v1 again byte for byte, then v2 HOLD: no version is
    skipped and no id carries two contents. With the same outcome, v1 alone, as it was."""
    ledger = _Ledger()
    first = Feed()
    first.proc.ledger = ledger
    first.send(manifest("HBM"))
    first.send(pilot("HBM"))
    [given] = first.of(topics.DECISIONS)  # never acknowledged: the worker died
    assert ledger.records == {("HBM", 1): given.value}

    def now_held(record: CompleteRecord) -> object:
        return StubVerdict(Outcome.HOLD, (RuleHit("R03", 1, Severity.HIGH, "PERSON_DAY", "x"),))

    def replay(evaluate: Any) -> list[Output]:
        replacement = Feed(PerRecord(evaluate))
        replacement.proc.clock = lambda: _ms(timedelta(hours=9))  # decided later: other bytes
        replacement.proc.ledger = ledger.copy()
        replacement.send(manifest("HBM"))
        replacement.send(pilot("HBM"))
        return replacement.of(topics.DECISIONS)

    held = replay(now_held)
    assert [o.value for o in held[:1]] == [given.value]
    assert [(o.decision.version, o.decision.outcome) for o in held if o.decision] == [
        (1, Outcome.RELEASE),
        (2, Outcome.HOLD),
    ]
    assert [dict(o.headers)["s321-decision-id"] for o in held[:1]] == [
        dict(given.headers)["s321-decision-id"]
    ]
    same = replay(value_rule)
    assert [o.value for o in same] == [given.value], "the same outcome: v1 as it was"
