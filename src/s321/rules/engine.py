"""``evaluate``: the whole catalogue on one complete record, and the release/hold outcome.

The outcome is HOLD when any hit has a severity at or above the rule set's hold threshold,
when a cross-shipment rule could not read its state (whatever its configured severity), when
the regime makes the shipment ineligible for Section 321 (with the required action to
file an entry), when its release path is Type 86 and no Type 86 entry is on file, or when a
rule raised (an engine error is a hold, never a release and never an exception out of
:func:`evaluate`). Otherwise RELEASE.

A Type 86 shipment without its entry is held whatever the rule set says (the law, like the
regime): under R25 with reason ``TYPE86_ENTRY_PENDING`` and the action to file the entry while
its filing deadline (:meth:`s321.regime.Regime.type86_due` of the arrival) has not passed in
event time, and with ``TYPE86_ENTRY_MISSING`` and the action to file a formal or informal
entry once it has (:attr:`CompleteRecord.entry_deadline_passed`). A shipment the regime makes
ineligible waits for no Type 86 entry: the regime's hold already asks for another entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from s321.models import (
    ENGINE_ERROR,
    REVIEW_ACTION,
    CompleteRecord,
    Outcome,
    ReleasePath,
    RuleHit,
    engine_error_hit,
)
from s321.refdata.snapshot import ReferenceSnapshot
from s321.regime import Regime, RegimeTable, default_regimes
from s321.rules.aggregates import Aggregates
from s321.rules.catalogue import CATALOGUE, NA, Ctx, eastern_text
from s321.rules.facts import Facts
from s321.rules.ruleset import Ruleset

__all__ = [
    "ENGINE_ERROR",
    "ENTRY_ACTION",
    "ENTRY_MISSING",
    "ENTRY_PENDING",
    "REVIEW_ACTION",
    "TYPE86_ACTION",
    "Evaluation",
    "evaluate",
]

#: Required action when the regime makes a shipment ineligible for Section 321.
ENTRY_ACTION = "file a formal or informal entry"
#: Required action while a Type 86 shipment's entry is not on file and not yet overdue.
TYPE86_ACTION = "file the Type 86 entry by its deadline"
#: Reason code (under R25) of a Type 86 shipment whose entry is not on file yet.
ENTRY_PENDING = "TYPE86_ENTRY_PENDING"
#: Reason code (under R25) of a Type 86 shipment with no entry on file by its deadline.
ENTRY_MISSING = "TYPE86_ENTRY_MISSING"

_R25 = next(spec for spec in CATALOGUE if spec.id == "R25")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the rules concluded about one record, with every version needed to explain it."""

    outcome: Outcome
    hits: tuple[RuleHit, ...]
    not_applicable: tuple[str, ...]
    required_actions: tuple[str, ...]
    regime_version: str
    ruleset_version: str
    refdata_version: str
    eligible: bool
    stale_refdata: bool = False
    errors: tuple[str, ...] = ()
    #: other shipments whose aggregate this one moved across a limit (to decide again)
    affected: tuple[str, ...] = ()
    #: others this one's contribution keeps across a limit (to decide again when this
    #: decision is a new version; see :attr:`Aggregates.affected_by_presence`)
    affected_by_presence: tuple[str, ...] = ()

    @property
    def reason_codes(self) -> tuple[str, ...]:
        return tuple(h.reason_code for h in self.hits)


def _entry_hold(record: CompleteRecord, facts: Facts, regime: Regime) -> RuleHit | None:
    """The hit holding a shipment that asks for Type 86 release while no entry is on file,
    or None (see the module docstring)."""
    if (
        record.entry86 is not None
        or record.manifest is None
        or facts.release_path is not ReleasePath.TYPE_86
    ):
        return None
    missing = record.entry_deadline_passed
    return RuleHit(
        _R25.id,
        _R25.version,
        _R25.severity,
        ENTRY_MISSING if missing else ENTRY_PENDING,
        "release path Type 86, but no Type 86 entry was on file by its filing deadline"
        if missing
        else "release path Type 86: not releasable until its Type 86 entry is on file",
        {"due": eastern_text(regime.type86_due(facts.arrival)), "regime": regime.version},
    )


def _regime_version(table: RegimeTable, record: CompleteRecord) -> str:
    """The regime of the record's arrival when its facts could not be read (best effort)."""
    try:
        m, e = record.manifest, record.entry86
        when = m.arrival if m is not None else e.filed_at if e is not None else None
        return "unknown" if when is None else table.at(when).version
    except Exception:  # the arrival itself may be what is malformed
        return "unknown"


def evaluate(
    record: CompleteRecord,
    ruleset: Ruleset,
    snapshot: ReferenceSnapshot,
    aggregates: Aggregates,
    now: datetime | None = None,
    *,
    regimes: RegimeTable | None = None,
    stale_refdata: bool = False,
) -> Evaluation:
    """Apply every enabled rule to ``record`` and decide RELEASE or HOLD.

    Pure: reads only its arguments (the regime table is data loaded once per process).
    ``now`` stands in for the arrival time when a record has neither manifest nor entry.
    ``stale_refdata`` is passed through: whether the rule set or reference data in force may
    not be the version published as current (:attr:`s321.stores.versioned.VersionWatcher.stale`).
    """
    table = regimes or default_regimes()
    try:
        facts = Facts(record, now)
        regime = table.at(facts.arrival)
    except Exception as exc:  # a malformed record must still end as a hold, not a crash
        return Evaluation(
            Outcome.HOLD,
            (engine_error_hit(exc),),
            (),
            (REVIEW_ACTION,),
            _regime_version(table, record),
            ruleset.version,
            snapshot.version,
            False,
            stale_refdata,
            ("ENGINE",),
        )
    plan = ruleset.plan(regime.rules_enabled)
    ctx = Ctx(facts, snapshot, aggregates, regime, now, plan.params)
    hits: list[RuleHit] = []
    na: list[str] = []
    errors: list[str] = []
    actions: list[str] = []
    threshold = plan.threshold
    hold = False
    for rule, run, arg in plan.steps:
        try:
            result = run(ctx, arg)
        except Exception as exc:  # a rule that raises holds the shipment (fail safe)
            hits.append(engine_error_hit(exc, rule.id, rule.version))
            errors.append(rule.id)
            hold = True
            if REVIEW_ACTION not in actions:
                actions.append(REVIEW_ACTION)
            continue
        if result is None:
            continue
        if result is NA:
            na.append(rule.id)
            continue
        if isinstance(result, tuple):
            severity, evidence = result
        else:
            severity, evidence = rule.severity, result  # type: ignore[assignment]  # NA excluded above
        hits.append(
            RuleHit(rule.id, rule.version, severity, rule.reason_code, rule.description, evidence)
        )
        if severity.rank >= threshold:
            hold = True
            if rule.action and rule.action not in actions:
                actions.append(rule.action)
    if not aggregates.available and not hold:
        # a cross-shipment rule that could not read its state never lets a shipment go,
        # whatever severity or threshold the analysts configured
        hold = any(h.evidence.get("state") == "unavailable" for h in hits)
    eligible = True
    if facts.release_path is not None and facts.release_path is not ReleasePath.OTHER_ENTRY:
        eligible = regime.ineligibility(facts.origins) is None
    if not eligible:
        hold = True
        if ENTRY_ACTION not in actions:
            actions.insert(0, ENTRY_ACTION)
    else:
        entry = _entry_hold(record, facts, regime)
        if entry is not None:
            hold = True
            hits.append(entry)
            action = ENTRY_ACTION if entry.reason_code == ENTRY_MISSING else TYPE86_ACTION
            if action not in actions:
                actions.append(action)
    return Evaluation(
        Outcome.HOLD if hold else Outcome.RELEASE,
        tuple(hits),
        tuple(na),
        tuple(actions),
        regime.version,
        ruleset.version,
        snapshot.version,
        eligible,
        stale_refdata,
        tuple(errors),
        aggregates.affected,
        aggregates.affected_by_presence,
    )
