"""Quantiles of measured figures: one percentile for the demo and the benchmark."""

from __future__ import annotations

import pytest

from s321.devtools.stats import percentile


def test_percentile_interpolates_between_neighbours() -> None:
    """A quantile between two sorted values is interpolated linearly; the ends are min and max."""
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 0.0) == 10.0
    assert percentile(values, 1.0) == 40.0
    assert percentile(values, 0.5) == pytest.approx(25.0)
    assert percentile(values, 0.99) == pytest.approx(39.7)


def test_percentile_of_nothing_is_zero_and_bad_quantiles_are_refused() -> None:
    """No values give 0, and a quantile outside 0..1 raises ValueError."""
    assert percentile([], 0.5) == 0.0
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 1.5)


def test_the_demo_reports_interpolated_latency_percentiles() -> None:
    """The demo's latency figures are this percentile of the decisions' latencies."""
    from dataclasses import replace

    from s321.devtools.demo import DemoReport, compare
    from s321.devtools.generator.scenarios import Expected
    from tests.unit.test_demo_compare import _decision

    truth = {k: Expected(k, "ordinary", "RELEASE", ()) for k in "ABCD"}
    latencies = dict(zip("ABCD", (40.0, 10.0, 30.0, 20.0), strict=True))
    decisions = {
        k: [replace(_decision(1), shipment_key=k, latency_ms=ms)] for k, ms in latencies.items()
    }
    report = DemoReport()
    compare(truth, decisions, {}, 0, report)
    ordered = sorted(latencies.values())
    assert report.latency_ms == {
        "p50": percentile(ordered, 0.5),
        "p95": percentile(ordered, 0.95),
        "p99": percentile(ordered, 0.99),
    }
    assert report.latency_ms["p50"] == pytest.approx(25.0)
