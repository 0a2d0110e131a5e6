"""Realistic, fully populated records of every top-level type, for tests and benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from s321.models import (
    Action,
    Address,
    DeadLetter,
    Decision,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    InputRef,
    LineItem,
    ManifestEvent,
    Mode,
    Outcome,
    Party,
    PgaData,
    PilotRecord,
    ReleasePath,
    RuleHit,
    Severity,
)

__all__ = ["dead_letter", "decision", "entry86", "manifest", "pilot"]

_T0 = datetime(2023, 6, 1, 8, 30, 15, 250000, tzinfo=UTC)


def _party(name: str, country: str, party_id: str | None = None) -> Party:
    return Party(
        name=name,
        address=Address("12 Harbour Road", "Kowloon Bay", country, "KLN", "999077"),
        party_id=party_id,
    )


def manifest(lines: int = 4, n: int = 0) -> ManifestEvent:
    """A manifest event for house bill ``HB<n>`` with ``lines`` commodity lines."""
    return ManifestEvent(
        header=EventHeader(f"mf-{n}", _T0, "CARR01", Action.ADD),
        house_bill=f"HB{n:09d}",
        tracking_number=f"1Z999AA1{n:08d}",
        master_bill="157-12345675",
        carrier_code="CARR",
        mode=Mode.AIR,
        port_of_entry="4701",
        estimated_arrival=_T0 + timedelta(hours=14),
        shipper=_party("Shenzhen Example Trading Co", "CN", "SHP-1"),
        consignee=Party("Jane Q Public", Address("1 Main St", "Queens", "US", "NY", "11430")),
        origin_country="CN",
        lines=tuple(
            LineItem(
                description=f"cotton t-shirt, men's, size {i}",
                quantity=2 + i,
                value=Decimal("12.50") + i,
                weight_kg=Decimal("0.350"),
                hts="6109100012",
                origin_country="CN",
                sku=f"SKU-{i}",
                gtin="00012345678905",
                manufacturer=_party("Example Garment Factory", "CN") if i == 0 else None,
                pga=PgaData("CPSC", "CERT", "C-123") if i == 1 else None,
            )
            for i in range(lines)
        ),
        shipping_weight_kg=Decimal("1.450"),
        release_path=ReleasePath.SECTION_321,
        actual_arrival=None,
        conveyance="CX0840",
        port_of_lading="HKG",
        freight_charge=Decimal("8.00"),
        gift=False,
    )


def pilot(n: int = 0) -> PilotRecord:
    """A marketplace pilot record with seller, listing and optional 2023 elements."""
    return PilotRecord(
        header=EventHeader(f"pl-{n}", _T0, "MKT001", Action.ADD),
        originator_code="MKT001",
        filer_type=FilerType.ONLINE_MARKETPLACE,
        mode=Mode.AIR,
        tracking_number=f"1Z999AA1{n:08d}",
        house_bill=f"HB{n:09d}",
        carrier_code="CARR",
        deliver_to=Party("Jane Q Public", Address("1 Main St", "Queens", "US", "NY", "11430")),
        enhanced_description="men's cotton t-shirt, short sleeve, crew neck",
        seller=_party("Example Seller Ltd", "CN", "SELLER-778"),
        marketplace="market.example",
        listed_price=Decimal("19.99"),
        product_picture="sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        listing_url="https://market.example/item/778",
        order_id=f"ORD-{n}",
        order_date=_T0 - timedelta(days=3),
        buyer=Party("Jane Q Public"),
        quantity=3,
        sku="SKU-0",
        gtin="00012345678905",
        hts="6109100012",
        origin_country="CN",
    )


def entry86(lines: int = 2, n: int = 0) -> Entry86:
    """A Type 86 entry for bill ``HB<n>`` with ``lines`` lines."""
    return Entry86(
        header=EventHeader(f"e86-{n}", _T0, "BRK", Action.ADD),
        bill_number=f"HB{n:09d}",
        entry_number="BRK12345674",
        port_of_entry="4701",
        shipper=_party("Example Seller Ltd", "CN"),
        consignee=Party("Jane Q Public", Address("1 Main St", "Queens", "US", "NY", "11430")),
        origin_country="CN",
        lines=tuple(
            Entry86Line(
                "6109100012", 3, Decimal("37.50"), "cotton t-shirts", PgaData("FDA") if i else None
            )
            for i in range(lines)
        ),
        filed_at=_T0 + timedelta(hours=2),
        importer_of_record="12-3456789AB",
    )


def decision(hits: int = 3, n: int = 0) -> Decision:
    """A HOLD decision with ``hits`` rule hits and three inputs."""
    return Decision(
        decision_id=f"dec-{n}-2",
        shipment_key=f"HB{n:09d}",
        version=2,
        outcome=Outcome.HOLD,
        hits=tuple(
            RuleHit(
                f"R1{i}",
                1,
                Severity.MEDIUM,
                f"REASON_{i}",
                "declared value below listed",
                {"declared": "37.50", "listed": "59.97", "ratio": "0.63"},
            )
            for i in range(hits)
        ),
        required_actions=("CORRECT_DESCRIPTION",),
        regime_version="2023-pilot",
        ruleset_version="rs-14",
        refdata_version="ref-2023-06-01",
        inputs=(
            InputRef("s321.manifest.v1", 3, 1_000_123, f"mf-{n}"),
            InputRef("s321.pilot.v1", 3, 88_221, f"pl-{n}"),
            InputRef("s321.entry86.v1", 3, 402_111, f"e86-{n}"),
        ),
        event_time=_T0,
        decided_at=_T0 + timedelta(milliseconds=41),
        latency_ms=41.5,
        not_applicable=("R09",),
    )


def dead_letter() -> DeadLetter:
    """A dead letter holding some undecodable bytes and their headers."""
    return DeadLetter(
        "s321.pilot.v1",
        1,
        99,
        b"HB1",
        b"\x00garbage",
        {"trace": b"abc"},
        "DecodeError",
        "wrong magic bytes",
        _T0,
    )
