"""The metric registry: naming conventions, bounded labels, the lag snapshot and /metrics."""

from __future__ import annotations

import re
import urllib.request

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from s321 import metrics
from s321.ops.lag import LagReport, PartitionLag

#: Every label any s321 metric may carry: small fixed sets, never a shipment or a person.
ALLOWED_LABELS = {"topic", "outcome", "reason", "rule", "error_class", "table", "group",
                  "partition", "version"}  # fmt: skip


def test_every_metric_follows_prometheus_naming() -> None:
    """Names are s321_-prefixed snake case; counters end _total, durations are in seconds."""
    for family in metrics.REGISTRY.collect():
        assert re.fullmatch(r"s321_[a-z0-9_]+", family.name), family.name
        assert not family.name.endswith("_total"), "the client adds _total itself"
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
    names = metrics.exported_names()
    assert "s321_decisions_total" in names
    assert "s321_decision_latency_from_broker_seconds_bucket" in names
    assert "s321_rule_set_info" in names
    assert "s321_consumer_lag_seconds" in names


def test_labels_are_bounded_and_never_identify_a_shipment() -> None:
    """Only labels from the allowed fixed sets appear on any metric, once each is used."""
    metrics.DECISIONS.labels(outcome="HOLD").inc()
    metrics.DEAD_LETTERS.labels(error_class="DecodeError").inc()
    metrics.RULE_SET.info({"version": "test-rules-1"})
    metrics.LAG.publish(LagReport("g", 1.0, (PartitionLag("t", 0, 1, 2, 1, 3.0),)))
    try:
        seen = {
            label
            for family in metrics.REGISTRY.collect()
            for sample in family.samples
            for label in sample.labels
            if label != "le"
        }
    finally:
        metrics.LAG.clear()
    assert seen <= ALLOWED_LABELS
    assert {"outcome", "error_class", "version", "partition"} <= seen


def test_worker_counters_are_callable_as_documented() -> None:
    """``DECISIONS.labels(outcome=...).inc()`` and a latency observation show up in the registry."""
    before = metrics.REGISTRY.get_sample_value("s321_decisions_total", {"outcome": "RELEASE"})
    count = metrics.REGISTRY.get_sample_value("s321_decision_latency_from_event_seconds_count")
    metrics.DECISIONS.labels(outcome="RELEASE").inc()
    metrics.LATENCY_FROM_EVENT.observe(0.2)
    after = metrics.REGISTRY.get_sample_value("s321_decisions_total", {"outcome": "RELEASE"})
    assert (after or 0) - (before or 0) == 1
    new_count = metrics.REGISTRY.get_sample_value("s321_decision_latency_from_event_seconds_count")
    assert (new_count or 0) - (count or 0) == 1


def test_lag_collector_exports_one_reading_whole() -> None:
    """A published lag reading appears per partition; an uncommitted one has no committed offset."""
    report = LagReport(
        "grp",
        1700000000.0,
        (PartitionLag("in", 0, 5, 9, 4, 12.5), PartitionLag("in", 1, None, 3, 3, 60.0)),
    )
    metrics.LAG.publish(report)
    try:
        text = generate_latest(metrics.REGISTRY).decode()
    finally:
        metrics.LAG.clear()
    got = {
        (s.name, s.labels.get("partition")): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.labels.get("group") == "grp"
    }
    assert got == {
        ("s321_consumer_lag_records", "0"): 4.0,
        ("s321_consumer_lag_records", "1"): 3.0,
        ("s321_consumer_lag_seconds", "0"): 12.5,
        ("s321_consumer_lag_seconds", "1"): 60.0,
        ("s321_consumer_committed_offset", "0"): 5.0,
        ("s321_log_end_offset", "0"): 9.0,
        ("s321_log_end_offset", "1"): 3.0,
        ("s321_lag_last_success_timestamp_seconds", None): 1700000000.0,
    }


def test_serve_metrics_answers_on_the_chosen_port() -> None:
    """``serve_metrics(0)`` serves the registry over HTTP at /metrics on a free port."""
    metrics.REBALANCES.inc()
    server = metrics.serve_metrics(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert re.search(r"^s321_rebalances_total [1-9]", body, re.MULTILINE)


def test_counted_is_the_label_child_looked_up_once() -> None:
    """``counted(metric, label)`` is the child ``metric.labels(label)`` gives, the same object
    each time, and what it counts is what the registry exports."""
    child = metrics.counted(metrics.RULE_HITS, "R99")
    assert child is metrics.counted(metrics.RULE_HITS, "R99")
    assert child is metrics.RULE_HITS.labels("R99")
    before = metrics.REGISTRY.get_sample_value("s321_rule_hits_total", {"rule": "R99"}) or 0.0
    child.inc()
    assert metrics.REGISTRY.get_sample_value("s321_rule_hits_total", {"rule": "R99"}) == before + 1
