"""Property: moving only a shipment's arrival across a regime boundary changes only the
reasons that boundary governs (hypothesis, over every boundary of the packaged table)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from s321.entry_number import make_entry_number
from s321.models import (
    Address,
    CompleteRecord,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    LineItem,
    ManifestEvent,
    Mode,
    Party,
    PilotRecord,
    ReleasePath,
)
from s321.refdata import ReferenceSnapshot
from s321.regime import Regime, default_regimes
from s321.rules import Evaluation, default_ruleset, evaluate
from s321.rules.aggregates import Aggregates

DEMO = ReferenceSnapshot.from_directory(Path(__file__).parents[2] / "src/s321/data/refdata/demo")
BOUNDARIES = [r.effective_from for r in default_regimes().regimes[1:]]

#: regime column -> the rules whose reasons it decides. Eligibility also decides whether a
#: Type 86 entry is awaited at all (an ineligible shipment is held for another entry), so it
#: governs R25's entry-pending and entry-missing reasons too.
GOVERNS: dict[str, frozenset[str]] = {
    "threshold_usd": frozenset({"R02", "R03", "R04"}),
    "gift_threshold_usd": frozenset({"R02"}),
    "section321_available": frozenset({"R01", "R25"}),
    "excluded_origins": frozenset({"R01", "R25"}),
    "pilot": frozenset({"R16"}),
    "type86": frozenset({"R25"}),
    "type86_filing_days": frozenset({"R25"}),
    "vague_description_rejected": frozenset({"R10"}),
    "cpsc_efiling": frozenset({"R09"}),
}
_NOT_LAW = frozenset({"version", "effective_from", "source", "note", "rules_enabled"})


def governed(before: Regime, after: Regime) -> frozenset[str]:
    """The rules whose reasons the boundary between two rows can change."""
    out: set[str] = set(before.rules_enabled ^ after.rules_enabled)
    for f in fields(Regime):
        if f.name not in _NOT_LAW and getattr(before, f.name) != getattr(after, f.name):
            out |= GOVERNS[f.name]
    return frozenset(out)


def test_every_regime_column_is_known_to_the_property() -> None:
    """Each column of the regime table either governs named rules or is not law."""
    assert {f.name for f in fields(Regime)} == set(GOVERNS) | _NOT_LAW


#: goods: (HTS, description, unit value) chosen to touch list, band and threshold rules
_GOODS = [
    ("6109100012", "Mens cotton crew neck T-shirt", "12.00"),
    ("9503000073", "Plastic building blocks toy set", "25.00"),
    ("3303003000", "Eau de parfum travel spray 30 ml", "5.00"),
    ("3303003000", "Eau de parfum spray 100 ml", "45.00"),
    ("2204215040", "Red wine cabernet sauvignon bottle", "30.00"),
    ("2106909998", "Vitamin D3 dietary supplement softgels", "15.00"),
    ("8471300100", "Laptop computer 14 inch notebook", "350.00"),
    ("6109100012", "goods", "3.00"),
]
_SELLER = {
    "CN": Party("Shenzhen Bright Goods Ltd", Address("8 Bao An Road", "Shenzhen", "CN")),
    "HK": Party("Kowloon Trading Co", Address("3 Nathan Road", "Hong Kong", "HK")),
    "VN": Party("Saigon Export JSC", Address("12 Le Loi", "Ho Chi Minh City", "VN")),
    "FR": Party("Maison Lumiere SARL", Address("4 Rue de la Paix", "Paris", "FR")),
}
_CONSIGNEE = Party("Maria Lopez", Address("12 Elm Street", "Newark", "US", "NJ", "07102"))
# entry filing times relative to the earlier arrival, clear of the day by which a
# 15-calendar-day deadline moves when the arrival date does
_FILED = [
    None,
    -timedelta(hours=2),
    timedelta(0),
    timedelta(hours=1),
    timedelta(days=3),
    timedelta(days=14),
    timedelta(days=20),
]


@st.composite
def shipments(draw: st.DrawFn) -> dict[str, object]:
    """The parts of one shipment, independent of its arrival."""
    return {
        "origin": draw(st.sampled_from(["CN", "HK", "VN", "FR"])),
        "goods": draw(st.lists(st.sampled_from(_GOODS), min_size=1, max_size=2)),
        "quantity": draw(st.integers(1, 3)),
        "gift": draw(st.booleans()),
        "path": draw(st.sampled_from(list(ReleasePath))),
        "pilot": draw(st.booleans()),
        "pilot_late": draw(st.booleans()),
        "filed": draw(st.sampled_from(_FILED)),
        "entry_late": draw(st.booleans()),
        "person_day": draw(st.sampled_from([Decimal(0), Decimal(150), Decimal(500)])),
    }


def record(s: dict[str, object], arrival: datetime, filed_base: datetime) -> CompleteRecord:
    origin = str(s["origin"])
    seller = _SELLER[origin]
    qty = int(s["quantity"])  # type: ignore[call-overload]  # drawn as an int
    goods: list[tuple[str, str, str]] = s["goods"]  # type: ignore[assignment]  # drawn above
    lines = tuple(
        LineItem(desc, qty, Decimal(v) * qty, Decimal("0.3") * qty, hts, origin)
        for hts, desc, v in goods
    )
    m = ManifestEvent(
        header=EventHeader("m-1", arrival - timedelta(hours=6), "CARR1"),
        house_bill="HB1",
        tracking_number=None,
        master_bill="MB1",
        carrier_code="CARR",
        mode=Mode.AIR,
        port_of_entry="4701",
        estimated_arrival=arrival,
        shipper=seller,
        consignee=_CONSIGNEE,
        origin_country=origin,
        lines=lines,
        shipping_weight_kg=Decimal("0.4") * qty * len(lines),
        release_path=s["path"],  # type: ignore[arg-type]  # drawn from ReleasePath
        gift=bool(s["gift"]),
    )
    p = None
    if s["pilot"]:
        p = PilotRecord(
            header=EventHeader("p-1", arrival - timedelta(hours=7), "MKT1"),
            originator_code="MKT1",
            filer_type=FilerType.ONLINE_MARKETPLACE,
            mode=Mode.AIR,
            house_bill="HB1",
            carrier_code="CARR",
            seller=seller,
            deliver_to=_CONSIGNEE,
            quantity=sum(li.quantity for li in lines),
            origin_country=origin,
        )
    e = None
    offset = s["filed"]
    if isinstance(offset, timedelta):
        filed = filed_base + offset
        e = Entry86(
            header=EventHeader("e-1", filed, "BRK1"),
            bill_number="HB1",
            entry_number=make_entry_number("ABC", 1234567),
            port_of_entry="4701",
            shipper=seller,
            consignee=_CONSIGNEE,
            origin_country=origin,
            lines=tuple(Entry86Line(li.hts or "", li.quantity, li.value) for li in lines),
            filed_at=filed,
        )
    return CompleteRecord(
        "HB1",
        m,
        p,
        e,
        pilot_deadline_passed=p is None and bool(s["pilot_late"]),
        entry_deadline_passed=e is None and bool(s["entry_late"]),
    )


def _run(rec: CompleteRecord, person_day: Decimal) -> Evaluation:
    agg = Aggregates(
        person_day_total=person_day + (rec.manifest.declared_value if rec.manifest else 0),
        person_day_count=2 if person_day else 1,
        pair_total=Decimal(0),
        pair_count=1,
        address_day_parcels=1,
        address_day_names=1,
        consignee_history=3,
    )
    return evaluate(rec, default_ruleset(), DEMO, agg)


def _reasons(ev: Evaluation, skip: frozenset[str]) -> set[tuple[str, str]]:
    return {(h.rule_id, h.reason_code) for h in ev.hits if h.rule_id not in skip}


@settings(max_examples=300, deadline=None)
@given(shipment=shipments(), boundary=st.sampled_from(BOUNDARIES))
def test_moving_only_the_arrival_across_a_boundary_changes_only_what_it_governs(
    shipment: dict[str, object], boundary: datetime
) -> None:
    """A shipment arriving one second before a regime boundary and the same shipment arriving
    at it (its entry, if any, filed at the same instant) have the same reasons, and the same
    rules not applicable, but for the rules that boundary's changed columns govern."""
    table = default_regimes()
    before_at, after_at = boundary - timedelta(seconds=1), boundary
    # a boundary that only restates the law (2026-06-24, 2027-07-01) governs nothing
    skip = governed(table.at(before_at), table.at(after_at))
    person_day = shipment["person_day"]
    assert isinstance(person_day, Decimal)
    before = _run(record(shipment, before_at, before_at), person_day)
    after = _run(record(shipment, after_at, before_at), person_day)
    assert (before.regime_version, after.regime_version) == (
        table.at(before_at).version,
        table.at(after_at).version,
    )
    assert _reasons(before, skip) == _reasons(after, skip)
    assert set(before.not_applicable) - skip == set(after.not_applicable) - skip
