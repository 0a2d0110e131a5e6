"""Small builders of valid domain events for tests (the generator builds realistic traffic)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from s321.models import (
    Action,
    Address,
    CompleteRecord,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    LineItem,
    ManifestEvent,
    Mode,
    Outcome,
    Party,
    PilotRecord,
    ReleasePath,
    RuleHit,
    Severity,
)

T0 = datetime(2024, 9, 2, 12, 0, tzinfo=UTC)


def _party(name: str, country: str) -> Party:
    return Party(
        name,
        Address(
            "12 Harbour Road", "Shenzhen" if country == "CN" else "Newark", country, None, "07102"
        ),
    )


def manifest(
    bill: str,
    value: str = "40.00",
    *,
    at: datetime = T0,
    event_id: str = "",
    action: Action = Action.ADD,
    arrival: timedelta = timedelta(hours=6),
    path: ReleasePath = ReleasePath.SECTION_321,
) -> ManifestEvent:
    return ManifestEvent(
        header=EventHeader(event_id or f"m-{bill}-{action}-{at.timestamp()}", at, "CARR1", action),
        house_bill=bill,
        tracking_number=None,
        master_bill="MB1",
        carrier_code="CARR",
        mode=Mode.AIR,
        port_of_entry="4701",
        estimated_arrival=at + arrival,
        shipper=_party("Shop Ltd", "CN"),
        consignee=_party("Pat Doe", "US"),
        origin_country="CN",
        lines=(
            LineItem(
                "cotton t-shirt, men's, knitted",
                2,
                Decimal(value),
                Decimal("0.4"),
                "6109100012",
                "CN",
            ),
        ),
        shipping_weight_kg=Decimal("0.5"),
        release_path=path,
    )


def pilot(bill: str, *, at: datetime = T0, event_id: str = "") -> PilotRecord:
    return PilotRecord(
        header=EventHeader(event_id or f"p-{bill}-{at.timestamp()}", at, "MKT1"),
        originator_code="MKT1",
        filer_type=FilerType.ONLINE_MARKETPLACE,
        mode=Mode.AIR,
        house_bill=bill,
        seller=_party("Shop Ltd", "CN"),
        deliver_to=_party("Pat Doe", "US"),
        enhanced_description="cotton t-shirt, men's, knitted",
        listed_price=Decimal("20.00"),
        quantity=2,
    )


def entry86(
    bill: str, *, at: datetime = T0, event_id: str = "", number: str = "ABC12345675"
) -> Entry86:
    return Entry86(
        header=EventHeader(event_id or f"e-{bill}-{at.timestamp()}", at, "BRK1"),
        bill_number=bill,
        entry_number=number,
        port_of_entry="4701",
        shipper=_party("Shop Ltd", "CN"),
        consignee=_party("Pat Doe", "US"),
        origin_country="CN",
        lines=(Entry86Line("6109100012", 2, Decimal("40.00")),),
        filed_at=at,
    )


@dataclass(frozen=True)
class StubVerdict:
    outcome: Outcome
    hits: tuple[RuleHit, ...]
    required_actions: tuple[str, ...] = ()
    not_applicable: tuple[str, ...] = ()
    regime_version: str = "test-regime"
    ruleset_version: str = "test-rules"
    refdata_version: str = "test-ref"
    stale_refdata: bool = False
    affected: tuple[str, ...] = ()
    affected_by_presence: tuple[str, ...] = ()


class PerRecord:
    """A test :class:`~s321.core.processor.Evaluator` made of a function of one record: a batch
    is evaluated record by record, the exception a record's evaluation raised in its place."""

    def __init__(self, rule: Callable[[CompleteRecord], object]) -> None:
        self.rule = rule

    def many(self, records: Sequence[CompleteRecord]) -> list[object]:
        out: list[object] = []
        for record in records:
            try:
                out.append(self.rule(record))
            except Exception as exc:
                out.append(exc)
        return out


def value_rule(record: CompleteRecord) -> StubVerdict:
    """A test evaluator: HOLD when the manifest is over $800 or pilot data never came."""
    hits = []
    assert record.manifest is not None
    if record.manifest.declared_value > 800:
        hits.append(
            RuleHit(
                "R02",
                1,
                Severity.CRITICAL,
                "VALUE_OVER_THRESHOLD",
                "over $800",
                {"declared_value": str(record.manifest.declared_value)},
            )
        )
    if record.pilot_deadline_passed:
        hits.append(RuleHit("R16", 1, Severity.LOW, "MISSING_ADVANCE_DATA", "no pilot data"))
    holds = any(h.severity is not Severity.LOW for h in hits)
    return StubVerdict(Outcome.HOLD if holds else Outcome.RELEASE, tuple(hits))
