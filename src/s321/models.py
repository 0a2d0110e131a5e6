"""The domain: what each source says about a shipment, the correlated record, and the decision.

Plain frozen dataclasses, no I/O. Money is :class:`~decimal.Decimal` in U.S. dollars unless a
``currency`` says otherwise; weights are kilograms; times are timezone-aware UTC datetimes.
The wire form of each type is an Avro record in ``schemas/``; :mod:`s321.serialization` is the
one place that maps between the two.

Field names follow the sources: the carrier's manifest (house bill, master bill, tracking
number, shipper, consignee, lines), the Section 321 Data Pilot record (originator code, filer
type, seller, deliver-to party, listed price) and the Entry Type 86 entry (bill number, entry
number, port of entry, lines). Personal data lives in :class:`Party` (names, addresses);
nothing outside this module and the serializer should print a Party: evidence and logs carry
:func:`party_key` / :func:`address_key` hashes instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

__all__ = [
    "ENGINE_ERROR",
    "REVIEW_ACTION",
    "Action",
    "Address",
    "CompleteRecord",
    "DeadLetter",
    "Decision",
    "Entry86",
    "Entry86Line",
    "EventHeader",
    "FilerType",
    "InputRef",
    "LineItem",
    "ManifestEvent",
    "Mode",
    "Outcome",
    "Party",
    "PgaData",
    "PilotRecord",
    "ReleasePath",
    "RuleHit",
    "Severity",
    "address_key",
    "engine_error_hit",
    "normalise_bill",
    "party_key",
]


class Action(StrEnum):
    """The amendment action every input event carries."""

    ADD = "ADD"
    CHANGE = "CHANGE"
    DELETE = "DELETE"


class FilerType(StrEnum):
    CARRIER = "CARRIER"
    ONLINE_MARKETPLACE = "ONLINE_MARKETPLACE"
    FREIGHT_FORWARDER = "FREIGHT_FORWARDER"
    BROKER = "BROKER"
    LOGISTICS_PROVIDER = "LOGISTICS_PROVIDER"


class Mode(StrEnum):
    AIR = "AIR"
    TRUCK = "TRUCK"
    RAIL = "RAIL"
    OCEAN = "OCEAN"
    MAIL = "MAIL"


class ReleasePath(StrEnum):
    """The release the manifest asks for: from manifest (Section 321), Type 86, other entry."""

    SECTION_321 = "SECTION_321"
    TYPE_86 = "TYPE_86"
    OTHER_ENTRY = "OTHER_ENTRY"


class Severity(StrEnum):
    INFO = "INFO"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Outcome(StrEnum):
    """RELEASE or HOLD; CANCELLED is the version published when the manifest is deleted."""

    RELEASE = "RELEASE"
    HOLD = "HOLD"
    CANCELLED = "CANCELLED"


_BILL_JUNK = re.compile(r"[\s\-_./]")


def normalise_bill(value: str | None) -> str | None:
    """The correlation form of a house bill or tracking number: upper case, no separators.

    >>> normalise_bill(" 1z-999 aa1 ")
    '1Z999AA1'
    """
    if value is None:
        return None
    out = _BILL_JUNK.sub("", value).upper()
    return out or None


_NON_ALNUM = re.compile(r"[^0-9A-Z]+")


def _fold(text: str) -> str:
    return _NON_ALNUM.sub(" ", text.upper()).strip()


def address_key(address: Address) -> str:
    """A stable, non-reversible key for an address: the same place, however it is spelled
    in case and punctuation, gets the same key. Safe for Redis keys and evidence."""
    folded = "|".join(
        _fold(part or "")
        for part in (address.line1, address.city, address.postal_code, address.country)
    )
    return hashlib.blake2b(folded.encode(), digest_size=10).hexdigest()


def party_key(party: Party) -> str:
    """A stable, non-reversible key for a person or company (name and address folded).

    Used to group one person's shipments (R03) without storing or logging the name."""
    folded = _fold(party.name) + "|" + (address_key(party.address) if party.address else "")
    return hashlib.blake2b(folded.encode(), digest_size=10).hexdigest()


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    region: str | None = None
    postal_code: str | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """A person or company. Personal data: never log, never use as a metric label."""

    name: str
    address: Address | None = None
    party_id: str | None = None  # seller id, importer number, etc., when the source has one


@dataclass(frozen=True, slots=True)
class PgaData:
    """Partner government agency data attached to a line (agency code and program/flags)."""

    agency: str  # e.g. FDA, USDA, CPSC, EPA
    program: str | None = None
    certificate_id: str | None = None


@dataclass(frozen=True, slots=True)
class LineItem:
    description: str
    quantity: int
    value: Decimal
    weight_kg: Decimal | None = None
    hts: str | None = None  # 6 to 10 digits, no dots
    origin_country: str | None = None
    sku: str | None = None
    gtin: str | None = None
    manufacturer: Party | None = None
    pga: PgaData | None = None


class _Priced(Protocol):
    @property
    def value(self) -> Decimal: ...
    @property
    def quantity(self) -> int: ...


class _Goods:
    """The totals of an event's goods lines (a manifest's, a Type 86 entry's)."""

    __slots__ = ()
    lines: Sequence[_Priced]

    @property
    def declared_value(self) -> Decimal:
        return sum((line.value for line in self.lines), Decimal(0))

    @property
    def quantity(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True, slots=True)
class EventHeader:
    """What every input event carries: id, event time, originator, amendment action."""

    event_id: str
    event_time: datetime
    source: str  # the originator code of the party that sent the event
    action: Action = Action.ADD


@dataclass(frozen=True, slots=True)
class ManifestEvent(_Goods):
    """Carrier manifest (19 CFR 128.21(a)), one house bill."""

    header: EventHeader
    house_bill: str | None
    tracking_number: str | None
    master_bill: str | None
    carrier_code: str
    mode: Mode
    port_of_entry: str
    estimated_arrival: datetime
    shipper: Party
    consignee: Party
    origin_country: str | None
    lines: tuple[LineItem, ...]
    shipping_weight_kg: Decimal
    release_path: ReleasePath = ReleasePath.SECTION_321
    actual_arrival: datetime | None = None
    conveyance: str | None = None
    port_of_lading: str | None = None
    currency: str = "USD"
    freight_charge: Decimal | None = None
    gift: bool = False
    nominal_consignee: Party | None = None
    postal_item_id: str | None = None

    @property
    def arrival(self) -> datetime:
        return self.actual_arrival or self.estimated_arrival


@dataclass(frozen=True, slots=True)
class PilotRecord:
    """Section 321 Data Pilot record (84 FR 35405; 88 FR 10140)."""

    header: EventHeader
    originator_code: str
    filer_type: FilerType
    mode: Mode
    tracking_number: str | None = None
    house_bill: str | None = None
    master_bill: str | None = None
    carrier_code: str | None = None
    shipment_initiator: Party | None = None
    deliver_to: Party | None = None
    enhanced_description: str | None = None
    security_scan_verified: bool | None = None
    known_customer: bool | None = None
    seller: Party | None = None
    marketplace: str | None = None
    listed_price: Decimal | None = None  # per unit
    currency: str = "USD"
    product_picture: str | None = None  # URI or content hash
    listing_url: str | None = None
    order_id: str | None = None
    order_date: datetime | None = None
    buyer: Party | None = None
    quantity: int | None = None
    sku: str | None = None
    gtin: str | None = None
    manufacturer: Party | None = None
    hts: str | None = None
    origin_country: str | None = None


@dataclass(frozen=True, slots=True)
class Entry86Line:
    hts: str  # exactly 10 digits
    quantity: int
    value: Decimal  # fair retail value in the country of shipment
    description: str | None = None
    pga: PgaData | None = None


@dataclass(frozen=True, slots=True)
class Entry86(_Goods):
    """Entry Type 86 (84 FR 40079): ten elements, lines with 10-digit HTS."""

    header: EventHeader
    bill_number: str
    entry_number: str  # filer code (3) + 7 digits + check digit
    port_of_entry: str
    shipper: Party  # reported as the seller
    consignee: Party
    origin_country: str
    lines: tuple[Entry86Line, ...]
    filed_at: datetime
    importer_of_record: str | None = None
    currency: str = "USD"

    @property
    def filer_code(self) -> str:
        return self.entry_number[:3]


@dataclass(frozen=True, slots=True)
class CompleteRecord:
    """One shipment as correlated so far: the newest of each part (any may be missing)."""

    key: str
    manifest: ManifestEvent | None = None
    pilot: PilotRecord | None = None
    entry86: Entry86 | None = None
    #: no pilot record with an event time at or before the pilot deadline (R16): either none
    #: came before the deadline fired, or the one present is dated after it
    pilot_deadline_passed: bool = False
    #: every distinct Type 86 entry number filed for this bill (the join sees them all)
    entry_numbers: tuple[str, ...] = ()
    #: no Type 86 entry is on file and the filing deadline of the arrival date has passed in
    #: event time (a shipment whose release path is Type 86 is then held for a missing entry)
    entry_deadline_passed: bool = False


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that fired, with evidence (field values, never raw personal data)."""

    rule_id: str
    rule_version: int
    severity: Severity
    reason_code: str
    description: str
    evidence: dict[str, str] = field(default_factory=dict)


#: Reason code of the hit that holds a shipment whose rule evaluation raised.
ENGINE_ERROR = "ENGINE_ERROR"
#: Required action on a shipment held because its rule evaluation raised.
REVIEW_ACTION = "manual review (rule engine error)"


def engine_error_hit(exc: BaseException, rule_id: str = "ENGINE", rule_version: int = 1) -> RuleHit:
    """The hit recorded when evaluating rule ``rule_id`` raised ``exc`` (``ENGINE``: when the
    evaluation as a whole did); the shipment is held for manual review.

    Its severity is CRITICAL, the highest: the rule that raised may have been one that would
    have fired at any severity, so the hit holds whatever hold threshold a rule set sets, and
    a reader ranking hits by severity never sees it below a finding that holds. The evidence is
    the exception's class only (its message may quote the record)."""
    return RuleHit(
        rule_id,
        rule_version,
        Severity.CRITICAL,
        ENGINE_ERROR,
        "rule evaluation raised; held for manual review",
        {"error_class": type(exc).__name__},
    )


@dataclass(frozen=True, slots=True)
class InputRef:
    """Which input event a decision was computed from."""

    topic: str
    partition: int
    offset: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    shipment_key: str
    version: int
    outcome: Outcome
    hits: tuple[RuleHit, ...]
    required_actions: tuple[str, ...]
    regime_version: str
    ruleset_version: str
    refdata_version: str
    inputs: tuple[InputRef, ...]
    event_time: datetime
    decided_at: datetime
    latency_ms: float
    stale_refdata: bool = False
    not_applicable: tuple[str, ...] = ()  # rule ids whose data was absent


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An input record that could not be processed, kept with its original bytes."""

    source_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    error_class: str
    reason: str
    time: datetime
