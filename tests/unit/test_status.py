"""The shipment-status view and endpoint, without Kafka: answers checked against
``deploy/openapi.yaml``, which is itself checked to be a valid OpenAPI description."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from s321 import serialization
from s321.models import Decision, InputRef, Outcome, RuleHit, Severity
from s321.ops.status import KEEP_VERSIONS, DecisionView, StatusServer, parse_key

SPEC_PATH = Path(__file__).parents[2] / "deploy" / "openapi.yaml"


def _spec() -> dict[str, Any]:
    return dict(yaml.safe_load(SPEC_PATH.read_text()))


def _decision(key: str, version: int, outcome: Outcome = Outcome.HOLD) -> Decision:
    t = datetime(2025, 3, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=version)
    hits = (
        RuleHit("R03", 2, Severity.HIGH, "LOW_VALUE_SUSPECT", "declared value implausible",
                {"declared_value": "3.10", "consignee_key": "ab12cd"}),
    ) if outcome is Outcome.HOLD else ()  # fmt: skip
    return Decision(
        decision_id=f"{key}-v{version}",
        shipment_key=key,
        version=version,
        outcome=outcome,
        hits=hits,
        required_actions=("inspect",) if hits else (),
        regime_version="2025-02",
        ruleset_version="v7",
        refdata_version="r3",
        inputs=(InputRef("s321.manifest.v1", 0, version, f"e{version}"),),
        event_time=t,
        decided_at=t + timedelta(seconds=1),
        latency_ms=3.0,
    )


def _view() -> DecisionView:
    return DecisionView(lambda v: serialization.decode(v, Decision))


@pytest.fixture
def served() -> Iterator[tuple[DecisionView, str]]:
    view = _view()
    server = StatusServer(view, "127.0.0.1", 0).start()
    try:
        yield view, f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


def _get(url: str) -> tuple[int, dict[str, str], Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def _check_against_spec(path: str, status: int, body: Any) -> None:
    """Fail unless ``body`` is what the spec says ``GET path`` answers with ``status``."""
    spec = _spec()
    responses = spec["paths"][path]["get"]["responses"]
    assert str(status) in responses, f"{path} is not documented to answer {status}"
    schema = responses[str(status)]["content"]["application/json"]["schema"]
    validator = Draft202012Validator(
        {**schema, "components": spec["components"]},
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )
    errors = [e.message for e in validator.iter_errors(body)]
    assert not errors, errors


def test_the_openapi_description_is_valid() -> None:
    validate_spec(_spec())  # type: ignore[arg-type]  # a parsed YAML mapping


def test_the_openapi_enums_are_the_avro_symbols() -> None:
    schemas = _spec()["components"]["schemas"]
    outcome = schemas["DecisionVersion"]["properties"]["outcome"]["enum"]
    severity = schemas["Reason"]["properties"]["severity"]["enum"]
    assert outcome == serialization.schema("Outcome")["symbols"]
    assert severity == serialization.schema("Severity")["symbols"]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("1z-999 aa1", "1Z999AA1"),
        ("1Z999AA1", "1Z999AA1"),
        ("MAWB.123/456_7", "MAWB1234567"),
        ("A" * 35, "A" * 35),
        ("A" * 36, None),  # 36 letters once normalised
        ("-" * 10 + "A" * 35 + " " * 6, None),  # 51 characters as written
        ("", None),
        ("--/ .", None),
        ("1Z#999", None),
        ("1Z\u00e9999", None),
    ],
)
def test_parse_key_follows_the_shipment_key_rules(raw: str, key: str | None) -> None:
    assert parse_key(raw) == key


def test_a_known_shipment_answers_its_newest_decision_and_history(
    served: tuple[DecisionView, str],
) -> None:
    view, base = served
    view.add(serialization.encode(_decision("1Z999AA1", 1, Outcome.HOLD)))
    view.add(serialization.encode(_decision("1Z999AA1", 2, Outcome.RELEASE)))
    view.add(serialization.encode(_decision("1Z999AA1", 1, Outcome.HOLD)))  # a repeat
    view.mark_ready()
    status, _, body = _get(f"{base}/shipments/1z-999%20aa1")
    assert status == 200
    _check_against_spec("/shipments/{key}", status, body)
    assert body["shipment_key"] == "1Z999AA1"
    assert [v["version"] for v in body["history"]] == [1, 2]
    assert body["newest"] == body["history"][-1]
    assert body["newest"]["outcome"] == "RELEASE"
    assert body["newest"]["decision_id"] == "1Z999AA1-v2"
    first = body["history"][0]
    assert first["outcome"] == "HOLD"
    assert first["reasons"] == [
        {
            "rule_id": "R03",
            "rule_version": 2,
            "reason_code": "LOW_VALUE_SUSPECT",
            "severity": "HIGH",
            "description": "declared value implausible",
            "evidence": {"declared_value": "3.10", "consignee_key": "ab12cd"},
        }
    ]
    assert first["decided_at"] == "2025-03-01T12:01:01+00:00"
    assert body["older_versions_not_kept"] == 0


def test_malformed_unknown_and_not_yet_known_keys(served: tuple[DecisionView, str]) -> None:
    view, base = served
    status, headers, body = _get(f"{base}/shipments/NOPE1")
    assert status == 503
    assert headers["Retry-After"] == "5"
    _check_against_spec("/shipments/{key}", status, body)
    status, _, body = _get(f"{base}/shipments-view")
    assert status == 503
    assert body["ready"] is False
    _check_against_spec("/shipments-view", status, body)

    view.mark_ready()
    status, _, body = _get(f"{base}/shipments/nope-1")
    assert (status, body["shipment_key"]) == (404, "NOPE1")
    _check_against_spec("/shipments/{key}", status, body)
    for bad in ("1Z%23999", "%20", "A" * 36, "x" * 51):
        status, _, body = _get(f"{base}/shipments/{bad}")
        assert status == 400, bad
        _check_against_spec("/shipments/{key}", status, body)
    status, _, body = _get(f"{base}/shipments-view")
    assert status == 200
    assert body == {"ready": True, "shipments": 0, "decisions": 0, "unreadable": 0}
    _check_against_spec("/shipments-view", status, body)


def test_the_view_keeps_the_newest_versions_and_skips_unreadable_values() -> None:
    view = _view()
    for v in range(1, KEEP_VERSIONS + 4):
        view.add(serialization.encode(_decision("K1", v)))
    view.add(b"\xc3\x01junk")
    view.add(None)
    found = view.lookup("K1")
    assert found is not None
    assert [h["version"] for h in found["history"]] == list(range(4, KEEP_VERSIONS + 4))
    assert found["older_versions_not_kept"] == 3
    assert view.lookup("K2") is None
    state = view.state()
    assert (state.shipments, state.decisions, state.unreadable) == (1, KEEP_VERSIONS + 3, 1)
