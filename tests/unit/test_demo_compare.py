"""Checking decisions against ground truth: second decisions are defects, redeliveries are not."""

from __future__ import annotations

from dataclasses import replace

from s321.devtools.demo import DemoReport, _repeats, compare
from s321.devtools.generator.scenarios import Expected
from s321.models import Decision, Outcome
from tests.factories import T0


def _decision(version: int, outcome: Outcome = Outcome.RELEASE, did: str = "") -> Decision:
    return Decision(
        decision_id=did or f"id-{version}",
        shipment_key="K",
        version=version,
        outcome=outcome,
        hits=(),
        required_actions=(),
        regime_version="r",
        ruleset_version="s",
        refdata_version="d",
        inputs=(),
        event_time=T0,
        decided_at=T0,
        latency_ms=1.0,
    )


def test_identical_repeat_is_a_redelivery_and_a_different_one_a_second_decision() -> None:
    """The same id and outcome again counts as redelivered; another outcome for the version counts as a duplicate."""
    one = _decision(1)
    assert _repeats([one, replace(one, latency_ms=9.0)]) == (0, 1)
    assert _repeats([one, _decision(1, Outcome.HOLD)]) == (1, 0)


def test_compare_reports_lost_gaps_and_mismatches() -> None:
    """A missing version is lost, and a newest outcome unlike the truth is a mismatch."""
    truth = {"K": Expected("K", "ordinary", "RELEASE", ())}
    report = DemoReport()
    compare(truth, {"K": [_decision(1), _decision(3, Outcome.HOLD)]}, {}, 0, report)
    assert (report.lost, report.mismatches, report.duplicates) == (1, 1, 0)
    assert report.lost_examples == [{"key": "K", "versions seen": [1, 3]}]
