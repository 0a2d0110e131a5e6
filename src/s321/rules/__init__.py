"""Risk rules: the catalogue R01-R26, the analyst-edited rule set, and ``evaluate``.

::

    evaluation = evaluate(record, ruleset, snapshot, aggregates)
    evaluation.outcome            # Outcome.RELEASE or Outcome.HOLD
    evaluation.hits               # RuleHit(rule_id, version, severity, reason_code, evidence)
    evaluation.not_applicable     # rule ids whose data was absent
    evaluation.required_actions   # e.g. "file a formal or informal entry"

The evaluation path is pure (no network I/O): the reference data comes in as an in-process
:class:`~s321.refdata.ReferenceSnapshot`, cross-shipment totals as
:class:`~s321.rules.aggregates.Aggregates`, the legal regime from the effective-dated table in
:mod:`s321.regime`. Rule sets are published to Redis and picked up by running workers with
:class:`RulesetWatcher` (:mod:`s321.stores.rulesets`).
"""

from s321.rules.catalogue import CATALOGUE, RuleSpec
from s321.rules.engine import (
    ENGINE_ERROR,
    ENTRY_ACTION,
    ENTRY_MISSING,
    ENTRY_PENDING,
    TYPE86_ACTION,
    Evaluation,
    evaluate,
)
from s321.rules.ruleset import ActiveRule, Ruleset, default_ruleset, load_ruleset, parse_ruleset

__all__ = [
    "CATALOGUE",
    "ENGINE_ERROR",
    "ENTRY_ACTION",
    "ENTRY_MISSING",
    "ENTRY_PENDING",
    "TYPE86_ACTION",
    "ActiveRule",
    "Evaluation",
    "RuleSpec",
    "Ruleset",
    "default_ruleset",
    "evaluate",
    "load_ruleset",
    "parse_ruleset",
]
