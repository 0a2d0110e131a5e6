"""The worker's evaluator: versions in force, stale marking, and the Redis-outage fail-safe."""

from __future__ import annotations

from dataclasses import dataclass, field

from s321.evaluator import RuleEvaluator
from s321.models import CompleteRecord, Outcome
from s321.rules import default_ruleset, parse_ruleset
from s321.rules.aggregates import Aggregates
from tests.unit.test_rules import AGG, SNAP, record


@dataclass
class _Cross:
    """A cross-shipment store that is up or down as the test says, counting its calls."""

    up: bool = True
    calls: int = 0
    seen: list[str] = field(default_factory=list)

    def record_and_read_many(self, recs: list[CompleteRecord]) -> list[Aggregates]:
        self.calls += len(recs)
        self.seen += [rec.key for rec in recs]
        return [AGG if self.up else Aggregates.unavailable() for _ in recs]


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _rec(key: str) -> CompleteRecord:
    r = record()
    return CompleteRecord(key, r.manifest, r.pilot, r.entry86, r.pilot_deadline_passed)


def test_clean_record_is_released_with_the_sources_versions() -> None:
    """With state available a clean record is released, naming rule-set and refdata versions."""
    ev = RuleEvaluator(default_ruleset(), SNAP, _Cross())(_rec("A"))  # type: ignore[arg-type]
    assert ev.outcome is Outcome.RELEASE
    assert (ev.ruleset_version, ev.refdata_version, ev.stale_refdata) == (
        default_ruleset().version,
        SNAP.version,
        False,
    )


def test_outage_holds_marks_stale_backs_off_and_rechecks_after_recovery() -> None:
    """While the state store is down a clean record is held and stale, the store is not asked
    again within the back-off, and after recovery the held shipments come back as affected."""
    cross, clock = _Cross(up=False), _Clock()
    evaluator = RuleEvaluator(
        default_ruleset(),
        SNAP,
        cross,  # type: ignore[arg-type]
        retry_after_s=1.0,
        clock=clock,
    )
    first, second = evaluator(_rec("A")), evaluator(_rec("B"))
    for ev in (first, second):
        assert ev.outcome is Outcome.HOLD
        assert ev.stale_refdata
        assert {"R03", "R04", "R18"} <= {h.rule_id for h in ev.hits}
    assert cross.calls == 1, "the store was asked again within the back-off"
    assert evaluator.pending_recheck == 2
    cross.up = True
    clock.t += 2
    third = evaluator(_rec("C"))
    assert third.outcome is Outcome.RELEASE
    assert not third.stale_refdata
    assert set(third.affected) == {"A", "B"}
    assert evaluator.pending_recheck == 0


def test_unavailable_state_holds_even_when_analysts_lower_the_severity() -> None:
    """A cross-shipment rule that could not read state holds even when configured as LOW."""
    text = 'version = "low"\n' + "".join(
        f'[rules.{r}]\nseverity = "LOW"\n' for r in ("R03", "R04", "R18")
    )
    ev = RuleEvaluator(parse_ruleset(text), SNAP, _Cross(up=False))(_rec("A"))  # type: ignore[arg-type]
    assert ev.outcome is Outcome.HOLD
