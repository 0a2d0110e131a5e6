"""Hypothesis strategies for every domain type, within what the wire contracts can carry.

Times are aware (UTC or a fixed offset) with whole milliseconds, amounts have at most the
schema's decimal places and digits, integers fit their Avro int or long.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import strategies as st

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

__all__ = ["dead_letters", "decisions", "entries86", "manifests", "pilots", "records"]

_LONG = st.integers(-(2**63), 2**63 - 1)
_INT = st.integers(-(2**31), 2**31 - 1)
_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)
_OPT_TEXT = st.none() | _TEXT
_MONEY = st.decimals(
    min_value=Decimal("-999999999999.99"),
    max_value=Decimal("999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
_WEIGHT = st.decimals(
    min_value=Decimal("-999999999.999"),
    max_value=Decimal("999999999.999"),
    places=3,
    allow_nan=False,
    allow_infinity=False,
)
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=8))])


@st.composite
def _times(draw: st.DrawFn) -> datetime:
    naive = draw(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9999, 12, 30)))
    zone = draw(_ZONES)
    return naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=zone)


_TIME = _times()
_ADDRESS = st.builds(Address, _TEXT, _TEXT, _TEXT, _OPT_TEXT, _OPT_TEXT)
_PARTY = st.builds(Party, _TEXT, st.none() | _ADDRESS, _OPT_TEXT)
_OPT_PARTY = st.none() | _PARTY
_PGA = st.none() | st.builds(PgaData, _TEXT, _OPT_TEXT, _OPT_TEXT)
_HEADER = st.builds(EventHeader, _TEXT, _TIME, _TEXT, st.sampled_from(Action))
_LINE = st.builds(
    LineItem,
    _TEXT,
    _LONG,
    _MONEY,
    st.none() | _WEIGHT,
    _OPT_TEXT,
    _OPT_TEXT,
    _OPT_TEXT,
    _OPT_TEXT,
    _OPT_PARTY,
    _PGA,
)

manifests = st.builds(
    ManifestEvent,
    header=_HEADER,
    house_bill=_OPT_TEXT,
    tracking_number=_OPT_TEXT,
    master_bill=_OPT_TEXT,
    carrier_code=_TEXT,
    mode=st.sampled_from(Mode),
    port_of_entry=_TEXT,
    estimated_arrival=_TIME,
    shipper=_PARTY,
    consignee=_PARTY,
    origin_country=_OPT_TEXT,
    lines=st.lists(_LINE, max_size=4).map(tuple),
    shipping_weight_kg=_WEIGHT,
    release_path=st.sampled_from(ReleasePath),
    actual_arrival=st.none() | _TIME,
    conveyance=_OPT_TEXT,
    port_of_lading=_OPT_TEXT,
    currency=_TEXT,
    freight_charge=st.none() | _MONEY,
    gift=st.booleans(),
    nominal_consignee=_OPT_PARTY,
    postal_item_id=_OPT_TEXT,
)

pilots = st.builds(
    PilotRecord,
    header=_HEADER,
    originator_code=_TEXT,
    filer_type=st.sampled_from(FilerType),
    mode=st.sampled_from(Mode),
    tracking_number=_OPT_TEXT,
    house_bill=_OPT_TEXT,
    master_bill=_OPT_TEXT,
    carrier_code=_OPT_TEXT,
    shipment_initiator=_OPT_PARTY,
    deliver_to=_OPT_PARTY,
    enhanced_description=_OPT_TEXT,
    security_scan_verified=st.none() | st.booleans(),
    known_customer=st.none() | st.booleans(),
    seller=_OPT_PARTY,
    marketplace=_OPT_TEXT,
    listed_price=st.none() | _MONEY,
    currency=_TEXT,
    product_picture=_OPT_TEXT,
    listing_url=_OPT_TEXT,
    order_id=_OPT_TEXT,
    order_date=st.none() | _TIME,
    buyer=_OPT_PARTY,
    quantity=st.none() | _LONG,
    sku=_OPT_TEXT,
    gtin=_OPT_TEXT,
    manufacturer=_OPT_PARTY,
    hts=_OPT_TEXT,
    origin_country=_OPT_TEXT,
)

entries86 = st.builds(
    Entry86,
    header=_HEADER,
    bill_number=_TEXT,
    entry_number=_TEXT,
    port_of_entry=_TEXT,
    shipper=_PARTY,
    consignee=_PARTY,
    origin_country=_TEXT,
    lines=st.lists(st.builds(Entry86Line, _TEXT, _LONG, _MONEY, _OPT_TEXT, _PGA), max_size=4).map(
        tuple
    ),
    filed_at=_TIME,
    importer_of_record=_OPT_TEXT,
    currency=_TEXT,
)

_HIT = st.builds(
    RuleHit,
    _TEXT,
    _INT,
    st.sampled_from(Severity),
    _TEXT,
    _TEXT,
    st.dictionaries(_TEXT, _TEXT, max_size=3),
)

decisions = st.builds(
    Decision,
    decision_id=_TEXT,
    shipment_key=_TEXT,
    version=_LONG,
    outcome=st.sampled_from(Outcome),
    hits=st.lists(_HIT, max_size=4).map(tuple),
    required_actions=st.lists(_TEXT, max_size=3).map(tuple),
    regime_version=_TEXT,
    ruleset_version=_TEXT,
    refdata_version=_TEXT,
    inputs=st.lists(st.builds(InputRef, _TEXT, _INT, _LONG, _TEXT), max_size=3).map(tuple),
    event_time=_TIME,
    decided_at=_TIME,
    latency_ms=st.floats(allow_nan=False),
    stale_refdata=st.booleans(),
    not_applicable=st.lists(_TEXT, max_size=3).map(tuple),
)

dead_letters = st.builds(
    DeadLetter,
    source_topic=_TEXT,
    partition=_INT,
    offset=_LONG,
    key=st.none() | st.binary(max_size=32),
    value=st.none() | st.binary(max_size=64),
    headers=st.dictionaries(_TEXT, st.binary(max_size=16), max_size=3),
    error_class=_TEXT,
    reason=_TEXT,
    time=_TIME,
)

#: Any top-level record.
records = st.one_of(manifests, pilots, entries86, decisions, dead_letters)
