"""The benchmark's pure helpers: latency summary, steady rate, token bucket, profile summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from s321.devtools.bench import (
    BenchReport,
    PhaseCheck,
    TokenBucket,
    cost_shares,
    latency_summary,
    rate_between,
    top_frames,
)


def test_latency_summary_sorts_and_counts() -> None:
    """The summary sorts its input and reports n, p50, p95, p99 and max."""
    s = latency_summary(float(v) for v in reversed(range(1, 101)))
    assert s["n"] == 100
    assert s["p50"] == pytest.approx(50.5)
    assert s["p99"] == pytest.approx(99.0, abs=0.1)
    assert s["max"] == 100


def test_rate_between_ignores_start_up_and_tail() -> None:
    """Completions at 1 ms intervals after a 10 s start-up, with one straggler, rate 1000/s."""
    times = [10_000.0 + i for i in range(10_000)] + [60_000.0]
    assert rate_between(times) == pytest.approx(1000, rel=0.02)
    assert rate_between([5.0]) == 0.0
    assert rate_between([5.0, 5.0, 5.0]) == 0.0


def test_token_bucket_spends_its_burst_then_paces_at_the_rate() -> None:
    """With a fake clock, the burst goes at once and each further token waits 1/rate seconds."""
    now = [0.0]
    bucket = TokenBucket(rate=100, burst=2, clock=lambda: now[0])
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == 0.0
    assert bucket.reserve() == pytest.approx(0.01)
    assert bucket.reserve() == pytest.approx(0.02)
    now[0] = 1.0
    assert bucket.reserve() == 0.0  # refilled, capped at the burst


def test_token_bucket_refuses_a_rate_of_zero() -> None:
    """A bucket needs a positive rate."""
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate=0)


def test_top_frames_counts_own_and_inclusive_samples() -> None:
    """Leaf samples are a frame's own time; every stack a frame is on counts as inclusive."""
    rows = top_frames(["main;run;decode 6\n", "main;run;evaluate 3\n", "main;send 1\n", "junk\n"])
    by = {r["frame"]: r for r in rows}
    assert rows[0]["frame"] == "decode"
    assert by["decode"]["own_pct"] == 60.0
    assert by["evaluate"]["inclusive_pct"] == 30.0
    assert "run" not in by  # never a leaf
    assert top_frames([]) == []


def test_cost_shares_count_each_sample_once_for_its_most_specific_part() -> None:
    """A Redis call under the processor counts as Redis, a changelog send under the staged
    table writes as join state, an idle select as waiting; shares add up to 100."""
    lines = [
        "run;correlate (streams/app.py:1);decide_pending (s321/core/processor.py:2);"
        "record_and_read_many (s321/stores/crossshipment.py:3);recv (redis/connection.py:4) 4",
        "run;_Staged.apply (streams/table.py:7);send_soon (faust/tables/base.py:8) 2",
        "run;correlate (streams/app.py:1);encode_state (s321/core/state.py:3) 1",
        "run;correlate (streams/app.py:1);merge (s321/core/correlation.py:5) 1",
        "run;_drain_messages (aiokafka/consumer/fetcher.py:9) 3",
        "run;EpollSelector.select (selectors.py:468) 1",
        "junk",
    ]
    shares = cost_shares(lines)
    assert shares == {
        "cross-shipment state (Redis)": 33.3,
        "join state (JSON, RocksDB, changelog)": 25.0,
        "Faust and aiokafka (fetch, streams, commits, producer)": 25.0,
        "correlation (rest of the processor)": 8.3,
        "waiting (in select)": 8.3,
    }
    assert cost_shares([]) == {}


def test_report_sums_checks_and_judges_targets() -> None:
    """Lost/duplicated/mismatched add up over phases, and each target says met or not."""
    report = BenchReport(throughput_sps=6000, ceiling_sps=12000, two_workers_sps=9000)
    report.checks = {"a": PhaseCheck(lost=1), "b": PhaseCheck(duplicates=2)}
    body = report.as_json()
    assert (body["lost"], body["duplicates"], body["mismatches"]) == (1, 2, 0)
    assert not report.ok
    targets = report.targets()
    assert targets["throughput_sps"]["met"] is True
    assert targets["ratio_to_ceiling"]["met"] is True
    assert targets["scale_2_over_1"]["met"] is False
    assert targets["recovery_s"]["met"] is None


def test_top_frames_by_inclusive_drops_frames_every_stack_passes() -> None:
    """Ranked by inclusive share, frames above ``below`` percent (the loop itself) are left out."""
    lines = ["loop;a;b 5", "loop;a;c 3", "loop;d 2"]
    rows = top_frames(lines, by="inclusive", below=85.0)
    assert [r["frame"] for r in rows][:2] == ["a", "b"]
    assert all(r["frame"] != "loop" for r in rows)


def test_cached_traffic_is_keyed_by_the_generators_source(tmp_path: Path) -> None:
    """Traffic cached by an older generator is not reused: the file name carries a digest of
    the generator's source, so a changed generator writes (and reads) files of its own."""
    from datetime import date

    from s321.devtools.bench import cached_traffic, generator_digest

    day = date(2024, 9, 2)
    traffic = cached_traffic(tmp_path, 7, 5, day, day, lambda _: None)
    assert generator_digest() in traffic.records.name
    assert len(generator_digest()) == 12
