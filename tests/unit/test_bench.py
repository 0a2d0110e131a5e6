"""The benchmark's pure helpers: latency summary, steady rate, token bucket, profile summary,
the contenders' CPU and request figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from s321.devtools.bench import (
    PHASES,
    BenchReport,
    Cost,
    PhaseCheck,
    TokenBucket,
    cost_shares,
    cpu_at,
    cpu_ms_per_shipment,
    latency_summary,
    parse_phases,
    rate_between,
    steady_window,
    top_frames,
)
from s321.devtools.contenders import requests_sent


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
    assert targets["scale_2_over_1"]["met"] is False
    assert targets["recovery_s"]["met"] is None
    assert targets["cpu_ms_per_shipment"]["met"] is None  # s321's cost not measured
    report.costs["s321"] = Cost(
        shipments_per_s=6000,
        cpu_ms_per_shipment={"run": 1.6, "steady": 1.2},
        broker_cpu_ms_per_shipment={"run": 0.5, "steady": 0.4},
    )
    targets = report.targets()
    assert targets["cpu_ms_per_shipment"] == {
        "value": 1.2,
        "target": 1.5,
        "at_least": False,
        "met": True,
    }
    assert targets["cpu_ms_per_shipment_goal"]["met"] is False
    assert targets["broker_cpu_ms_per_shipment"]["met"] is False


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


def test_cpu_at_interpolates_between_samples_and_holds_at_the_ends() -> None:
    """CPU seconds between two samples lie on the line between them; before the first and
    after the last sample the nearest sample's value holds; no samples, 0."""
    samples = [(1000.0, 0.0), (2000.0, 1.0), (4000.0, 1.5)]
    assert cpu_at(samples, 1500.0) == pytest.approx(0.5)
    assert cpu_at(samples, 3000.0) == pytest.approx(1.25)
    assert cpu_at(samples, 500.0) == 0.0
    assert cpu_at(samples, 9000.0) == 1.5
    assert cpu_at([(1000.0, 2.0), (1000.0, 3.0)], 1000.0) == 2.0
    assert cpu_at([], 1.0) == 0.0


def test_cpu_ms_per_shipment_divides_the_cpu_of_a_window() -> None:
    """0.5 CPU seconds between 1.5 s and 3 s over 100 shipments: 5 ms each; without samples,
    shipments or time, no figure."""
    samples = [(1000.0, 0.0), (2000.0, 1.0), (4000.0, 1.5)]
    assert cpu_ms_per_shipment(samples, 1500.0, 3000.0, 150) == pytest.approx(5.0)
    assert cpu_ms_per_shipment(None, 0.0, 1.0, 10) is None
    assert cpu_ms_per_shipment(samples, 0.0, 1.0, 0) is None
    assert cpu_ms_per_shipment(samples, 3.0, 3.0, 10) is None


def test_steady_window_is_the_window_rate_between_measures() -> None:
    """The window's items over its length are the steady rate."""
    times = [10_000.0 + i for i in range(10_000)] + [60_000.0]
    lo, hi, items = steady_window(times)
    assert items / ((hi - lo) / 1000) == pytest.approx(rate_between(times))
    assert lo > 10_000.0
    assert hi < 60_000.0
    assert steady_window([1.0]) == (0.0, 0.0, 0.0)


def test_cost_measured_gives_each_process_its_figures_per_window() -> None:
    """The process, the broker (series ``kafka``) and Redis each get run and steady figures;
    a series not sampled (Redis here) has none, and the line shows a dash."""
    series = {
        "process": [(0.0, 0.0), (10_000.0, 4.0)],
        "kafka": [(0.0, 100.0), (10_000.0, 101.0)],
    }
    cost = Cost.measured(series, (0.0, 10_000.0, 1000), (5000.0, 10_000.0, 500), 100.0)
    assert cost.cpu_ms_per_shipment == {"run": 4.0, "steady": 4.0}
    assert cost.broker_cpu_ms_per_shipment == {"run": 1.0, "steady": 1.0}
    assert cost.redis_cpu_ms_per_shipment == {"run": None, "steady": None}
    assert "Redis - / -" in cost.line("x")
    assert "CPU 4.00 / 4.00" in cost.line("x")


def test_report_carries_each_contenders_cost_and_the_ratio_to_bare_faust() -> None:
    """``--json`` has the CPU figures per contender; s321 over the bare Faust join is the ratio
    of their shipments/s and of their steady CPU per shipment, also in the printed lines."""
    report = BenchReport()
    report.costs["s321"] = Cost(500.0, {"run": 3.0, "steady": 2.0}, {"run": 1.0, "steady": 0.5})
    report.costs["faust_join"] = Cost(1000.0, {"run": 1.0, "steady": 0.5}, note="not counted")
    body = report.as_json()
    assert body["contenders"]["s321"]["cpu_ms_per_shipment"] == {"run": 3.0, "steady": 2.0}
    assert body["contenders"]["s321"]["broker_cpu_ms_per_shipment"]["steady"] == 0.5
    assert "redis_cpu_ms_per_shipment" in body["contenders"]["faust_join"]
    assert body["s321_over_faust_join"] == {"shipments_per_s": 0.5, "cpu_ms_per_shipment": 4.0}
    text = "\n".join(report.lines())
    assert "shipments/s 0.50x, CPU per shipment 4.00x" in text
    assert "faust_join: not counted" in text
    assert BenchReport().over_faust_join() == {
        "shipments_per_s": None,
        "cpu_ms_per_shipment": None,
    }


def test_requests_sent_sums_tx_over_the_broker_connections() -> None:
    """librdkafka's statistics: ``tx`` of every broker connection, bootstrap included."""
    stats = {
        "name": "rdkafka#consumer-1",
        "brokers": {
            "127.0.0.1:19092/bootstrap": {"tx": 5, "rx": 5},
            "127.0.0.1:19092/1": {"tx": 120, "rx": 119},
            "GroupCoordinator": {"tx": 7},
        },
    }
    assert requests_sent(stats) == 132
    assert requests_sent({}) == 0


def test_cpu_sampler_samples_live_processes_only() -> None:
    """A running process gets samples that never go down, and a process started now a first
    sample of 0; a pid that does not exist gets none."""
    import os

    from s321.devtools.bench import _CpuSampler

    sampler = _CpuSampler({"me": os.getpid(), "gone": 2**22 + 1}, started=["me"], every_s=0.01)
    sum(i * i for i in range(200_000))
    series = sampler.stop()
    assert series["gone"] == []
    cpus = [c for _, c in series["me"]]
    assert cpus[0] == 0.0
    assert len(cpus) >= 3
    assert cpus == sorted(cpus)


def test_parse_phases_always_keeps_throughput_and_refuses_unknown_names() -> None:
    assert parse_phases("profile") == {"throughput", "profile"}
    assert parse_phases(" scale , latency ,") == {"throughput", "scale", "latency"}
    assert parse_phases(",".join(PHASES)) == PHASES
    with pytest.raises(ValueError, match="unknown phase"):
        parse_phases("profile,speed")
