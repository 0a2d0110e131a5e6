"""What the cross-shipment rules (R03, R04, R18, R25) read about other shipments.

The values come from :class:`s321.stores.crossshipment.CrossShipmentStore`; the rules only see
this plain record, so they stay pure and testable without Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Aggregates", "CrossShipmentLimits"]


@dataclass(frozen=True, slots=True)
class CrossShipmentLimits:
    """Where an aggregate "crosses" (for the affected-shipments signal); rules keep their own."""

    person_day_usd: Decimal = Decimal(800)
    pair_usd: Decimal = Decimal(800)
    pair_window_hours: int = 72
    address_day_names: int = 5
    address_day_parcels: int = 20
    history_days: int = 90


@dataclass(frozen=True, slots=True)
class Aggregates:
    """What the cross-shipment rules read; None where the record gives no key for it."""

    available: bool = True
    person_day_total: Decimal | None = None
    person_day_count: int = 0
    pair_total: Decimal | None = None
    pair_count: int = 0
    order_total: Decimal | None = None
    order_count: int = 0
    bill_entries: int | None = None
    address_day_parcels: int | None = None
    address_day_names: int | None = None
    consignee_history: int | None = None
    affected: tuple[str, ...] = ()
    #: other shipments in an aggregate that this shipment's contribution keeps across a limit
    #: although recording it again changed nothing. After a crash, the recording may have
    #: reached Redis while the re-evaluations it called for were lost; the decision repeated
    #: on replay sends them again from here (only when it publishes a version, so two
    #: shipments never keep re-evaluating each other).
    affected_by_presence: tuple[str, ...] = ()

    @classmethod
    def unavailable(cls) -> Aggregates:
        """The state store could not be reached: the rules needing it must hold."""
        return cls(available=False)

    @classmethod
    def empty(cls) -> Aggregates:
        """No cross-shipment keys at all (those rules report not-applicable)."""
        return cls()
