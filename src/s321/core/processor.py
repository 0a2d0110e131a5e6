"""The processor: everything the correlating agent does with one record, without Faust.

:class:`Processor.on_record` takes one Kafka record (topic, partition, offset, key, value,
broker timestamp) and a state store (the Faust table, or a dict in tests) and returns the
records to send. The decisions those records ask for are made together when the batch ends,
by :meth:`Processor.decide_pending` (one round trip to the cross-shipment state for all of
them), with the same results as if each had been made when asked. It never raises for bad
input: an undecodable record becomes a dead letter with its original bytes, and so does one
that decodes but breaks a bound of :mod:`s321.validation` (checked before it changes any
state); such a record that names its shipment flags it, and a flagged shipment is held with a
data-quality reason (DQ, INVALID_INPUT) until a valid record of the same kind replaces it. An
exception while evaluating rules makes that shipment a HOLD with an engine-error reason.
Nothing is silently released because something failed. A dead letter too large to send is
reduced to the record's place, size and digest.

Records whose Kafka key or partition disagree with the payload's shipment key are forwarded to
the repartition topic (explicit partition: murmur2 of the key, the same as Java clients'
default), so the two halves of a shipment always meet in one partition.

Event time. A partition's deadlines fire when its clock passes them. The clock moves only on
*marks*: each worker, once a second, tells every partition how far (in event time) it has read
each input partition it owns, through the repartition topic, after the records it forwarded
from there. A partition's clock is the smallest mark over all input partitions, so it never
passes a record that another partition has still to forward to it; input partitions that are
idle (fully read, quiet) do not hold it back, and when all are idle it moves on by the idle
proposal the marks carry. How far an input partition has been read is, per topic, the
second-newest event time read from it, each capped at the time its record was received: no
single record moves a clock, and none moves it past the broker's time (:mod:`s321.validation`
writes the rule out).

Retention. A shipment's state, which holds its input records and so personal data, is deleted
from the store when its partition's clock passes the time to forget it at
(:attr:`~s321.core.correlation.ShipmentState.forget_at_ms`: the retention after its last
activity, once nothing is pending); on the Faust table that writes a tombstone to the
changelog. Its decisions are not touched.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import struct
import time
import traceback
from collections.abc import Callable, Collection, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from s321 import serialization, topics, validation
from s321.core import routing
from s321.core.correlation import (
    Deadlines,
    Flag,
    Part,
    ShipmentState,
    decision_id,
    expire,
    kind_of,
    link_key,
    merge,
    retained,
    shipment_key,
)
from s321.core.state import StateCodec, deadlines_of
from s321.errors import RecordError, ValidationError
from s321.models import (
    REVIEW_ACTION,
    CompleteRecord,
    DeadLetter,
    Decision,
    Entry86,
    InputRef,
    ManifestEvent,
    Outcome,
    PilotRecord,
    RuleHit,
    Severity,
    engine_error_hit,
)

__all__ = ["MAX_OUTPUT_BYTES", "Evaluator", "Ledger", "Output", "Processor", "Verdict"]


class Verdict(Protocol):
    """What the rules return for one complete record."""

    @property
    def outcome(self) -> Outcome: ...
    @property
    def hits(self) -> tuple[RuleHit, ...]: ...
    @property
    def required_actions(self) -> tuple[str, ...]: ...
    @property
    def not_applicable(self) -> tuple[str, ...]: ...
    @property
    def regime_version(self) -> str: ...
    @property
    def ruleset_version(self) -> str: ...
    @property
    def refdata_version(self) -> str: ...
    @property
    def stale_refdata(self) -> bool: ...
    @property
    def affected(self) -> tuple[str, ...]:
        """Other shipments whose shared aggregate this one moved across a limit: each is
        decided again."""

    @property
    def affected_by_presence(self) -> tuple[str, ...]:
        """Other shipments this one's contribution keeps across a limit: each is decided again
        when this decision publishes a version."""


class Evaluator(Protocol):
    """Evaluates the rules for the complete records of a batch (the worker's evaluator reads
    their cross-shipment state in one round trip)."""

    def many(self, records: Sequence[CompleteRecord]) -> Sequence[Verdict | Exception]:
        """One verdict per record, in order, or the exception its evaluation raised in its
        place; the records are given in the order their decisions were asked for, and an
        evaluator with state across shipments sees them in that order."""
        ...


class Ledger(Protocol):
    """Where the newest version given to each shipment is kept outside the table, written
    before the decision is sent, with the decision records themselves until their batch is
    durable (:class:`s321.stores.crossshipment.VersionLedger`)."""

    def read(self, shipments: Sequence[str]) -> dict[str, tuple[int, str]]:
        """``shipment -> (version, signature)`` for those it knows."""
        ...

    def sent(self, versions: dict[str, range]) -> dict[str, list[tuple[int, bytes]]]:
        """The decision records it still holds of these shipments' versions, in order."""
        ...

    def write(
        self, versions: dict[str, tuple[int, str]], records: dict[tuple[str, int], bytes]
    ) -> None:
        """Record ``shipment -> (version, signature)`` and the decision records ``(shipment,
        version) -> record`` before the records are sent. The batches of earlier calls are
        durable by then (their states record the versions), so their records are let go."""
        ...

    def let_go(self) -> None:
        """Every decision written so far was acknowledged by the broker: let the records go."""
        ...


@dataclass(frozen=True, slots=True)
class _Asked:
    """A decision asked for by a record, made when its batch ends."""

    key: str
    partition: int
    record: CompleteRecord
    parts: tuple[Part, ...]
    cancelled: bool
    invalid: tuple[Flag, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """One record to send: to which topic (registry handle), key, value, headers, partition."""

    spec: topics.TopicSpec
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None
    decision: Decision | None = None  # for metrics: what a decision output says
    error_class: str | None = None  # for metrics: why a record became a dead letter


_WATERMARK = "\x00watermark:"  # a table may hold clock entries under this prefix: not shipments
_EXPECTED: dict[topics.TopicSpec, type[Any]] = {
    topics.MANIFEST: ManifestEvent,
    topics.PILOT: PilotRecord,
    topics.ENTRY86: Entry86,
}
_KINDS = frozenset({"manifest", "pilot", "entry86"})
_INDEX = re.compile(r"\[\d+\]")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _quality_hit(flags: tuple[Flag, ...]) -> RuleHit:
    return RuleHit(
        "DQ",
        1,
        Severity.HIGH,
        "INVALID_INPUT",
        "a record for this shipment broke a validation bound (see the dead letters); held "
        "until a valid record of its kind replaces it",
        {
            "parts": ",".join(sorted(f.kind for f in flags)),
            "fields": "; ".join(f.fields for f in flags)[:300],
        },
    )


@dataclass(frozen=True)
class _FixedVerdict:
    """A verdict the processor gives without the rules (an engine-error hold, CANCELLED) or
    in place of theirs (a hold for data quality)."""

    hits: tuple[RuleHit, ...]
    outcome: Outcome = Outcome.HOLD
    required_actions: tuple[str, ...] = (REVIEW_ACTION,)
    not_applicable: tuple[str, ...] = ()
    regime_version: str = "unknown"
    ruleset_version: str = "unknown"
    refdata_version: str = "unknown"
    stale_refdata: bool = False
    affected: tuple[str, ...] = ()
    affected_by_presence: tuple[str, ...] = ()


_CANCELLED = _FixedVerdict(hits=(), outcome=Outcome.CANCELLED, required_actions=())


def _held_for_quality(verdict: Verdict, flags: tuple[Flag, ...]) -> Verdict:
    """``verdict`` made a HOLD: a record of the shipment failed validation, so what the rules
    saw may not be all the filers said."""
    return _FixedVerdict(
        hits=(*verdict.hits, _quality_hit(flags)),
        outcome=Outcome.HOLD,
        required_actions=(*verdict.required_actions, "correct and resend the rejected record"),
        not_applicable=verdict.not_applicable,
        regime_version=verdict.regime_version,
        ruleset_version=verdict.ruleset_version,
        refdata_version=verdict.refdata_version,
        stale_refdata=verdict.stale_refdata,
        affected=verdict.affected,
        affected_by_presence=verdict.affected_by_presence,
    )


def _cancelled(evaluated: Verdict) -> Verdict:
    """The CANCELLED verdict, under the regime, rule set and reference data the withdrawn
    manifest was evaluated with."""
    return replace(
        _CANCELLED,
        regime_version=evaluated.regime_version,
        ruleset_version=evaluated.ruleset_version,
        refdata_version=evaluated.refdata_version,
        stale_refdata=evaluated.stale_refdata,
    )


class Processor:
    """Correlates, decides and routes records; the Faust agent calls it once per record."""

    def __init__(
        self,
        evaluate: Evaluator,
        partitions: int,
        prefix: str = "",
        deadlines: Deadlines | None = None,
        clock: Callable[[], int] = _now_ms,
        ledger: Ledger | None = None,
        serializer: serialization.Serializer | None = None,
    ) -> None:
        self.evaluate = evaluate
        self.serde = serializer or serialization.serializer()  # inputs read, outputs written
        self.ledger = ledger
        self.partitions = partitions
        self.prefix = prefix
        self.deadlines = deadlines or Deadlines()
        self.clock = clock
        self._topic_kind = {topics.topic_name(t, prefix): t for t in topics.ALL}
        self._input_names = tuple(topics.topic_name(t, prefix) for t in topics.INPUTS)
        self._heaps: dict[int, list[tuple[int, str]]] = {}  # partition -> (deadline, key)
        self._forget: dict[int, list[tuple[int, str]]] = {}  # partition -> (forget at, key)
        self.watermarks: dict[int, int] = {}  # partition -> its deadline clock (event ms)
        # (input topic, partition) -> its clock position: the second-newest event time read
        # from it (each capped, see s321.validation), and the newest
        self.read_ms: dict[tuple[str, int], int] = {}
        self._newest: dict[tuple[str, int], int] = {}
        self._marks: dict[int, dict[int, tuple[int, int]]] = {}  # partition -> source -> mark
        self._decoded: dict[bytes, Any] = {}  # raw input -> decoded event, newest last
        self._states = StateCodec()  # the table's values
        self.generation = 0  # the consumer group's, as of the last rebalance seen here
        # the deadline index being rebuilt: partitions whose deadlines wait for it, the table
        # read, and where in it the reading is
        self._indexing: set[int] = set()
        self._index_store: MutableMapping[str, bytes] = {}
        self._scan: Iterator[tuple[str, bytes]] | None = None
        # decisions asked for in this batch, and each such shipment's decision before it
        self._asked: list[_Asked] = []
        self._before: dict[str, tuple[int, str, int | None]] = {}
        self.expired_total = 0  # deadlines that ran out (for metrics)
        self.forgotten_total = 0  # states deleted when their retention ran out (for metrics)

    # -- entry point ---------------------------------------------------------------------

    def on_record(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        store: MutableMapping[str, bytes],
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> list[Output]:
        """Process one record; returns what to send (its decisions come from
        :meth:`decide_pending`). Never raises for the record's content."""
        spec = self._topic_kind.get(topic)
        asked = len(self._asked)
        try:
            meta = dict(headers) if spec is topics.REPARTITION else {}
            if routing.MARK in meta:
                return self._on_mark(partition, int(meta[routing.MARK]), value or b"", store)
            if routing.REEVALUATE in meta:
                return self._reevaluate((key or b"").decode(), store)
            if routing.LINK in meta:
                return self._link((key or b"").decode(), meta[routing.LINK].decode(), store)
            if routing.INVALID in meta:
                return self._flag((key or b"").decode(), meta[routing.INVALID], partition, store)
            return self._on_input(
                spec, topic, partition, offset, key, value, timestamp_ms, store, meta
            )
        except RecordError as exc:
            self._unask(asked)
            return [self._dead_letter(topic, partition, offset, key, value, exc, exc.reason)]
        except Exception as exc:  # never lose a record: park it with the reason
            self._unask(asked)
            reason = f"internal error: {type(exc).__name__}: {exc}"[:500]
            return [
                self._dead_letter(
                    topic,
                    partition,
                    offset,
                    key,
                    value,
                    exc,
                    reason,
                    trace=traceback.format_exc(limit=5),
                )
            ]

    # -- inputs ---------------------------------------------------------------------------

    def _on_input(
        self,
        spec: topics.TopicSpec | None,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int,
        store: MutableMapping[str, bytes],
        meta: dict[str, bytes],
    ) -> list[Output]:
        if value is None:
            raise serialization.DecodeError(
                "empty record value (tombstone) on an input topic", raw=b""
            )
        event = self._decode(value)
        if not isinstance(event, ManifestEvent | PilotRecord | Entry86):
            raise serialization.DecodeError(
                f"a {type(event).__name__} record is not an input event", raw=value
            )
        expected = _EXPECTED.get(spec) if spec is not None else None
        if expected is not None and not isinstance(event, expected):
            raise serialization.DecodeError(
                f"a {type(event).__name__} record on the {expected.__name__} topic", raw=value
            )
        forced = meta.get(routing.KEY)
        skey = forced.decode() if forced else shipment_key(event)
        received = validation.received_ms(timestamp_ms, self.clock())
        problems = validation.validate(event, received_ms=received, size=len(value))
        if problems:
            return self._invalid(
                event, problems, skey, topic, partition, offset, key, value, timestamp_ms, meta,
                store,
            )  # fmt: skip
        assert skey is not None  # validated: the record names its shipment
        event_ms = int(event.header.event_time.timestamp() * 1000)
        if spec is not topics.REPARTITION:
            self._read(topic, partition, validation.clock_time(event_ms, received))
        origin = meta.get(routing.ORIGIN) or f"{topic}/{partition}/{offset}".encode()
        kbytes = skey.encode()
        if key != kbytes or partition != routing.murmur2_partition(kbytes, self.partitions):
            return [self._forward(skey, value, origin, forced=forced is not None)]
        raw_state = store.get(skey)
        state = self._states.decode(skey, raw_state) if raw_state is not None else None
        if state is not None and state.alias_of is not None:
            return [self._forward(state.alias_of, value, origin, forced=True)]
        o_topic, o_partition, o_offset = origin.decode().rsplit("/", 2)
        ref = InputRef(o_topic, int(o_partition), int(o_offset), event.header.event_id)
        part = Part(value, ref, event_ms, event.header.action, timestamp_ms)
        step = merge(state, event, part, partition, self.deadlines, key=skey)
        out: list[Output] = []
        other = link_key(event)
        if other is not None and step.changed:
            out.append(
                Output(
                    topics.REPARTITION,
                    other.encode(),
                    b"",
                    ((routing.LINK, kbytes),),
                    partition=routing.murmur2_partition(other.encode(), self.partitions),
                )
            )
        new_state = step.state
        if step.decide:
            new_state = self._ask(new_state)
        # a duplicate writes its state too: replayed after a crash, it may find here a state
        # whose changelog record never reached the broker, and so sends it again
        store[skey] = self._states.encode(skey, new_state)
        self._index(partition, new_state, skey)
        return out

    def _index(self, partition: int, state: ShipmentState, skey: str) -> None:
        """Put the state's next deadline, or with none pending its time to be forgotten, in its
        partition's deadline index."""
        if state.next_deadline_ms is not None:
            heapq.heappush(self._heaps.setdefault(partition, []), (state.next_deadline_ms, skey))
        elif state.forget_at_ms is not None:
            heapq.heappush(self._forget.setdefault(partition, []), (state.forget_at_ms, skey))

    def _invalid(
        self,
        event: ManifestEvent | PilotRecord | Entry86,
        problems: list[validation.Violation],
        skey: str | None,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        timestamp_ms: int,
        meta: dict[str, bytes],
        store: MutableMapping[str, bytes],
    ) -> list[Output]:
        """A record that broke a validation bound: a dead letter (saying where the record first
        landed) and, when it names its shipment, a flag on that shipment, which holds it until
        a valid record of the same kind replaces this one. It changes nothing else."""
        exc = ValidationError(problems, raw=value)
        origin = meta.get(routing.ORIGIN) or f"{topic}/{partition}/{offset}".encode()
        o_topic, o_partition, o_offset = origin.decode().rsplit("/", 2)
        out = [
            self._dead_letter(o_topic, int(o_partition), int(o_offset), key, value, exc, exc.reason)
        ]
        if skey is None or not validation.is_shipment_key(skey):
            return out  # it names no shipment to hold
        fields = ",".join(dict.fromkeys(_INDEX.sub("[]", p.field) for p in problems))[:200]
        flag = f"{kind_of(event)}|{timestamp_ms}|{fields}".encode()
        kbytes = skey.encode()
        home = routing.murmur2_partition(kbytes, self.partitions)
        if partition == home:
            return out + self._flag(skey, flag, partition, store)
        return [
            *out,
            Output(topics.REPARTITION, kbytes, b"", ((routing.INVALID, flag),), partition=home),
        ]

    def _flag(
        self, skey: str, raw_flag: bytes, partition: int, store: MutableMapping[str, bytes]
    ) -> list[Output]:
        """Note on shipment ``skey`` that a record of it failed validation (``raw_flag``:
        kind|broker ms|fields). A shipment decided before is decided again, held."""
        kind, broker_ms, fields = raw_flag.decode().split("|", 2)
        if kind not in _KINDS:
            raise serialization.DecodeError(f"an invalid-record flag of unknown kind {kind!r}")
        flag = Flag(kind, int(broker_ms), fields)
        raw_state = store.get(skey)
        state = (
            self._states.decode(skey, raw_state)
            if raw_state is not None
            else ShipmentState(key=skey, partition=partition)
        )
        if state.alias_of is not None:
            target = state.alias_of.encode()
            home = routing.murmur2_partition(target, self.partitions)
            return [
                Output(
                    topics.REPARTITION, target, b"", ((routing.INVALID, raw_flag),), partition=home
                )
            ]
        part = state.part(flag.kind)  # type: ignore[arg-type]  # one of the three kinds
        noted = next((f for f in state.invalid if f.kind == flag.kind), None)
        if (part is not None and part.broker_time_ms > flag.broker_ms) or (
            noted is not None and noted.broker_ms >= flag.broker_ms
        ):
            # a valid record of its kind came after it, or it is noted already (a replay):
            # written again, as a duplicate input is (see _on_input)
            if raw_state is not None:
                store[skey] = raw_state
            return []
        state = state.evolve(invalid=(*(f for f in state.invalid if f.kind != flag.kind), flag))
        state = retained(state, self.deadlines)
        if state.version > 0 and state.ready:
            state = self._ask(state)
        store[skey] = self._states.encode(skey, state)
        self._index(partition, state, skey)
        return []

    def _forward(self, skey: str, value: bytes, origin: bytes, *, forced: bool) -> Output:
        """Send a record to its shipment's home partition through the repartition topic."""
        kbytes = skey.encode()
        headers: tuple[tuple[str, bytes], ...] = ((routing.ORIGIN, origin),)
        if forced:
            headers += ((routing.KEY, kbytes),)
        return Output(
            topics.REPARTITION,
            kbytes,
            value,
            headers,
            partition=routing.murmur2_partition(kbytes, self.partitions),
        )

    def _link(self, alias: str, target: str, store: MutableMapping[str, bytes]) -> list[Output]:
        """Record that ``alias`` names shipment ``target``; hand over what waited under it."""
        raw_state = store.get(alias)
        state = self._states.decode(alias, raw_state) if raw_state is not None else None
        out: list[Output] = []
        if raw_state is not None and state is not None and state.alias_of == target:
            store[alias] = raw_state  # written again, as a duplicate input is (see _on_input)
            return out
        if state is not None:
            for part in (state.manifest, state.pilot, state.entry86):
                if part is not None:
                    origin = f"{part.ref.topic}/{part.ref.partition}/{part.ref.offset}".encode()
                    out.append(self._forward(target, part.raw, origin, forced=True))
        store[alias] = self._states.encode(
            alias,
            ShipmentState(key=alias, partition=state.partition if state else 0, alias_of=target),
        )
        return out

    # -- event time and deadlines ---------------------------------------------------------

    def _read(self, topic: str, partition: int, at_ms: int) -> None:
        """Count a record read from an input topic-partition for its clock position: the
        second-newest time read from it, so that no single record moves a clock (the rule is
        written out in :mod:`s321.validation`)."""
        tp = (topic, partition)
        newest = self._newest.get(tp, 0)
        if at_ms > newest:
            self._newest[tp] = at_ms
            at_ms = newest
        if at_ms > self.read_ms.get(tp, 0):
            self.read_ms[tp] = at_ms

    def read_to(self, source: int, caught_up: Collection[str] = ()) -> int:
        """How far (event time) input partition ``source`` has been read here.

        Its input topics are read at their own pace (in catch-up one can be hours ahead of
        another), so this is the least, over those still being read, of the clock position of
        each (:meth:`_read`; 0 for one not read yet). Topics in ``caught_up`` (every record in them
        read) hold nothing back; when all are, it is the greatest of their positions."""
        read = {name: self.read_ms.get((name, source), 0) for name in self._input_names}
        behind = [t for name, t in read.items() if name not in caught_up]
        return min(behind) if behind else max(read.values())

    def marks(
        self,
        source: int,
        idle_ms: int | None,
        generation: int = 0,
        caught_up: Collection[str] = (),
    ) -> list[Output]:
        """The records telling every partition how far input partition ``source`` has been read
        here (:meth:`read_to`), or, when ``idle_ms`` is given (the partition is fully read and
        quiet), that it holds no one back and proposes ``idle_ms``. ``generation`` is the
        consumer group's: marks of an earlier one are ignored, since the records they count may
        be read again after a rebalance."""
        read = -1 if idle_ms is not None else self.read_to(source, caught_up)
        value = struct.pack(">qqq", read, idle_ms or 0, generation)
        header = ((routing.MARK, str(source).encode()),)
        return [
            Output(topics.REPARTITION, None, value, header, partition=p)
            for p in range(self.partitions)
        ]

    def _on_mark(
        self, partition: int, source: int, value: bytes, store: MutableMapping[str, bytes]
    ) -> list[Output]:
        read, idle, generation = struct.unpack(">qqq", value)
        if generation < self.generation:
            return []  # sent before the last rebalance: what it counts may be read again
        marks = self._marks.setdefault(partition, {})
        marks[source] = (read, idle)
        if len(marks) < self.partitions:
            return []  # some input partition has not said how far it is read
        if partition in self._indexing:
            return []  # its deadlines are not all indexed yet; a later mark moves its clock
        busy = [r for r, _ in marks.values() if r >= 0]
        return self._advance(
            partition, min(busy) if busy else max(i for _, i in marks.values()), store
        )

    def _advance(
        self, partition: int, event_ms: int, store: MutableMapping[str, bytes]
    ) -> list[Output]:
        """Move the partition's event time forward, fire every deadline it passed, then forget
        the states whose retention it passed with nothing pending."""
        if event_ms <= self.watermarks.get(partition, 0):
            return []
        self.watermarks[partition] = event_ms
        heap = self._heaps.setdefault(partition, [])
        out: list[Output] = []
        while heap and heap[0][0] <= event_ms:
            deadline, skey = heapq.heappop(heap)
            raw_state = store.get(skey)
            if raw_state is None:
                continue
            state = self._states.decode(skey, raw_state)
            if state.next_deadline_ms != deadline:
                continue  # superseded by a later change
            step = expire(state, event_ms)
            if not step.changed:
                continue
            self.expired_total += 1
            new_state = step.state
            if step.decide:
                new_state = self._ask(new_state)
            if step.unmatched:
                out.append(self._unmatched(new_state))
            store[skey] = self._states.encode(skey, new_state)
            self._index(partition, new_state, skey)  # a later deadline may still be pending
        forget = self._forget.setdefault(partition, [])
        while forget and forget[0][0] <= event_ms:
            at, skey = heapq.heappop(forget)
            raw_state = store.get(skey)
            if raw_state is None:
                continue
            state = self._states.decode(skey, raw_state)
            if state.forget_at_ms != at or not expire(state, event_ms).forget:
                continue  # superseded by a later change
            del store[skey]  # a tombstone on the table's changelog
            self.forgotten_total += 1
        return out

    def rebuild_deadlines(
        self, store: MutableMapping[str, bytes], partitions: set[int], generation: int = 0
    ) -> None:
        """Start rebuilding the in-memory deadline index from the table (after recovery or
        rebalance). :meth:`index_deadlines` reads the table a slice at a time, so the worker
        decides shipments meanwhile; a partition's deadlines fire only once all of it is read.

        Clocks start again from the marks of ``generation``: after a rebalance, records read
        before it may be read again (their effects may not have been durable), so neither a
        clock reached before nor a mark sent before may fire a deadline ahead of them."""
        kept = partitions & set(self._heaps)
        self._heaps = {p: [] for p in partitions}
        self._forget = {p: [] for p in partitions}
        self.generation = generation
        self.watermarks = {}
        self._marks = {}
        self.read_ms = {tp: t for tp, t in self.read_ms.items() if tp[1] in kept}
        self._newest = {tp: t for tp, t in self._newest.items() if tp[1] in kept}
        self._indexing = set(partitions)
        self._index_store = store
        self._scan = None

    def index_deadlines(self, budget_s: float | None = None) -> bool:
        """Read more of the table into the deadline index, for about ``budget_s`` seconds (all
        of it when None). True once the index is complete. Shipments written meanwhile are
        indexed as they are written; an entry met twice is harmless (each is checked against
        the shipment's deadline when it comes due)."""
        if not self._indexing:
            return True
        if self._scan is None:
            self._scan = iter(self._index_store.items())
        stop = None if budget_s is None else time.monotonic() + budget_s
        heaps, forget = self._heaps, self._forget
        for n, (skey, raw) in enumerate(self._scan, 1):
            if not skey.startswith(_WATERMARK):
                partition, deadline, at = deadlines_of(raw)
                if deadline is not None and partition in heaps:
                    heapq.heappush(heaps[partition], (deadline, skey))
                elif at is not None and partition in forget:
                    heapq.heappush(forget[partition], (at, skey))
            if stop is not None and n % 512 == 0 and time.monotonic() > stop:
                return False
        self._scan = None
        self._indexing = set()
        return True

    def pause_indexing(self) -> None:
        """Let go of the table being read (its partitions are being revoked); the next
        :meth:`index_deadlines` reads it from the start again."""
        self._scan = None

    @property
    def waiting(self) -> int:
        """Shipments with a pending deadline (waiting for a partner), as indexed."""
        return sum(len(h) for h in self._heaps.values())

    # -- decisions ------------------------------------------------------------------------

    _DECODED_KEPT = 8192

    def _decode(self, raw: bytes) -> Any:
        """Decoded input events, kept for the most recent ones: a shipment's parts are decoded
        when they arrive and again when it is decided, usually soon after (events are
        immutable, so sharing one decoded object is safe)."""
        event = self._decoded.get(raw)
        if event is None:
            event = self.serde.decode(raw)
            if len(self._decoded) >= self._DECODED_KEPT:
                del self._decoded[next(iter(self._decoded))]
            self._decoded[raw] = event
        return event

    def complete_record(self, state: ShipmentState) -> CompleteRecord:
        def load(p: Part | None) -> Any:
            return self._decode(p.raw) if p is not None else None

        manifest = load(state.manifest)
        return CompleteRecord(
            key=state.key,
            manifest=manifest,
            pilot=load(state.pilot),
            entry86=load(state.entry86),
            pilot_deadline_passed=self._pilot_late(state, manifest),
            entry_numbers=state.entry_numbers,
            entry_deadline_passed=state.entry_missing,
        )

    def _pilot_late(self, state: ShipmentState, manifest: ManifestEvent | None) -> bool:
        """No pilot record dated by the pilot deadline (event time, so replays agree)."""
        if state.pilot is None:
            return state.pilot_expired
        if manifest is None:
            return False
        due = min(
            manifest.header.event_time + self.deadlines.pilot_wait, manifest.estimated_arrival
        )
        return state.pilot.event_time_ms > int(due.timestamp() * 1000)

    def _reevaluate(self, skey: str, store: MutableMapping[str, bytes]) -> list[Output]:
        """Another shipment changed an aggregate this one is part of: decide it again."""
        raw_state = store.get(skey)
        if raw_state is None:
            return []
        state = self._states.decode(skey, raw_state)
        if state.version == 0 or not state.ready:
            return []  # it will see the aggregate when it is decided
        store[skey] = self._states.encode(skey, self._ask(state))
        return []

    def _ask(self, state: ShipmentState) -> ShipmentState:
        """Ask for the shipment's decision, made when the batch ends (:meth:`decide_pending`).

        The state returned already counts as decided (version at least 1), as it will be once
        the decision is made; :meth:`decide_pending` writes its real version and signature."""
        if state.key not in self._before:
            self._before[state.key] = (state.version, state.signature, state.decided_ms)
        parts = tuple(p for p in (state.manifest, state.pilot, state.entry86) if p is not None)
        self._asked.append(
            _Asked(
                state.key,
                state.partition,
                self.complete_record(state),
                parts,
                state.cancelled,
                state.invalid,
            )
        )
        return state.evolve(version=max(state.version, 1))

    def _unask(self, asked: int) -> None:
        """Drop the decisions a record asked for before it failed (it becomes a dead letter)."""
        del self._asked[asked:]
        keep = {a.key for a in self._asked}
        self._before = {k: v for k, v in self._before.items() if k in keep}

    def decide_pending(self, store: MutableMapping[str, bytes]) -> list[Output]:
        """Make the decisions this batch's records asked for and write their versions into
        the shipments' states; returns what to send.

        The rules are evaluated for all of them at once (:meth:`_verdicts`), in the order
        asked, so the cross-shipment state sees them in that order; then each decision is
        compared with the one before it for the same shipment, exactly as if it had been made
        when asked: a changed signature publishes a new version."""
        asked, self._asked = self._asked, []
        before, self._before = self._before, {}
        if not asked:
            return []
        # a cancelled shipment is evaluated too, for the cross-shipment state: its manifest is a
        # DELETE, so it is taken out of every aggregate, and the shipments that frees are named
        verdicts = self._verdicts([a.record for a in asked])
        latest = dict(before)  # shipment -> version, signature, decided_ms so far
        # A state can be behind the versions already sent: a crash after a batch's decisions
        # were sent but before its state reached the changelog. The ledger, written before
        # sending, knows them: a version sent is never given again to another outcome, and
        # the same outcome is sent again with that version (the first may not have gone).
        # The ledger also holds, until the batch is durable, the decision records themselves: a
        # crash between the ledger's write and the broker's acknowledgement leaves it unknown
        # whether the version went out, so it is sent again exactly as it was, before any
        # newer version (consumers see every version, in order, never two contents for one).
        behind: dict[str, int] = {}  # shipment -> the version its state records
        sent: dict[str, list[tuple[int, bytes]]] = {}
        if self.ledger is not None:
            for key, (version, signature) in self.ledger.read(list(latest)).items():
                if version > latest[key][0]:
                    behind[key] = latest[key][0]
                    latest[key] = (version, signature, latest[key][2])
            if behind:
                sent = self.ledger.sent(
                    {key: range(v + 1, latest[key][0] + 1) for key, v in behind.items()}
                )
        versions: dict[str, tuple[int, str]] = {}
        records: dict[tuple[str, int], bytes] = {}
        out: list[Output] = []
        for a, evaluated in zip(asked, verdicts, strict=True):
            verdict = _cancelled(evaluated) if a.cancelled else evaluated
            if a.invalid and not a.cancelled:
                verdict = _held_for_quality(verdict, a.invalid)
            signature = (
                "CANCELLED"
                if a.cancelled
                else verdict.outcome.value
                + "|"
                + ",".join(sorted(f"{h.rule_id}:{h.reason_code}" for h in verdict.hits))
            )
            version, previous, decided_ms = latest[a.key]
            new = signature != previous
            replay = behind.pop(a.key, None) is not None  # versions given may not have gone out
            held = sent.pop(a.key, [])
            for v, record in held:  # those versions first, as they were given (same ids)
                out.append(self._sent_again(a, v, record))
                records[a.key, v] = record
            if new or (replay and not any(v == version for v, _ in held)):
                # without the last one's record, the same outcome is sent again under it
                version += 1 if new else 0
                decided_ms = self.clock()
                latest[a.key] = (version, signature, decided_ms)
                decision = self._decision(a, verdict, version, decided_ms)
                records[a.key, version] = decision.value
                out.append(decision)
            others = dict.fromkeys(evaluated.affected)
            if new or replay:
                versions[a.key] = latest[a.key][:2]
                # a replay after a crash repeats the signals the first run may have lost
                others.update(dict.fromkeys(evaluated.affected_by_presence))
            out.extend(
                Output(
                    topics.REPARTITION,
                    other.encode(),
                    b"",
                    ((routing.REEVALUATE, b"1"),),
                    partition=routing.murmur2_partition(other.encode(), self.partitions),
                )
                for other in others
                if other != a.key
            )
        for key, (version, signature, decided_ms) in latest.items():
            raw_state = store.get(key)
            if raw_state is not None:
                state = self._states.decode(key, raw_state).evolve(
                    version=version, signature=signature, decided_ms=decided_ms
                )
                store[key] = self._states.encode(key, state)
        if self.ledger is not None and records:
            self.ledger.write(versions, records)  # before any of these decisions is sent
        return out

    def sent_all(self) -> None:
        """Every decision made so far was acknowledged by the broker (a worker stopping): the
        ledger needs none of their records."""
        if self.ledger is not None:
            self.ledger.let_go()

    def _verdicts(self, records: list[CompleteRecord]) -> list[Verdict]:
        """The rules' verdicts for ``records``, in order. An evaluation that fails (one record's,
        or the whole batch's) holds its shipment with an engine-error hit; it never releases it."""
        if not records:
            return []
        results: Sequence[Verdict | Exception]
        try:
            results = self.evaluate.many(records)
        except Exception as exc:
            results = [exc] * len(records)
        return [
            _FixedVerdict(hits=(engine_error_hit(r),)) if isinstance(r, Exception) else r
            for r in results
        ]

    def _decision(self, a: _Asked, verdict: Verdict, version: int, now: int) -> Output:
        last_broker = max(p.broker_time_ms for p in a.parts)
        last_event = max(p.event_time_ms for p in a.parts)
        decision = Decision(
            decision_id=decision_id(a.key, version),
            shipment_key=a.key,
            version=version,
            outcome=verdict.outcome,
            hits=tuple(verdict.hits),
            required_actions=tuple(verdict.required_actions),
            regime_version=verdict.regime_version,
            ruleset_version=verdict.ruleset_version,
            refdata_version=verdict.refdata_version,
            inputs=tuple(p.ref for p in a.parts),
            event_time=datetime.fromtimestamp(last_event / 1000, UTC),
            decided_at=datetime.fromtimestamp(now / 1000, UTC),
            latency_ms=float(max(0, now - last_broker)),
            stale_refdata=verdict.stale_refdata,
            not_applicable=tuple(verdict.not_applicable),
        )
        return Output(
            topics.DECISIONS,
            a.key.encode(),
            self.serde.encode(decision),
            (("s321-decision-id", decision.decision_id.encode()),),
            partition=a.partition,
            decision=decision,
        )

    def _sent_again(self, a: _Asked, version: int, record: bytes) -> Output:
        """The decision record the ledger kept for ``version`` of ``a``'s shipment, to be sent
        again as it was."""
        try:
            decision = self.serde.decode(record, Decision)
        except serialization.DecodeError:
            decision = None  # sent all the same; only its metrics are not counted
        return Output(
            topics.DECISIONS,
            a.key.encode(),
            record,
            (("s321-decision-id", decision_id(a.key, version).encode()),),
            partition=a.partition,
            decision=decision,
        )

    def _unmatched(self, state: ShipmentState) -> Output:
        part = state.pilot or state.entry86
        assert part is not None
        letter = DeadLetter(
            source_topic=part.ref.topic,
            partition=part.ref.partition,
            offset=part.ref.offset,
            key=state.key.encode(),
            value=part.raw,
            headers={},
            error_class="Unmatched",
            reason="no manifest arrived within the matching window (event time)",
            time=datetime.fromtimestamp(self.clock() / 1000, UTC),
        )
        return Output(topics.UNMATCHED, state.key.encode(), self.serde.encode(letter))

    def _dead_letter(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        exc: BaseException,
        reason: str,
        trace: str = "",
    ) -> Output:
        """The dead letter of a record: its original bytes, with why. One that would be too
        large to send (:data:`MAX_OUTPUT_BYTES`) is reduced to where the record is, its size
        and a digest of its bytes, so that its fate is recorded all the same."""
        headers = {
            "s321-error-class": type(exc).__name__.encode(),
            "s321-reason": reason.encode()[:1000],
        }
        if trace:
            headers["s321-trace"] = trace.encode()[-2000:]
        source = (("s321-source", f"{topic}/{partition}/{offset}".encode()),)
        letter = DeadLetter(
            source_topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=headers,
            error_class=type(exc).__name__,
            reason=reason,
            time=datetime.fromtimestamp(self.clock() / 1000, UTC),
        )
        encoded: bytes | None
        try:
            encoded = self.serde.encode(letter)
        except serialization.EncodeError:
            encoded = None
        if encoded is None or _size(key, encoded, headers) > MAX_OUTPUT_BYTES:
            digest = hashlib.sha256(value or b"").hexdigest()
            note = (
                f"dead letter reduced, the record being too large to send: value of "
                f"{len(value or b'')} bytes, sha256 {digest}; key of {len(key or b'')} bytes"
            )
            headers["s321-reduced"] = note.encode()
            key = key if key is None or len(key) <= _REDUCED_KEY_BYTES else None
            letter = replace(
                letter, key=key, value=None, headers=headers, reason=f"{reason} [{note}]"
            )
            encoded = self.serde.encode(letter)
        return Output(
            topics.DEAD_LETTERS,
            key,
            encoded,
            (*source, *headers.items()),
            error_class=letter.error_class,
        )


#: Largest output record (key, value and headers) the processor asks to send: under the default
#: record size limits of librdkafka (``message.max.bytes``, 1,000,000) and of the broker
#: (``max.message.bytes``, 1,048,588), with room for the record's framing.
MAX_OUTPUT_BYTES = 900_000
#: Largest original key a reduced dead letter keeps.
_REDUCED_KEY_BYTES = 1024


def _size(key: bytes | None, value: bytes, headers: dict[str, bytes]) -> int:
    return len(key or b"") + len(value) + sum(len(k) + len(v) for k, v in headers.items())
