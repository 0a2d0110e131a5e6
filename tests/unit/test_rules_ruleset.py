"""Rule-set files: validated at load, naming the rule and field; conditions are fast and typed."""

from __future__ import annotations

import pytest

from s321.errors import ConfigError
from s321.rules import default_ruleset, parse_ruleset


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            'version = "b"\n[rules.R13]\ncondition = "frieght > 1"\n',
            "R13: field 'condition': unknown field 'frieght'",
        ),
        ('version = "b"\n[rules.R13]\ncondition = "origin > 1"\n', "R13: field 'condition'"),
        (
            'version = "b"\n[rules.R10.params]\nmin_words = 2\n',
            "R10: unknown parameter 'min_words'",
        ),
        ('version = "b"\n[rules.R10.params]\nmin_meaningful_words = "x"\n', "R10: params."),
        ('version = "b"\n[rules.R05]\nseverity = "SEVERE"\n', "R05: field 'severity'"),
        ('version = "b"\n[rules.R01]\nenabled = false\n', "R01"),
        ('version = "b"\n[rules.R05]\ncondition = "gift"\n', "R05: field 'condition'"),
        ('version = "b"\n[rules.X01]\ncondition = "gift"\n', "X01: an analyst rule needs"),
        ("[rules.R05]\nenabled = true\n", "field 'version'"),
    ],
)
def test_bad_rule_sets_fail_at_load_naming_rule_and_field(text: str, needle: str) -> None:
    """Each malformed rule set is refused with a message naming the rule and field."""
    with pytest.raises(ConfigError) as info:
        parse_ruleset(text)
    assert needle in str(info.value)


def test_default_rule_set_round_trips_and_has_every_rule() -> None:
    """The packaged default parses and lists R01-R26 with R06 disabled."""
    rs = default_ruleset()
    assert [r.id for r in rs.rules[:26]] == [f"R{i:02d}" for i in range(1, 27)]
    assert not rs.rule("R06").enabled
    assert parse_ruleset(rs.text).version == rs.version


def test_analyst_rule_condition_is_compiled_and_evaluated() -> None:
    """An analyst rule's condition evaluates like rule-engine would, without its evaluator."""
    rs = parse_ruleset(
        'version = "c"\n[rules.X01]\ndescription = "d"\nreason_code = "SANC"\n'
        'severity = "HIGH"\ncondition = \'origin in ["KP", "IR"] and not gift\'\n'
    )
    cond = rs.rule("X01").condition
    assert cond is not None
    assert cond({"origin": "KP", "gift": False}) is True
    assert cond({"origin": "VN", "gift": False}) is False
    assert cond({"origin": None, "gift": False}) is None


def test_plan_is_built_at_load_once_per_forced_set_in_rule_order() -> None:
    """A rule set's plan lists its enabled rules in order, adds the ones a regime forces on,
    and is built once for each set of forced rules."""
    rs = parse_ruleset('version = "p"\n[rules.R10]\nwhen = \'mode == "AIR"\'\n')
    plain = rs.plan()
    assert rs.plan() is plain
    ids = [rule.id for rule, _, _ in plain.steps]
    assert ids == [r.id for r in rs.rules if r.enabled]
    assert "R06" not in ids
    forced = rs.plan(frozenset({"R06"}))
    assert [rule.id for rule, _, _ in forced.steps] == [r.id for r in rs.rules]
    assert plain.threshold == rs.hold_threshold.rank
    # a guarded rule goes through ActiveRule.run; an unguarded check is called directly
    steps = {rule.id: (run, arg) for rule, run, arg in plain.steps}
    assert steps["R10"][1] is rs.rule("R10")
    assert steps["R14"] == (rs.rule("R14").check, rs.rule("R14").check_params)


def test_parameters_are_prepared_once_for_the_checks() -> None:
    """Numbers a check compares become Decimal from their text, prefix lists sorted tuples;
    the rule keeps the validated parameters as written."""
    from decimal import Decimal

    rs = parse_ruleset(
        'version = "q"\n[rules.R14.params]\nmin_ratio = 0.2\n'
        '[rules.R07.params]\ntobacco_prefixes = ["2402", "24"]\n'
        "[rules.R02.params]\nthreshold_usd = 0\n"
    )
    r14, r07, r02 = rs.rule("R14"), rs.rule("R07"), rs.rule("R02")
    assert r14.params["min_ratio"] == 0.2
    assert r14.check_params["min_ratio"] == Decimal("0.2")
    assert r07.check_params["tobacco_prefixes"] == ("24", "2402")
    assert r02.check_params["threshold_usd"] is None  # the regime's threshold
    assert rs.plan().params["R14"] is r14.check_params
