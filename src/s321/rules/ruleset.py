"""The rule-set file an analyst edits: thresholds, lists, severities, flags and conditions.

A rule set is TOML (or JSON with the same shape), checked completely when it is loaded, so
that a bad file is refused with a message naming the rule and field, and never fails later
on a shipment::

    version = "2025.08.1"            # recorded in every evaluation
    description = "..."
    hold_threshold = "MEDIUM"        # hits of this severity or above hold the shipment

    [rules.R10]                      # a catalogue rule: any key may be omitted (defaults)
    enabled = true
    severity = "MEDIUM"
    action = "correct the description"
    when = 'mode == "AIR"'           # optional guard: the rule runs only where it holds
    [rules.R10.params]               # only the catalogue's parameters, with their types
    min_meaningful_words = 3
    denylist = ["gift", "goods"]

    [rules.X01]                      # an analyst rule: a condition and its metadata
    description = "goods from a sanctioned origin"
    reason_code = "SANCTIONED_ORIGIN"
    severity = "HIGH"
    source = "OFAC country programmes"
    condition = 'origin in ["KP", "IR"]'

Conditions are typed ``rule-engine`` expressions over the fields in
:data:`s321.rules.facts.FIELD_TYPES`; an unknown field or a type error fails at load. A
condition whose fields are absent on a record makes the rule not-applicable for it. List
parameters are matched case- and punctuation-insensitively. R01 (the legal regime) cannot be
disabled: the regime is law, not an analyst's choice.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import rule_engine

from s321.errors import ConfigError
from s321.models import Severity
from s321.rules.catalogue import CATALOGUE, NA, Check, Ctx, Result, RuleSpec
from s321.rules.compile import compile_condition
from s321.rules.facts import FIELD_TYPES, Facts

__all__ = [
    "ActiveRule",
    "Condition",
    "Plan",
    "Ruleset",
    "default_ruleset",
    "load_ruleset",
    "parse_ruleset",
]

_TOP_KEYS = frozenset({"version", "description", "hold_threshold", "rules"})
_RULE_KEYS = frozenset(
    {
        "enabled",
        "severity",
        "version",
        "action",
        "when",
        "condition",
        "params",
        "description",
        "reason_code",
        "source",
    }
)
_CUSTOM_ID = re.compile(r"^[A-Z][A-Z0-9_]{1,15}$")
_CATALOGUE_ID = re.compile(r"^R[0-9]{2}$")
_BY_ID = {spec.id: spec for spec in CATALOGUE}
_WORDS = re.compile(r"[A-Z0-9]+")


class Condition:
    """A rule-engine expression parsed and type-checked at load, evaluated on a record's fields.

    For speed the parsed expression is translated into a plain Python closure where every
    node is one the translator knows; otherwise rule-engine's own evaluator runs it.
    """

    __slots__ = ("_fast", "_rule", "symbols", "text")

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        seen: list[str] = []
        types = {n: getattr(rule_engine.DataType, t) for n, t in FIELD_TYPES.items()}

        def resolve(name: str) -> Any:
            if name not in types:
                raise rule_engine.errors.SymbolResolutionError(name)
            seen.append(name)
            return types[name]

        ctx = rule_engine.Context(type_resolver=resolve)
        try:
            self._rule = rule_engine.Rule(text, context=ctx)
        except rule_engine.errors.SymbolResolutionError as exc:
            raise ConfigError(
                f"{where}: unknown field {exc.symbol_name!r}; known fields: "
                f"{', '.join(sorted(FIELD_TYPES))}"
            ) from None
        except rule_engine.errors.RuleSyntaxError as exc:
            raise ConfigError(f"{where}: syntax error: {exc.message}") from None
        except rule_engine.errors.EngineError as exc:
            fields = ", ".join(f"{n} ({FIELD_TYPES[n]})" for n in dict.fromkeys(seen))
            raise ConfigError(f"{where}: {exc.message} (fields: {fields})") from None
        self.symbols = tuple(dict.fromkeys(seen))
        self._fast = compile_condition(self._rule)

    def __call__(self, fields: Mapping[str, Any]) -> bool | None:
        """True/False, or None when a field it reads is absent (not applicable)."""
        for s in self.symbols:
            if fields[s] is None:
                return None
        if self._fast is not None:
            return bool(self._fast(fields))
        return bool(self._rule.matches(dict(fields)))

    def on(self, facts: Facts) -> bool | None:
        """:meth:`__call__` on a record's facts, computing only the fields it reads."""
        fields = {}
        for s in self.symbols:
            v = facts.field(s)
            if v is None:
                return None
            fields[s] = v
        if self._fast is not None:
            return bool(self._fast(fields))
        return bool(self._rule.matches(fields))


@dataclass(frozen=True, slots=True)
class ActiveRule:
    """A rule as configured in force: catalogue metadata overlaid with the file's settings."""

    id: str
    version: int
    severity: Severity
    reason_code: str
    description: str
    source: str
    enabled: bool
    action: str
    check: Check | None
    params: Mapping[str, Any]
    when: Condition | None = None
    condition: Condition | None = None
    #: the parameters as the check reads them (the catalogue's ``prepare``), None: ``params``
    prepared: Mapping[str, Any] | None = None

    @property
    def check_params(self) -> Mapping[str, Any]:
        """What the check is called with: the prepared parameters, else ``params``."""
        return self.params if self.prepared is None else self.prepared

    def run(self, ctx: Ctx) -> Result:
        """Apply the rule to one record's context (guard, then check or condition)."""
        if self.when is not None and not self.when.on(ctx.facts):
            return NA
        if self.check is not None:
            return self.check(ctx, self.check_params)
        assert self.condition is not None
        fired = self.condition.on(ctx.facts)
        if fired is None:
            return NA
        if fired:
            return {"condition": self.condition.text[:120]}
        return None

    def describe(self) -> dict[str, Any]:
        """The JSON-able listing ``s321 rules list --json`` prints."""
        return {
            "id": self.id,
            "version": self.version,
            "severity": self.severity.value,
            "reason_code": self.reason_code,
            "description": self.description,
            "source": self.source,
            "enabled": self.enabled,
            "action": self.action,
            "condition": self.condition.text if self.condition else None,
            "when": self.when.text if self.when else None,
        }


def _run(ctx: Ctx, rule: ActiveRule) -> Result:
    return rule.run(ctx)


#: One rule of a plan: the rule, and the function and argument to call it with on a context.
Step = tuple[ActiveRule, Callable[[Ctx, Any], Result], Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """What :func:`~s321.rules.evaluate` runs for one rule set under one regime: the enabled
    rules and those the regime forces on, in order, each with what to call. Built once."""

    steps: tuple[Step, ...]
    #: rule id -> the parameters its check reads (:attr:`ActiveRule.check_params`)
    params: Mapping[str, Mapping[str, Any]]
    #: rank of the hold threshold
    threshold: int


@dataclass(frozen=True)
class Ruleset:
    """A validated rule set: its version, hold threshold and the rules in catalogue order."""

    version: str
    description: str
    hold_threshold: Severity
    rules: tuple[ActiveRule, ...]
    text: str = field(default="", repr=False)
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    _plans: dict[frozenset[str], Plan] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def rule(self, rule_id: str) -> ActiveRule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def plan(self, forced: frozenset[str] = frozenset()) -> Plan:
        """The rules to run when the regime forces the rules ``forced`` on (built once each)."""
        found = self._plans.get(forced)
        if found is None:
            steps: list[Step] = []
            for r in self.rules:
                if not r.enabled and r.id not in forced:
                    continue
                if r.check is not None and r.when is None:
                    # the common case: a catalogue check without a guard, called directly
                    steps.append((r, r.check, r.check_params))
                else:
                    steps.append((r, _run, r))
            found = self._plans[forced] = Plan(
                tuple(steps),
                {r.id: r.check_params for r in self.rules},
                self.hold_threshold.rank,
            )
        return found


def _norm_list(values: list[Any], where: str) -> frozenset[str]:
    out = set()
    for v in values:
        if not isinstance(v, str):
            raise ConfigError(f"{where}: list items must be strings")
        out.add(" ".join(_WORDS.findall(v.upper())))
    return frozenset(out)


def _param(spec: RuleSpec, name: str, value: Any, where: str) -> Any:
    default = spec.params[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if isinstance(default, int | float | Decimal):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: must be a number")
        if value < 0:
            raise ConfigError(f"{where}: must not be negative")
        return value
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list of strings")
        return _norm_list(value, where)
    raise ConfigError(f"{where}: unsupported parameter type")  # pragma: no cover


def _str(raw: Mapping[str, Any], key: str, where: str, default: str) -> str:
    v = raw.get(key, default)
    if not isinstance(v, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return v


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(str(value).upper())
    except ValueError:
        raise ConfigError(
            f"{where}: severity must be one of {', '.join(s.value for s in Severity)}"
        ) from None


def _build_rule(rule_id: str, raw: Mapping[str, Any], name: str) -> ActiveRule:
    where = f"{name}: rule {rule_id}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    spec = _BY_ID.get(rule_id)
    if spec is None:
        if _CATALOGUE_ID.match(rule_id) or not _CUSTOM_ID.match(rule_id):
            raise ConfigError(
                f"{where}: not a catalogue rule; analyst rules need an id like "
                "X01 (upper-case letter, then letters, digits or _)"
            )
        for key in ("condition", "description", "reason_code", "severity"):
            if key not in raw:
                raise ConfigError(f"{where}: an analyst rule needs field {key!r}")
        spec = RuleSpec(rule_id, 1, Severity.INFO, "", "", "", None)
    if "params" in raw and spec.check is None:
        raise ConfigError(f"{where}: field 'params': this rule has no parameters")
    params = dict(spec.params)
    for k, v in params.items():
        if isinstance(v, list):
            params[k] = _norm_list(v, f"{where}: params.{k}")
    raw_params = raw.get("params", {})
    if not isinstance(raw_params, Mapping):
        raise ConfigError(f"{where}: field 'params' must be a table")
    for k, v in raw_params.items():
        if k not in spec.params:
            known = ", ".join(sorted(spec.params)) or "none"
            raise ConfigError(f"{where}: unknown parameter {k!r} (known: {known})")
        params[k] = _param(spec, k, v, f"{where}: params.{k}")
    enabled = raw.get("enabled", spec.default_enabled)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: field 'enabled' must be true or false")
    if rule_id == "R01" and not enabled:
        raise ConfigError(f"{where}: field 'enabled': R01 (the legal regime) cannot be disabled")
    severity = _severity(raw.get("severity", spec.severity), f"{where}: field 'severity'")
    version = raw.get("version", spec.version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"{where}: field 'version' must be a positive integer")
    when = condition = None
    if "when" in raw:
        when = Condition(_str(raw, "when", where, ""), f"{where}: field 'when'")
    if spec.check is not None and "condition" in raw:
        raise ConfigError(
            f"{where}: field 'condition': this rule has built-in logic; use "
            "'when' to restrict where it runs"
        )
    if spec.check is None:
        text = _str(raw, "condition", where, spec.default_condition)
        condition = Condition(text, f"{where}: field 'condition'")
    reason = _str(raw, "reason_code", where, spec.reason_code)
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", reason):
        raise ConfigError(f"{where}: field 'reason_code' must be UPPER_SNAKE_CASE")
    return ActiveRule(
        id=rule_id,
        version=version,
        severity=severity,
        reason_code=reason,
        description=_str(raw, "description", where, spec.description),
        source=_str(raw, "source", where, spec.source),
        enabled=enabled,
        action=_str(raw, "action", where, spec.action),
        check=spec.check,
        params=params,
        when=when,
        condition=condition,
        prepared=spec.prepare(params) if spec.prepare is not None else None,
    )


def parse_ruleset(text: str, name: str = "rule set", fmt: str = "toml") -> Ruleset:
    """Validate a rule set given as text; raises :class:`ConfigError` naming rule and field."""
    try:
        raw: Any = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{name}: not valid {fmt.upper()}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name}: must be a table at the top")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"{name}: unknown top-level field {sorted(unknown)[0]!r}")
    version = raw.get("version")
    if not isinstance(version, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", version):
        raise ConfigError(
            f"{name}: field 'version' must be a string of letters, digits, '.', '_' or '-'"
        )
    threshold = _severity(raw.get("hold_threshold", "MEDIUM"), f"{name}: field 'hold_threshold'")
    rules_raw = raw.get("rules", {})
    if not isinstance(rules_raw, Mapping):
        raise ConfigError(f"{name}: field 'rules' must be a table")
    rules = [_build_rule(spec.id, rules_raw.get(spec.id, {}), name) for spec in CATALOGUE]
    rules += [_build_rule(rid, r, name) for rid, r in rules_raw.items() if rid not in _BY_ID]
    ruleset = Ruleset(
        version=version,
        description=str(raw.get("description", "")),
        hold_threshold=threshold,
        rules=tuple(rules),
        text=text,
        params={r.id: r.params for r in rules},
    )
    ruleset.plan()  # built at load, with the parameters prepared
    return ruleset


def load_ruleset(path: Path) -> Ruleset:
    """Read and validate a rule-set file (``.json`` is JSON, anything else TOML)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_ruleset(text, str(path), "json" if path.suffix == ".json" else "toml")


_default: list[Ruleset] = []


def default_ruleset() -> Ruleset:
    """The packaged default rule set (``s321/data/rulesets/default.toml``), read once."""
    if not _default:
        text = (
            resources.files("s321")
            .joinpath("data/rulesets/default.toml")
            .read_text(encoding="utf-8")
        )
        _default.append(parse_ruleset(text, "default.toml"))
    return _default[0]
