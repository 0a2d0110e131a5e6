"""Hypothesis strategies for every domain type, within what the wire contracts can carry.

Times are aware (UTC or a fixed offset) with whole milliseconds, amounts have at most the
schema's decimal places and digits, integers fit their Avro int or long.

``valid_manifests``, ``valid_pilots`` and ``valid_entries86`` keep inside every bound of
:mod:`s321.validation` as well (``valid_inputs``: any of them).
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

__all__ = [
    "dead_letters",
    "decisions",
    "entries86",
    "manifests",
    "pilots",
    "records",
    "valid_entries86",
    "valid_inputs",
    "valid_manifests",
    "valid_pilots",
]

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


# -- within the bounds of s321.validation ------------------------------------------------------

_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_V_CHARS = st.characters(
    exclude_categories=("Cc", "Cs", "Co", "Zl", "Zp"), exclude_characters=_BIDI
)


def _v_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_V_CHARS, max_size=max_size)


_V_ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
_V_OPT_ASCII = st.none() | _V_ASCII
_V_BILL = st.from_regex(r"[A-Za-z0-9]{1,3}[A-Za-z0-9 ./_-]{0,20}", fullmatch=True)
_V_OPT_BILL = st.none() | _V_BILL
_V_COUNTRY = st.from_regex(r"(?:[A-Za-z]{2,3})?", fullmatch=True)
_V_HTS = st.from_regex(r"[0-9]{6,10}", fullmatch=True)
_V_MONEY = st.decimals(
    min_value=Decimal(0), max_value=Decimal("99999.99"), places=2, allow_nan=False
)
_V_WEIGHT = st.decimals(
    min_value=Decimal(0), max_value=Decimal("99999.999"), places=3, allow_nan=False
)
_V_QUANTITY = st.integers(1, 1_000_000)


@st.composite
def _v_event_time(draw: st.DrawFn) -> datetime:
    naive = draw(st.datetimes(min_value=datetime(2017, 3, 1), max_value=datetime(2099, 6, 1)))
    return naive.replace(microsecond=naive.microsecond // 1000 * 1000, tzinfo=UTC)


def _v_near(at: datetime, before_days: int, after_days: int) -> st.SearchStrategy[datetime]:
    return st.integers(-before_days * 86_400_000, after_days * 86_400_000).map(
        lambda ms: at + timedelta(milliseconds=ms)
    )


_V_ADDRESS = st.builds(
    Address, _v_text(40), _v_text(30), _V_COUNTRY, st.none() | _v_text(20), st.none() | _v_text(10)
)
_V_PARTY = st.builds(Party, _v_text(40), st.none() | _V_ADDRESS, _V_OPT_ASCII)
_V_OPT_PARTY = st.none() | _V_PARTY
_V_PGA = st.none() | st.builds(PgaData, _V_ASCII, _V_OPT_ASCII, _V_OPT_ASCII)
_V_EVENT_ID = st.from_regex(r"[!-~]{1,40}", fullmatch=True)


def _v_header(at: datetime) -> st.SearchStrategy[EventHeader]:
    return st.builds(EventHeader, _V_EVENT_ID, st.just(at), _V_ASCII, st.sampled_from(Action))


_V_LINE = st.builds(
    LineItem,
    _v_text(60),
    _V_QUANTITY,
    _V_MONEY,
    st.none() | _V_WEIGHT,
    st.none() | _V_HTS,
    st.none() | _V_COUNTRY,
    _V_OPT_ASCII,
    st.none() | st.from_regex(r"[0-9]{8,14}", fullmatch=True),
    _V_OPT_PARTY,
    _V_PGA,
)


@st.composite
def _valid_manifest(draw: st.DrawFn) -> ManifestEvent:
    at = draw(_v_event_time())
    return ManifestEvent(
        header=draw(_v_header(at)),
        house_bill=draw(_V_BILL),
        tracking_number=draw(_V_OPT_BILL),
        master_bill=draw(_V_OPT_BILL),
        carrier_code=draw(_V_ASCII),
        mode=draw(st.sampled_from(Mode)),
        port_of_entry=draw(_V_ASCII),
        estimated_arrival=draw(_v_near(at, 30, 180)),
        shipper=draw(_V_PARTY),
        consignee=draw(_V_PARTY),
        origin_country=draw(st.none() | _V_COUNTRY),
        lines=tuple(draw(st.lists(_V_LINE, min_size=1, max_size=4))),
        shipping_weight_kg=draw(_V_WEIGHT),
        release_path=draw(st.sampled_from(ReleasePath)),
        actual_arrival=draw(st.none() | _v_near(at, 30, 180)),
        conveyance=draw(_V_OPT_ASCII),
        port_of_lading=draw(_V_OPT_ASCII),
        freight_charge=draw(st.none() | _V_MONEY),
        gift=draw(st.booleans()),
        nominal_consignee=draw(_V_OPT_PARTY),
        postal_item_id=draw(_V_OPT_BILL),
    )


@st.composite
def _valid_pilot(draw: st.DrawFn) -> PilotRecord:
    at = draw(_v_event_time())
    house_bill = draw(_V_OPT_BILL)
    return PilotRecord(
        header=draw(_v_header(at)),
        originator_code=draw(_V_ASCII),
        filer_type=draw(st.sampled_from(FilerType)),
        mode=draw(st.sampled_from(Mode)),
        tracking_number=draw(_V_BILL if house_bill is None else _V_OPT_BILL),
        house_bill=house_bill,
        master_bill=draw(_V_OPT_BILL),
        carrier_code=draw(_V_OPT_ASCII),
        shipment_initiator=draw(_V_OPT_PARTY),
        deliver_to=draw(_V_OPT_PARTY),
        enhanced_description=draw(st.none() | _v_text(60)),
        security_scan_verified=draw(st.none() | st.booleans()),
        known_customer=draw(st.none() | st.booleans()),
        seller=draw(_V_OPT_PARTY),
        marketplace=draw(st.none() | _v_text(20)),
        listed_price=draw(st.none() | _V_MONEY),
        product_picture=draw(st.none() | _v_text(80)),
        listing_url=draw(st.none() | _v_text(80)),
        order_id=draw(_V_OPT_ASCII),
        order_date=draw(st.none() | _v_near(at, 400, 1)),
        buyer=draw(_V_OPT_PARTY),
        quantity=draw(st.none() | _V_QUANTITY),
        sku=draw(_V_OPT_ASCII),
        gtin=draw(st.none() | st.from_regex(r"[0-9]{8,14}", fullmatch=True)),
        manufacturer=draw(_V_OPT_PARTY),
        hts=draw(st.none() | _V_HTS),
        origin_country=draw(st.none() | _V_COUNTRY),
    )


@st.composite
def _valid_entry86(draw: st.DrawFn) -> Entry86:
    at = draw(_v_event_time())
    line = st.builds(
        Entry86Line,
        st.from_regex(r"[0-9]{10}", fullmatch=True),
        _V_QUANTITY,
        _V_MONEY,
        st.none() | _v_text(60),
        _V_PGA,
    )
    return Entry86(
        header=draw(_v_header(at)),
        bill_number=draw(_V_BILL),
        entry_number=draw(_V_ASCII),
        port_of_entry=draw(_V_ASCII),
        shipper=draw(_V_PARTY),
        consignee=draw(_V_PARTY),
        origin_country=draw(_V_COUNTRY),
        lines=tuple(draw(st.lists(line, min_size=1, max_size=4))),
        filed_at=draw(_v_near(at, 30, 1)),
        importer_of_record=draw(_V_OPT_ASCII),
    )


valid_manifests = _valid_manifest()
valid_pilots = _valid_pilot()
valid_entries86 = _valid_entry86()
#: Any input event inside every bound.
valid_inputs = st.one_of(valid_manifests, valid_pilots, valid_entries86)
