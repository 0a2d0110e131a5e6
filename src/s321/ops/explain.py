"""``s321 explain``: one shipment's complete record, every rule's result, and its decisions.

The decisions topic is the source of truth. :func:`read_decisions` reads every version
published for the shipment key (from the key's partition; all partitions if it is not there),
:func:`fetch_inputs` reads back the input events the newest version names (topic, partition,
offset: assign and seek, no consumer group), and :func:`explain` rebuilds the
:class:`~s321.models.CompleteRecord` from them and runs the catalogue again with the rule set
and reference data in force now, reporting each rule as fired (with evidence), passed, not
applicable, disabled or failed.

Personal data never appears: :func:`masked` shows a party as its initials and hashed key
(:func:`~s321.models.party_key`), an address as its country and hashed key, and hashes party
ids and order ids; rule evidence carries only field values and hashed keys by design.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from s321 import serialization, topics
from s321.core.routing import murmur2_partition
from s321.kafka_config import KafkaClientConfig, confluent
from s321.models import (
    Address,
    CompleteRecord,
    Decision,
    Entry86,
    InputRef,
    ManifestEvent,
    Party,
    PilotRecord,
    address_key,
    party_key,
)
from s321.refdata.snapshot import ReferenceSnapshot
from s321.regime import default_regimes
from s321.rules.aggregates import Aggregates
from s321.rules.engine import ENTRY_MISSING, Evaluation, evaluate
from s321.rules.facts import Facts
from s321.rules.ruleset import Ruleset

if TYPE_CHECKING:
    from s321.stores.connection import RedisTarget

__all__ = [
    "Explanation",
    "RuleResult",
    "explain",
    "explain_live",
    "fetch_inputs",
    "masked",
    "read_decisions",
    "render",
]

_HASHED_FIELDS = frozenset({"party_id", "order_id"})


def _short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


def _initials(name: str) -> str:
    words = [w for w in "".join(c if c.isalnum() else " " for c in name).split() if w]
    return "".join(f"{w[0].upper()}." for w in words[:4]) or "?"


def masked(value: Any) -> Any:
    """``value`` (a model object) as JSON-able data with every name and address masked."""
    if isinstance(value, Party):
        out: dict[str, Any] = {"initials": _initials(value.name), "party_key": party_key(value)}
        if value.address is not None:
            out["address"] = masked(value.address)
        if value.party_id:
            out["party_id"] = _short_hash(value.party_id)
        return out
    if isinstance(value, Address):
        return {"country": value.country, "address_key": address_key(value)}
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: (
                _short_hash(str(getattr(value, f.name)))
                if f.name in _HASHED_FIELDS and getattr(value, f.name)
                else masked(getattr(value, f.name))
            )
            for f in fields(value)
        }
    if isinstance(value, tuple | list):
        return [masked(v) for v in value]
    if isinstance(value, dict):
        return {str(k): masked(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


# -- reading Kafka ----------------------------------------------------------------------------


def _consumer(kafka: KafkaClientConfig) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            **confluent(kafka),
            "group.id": "s321-explain",  # never subscribes or commits: assign only
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )


def _scan(
    consumer: Any, topic: str, partitions: Sequence[int], key: bytes, timeout_s: float
) -> list[bytes]:
    """Values of every record keyed ``key`` in ``partitions``, from the start to the end."""
    from confluent_kafka import TopicPartition

    ends: dict[int, int] = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    if not ends:
        return []
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    found: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                if msg.key() == key:
                    found.append(msg.value() or b"")
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            for tp in positions:
                if tp.offset >= ends[tp.partition]:
                    ends.pop(tp.partition, None)
    finally:
        consumer.unassign()
    return found


def read_decisions(
    kafka: KafkaClientConfig,
    prefix: str,
    key: str,
    timeout_s: float = 30.0,
    serde: serialization.Serializer | None = None,
) -> list[Decision]:
    """Every decision version published for ``key``, oldest first (``serde``: the
    deployment's wire format; single-object encoding by default)."""
    serde = serde or serialization.serializer()
    name = topics.topic_name(topics.DECISIONS, prefix)
    consumer = _consumer(kafka)
    try:
        meta = consumer.list_topics(name, timeout=10).topics.get(name)
        if meta is None or meta.error is not None:
            return []
        count = len(meta.partitions)
        kb = key.encode()
        raw = _scan(consumer, name, [murmur2_partition(kb, count)], kb, timeout_s)
        if not raw:  # a producer with another partitioner: look everywhere
            raw = _scan(consumer, name, list(range(count)), kb, timeout_s)
    finally:
        consumer.close()
    decisions = [serde.decode(v, Decision) for v in raw]
    return sorted({d.version: d for d in decisions}.values(), key=lambda d: d.version)


def fetch_inputs(
    kafka: KafkaClientConfig,
    refs: Sequence[InputRef],
    timeout_s: float = 10.0,
    serde: serialization.Serializer | None = None,
) -> list[Any]:
    """The input events at the given topic/partition/offsets (None where one is gone)."""
    serde = serde or serialization.serializer()
    from confluent_kafka import TopicPartition

    consumer = _consumer(kafka)
    out: list[Any] = []
    try:
        for ref in refs:
            consumer.assign([TopicPartition(ref.topic, ref.partition, ref.offset)])
            event = None
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                if msg.offset() == ref.offset:
                    event = serde.decode(msg.value() or b"")
                break
            out.append(event)
            consumer.unassign()
    finally:
        consumer.close()
    return out


# -- the explanation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleResult:
    """One rule's result on the rebuilt record."""

    rule_id: str
    version: int
    status: str  # fired | passed | not applicable | disabled | error
    severity: str
    reason_code: str
    evidence: dict[str, str]


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` found out about one shipment."""

    key: str
    history: tuple[Decision, ...]
    record: CompleteRecord | None
    missing_inputs: tuple[InputRef, ...]
    evaluation: Evaluation | None
    rules: tuple[RuleResult, ...]

    def as_json(self) -> dict[str, Any]:
        """The whole explanation as JSON-able data, personal data masked."""
        ev = self.evaluation
        return {
            "shipment_key": self.key,
            "record": None if self.record is None else masked(self.record),
            "missing_inputs": masked(self.missing_inputs),
            "re_evaluation": None
            if ev is None
            else {
                "outcome": ev.outcome.value,
                "ruleset_version": ev.ruleset_version,
                "regime_version": ev.regime_version,
                "refdata_version": ev.refdata_version,
                "stale_refdata": ev.stale_refdata,
                "required_actions": list(ev.required_actions),
            },
            "rules": masked(self.rules),
            "history": [masked(d) for d in self.history],
        }


def _rule_results(
    record: CompleteRecord, ev: Evaluation, ruleset: Ruleset
) -> tuple[RuleResult, ...]:
    hits = {h.rule_id: h for h in ev.hits}
    na, errors = set(ev.not_applicable), set(ev.errors)
    forced = default_regimes().at(Facts(record).arrival).rules_enabled
    out: list[RuleResult] = []
    for rule in ruleset.rules:
        hit = hits.get(rule.id)
        if rule.id in errors:
            status = "error"
        elif hit is not None:
            status = "fired"
        elif rule.id in na:
            status = "not applicable"
        elif not rule.enabled and rule.id not in forced:
            status = "disabled"
        else:
            status = "passed"
        out.append(
            RuleResult(
                rule.id,
                rule.version,
                status,
                (hit.severity if hit is not None else rule.severity).value,
                rule.reason_code,
                dict(hit.evidence) if hit is not None else {},
            )
        )
    return tuple(out)


def explain(
    key: str,
    *,
    kafka: KafkaClientConfig,
    prefix: str,
    ruleset: Ruleset,
    snapshot: ReferenceSnapshot,
    aggregates: Callable[[CompleteRecord], Aggregates] | None = None,
    stale_refdata: bool = False,
    timeout_s: float = 30.0,
    serde: serialization.Serializer | None = None,
) -> Explanation:
    """Read the shipment's decisions and inputs, rebuild its record and run the rules again.

    ``aggregates`` reads the cross-shipment state without writing (None: not applicable).
    """
    history = tuple(read_decisions(kafka, prefix, key, timeout_s, serde))
    if not history:
        return Explanation(key, (), None, (), None, ())
    newest = history[-1]
    events = fetch_inputs(kafka, newest.inputs, serde=serde)
    parts: dict[type, Any] = {}
    missing: list[InputRef] = []
    for ref, event in zip(newest.inputs, events, strict=True):
        if event is None:
            missing.append(ref)
        else:
            parts[type(event)] = event
    pilot = parts.get(PilotRecord)
    record = CompleteRecord(
        key=key,
        manifest=parts.get(ManifestEvent),
        pilot=pilot,
        entry86=parts.get(Entry86),
        # the decision does not store the flag; its R16 evidence says whether the deadline
        # passed without (timely) pilot data
        pilot_deadline_passed=any(
            h.rule_id == "R16" and h.evidence.get("reason") == "no_pilot_data_by_deadline"
            for h in newest.hits
        ),
        # nor the Type 86 one: its missing-entry reason says the deadline passed without it
        entry_deadline_passed=any(h.reason_code == ENTRY_MISSING for h in newest.hits),
    )
    agg = aggregates(record) if aggregates is not None else Aggregates.empty()
    ev = evaluate(record, ruleset, snapshot, agg, stale_refdata=stale_refdata)
    return Explanation(key, history, record, tuple(missing), ev, _rule_results(record, ev, ruleset))


def _evidence(evidence: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(evidence.items()))


def render(e: Explanation) -> str:
    """The explanation as text for a terminal (personal data masked)."""
    if not e.history:
        return f"shipment {e.key}: no decision found on the decisions topic"
    lines = [f"shipment {e.key}", "", "record (personal data masked)"]
    data = masked(e.record)
    for source in ("manifest", "pilot", "entry86"):
        part = data.get(source)
        lines.append(
            f"  {source}: " + ("absent" if part is None else json.dumps(part, sort_keys=True))
        )
    lines.append(f"  pilot_deadline_passed: {data['pilot_deadline_passed']}")
    lines.append(f"  entry_deadline_passed: {data['entry_deadline_passed']}")
    for ref in e.missing_inputs:
        lines.append(f"  input no longer readable: {ref.topic}/{ref.partition}/{ref.offset}")
    ev = e.evaluation
    if ev is not None:
        lines += [
            "",
            f"rules now: {ev.outcome.value} under rule set {ev.ruleset_version}, "
            f"regime {ev.regime_version}, reference data {ev.refdata_version}"
            + (" (stale)" if ev.stale_refdata else ""),
        ]
        for r in e.rules:
            detail = f"  {_evidence(r.evidence)}" if r.evidence else ""
            lines.append(
                f"  {r.rule_id} v{r.version} {r.status:<15} {r.severity:<8} {r.reason_code}{detail}"
            )
    lines += ["", f"decision history ({len(e.history)} version(s))"]
    for d in e.history:
        lines.append(
            f"  v{d.version} {d.outcome.value} at {d.decided_at.isoformat()} "
            f"rule set {d.ruleset_version}, regime {d.regime_version}, "
            f"reference data {d.refdata_version}" + (" (stale)" if d.stale_refdata else "")
        )
        for h in d.hits:
            lines.append(
                f"    {h.rule_id} {h.severity.value} {h.reason_code}  {_evidence(h.evidence)}"
            )
        if d.required_actions:
            lines.append(f"    actions: {'; '.join(d.required_actions)}")
        inputs = ", ".join(f"{i.topic}/{i.partition}/{i.offset}" for i in d.inputs)
        lines.append(f"    inputs: {inputs}")
    return "\n".join(lines)


def explain_live(
    key: str,
    *,
    kafka: KafkaClientConfig,
    redis: RedisTarget | str,
    prefix: str,
    timeout_s: float = 30.0,
    serde: serialization.Serializer | None = None,
) -> Explanation:
    """:func:`explain` with the sources a worker of this deployment uses now: the rule set and
    reference data published in Redis under ``prefix`` (else the packaged defaults) and the
    cross-shipment state, read without writing."""
    from s321.evaluator import published_sources
    from s321.stores.connection import redis_client, redis_prefix
    from s321.stores.crossshipment import CrossShipmentStore

    client = redis_client(redis, timeout_s=2.0)
    rules, refdata = published_sources(client, prefix)
    rules.poll()
    refdata.poll()
    cross = CrossShipmentStore(client, prefix=redis_prefix(prefix))
    return explain(
        key,
        kafka=kafka,
        prefix=prefix,
        ruleset=rules.ruleset,
        snapshot=refdata.snapshot,
        aggregates=cross.read,
        stale_refdata=rules.stale or refdata.stale,
        timeout_s=timeout_s,
        serde=serde,
    )
