"""Scenarios: each one small function that plans one or a few shipments and their ground truth.

A scenario starts from clean drafts (:meth:`_Ctx.draft`), changes what makes it a positive
case, and hands each draft to :meth:`_Ctx.finish` with the rule ids it must trigger. The
stream (:func:`iter_stream`) draws scenarios by weight from a mix, renders the drafts into
domain events, and emits them in arrival order through a bounded re-ordering heap.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from s321 import topics
from s321.devtools.generator import world
from s321.devtools.generator.world import Carrier, Marketplace, Product
from s321.entry_number import make_entry_number
from s321.errors import ConfigError
from s321.models import (
    Action,
    Address,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    LineItem,
    ManifestEvent,
    Mode,
    Party,
    PgaData,
    PilotRecord,
    ReleasePath,
    normalise_bill,
)

__all__ = [
    "DEMO_REFDATA",
    "OFF_BY_DEFAULT",
    "PRESETS",
    "SCENARIOS",
    "Event",
    "Expected",
    "GeneratorConfig",
    "Payload",
    "Scenario",
    "Traffic",
    "generate",
    "iter_stream",
    "parse_mix",
]

#: The demo reference-data directory the generator's positive cases are built against.
DEMO_REFDATA = Path(str(resources.files("s321").joinpath("data/refdata/demo")))

#: Rules that are disabled in the default rule set: their positives are recorded apart.
OFF_BY_DEFAULT = frozenset({"R06"})

Payload = ManifestEvent | PilotRecord | Entry86

_ET = ZoneInfo("America/New_York")
_CENT = Decimal("0.01")
_GRAM = Decimal("0.001")
_THRESHOLD = Decimal(800)
_GIFT_LIMIT = Decimal(100)
#: No future event is emitted earlier than this before the current shipment's base time.
_HORIZON = timedelta(days=3)

# Regime instants (U.S. Eastern, section 3 of the domain reference).
_ARRIVAL_RULE = datetime(2024, 4, 13, 0, 0, tzinfo=_ET)  # Type 86 upon or before arrival
_CN_HK_OUT = datetime(2025, 5, 2, 0, 1, tzinfo=_ET)
_SUSPENDED = datetime(2025, 8, 29, 0, 1, tzinfo=_ET)
_CPSC_EFILING = datetime(2026, 7, 8, 0, 0, tzinfo=_ET)

# Windows (inclusive dates) that date-sensitive scenarios draw from when the base date is
# outside them; the ends keep clear of the regime boundaries so the truth is unambiguous.
_PILOT_ERA = (date(2019, 9, 28), date(2025, 5, 1))
_ACAS_ERA = (date(2024, 11, 13), date(2025, 5, 1))
_ARRIVAL_RULE_ERA = (date(2024, 4, 14), date(2025, 5, 1))
_FIFTEEN_DAY_ERA = (date(2019, 9, 28), date(2024, 4, 11))  # Type 86 within 15 days
_CN_EXCLUDED = (date(2025, 5, 3), date(2025, 8, 27))
_SUSPENDED_ERA = (date(2025, 8, 30), date(2026, 7, 7))
_CPSC_ERA = (date(2026, 7, 9), date(2027, 6, 30))

#: Origins R22 counts as a risk signal; scenarios that must not add up to R22 avoid them.
_RISK_ORIGINS = frozenset({"CN", "HK", "IN", "MX"})
_CALM_ORIGINS = ("VN", "BD", "PK", "TR", "KR", "TW", "ID", "TH")

_VAGUE = (
    "GIFT",
    "Daily necessities",
    "accessories",
    "parts",
    "Freight of all kinds",
    "goods",
    "SAMPLE",
    "123456",
    "clothes",
    "household goods",
)
_PLACEHOLDER_NAMES = ("John Doe", "Jane Doe", "TEST", "Customer", "Receiver", "XXX")
_XINJIANG = (
    ("Urumqi", "Xinjiang", "830000"),
    ("Kashgar", "Xinjiang", "844000"),
    ("Aksu", "Xinjiang", "843000"),
    ("Hotan", "Xinjiang", "848000"),
)
_ROADS = (
    "Jinfeng Road",
    "Huaxia Avenue",
    "Lianhua Street",
    "Industrial Park Road",
    "Binhai Boulevard",
    "Xingfu Lane",
    "Longhai Road",
    "Export Zone Street",
)


# -- public records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expected:
    """The ground truth for one shipment: the final outcome and the rule ids that fire.

    ``outcome`` is RELEASE, HOLD, CANCELLED (the manifest was deleted) or UNMATCHED (pilot or
    Type 86 data whose manifest never came). ``rules`` are the rules of the newest decision
    under the default rule set; ``off_rules`` the positives of rules disabled by default.
    ``group`` links the shipments of one cross-shipment scenario (R03, R04, R18).
    """

    key: str
    scenario: str
    outcome: str
    rules: tuple[str, ...]
    off_rules: tuple[str, ...] = ()
    arrival: datetime | None = None
    group: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of the ground-truth file)."""
        return {
            "key": self.key,
            "scenario": self.scenario,
            "outcome": self.outcome,
            "rules": list(self.rules),
            "off_rules": list(self.off_rules),
            "arrival": self.arrival.isoformat() if self.arrival else None,
            "group": self.group,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One input event ready to produce: its topic, its Kafka key and its payload."""

    spec: topics.TopicSpec
    key: str
    value: Payload
    emit_at: datetime

    @property
    def source(self) -> str:
        return self.value.header.source


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``start``/``end`` bound the base arrival dates (inclusive)."""

    seed: int = 321
    shipments: int = 1000
    start: date = date(2024, 6, 1)
    end: date = date(2024, 12, 31)
    mix: Mapping[str, float] = field(default_factory=lambda: dict(PRESETS["demo"]))
    enable: frozenset[str] = frozenset()
    refdata: Path = DEMO_REFDATA

    def __post_init__(self) -> None:
        if self.shipments < 0:
            raise ConfigError("shipments must be zero or more")
        if self.end < self.start:
            raise ConfigError("the arrival date range ends before it starts")
        if self.start < date(2019, 9, 28):
            raise ConfigError("arrival dates before 2019-09-28 (no Type 86 yet) are unsupported")
        unknown = set(self.mix) - set(SCENARIOS)
        if unknown:
            raise ConfigError(f"unknown scenarios in the mix: {', '.join(sorted(unknown))}")
        if not any(w > 0 for w in self.mix.values()):
            raise ConfigError("the mix has no scenario with a positive weight")


@dataclass(frozen=True, slots=True)
class Traffic:
    """A whole generated run, in memory: events in emission order and the ground truth."""

    events: tuple[Event, ...]
    truth: tuple[Expected, ...]

    def truth_by_key(self) -> dict[str, Expected]:
        return {t.key: t for t in self.truth}


# -- reference data the scenarios need ------------------------------------------------------------


def _csv(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / name).open(newline="", encoding="utf-8") as fh:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]


@dataclass(frozen=True)
class _Refs:
    watch: tuple[tuple[str, str, str], ...]  # (list, name, country)
    reshippers: tuple[Address, ...]
    seized_consignees: tuple[Party, ...]
    risky_filers: tuple[str, ...]
    brands: tuple[tuple[str, Decimal, tuple[str, ...]], ...]
    bands: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]]
    cpsc_prefixes: tuple[str, ...]

    @classmethod
    def load(cls, directory: Path) -> _Refs:
        try:
            watch = tuple(
                (r["list"], r["name"], r["country"]) for r in _csv(directory, "watchlist.csv")
            )
            reshippers = tuple(
                Address(r["line1"], r["city"], r["country"], postal_code=r["postal_code"])
                for r in _csv(directory, "reshippers.csv")
            )
            seized = tuple(
                Party(
                    r["name"],
                    Address(r["line1"], r["city"], r["country"], postal_code=r["postal_code"]),
                )
                for r in _csv(directory, "seizures.csv")
                if r["kind"] == "CONSIGNEE"
            )
            filers = tuple(r["filer_code"] for r in _csv(directory, "filers.csv"))
            brands = tuple(
                (
                    r["brand"],
                    Decimal(r["reference_price_usd"]),
                    tuple(r["authorised_sellers"].split(";")),
                )
                for r in _csv(directory, "brands.csv")
            )
            bands = {
                r["hts6"]: (
                    Decimal(r["min_usd_per_kg"]),
                    Decimal(r["max_usd_per_kg"]),
                    Decimal(r["min_usd_per_unit"]),
                    Decimal(r["max_usd_per_unit"]),
                )
                for r in _csv(directory, "value_bands.csv")
            }
            cpsc = tuple(
                r["hts_prefix"] for r in _csv(directory, "hts_lists.csv") if r["list"] == "CPSC"
            )
        except (OSError, KeyError, ValueError, ArithmeticError) as exc:
            raise ConfigError(
                f"{directory}: reference data unusable for the generator: {exc}"
            ) from exc
        if not (watch and reshippers and seized and filers and brands):
            raise ConfigError(f"{directory}: the generator needs every list to have rows")
        return cls(watch, reshippers, seized, filers, brands, bands, cpsc)


# -- drafts: one shipment before it becomes events ------------------------------------------------


@dataclass(slots=True)
class _Line:
    product: Product
    description: str
    hts: str
    quantity: int
    unit_value: Decimal
    unit_weight: Decimal
    manufacturer: Party | None
    pga: PgaData | None = None

    @property
    def value(self) -> Decimal:
        return (self.unit_value * self.quantity).quantize(_CENT, ROUND_HALF_UP)

    @property
    def weight(self) -> Decimal:
        return (self.unit_weight * self.quantity).quantize(_GRAM, ROUND_HALF_UP)


@dataclass(slots=True)
class _Draft:
    house_bill: str
    tracking: str
    master: str
    carrier: Carrier
    port: str
    lading: str
    conveyance: str
    arrival: datetime
    manifest_at: datetime
    seller: Party
    marketplace: Marketplace
    consignee: Party
    origin: str | None
    lines: list[_Line]
    release_path: ReleasePath
    pilot_at: datetime
    filed_at: datetime
    filer: str
    entry_serial: int
    order_id: str
    gift: bool = False
    #: freight charge as a fraction of the declared value, applied when the manifest is
    #: rendered, so scenarios that change the value afterwards keep the freight in proportion
    freight: Decimal | None = None
    weight_override: Decimal | None = None
    manifest: bool = True
    pilot: bool = True
    pilot_kind: FilerType = FilerType.ONLINE_MARKETPLACE
    pilot_seller: bool = True
    pilot_deliver_to: Party | None = None  # None: the consignee
    pilot_no_deliver_to: bool = False
    pilot_carrier: str | None = None  # None: the manifest's carrier
    pilot_house_bill: bool = True
    pilot_quantity: int | None = None  # None: the manifest's
    listed_price: Decimal | None = None  # None with single line: the declared unit value
    no_listed_price: bool = False
    entry_number: str | None = None  # None: valid number from filer and serial
    entry_value_factor: Decimal = Decimal(1)
    entry86_pga: bool = True  # attach the line's PGA data to the Type 86 line
    entry_filed: bool = True  # False: the manifest asks for Type 86 and no entry ever comes
    extra_entry_filers: tuple[str, ...] = ()
    versions: list[tuple[Action, datetime, ManifestEvent]] = field(default_factory=list)
    emit_delay: dict[str, timedelta] = field(default_factory=dict)
    duplicate: bool = False

    @property
    def key(self) -> str:
        out = normalise_bill(self.house_bill)
        assert out is not None
        return out

    @property
    def value(self) -> Decimal:
        return sum((li.value for li in self.lines), Decimal(0))

    @property
    def quantity(self) -> int:
        return sum(li.quantity for li in self.lines)

    @property
    def entry86(self) -> bool:
        return self.release_path is ReleasePath.TYPE_86


# -- the scenario registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A named way to make shipments, the rule ids it must trigger, and what it is for."""

    name: str
    rules: frozenset[str]
    doc: str
    build: Callable[[_Ctx], None]
    size: int = 1  # most shipments one draw can emit


SCENARIOS: dict[str, Scenario] = {}


def _scenario(
    name: str, rules: tuple[str, ...] = (), size: int = 1
) -> Callable[[Callable[[_Ctx], None]], Callable[[_Ctx], None]]:
    def register(fn: Callable[[_Ctx], None]) -> Callable[[_Ctx], None]:
        doc = " ".join((fn.__doc__ or "").split())
        SCENARIOS[name] = Scenario(name, frozenset(rules), doc, fn, size)
        return fn

    return register


# -- the context a scenario builds with -----------------------------------------------------------


class _Ctx:
    """Seeded randomness, the synthetic world, and the collector of finished drafts."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.refs = _Refs.load(cfg.refdata)
        self.base = datetime.combine(cfg.start, time(12), UTC)
        self.scenario = ""
        self.finished: list[tuple[_Draft, Expected]] = []
        self._bill = self.rng.randrange(10**8, 10**9)
        self._serial = {f: self.rng.randrange(10**5, 10**6) for f in world.BROKER_FILERS}
        self._group = 0
        self.pairs: list[tuple[Product, Product]] | None = None
        rng = self.rng
        self._sellers: dict[str, list[tuple[Party, Party]]] = {}
        for country, places in world.SELLER_PLACES.items():
            names = list(world.seller_names(country))
            rng.shuffle(names)
            pool = []
            for i, name in enumerate(names[:10]):
                city, region, postal = places[i % len(places)]
                addr = Address(
                    f"No. {rng.randint(1, 999)} {rng.choice(_ROADS)}",
                    city,
                    country,
                    region or None,
                    postal,
                )
                mp = world.MARKETPLACES[i % len(world.MARKETPLACES)]
                seller = Party(name, addr, f"{mp.seller_prefix}-{500000 + rng.randrange(10**5)}")
                maker_city, maker_region, maker_postal = rng.choice(places)
                kind = rng.choice(("Precision", "Industrial", "Manufacturing", "Works"))
                maker_address = Address(
                    f"No. {rng.randint(1, 999)} Factory Road",
                    maker_city,
                    country,
                    maker_region or None,
                    maker_postal,
                )
                maker = Party(f"{name.split(' ')[0]} {kind} Factory", maker_address)
                pool.append((seller, maker))
            self._sellers[country] = pool

    # randomness helpers

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def money(self, lo: float, hi: float) -> Decimal:
        return Decimal(str(round(self.rng.uniform(lo, hi), 2)))

    def minutes(self, lo: float, hi: float) -> timedelta:
        return timedelta(seconds=int(self.rng.uniform(lo, hi) * 60))

    def group(self) -> str:
        self._group += 1
        return f"{self.scenario}-{self._group}"

    def when(self, window: tuple[date, date] | None = None) -> datetime:
        """The base time, or a day-time instant inside ``window`` when the base is outside."""
        if window is None or window[0] <= self.base.date() <= window[1]:
            return self.base
        lo, hi = window
        day = lo + timedelta(days=self.rng.randrange((hi - lo).days + 1))
        return self.day_time(day)

    def day_time(self, day: date) -> datetime:
        """An instant on ``day`` between 14:00 and 22:00 UTC (the same date in U.S. Eastern)."""
        return datetime.combine(day, time(14), UTC) + timedelta(
            seconds=self.rng.randrange(8 * 3600)
        )

    # parties

    def consignee(self, name: str | None = None, address: Address | None = None) -> Party:
        rng = self.rng
        if address is None:
            city, state, zip_code = rng.choice(world.CONSIGNEE_PLACES)
            line1 = f"{rng.randint(10, 9899)} {rng.choice(world.STREETS)}"
            if rng.random() < 0.3:
                line1 += f" Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
            address = Address(line1, city, "US", state, zip_code)
        if name is None:
            name = f"{rng.choice(world.FIRST_NAMES)} {rng.choice(world.SURNAMES)}"
        return Party(name, address)

    def seller(self, country: str) -> tuple[Party, Party]:
        """A (seller, manufacturer) pair located in ``country``."""
        return self.rng.choice(self._sellers[country])

    # goods

    def line(
        self,
        product: Product,
        quantity: int | None = None,
        unit_value: Decimal | None = None,
        maker: Party | None = None,
    ) -> _Line:
        rng = self.rng
        if quantity is None:
            r = rng.random()
            quantity = 1 if r < 0.7 else rng.randint(2, 3) if r < 0.95 else rng.randint(4, 6)
        if unit_value is None:
            unit_value = self.money(*product.price)
        weight = Decimal(str(round(rng.uniform(*product.weight), 3)))
        template = rng.choice(product.descriptions)
        brand = self.refs.brands[0][0]
        description = template.format(
            color=rng.choice(("black", "white", "navy", "grey", "red", "olive", "beige")),
            size=rng.choice(("S", "M", "L", "XL")),
            shoe=rng.choice(("7", "8", "9", "10", "11")),
            brand=brand,
        )
        return _Line(product, description, product.hts, quantity, unit_value, weight, maker)

    def line_for_value(self, product: Product, target: Decimal, maker: Party | None) -> _Line:
        """A line of ``product`` worth about ``target`` with the unit price inside its range."""
        lo, hi = product.price
        quantity = max(1, math.ceil(float(target) / hi))
        quantity = max(quantity, 1)
        unit = (target / quantity).quantize(_CENT, ROUND_HALF_UP)
        unit = min(max(unit, Decimal(str(lo))), Decimal(str(hi)))
        return self.line(product, quantity, unit, maker)

    # the clean draft

    def draft(
        self,
        *,
        product: Product | None = None,
        origin: str | None = None,
        at: datetime | None = None,
        consignee: Party | None = None,
        carrier: Carrier | None = None,
        lines: int | None = None,
        path: ReleasePath | None = None,
    ) -> _Draft:
        """A shipment that triggers no rule: every part present, consistent and on time."""
        rng = self.rng
        if carrier is None:
            carrier = rng.choices(world.CARRIERS, cum_weights=_CARRIER_CUM)[0]
        product = product or rng.choice(world.CATALOGUE)
        if origin is None:
            origin = rng.choice(product.origins)
        seller, maker = self.seller(origin)
        n_lines = lines if lines is not None else (1 if rng.random() < 0.85 else 2)
        items = [self.line(product, maker=maker)]
        for _ in range(n_lines - 1):
            other = rng.choice(_BY_ORIGIN[origin])
            items.append(self.line(other, maker=maker))
        while sum((li.value for li in items), Decimal(0)) > Decimal(780):
            big = max(items, key=lambda li: li.value)
            if big.quantity > 1:
                big.quantity -= 1
            else:
                big.unit_value = (big.unit_value / 2).quantize(_CENT)
        arrival = (at or self.base).replace(microsecond=0)
        manifest_at = arrival - self.minutes(120, 1200)
        self._bill += rng.randint(1, 97)
        house = f"{carrier.bill_prefix}{self._bill:010d}"
        tracking = house
        if carrier.postal:
            tracking = f"LP{self._bill % 10**9:09d}{origin if origin else 'XX'}"
        mp = rng.choice(world.MARKETPLACES)
        filer = rng.choice(world.BROKER_FILERS)
        self._serial[filer] = (self._serial[filer] + 1) % 10**7
        freight = None if rng.random() < 0.5 else Decimal(str(round(rng.uniform(0.05, 0.5), 2)))
        path = path or (ReleasePath.TYPE_86 if rng.random() < 0.5 else ReleasePath.SECTION_321)
        return _Draft(
            house_bill=house,
            tracking=tracking,
            master=f"{carrier.bill_prefix}M{arrival:%y%m%d}{rng.randint(1, 4)}",
            carrier=carrier,
            port=rng.choice(carrier.ports),
            lading=rng.choice(carrier.lading),
            conveyance=f"{carrier.code}{rng.randint(100, 989)}",
            arrival=arrival,
            manifest_at=manifest_at,
            seller=seller,
            marketplace=mp,
            consignee=consignee or self.consignee(),
            origin=origin,
            lines=items,
            release_path=path,
            pilot_at=manifest_at + self.minutes(-30, 25),
            filed_at=manifest_at + self.minutes(5, 90),
            filer=filer,
            entry_serial=self._serial[filer],
            order_id=f"{mp.seller_prefix}{arrival:%y%m%d}-{rng.randrange(10**7):07d}",
            freight=freight,
            pilot_kind=FilerType.ONLINE_MARKETPLACE if rng.random() < 0.6 else FilerType.CARRIER,
        )

    def next_entry(self, filer: str) -> str:
        serial = self._serial.get(filer, self.rng.randrange(10**6))
        self._serial[filer] = (serial + 1) % 10**7
        return make_entry_number(filer, self._serial[filer])

    # finishing

    def finish(
        self,
        d: _Draft,
        rules: tuple[str, ...] = (),
        outcome: str | None = None,
        group: str | None = None,
    ) -> None:
        """Record a draft with its truth: declared rules plus those the calendar adds."""
        fired = set(rules)
        if outcome is None and d.manifest:
            fired |= _calendar_rules(d, self.refs.cpsc_prefixes)
            if "R01" in fired and not d.entry_filed:
                fired.discard("R25")  # an ineligible shipment waits for no Type 86 entry
        off = sorted(r for r in fired if r in OFF_BY_DEFAULT and r not in self.cfg.enable)
        on = sorted(r for r in fired if r not in off)
        if outcome is None:
            outcome = "HOLD" if on else "RELEASE"
        if outcome in ("CANCELLED", "UNMATCHED"):
            on, off = [], []
        arrival = d.versions[-1][2].arrival if d.versions else d.arrival
        truth = Expected(
            d.key,
            self.scenario,
            outcome,
            tuple(on),
            tuple(off),
            arrival if d.manifest else None,
            group,
        )
        self.finished.append((d, truth))

    def version(self, d: _Draft, action: Action, at: datetime) -> None:
        """Snapshot the draft's manifest as it is now, as a version with ``action`` at ``at``."""
        d.versions.append((action, at, _manifest(self, d, action, at)))


def entry_due(arrival: datetime) -> datetime:
    """The last instant a Type 86 entry for goods arriving at ``arrival`` is on time: the
    arrival itself from 2024-04-13 00:00 Eastern (89 FR 2630), before that the end of the 15th
    calendar day after the arrival date, in Eastern time (84 FR 40079; 19 CFR 142.2)."""
    if arrival >= _ARRIVAL_RULE:
        return arrival
    day = arrival.astimezone(_ET).date() + timedelta(days=16)
    return datetime.combine(day, time(0), _ET) - timedelta(microseconds=1)


def _calendar_rules(d: _Draft, cpsc_prefixes: tuple[str, ...]) -> set[str]:
    """R01, R09 and R25 as the law of the final arrival date decides them: the regime's
    eligibility, CPSC eFiling, and the Type 86 filing deadline (an entry filed after it, or
    none ever filed by a shipment that asks for Type 86 and is eligible)."""
    out: set[str] = set()
    arrival = d.arrival
    origin = d.origin
    # from the China/Hong Kong exclusion, an unknown origin cannot show it is eligible
    if arrival >= _SUSPENDED or (origin in ("CN", "HK", None) and arrival >= _CN_HK_OUT):
        out.add("R01")
    if d.entry86 and (not d.entry_filed or d.filed_at > entry_due(arrival)):
        out.add("R25")
    if arrival >= _CPSC_EFILING:
        certified = any(
            li.pga is not None and li.pga.agency == "CPSC" and li.pga.certificate_id
            for li in d.lines
        )
        if not certified and any(li.hts.startswith(cpsc_prefixes) for li in d.lines):
            out.add("R09")
    return out


# -- rendering drafts into events -----------------------------------------------------------------


def _manifest(ctx: _Ctx, d: _Draft, action: Action, at: datetime) -> ManifestEvent:
    weight = (
        d.weight_override
        if d.weight_override is not None
        else (
            sum((li.weight for li in d.lines), Decimal(0)) * Decimal("1.1") + Decimal("0.15")
        ).quantize(_GRAM, ROUND_HALF_UP)
    )
    return ManifestEvent(
        header=EventHeader(ctx.uid(), at, d.carrier.originator, action),
        house_bill=d.house_bill,
        tracking_number=d.tracking,
        master_bill=d.master,
        carrier_code=d.carrier.code,
        mode=d.carrier.mode,
        port_of_entry=d.port,
        estimated_arrival=d.arrival,
        shipper=d.seller,
        consignee=d.consignee,
        origin_country=d.origin,
        lines=tuple(
            LineItem(
                li.description,
                li.quantity,
                li.value,
                li.weight,
                li.hts,
                d.origin,
                manufacturer=li.manufacturer,
                pga=li.pga,
            )
            for li in d.lines
        ),
        shipping_weight_kg=weight,
        release_path=d.release_path,
        conveyance=d.conveyance,
        port_of_lading=d.lading,
        freight_charge=None if d.freight is None else (d.value * d.freight).quantize(_CENT),
        gift=d.gift,
        postal_item_id=d.tracking if d.carrier.postal else None,
    )


def _pilot(ctx: _Ctx, d: _Draft) -> PilotRecord:
    rng = ctx.rng
    first = d.lines[0]
    marketplace = d.pilot_kind is FilerType.ONLINE_MARKETPLACE
    originator = d.marketplace.originator if marketplace else d.carrier.originator
    listed = d.listed_price
    if listed is None and len(d.lines) == 1 and not d.no_listed_price and marketplace:
        listed = first.unit_value
    house = d.house_bill if d.pilot_house_bill else None
    if house is not None and rng.random() < 0.1:
        house = f"{house[:3].lower()}-{house[3:]}"  # parties spell bills their own way
    seller = d.seller if d.pilot_seller else None
    deliver_to = None if d.pilot_no_deliver_to else (d.pilot_deliver_to or d.consignee)
    return PilotRecord(
        header=EventHeader(ctx.uid(), d.pilot_at, originator),
        originator_code=originator,
        filer_type=d.pilot_kind,
        mode=d.carrier.mode,
        tracking_number=d.tracking,
        house_bill=house,
        master_bill=None if marketplace else d.master,
        carrier_code=d.pilot_carrier or d.carrier.code,
        shipment_initiator=None if marketplace else seller,
        deliver_to=deliver_to,
        enhanced_description=first.description,
        security_scan_verified=(True if d.carrier.mode is Mode.AIR and not marketplace else None),
        known_customer=None if marketplace else rng.random() < 0.5,
        seller=seller,
        marketplace=d.marketplace.name if marketplace else None,
        listed_price=listed,
        product_picture=f"sha256:{rng.getrandbits(256):064x}" if marketplace else None,
        listing_url=(
            f"https://{d.marketplace.domain}/item/{rng.randrange(10**9)}" if marketplace else None
        ),
        order_id=d.order_id if marketplace else None,
        order_date=d.manifest_at - timedelta(days=2) if marketplace else None,
        buyer=d.consignee if marketplace and deliver_to is not None else None,
        quantity=d.pilot_quantity if d.pilot_quantity is not None else d.quantity,
        sku=f"SKU-{first.product.code.upper()}-{rng.randrange(10**4):04d}",
        manufacturer=first.manufacturer,
        hts=first.hts,
        origin_country=d.origin,
    )


def _entry86(ctx: _Ctx, d: _Draft, entry_number: str, filed_at: datetime) -> Entry86:
    factor = d.entry_value_factor
    lines = tuple(
        Entry86Line(
            li.hts,
            li.quantity,
            (li.value * factor).quantize(_CENT, ROUND_HALF_UP),
            li.description,
            li.pga if d.entry86_pga else None,
        )
        for li in d.lines
    )
    return Entry86(
        header=EventHeader(ctx.uid(), filed_at, f"FILER-{entry_number[:3]}"),
        bill_number=d.house_bill,
        entry_number=entry_number,
        port_of_entry=d.port,
        shipper=d.seller,
        consignee=d.consignee,
        origin_country=d.origin or "",
        lines=lines,
        filed_at=filed_at,
    )


_SPECS = {"manifest": topics.MANIFEST, "pilot": topics.PILOT, "entry86": topics.ENTRY86}


def _render(ctx: _Ctx, d: _Draft) -> list[Event]:
    out: list[tuple[str, str, Payload]] = []
    if d.manifest:
        if not d.versions:
            ctx.version(d, Action.ADD, d.manifest_at)
        out += [("manifest", f"manifest_{a.value.lower()}", m) for a, _, m in d.versions]
    if d.pilot:
        out.append(("pilot", "pilot", _pilot(ctx, d)))
    if d.entry86 and d.entry_filed:
        number = d.entry_number or make_entry_number(d.filer, d.entry_serial)
        out.append(("entry86", "entry86", _entry86(ctx, d, number, d.filed_at)))
        for i, filer in enumerate(d.extra_entry_filers):
            at = d.filed_at + timedelta(minutes=7 * (i + 1))
            out.append(("entry86", "entry86", _entry86(ctx, d, ctx.next_entry(filer), at)))
    events: list[Event] = []
    for part, detail, payload in out:
        spec = _SPECS[part]
        if isinstance(payload, PilotRecord):
            key = normalise_bill(payload.house_bill or payload.tracking_number)
        elif isinstance(payload, Entry86):
            key = normalise_bill(payload.bill_number)
        else:
            key = normalise_bill(payload.house_bill or payload.tracking_number)
        assert key is not None
        delay = d.emit_delay.get(detail, d.emit_delay.get(part, timedelta(0)))
        emit = payload.header.event_time + delay
        events.append(Event(spec, key, payload, emit))
        if d.duplicate:
            events.append(Event(spec, key, payload, emit + ctx.minutes(0.1, 20)))
    return events


_CARRIER_CUM = tuple(itertools.accumulate(world.CARRIER_WEIGHTS))
_BY_ORIGIN = {
    o: tuple(p for p in world.CATALOGUE if o in p.origins) or world.CATALOGUE
    for o in world.SELLER_PLACES
}


def _product(code: str) -> Product:
    return next(p for p in world.CATALOGUE if p.code == code)


# -- ordinary traffic and negative controls ------------------------------------------------------


@_scenario("ordinary")
def _ordinary(ctx: _Ctx) -> None:
    """A clean parcel: specific description, in-band value and weight, consistent parties,
    complete pilot data before the deadline, a valid Type 86 filed before arrival when the
    manifest asks for Type 86."""
    ctx.finish(ctx.draft())


@_scenario("branded_authentic")
def _branded_authentic(ctx: _Ctx) -> None:
    """Negative control for R23: a protected brand sold by an authorised seller at its
    reference price (the brand whose reference price fits under the threshold and band)."""
    brand, price, sellers = next(b for b in ctx.refs.brands if b[1] <= Decimal(150))
    d = ctx.draft(product=world.SPECIAL["brandsneakers"], lines=1)
    li = d.lines[0]
    li.description = li.description.replace(ctx.refs.brands[0][0], brand)
    li.quantity, li.unit_value = 1, price
    d.seller = replace(d.seller, party_id=sellers[0])
    d.pilot_kind = FilerType.ONLINE_MARKETPLACE
    ctx.finish(d)


@_scenario("pga_with_data")
def _pga_with_data(ctx: _Ctx) -> None:
    """Negative control for R08: PGA-regulated goods entered on Type 86 with PGA data."""
    code = ctx.rng.choice(("supplement", "coffee", "seeds"))
    product = world.SPECIAL[code]
    d = ctx.draft(
        product=product, origin=ctx.rng.choice(product.origins), lines=1, path=ReleasePath.TYPE_86
    )
    agency = {"supplement": "FDA", "coffee": "FDA", "seeds": "APHIS"}[code]
    d.lines[0].pga = PgaData(
        agency, "PN" if agency == "FDA" else "PPQ", f"{agency}-{ctx.rng.randrange(10**8):08d}"
    )
    ctx.finish(d)


@_scenario("pill_press_dea")
def _pill_press_dea(ctx: _Ctx) -> None:
    """Negative control for R21: a tablet press declared with a DEA transaction id."""
    d = ctx.draft(
        product=world.SPECIAL["tabletpress"], origin="IN", lines=1, at=ctx.when(_PILOT_ERA)
    )
    d.lines[0].quantity = 1
    d.lines[0].pga = PgaData("DEA", "452", f"DEA{ctx.rng.randrange(10**9):09d}")
    ctx.finish(d)


# -- positives, one rule each (or a documented few) -----------------------------------------------


@_scenario("regime_cn_hk", ("R01",))
def _regime_cn_hk(ctx: _Ctx) -> None:
    """R01: a product of China or Hong Kong arriving after 2025-05-02 00:01 ET (EO 14256)."""
    product = ctx.rng.choice([p for p in world.CATALOGUE if "CN" in p.origins])
    origin = ctx.rng.choice(("CN", "CN", "HK"))
    d = ctx.draft(product=product, origin="CN", at=ctx.when(_CN_EXCLUDED))
    d.origin = origin
    ctx.finish(d, ("R01",))


@_scenario("regime_suspended", ("R01",))
def _regime_suspended(ctx: _Ctx) -> None:
    """R01: any origin arriving after 2025-08-29 00:01 ET (EO 14324), before CPSC eFiling."""
    product = ctx.rng.choice([p for p in world.CATALOGUE if p.hts[:4] not in ("9503", "6111")])
    ctx.finish(ctx.draft(product=product, at=ctx.when(_SUSPENDED_ERA)), ("R01",))


@_scenario("value_over", ("R02",))
def _value_over(ctx: _Ctx) -> None:
    """R02: declared value over $800; one in five is a gift over $100."""
    if ctx.rng.random() < 0.2:
        d = ctx.draft(lines=1)
        d.gift = True
        li = d.lines[0]
        li.quantity = max(li.quantity, math.ceil(Decimal(101) / li.unit_value) + 1)
    else:
        product = ctx.rng.choice([p for p in world.CATALOGUE if p.price[1] >= 40])
        d = ctx.draft(product=product, lines=1)
        d.lines[0] = ctx.line_for_value(product, ctx.money(850, 2400), d.lines[0].manufacturer)
        while d.value <= _THRESHOLD:
            d.lines[0].quantity += 1
    ctx.finish(d, ("R02",))


def _values_over_threshold(ctx: _Ctx, n: int) -> list[Decimal]:
    """``n`` parcel targets, each at most $780, summing to over $800 with room to spare."""
    each_min = Decimal(860) / n + 10
    return [ctx.money(float(each_min), min(780.0, float(each_min) + 250)) for _ in range(n)]


def _fits(lines: list[_Line]) -> bool:
    return all(li.value <= Decimal(790) for li in lines)


@_scenario("person_day", ("R03",), size=4)
def _person_day(ctx: _Ctx) -> None:
    """R03: 2-4 parcels for one consignee (same name and address) arriving on one day, from
    different sellers and orders, each at most $800 and together over $800: all HOLD."""
    n = ctx.rng.randint(2, 4)
    person = ctx.consignee()
    day = ctx.base.date()
    group = ctx.group()
    drafts = []
    for target in _values_over_threshold(ctx, n):
        product = ctx.rng.choice([p for p in world.CATALOGUE if p.price[1] >= 20])
        d = ctx.draft(product=product, consignee=person, at=ctx.day_time(day), lines=1)
        d.lines[0] = ctx.line_for_value(product, target, d.lines[0].manufacturer)
        drafts.append(d)
    sellers = {d.seller.name for d in drafts}
    if (
        len(sellers) < n
        or sum(d.value for d in drafts) <= _THRESHOLD
        or not _fits([d.lines[0] for d in drafts])
    ):
        return _person_day(ctx)  # rare: draw again rather than emit a wrong truth
    for d in drafts:
        ctx.finish(d, ("R03",), group=group)


@_scenario("split_lot", ("R04",), size=3)
def _split_lot(ctx: _Ctx) -> None:
    """R04: one marketplace order from one seller to one consignee split into 2-3 parcels,
    each at most $800, together over $800, arriving on consecutive days within 72 hours
    (one per day, so R03 stays silent): all HOLD."""
    n = ctx.rng.randint(2, 3)
    person = ctx.consignee()
    product = ctx.rng.choice([p for p in world.CATALOGUE if p.price[1] >= 20])
    first = ctx.draft(product=product, consignee=person, at=ctx.day_time(ctx.base.date()), lines=1)
    group = ctx.group()
    drafts = []
    for i, target in enumerate(_values_over_threshold(ctx, n)):
        d = (
            first
            if i == 0
            else ctx.draft(
                product=product,
                origin=first.origin,
                consignee=person,
                lines=1,
                at=ctx.day_time(first.arrival.date() + timedelta(days=i)),
            )
        )
        # arrivals within 56 h and manifests 2-6 h before them keep every event within 72 h
        lead = ctx.minutes(120, 360)
        shift = d.manifest_at - (d.arrival - lead)
        d.manifest_at, d.pilot_at, d.filed_at = (
            d.manifest_at - shift,
            d.pilot_at - shift,
            d.filed_at - shift,
        )
        d.seller, d.marketplace, d.order_id = first.seller, first.marketplace, first.order_id
        d.pilot_kind = FilerType.ONLINE_MARKETPLACE
        d.lines[0] = ctx.line_for_value(product, target, first.lines[0].manufacturer)
        drafts.append(d)
    if sum(d.value for d in drafts) <= _THRESHOLD or not _fits([d.lines[0] for d in drafts]):
        return _split_lot(ctx)
    for d in drafts:
        ctx.finish(d, ("R04",), group=group)


@_scenario("double_entry", ("R04", "R25"))
def _double_entry(ctx: _Ctx) -> None:
    """R04 and R25: one bill filed on two Type 86 entries (different entry numbers)."""
    d = ctx.draft(path=ReleasePath.TYPE_86)
    d.extra_entry_filers = (ctx.rng.choice(world.BROKER_FILERS),)
    ctx.finish(d, ("R04", "R25"))


@_scenario("adcvd", ("R05",))
def _adcvd(ctx: _Ctx) -> None:
    """R05: goods inside an AD/CVD scope (garment hangers, paper plates, hand trucks) from a
    listed origin, arriving in the pilot era."""
    product = world.SPECIAL[ctx.rng.choice(("hangers", "plates", "handtruck"))]
    d = ctx.draft(product=product, origin="CN", at=ctx.when(_PILOT_ERA), lines=1)
    d.lines[0].quantity = 1
    ctx.finish(d, ("R05",))


@_scenario("trade_action", ("R06",))
def _trade_action(ctx: _Ctx) -> None:
    """R06 (off by default): solar modules under a Section 201 safeguard, from VN or MY."""
    product = world.SPECIAL["solarpanel"]
    d = ctx.draft(product=product, origin=ctx.rng.choice(product.origins), lines=1)
    d.lines[0].quantity = ctx.rng.randint(1, 3)
    ctx.finish(d, ("R06",))


@_scenario("excise", ("R07",))
def _excise(ctx: _Ctx) -> None:
    """R07: wine, whisky, cigarettes, nicotine e-liquid, or perfume worth over $5."""
    product = world.SPECIAL[ctx.rng.choice(("wine", "whisky", "cigarettes", "eliquid", "perfume"))]
    origin = ctx.rng.choice([o for o in product.origins if o not in _RISK_ORIGINS] or ["FR"])
    d = ctx.draft(product=product, origin=origin, lines=1)
    d.lines[0].quantity = ctx.rng.randint(1, 2)
    if product.code == "perfume":  # excise only over $5 (19 CFR 10.153)
        d.lines[0].unit_value = max(d.lines[0].unit_value, ctx.money(5.01, 12))
    ctx.finish(d, ("R07",))


@_scenario("perfume_five_dollars")
def _perfume_five_dollars(ctx: _Ctx) -> None:
    """Negative control for R07: one alcoholic perfume (3303) valued at $5 or less (exactly
    $5 in one case of three), which is not excluded from Section 321, though the demo
    reference data lists perfume as excise goods: RELEASE."""
    product = world.SPECIAL["perfume"]
    d = ctx.draft(product=product, origin=ctx.rng.choice(product.origins), lines=1)
    li = d.lines[0]
    li.quantity = 1
    li.unit_value = Decimal(5) if ctx.rng.random() < 1 / 3 else ctx.money(3, 4.99)
    ctx.finish(d)


@_scenario("pga_manifest", ("R08",))
def _pga_manifest(ctx: _Ctx) -> None:
    """R08: PGA-regulated goods (supplements, coffee, pet treats, seeds, disinfectant) asking
    for release from manifest, or entered on Type 86 without PGA data."""
    product = world.SPECIAL[
        ctx.rng.choice(("supplement", "coffee", "dogtreats", "seeds", "disinfectant"))
    ]
    origin = ctx.rng.choice([o for o in product.origins if o not in ("CN", "HK")] or ["TH"])
    if ctx.rng.random() < 0.5:
        d = ctx.draft(product=product, origin=origin, lines=1, path=ReleasePath.SECTION_321)
    else:
        d = ctx.draft(product=product, origin=origin, lines=1, path=ReleasePath.TYPE_86)
        d.entry86_pga = False
    ctx.finish(d, ("R08",))


@_scenario("cpsc_missing", ("R01", "R09"))
def _cpsc_missing(ctx: _Ctx) -> None:
    """R09 (with R01, since de minimis is suspended by then): toys or babies' garments
    arriving after CPSC eFiling became mandatory (2026-07-08) without a certificate."""
    product = _product(ctx.rng.choice(("blocks", "romper")))
    d = ctx.draft(
        product=product,
        origin=ctx.rng.choice(("VN", "BD")) if product.code == "romper" else "VN",
        at=ctx.when(_CPSC_ERA),
        lines=1,
    )
    ctx.finish(d, ("R01", "R09"))


@_scenario("vague", ("R10",))
def _vague(ctx: _Ctx) -> None:
    """R10: a denylisted, numeric-only or too-short description on every line of the
    manifest and Type 86 (non-risk origin, so the narcotics profile stays below 3 signals)."""
    product = ctx.rng.choice([p for p in world.CATALOGUE if set(p.origins) - _RISK_ORIGINS])
    origin = ctx.rng.choice([o for o in product.origins if o not in _RISK_ORIGINS])
    d = ctx.draft(product=product, origin=origin, at=ctx.when(_ACAS_ERA), lines=1)
    d.lines[0].description = ctx.rng.choice(_VAGUE)
    ctx.finish(d, ("R10",))


def _mismatch_pairs(ctx: _Ctx) -> list[tuple[Product, Product]]:
    """(described, declared) pairs of different chapters whose bands both fit the goods."""
    pairs = []
    for a in world.CATALOGUE:
        for b in world.CATALOGUE:
            if a.chapter == b.chapter or not set(a.origins) & set(b.origins):
                continue
            band = ctx.refs.bands[b.hts6]
            gross_max = a.weight[1] * 1.1 + 0.15
            if (
                a.price[0] >= band[2]
                and a.price[1] <= band[3]
                and a.price[0] / gross_max >= band[0]
                and a.price[1] / a.weight[0] <= band[1]
            ):
                pairs.append((a, b))
    return pairs


@_scenario("hts_mismatch", ("R11",))
def _hts_mismatch(ctx: _Ctx) -> None:
    """R11: a specific description of one chapter declared under an HTS of another chapter
    (values and weights inside the declared heading's band, so R12 stays silent)."""
    if ctx.pairs is None:
        ctx.pairs = _mismatch_pairs(ctx)
    described, declared = ctx.rng.choice(ctx.pairs)
    origin = ctx.rng.choice(sorted(set(described.origins) & set(declared.origins)))
    d = ctx.draft(product=described, origin=origin, lines=1)
    d.lines[0].hts = declared.hts
    ctx.finish(d, ("R11",))


@_scenario("value_weight", ("R12",))
def _value_weight(ctx: _Ctx) -> None:
    """R12: value per unit far under the HTS-6 band, or a weight that puts value per kg far
    under it (non-risk origin; carrier pilot without a listed price, so R14 stays silent)."""
    product = ctx.rng.choice([p for p in world.CATALOGUE if set(p.origins) - _RISK_ORIGINS])
    origin = ctx.rng.choice([o for o in product.origins if o not in _RISK_ORIGINS])
    d = ctx.draft(product=product, origin=origin, lines=1)
    d.pilot_kind = FilerType.CARRIER
    li = d.lines[0]
    kg_min, _, unit_min, _ = ctx.refs.bands[li.hts[:6]]
    if ctx.rng.random() < 0.5:
        li.unit_value = max(_CENT, (unit_min / 4).quantize(_CENT))
    else:
        li.unit_weight = (li.unit_value / (kg_min / 4)).quantize(_GRAM) + 1
    ctx.finish(d, ("R12",))


@_scenario("freight", ("R13",))
def _freight(ctx: _Ctx) -> None:
    """R13: a freight charge larger than the declared value."""
    d = ctx.draft()
    d.freight = Decimal(str(round(ctx.rng.uniform(1.3, 4.0), 2)))
    ctx.finish(d, ("R13",))


@_scenario("undervalued", ("R14",))
def _undervalued(ctx: _Ctx) -> None:
    """R14: a marketplace listing price more than twice the declared unit value (declared
    still inside the HTS-6 band)."""
    product = ctx.rng.choice([p for p in world.CATALOGUE if p.price[1] >= 30])
    d = ctx.draft(product=product, lines=1)
    d.pilot_kind = FilerType.ONLINE_MARKETPLACE
    li = d.lines[0]
    li.unit_value = ctx.money(max(product.price[0], product.price[1] / 4), product.price[1] / 3)
    d.listed_price = (li.unit_value * Decimal(str(round(ctx.rng.uniform(2.5, 4.0), 2)))).quantize(
        _CENT
    )
    ctx.finish(d, ("R14",))


@_scenario("disagree", ("R15",))
def _disagree(ctx: _Ctx) -> None:
    """R15: sources disagree: the pilot's deliver-to address, the pilot's carrier code, or the
    Type 86 value (over 20 % higher than the manifest's)."""
    kind = ctx.rng.choice(("deliver_to", "carrier", "value"))
    product = ctx.rng.choice([p for p in world.CATALOGUE if p.price[1] <= 150])
    d = ctx.draft(product=product, lines=1, path=ReleasePath.TYPE_86 if kind == "value" else None)
    if kind == "deliver_to":
        d.pilot_deliver_to = ctx.consignee(name=d.consignee.name)
    elif kind == "carrier":
        d.pilot_carrier = next(c.code for c in world.CARRIERS if c.code != d.carrier.code)
    else:
        factor = Decimal(str(round(ctx.rng.uniform(1.3, 1.45), 2)))
        if d.value * factor <= 800:
            d.entry_value_factor = factor
        else:  # the higher Type 86 value would also cross the threshold (R02): disagree on carrier
            d.pilot_carrier = next(c.code for c in world.CARRIERS if c.code != d.carrier.code)
    ctx.finish(d, ("R15",))


@_scenario("missing_pilot", ("R16",))
def _missing_pilot(ctx: _Ctx) -> None:
    """R16: no pilot data ever arrives (the deadline passes without it)."""
    d = ctx.draft()
    d.pilot = False
    ctx.finish(d, ("R16",))


@_scenario("late_pilot", ("R16",))
def _late_pilot(ctx: _Ctx) -> None:
    """R16: complete pilot data arriving 45 minutes to 6 hours after the manifest, after the
    deadline; the late data does not clear R16 (it was not there by the deadline)."""
    d = ctx.draft()
    d.pilot_at = d.manifest_at + ctx.minutes(45, 360)
    ctx.finish(d, ("R16",))


@_scenario("incomplete_pilot", ("R16",))
def _incomplete_pilot(ctx: _Ctx) -> None:
    """R16: pilot data on time but without the seller, or without the deliver-to party."""
    d = ctx.draft()
    d.pilot_kind = FilerType.CARRIER
    if ctx.rng.random() < 0.5:
        d.pilot_seller = False
    else:
        d.pilot_no_deliver_to = True
    ctx.finish(d, ("R16",))


@_scenario("fictitious", ("R17",))
def _fictitious(ctx: _Ctx) -> None:
    """R17: a placeholder consignee name, or an address without a valid U.S. ZIP code or
    without a street line."""
    base = ctx.consignee()
    assert base.address is not None
    r = ctx.rng.random()
    if r < 0.5:
        person = Party(ctx.rng.choice(_PLACEHOLDER_NAMES), base.address)
    elif r < 0.75:
        person = Party(
            base.name, replace(base.address, postal_code=ctx.rng.choice(("N/A", "", "ABCDE")))
        )
    else:
        person = Party(base.name, replace(base.address, line1=""))
    ctx.finish(ctx.draft(consignee=person), ("R17",))


@_scenario("reshipper", ("R18",))
def _reshipper(ctx: _Ctx) -> None:
    """R18: a consignee at an address on the reshipper list (a forwarding warehouse)."""
    address = ctx.rng.choice(ctx.refs.reshippers)
    ctx.finish(ctx.draft(consignee=ctx.consignee(address=address)), ("R18",))


@_scenario("address_cluster", ("R18",), size=7)
def _address_cluster(ctx: _Ctx) -> None:
    """R18: seven parcels for seven different names at one (unlisted) address on one day,
    over the limit of five names per address-day: all HOLD."""
    address = ctx.consignee().address
    day = ctx.base.date()
    group = ctx.group()
    names: set[str] = set()
    while len(names) < 7:
        names.add(ctx.consignee().name)
    for name in sorted(names):
        d = ctx.draft(consignee=ctx.consignee(name=name, address=address), at=ctx.day_time(day))
        ctx.finish(d, ("R18",), group=group)


_SAFE_FOR_WATCH = (
    "earbuds",
    "cable",
    "charger",
    "phonecase",
    "utensils",
    "blocks",
    "flashdrive",
    "containers",
)


@_scenario("watchlisted", ("R19",))
def _watchlisted(ctx: _Ctx) -> None:
    """R19: the seller or the manufacturer is a watch-listed company or person, spelled the
    list's way or with case and punctuation changes (goods outside forced-labour sectors)."""
    _, name, country = ctx.rng.choice(ctx.refs.watch)
    spelled = ctx.rng.choice(
        (
            name,
            name.upper(),
            name.replace(".", "").replace(",", ""),
            name.replace("Co. Ltd.", "Co., Ltd."),
        )
    )
    product = _product(ctx.rng.choice(_SAFE_FOR_WATCH))
    city = world.SELLER_PLACES.get(country, (("Capital District", "", "100000"),))[0][0]
    address = Address(f"Office {ctx.rng.randint(100, 999)}, Trade Tower", city, country)
    if country in product.origins and ctx.rng.random() < 0.5:
        # the maker, in its own country, which is also the origin: no transshipment pattern
        d = ctx.draft(product=product, origin=country, at=ctx.when(_PILOT_ERA))
        for li in d.lines:
            li.manufacturer = Party(spelled, address)
    else:
        origin = ctx.rng.choice([o for o in product.origins if o != "CN"] or product.origins)
        d = ctx.draft(product=product, origin=origin, at=ctx.when(_PILOT_ERA))
        d.seller = Party(spelled, address, d.seller.party_id)
    ctx.finish(d, ("R19",))


@_scenario("forced_labour", ("R20",))
def _forced_labour(ctx: _Ctx) -> None:
    """R20: cotton T-shirts from China whose manufacturer is in Xinjiang, or whose
    manufacturer no source names (pilot era, so R01 stays silent)."""
    d = ctx.draft(product=world.SPECIAL["cottontee"], origin="CN", at=ctx.when(_PILOT_ERA), lines=1)
    if ctx.rng.random() < 0.6:
        city, region, postal = ctx.rng.choice(_XINJIANG)
        maker = Party(
            "Hami Brightloom Knitting Co. Ltd.",
            Address(f"No. {ctx.rng.randint(1, 300)} Textile Park Road", city, "CN", region, postal),
        )
    else:
        maker = None
    d.lines[0].manufacturer = maker
    ctx.finish(d, ("R20",))


@_scenario("pill_press", ("R21",))
def _pill_press(ctx: _Ctx) -> None:
    """R21: a tablet press or a punch-and-die set, no DEA transaction id."""
    product = world.SPECIAL[ctx.rng.choice(("tabletpress", "punchdie"))]
    d = ctx.draft(
        product=product, origin=ctx.rng.choice(product.origins), at=ctx.when(_PILOT_ERA), lines=1
    )
    d.lines[0].quantity = 1
    ctx.finish(d, ("R21",))


@_scenario("narcotics", ("R10", "R12", "R22"))
def _narcotics(ctx: _Ctx) -> None:
    """R22 (with R10 and R12, its signals): a generic description, a weight far above what
    the value explains, a first-time consignee with a prior seizure at that name and address,
    from a risk origin (IN)."""
    person = ctx.rng.choice(ctx.refs.seized_consignees)
    product = world.SPECIAL["supplement"]
    d = ctx.draft(
        product=product,
        origin="IN",
        consignee=person,
        at=ctx.when(_ACAS_ERA),
        lines=1,
        path=ReleasePath.TYPE_86,
    )
    li = d.lines[0]
    li.description = ctx.rng.choice(("gift", "sample", "daily necessities"))
    li.hts = _product("plush").hts  # plush toys: what such parcels are declared as
    li.product = _product("plush")
    kg_min = ctx.refs.bands[li.hts[:6]][0]
    li.quantity = 1
    li.unit_value = ctx.money(6, 12)
    li.unit_weight = (li.unit_value / (kg_min / 5)).quantize(_GRAM) + 1
    d.pilot_kind = FilerType.CARRIER
    ctx.finish(d, ("R10", "R12", "R22"))


@_scenario("counterfeit", ("R23",))
def _counterfeit(ctx: _Ctx) -> None:
    """R23: a protected brand offered at under 30 % of its reference price by a seller who
    is not authorised for it."""
    i = ctx.rng.randrange(len(ctx.refs.brands))
    brand, price, _ = ctx.refs.brands[i]
    codes = ("brandbag", "brandsneakers", "brandearbuds", "brandwatch")
    product = world.SPECIAL[codes[i % len(codes)]]
    d = ctx.draft(product=product, lines=1)
    li = d.lines[0]
    li.description = li.description.replace(ctx.refs.brands[0][0], brand)
    cap = min(Decimal(str(product.price[1])), price * Decimal("0.28"))
    li.unit_value = ctx.money(product.price[0], float(cap))
    li.quantity = 1
    d.pilot_kind = FilerType.ONLINE_MARKETPLACE
    ctx.finish(d, ("R23",))


@_scenario("origin_invalid", ("R24",))
def _origin_invalid(ctx: _Ctx) -> None:
    """R24: the country of origin missing, or not an ISO 3166 country code (XX, ZZ), on the
    manifest and the pilot record alike (release from manifest, no Type 86)."""
    d = ctx.draft(path=ReleasePath.SECTION_321)
    d.origin = ctx.rng.choice((None, "XX", "ZZ"))
    ctx.finish(d, ("R24",))


@_scenario("entry_integrity", ("R25",))
def _entry_integrity(ctx: _Ctx) -> None:
    """R25: a Type 86 entry number with a wrong check digit, or filed after arrival (on or
    after 2024-04-13, when that became a rejection)."""
    r = ctx.rng.random()
    at = ctx.when(_ARRIVAL_RULE_ERA)
    if r >= 0.8:  # the first hour of the rule: late from the first instant it applied
        at = _ARRIVAL_RULE.astimezone(UTC) + ctx.minutes(0, 60)
    d = ctx.draft(path=ReleasePath.TYPE_86, at=at)
    if r < 0.5:
        good = make_entry_number(d.filer, d.entry_serial)
        d.entry_number = good[:-1] + str((int(good[-1]) + ctx.rng.randint(1, 9)) % 10)
    else:
        d.filed_at = d.arrival + ctx.minutes(30, 360)
    ctx.finish(d, ("R25",))


def _fifteen_day_draft(ctx: _Ctx) -> _Draft:
    """A Type 86 shipment arriving while an entry was due within 15 calendar days after the
    arrival date (before 2024-04-13); one in four in the last hour before that rule ended."""
    at = ctx.when(_FIFTEEN_DAY_ERA)
    if ctx.rng.random() < 0.25:
        at = _ARRIVAL_RULE.astimezone(UTC) - ctx.minutes(1, 60)
    return ctx.draft(path=ReleasePath.TYPE_86, at=at)


@_scenario("entry_within_15_days")
def _entry_within_15_days(ctx: _Ctx) -> None:
    """Negative control for R25 before 2024-04-13: a Type 86 entry filed after arrival but by
    the end of the 15th calendar day after the arrival date (Eastern), one in three on that
    last day: on time under the rule of its arrival date, RELEASE."""
    d = _fifteen_day_draft(ctx)
    due = entry_due(d.arrival)
    if ctx.rng.random() < 1 / 3:
        d.filed_at = due.astimezone(UTC).replace(microsecond=0) - ctx.minutes(1, 600)
    else:
        d.filed_at = d.arrival + ctx.minutes(60, 14 * 24 * 60)
    ctx.finish(d)


@_scenario("entry_after_15_days", ("R25",))
def _entry_after_15_days(ctx: _Ctx) -> None:
    """R25 before 2024-04-13: a Type 86 entry filed after the 15th calendar day after the
    arrival date (from the first minutes of the 16th day to five days later)."""
    d = _fifteen_day_draft(ctx)
    first_late = (entry_due(d.arrival) + timedelta(microseconds=1)).astimezone(UTC)
    d.filed_at = first_late + ctx.minutes(0, 5 * 24 * 60)
    ctx.finish(d, ("R25",))


@_scenario("entry_missing", ("R25",))
def _entry_missing(ctx: _Ctx) -> None:
    """R25: the manifest asks for Type 86 and no entry is ever filed: held while it is due,
    then held for the missing entry once the deadline of the arrival date passes (the
    arrival itself, or before 2024-04-13 the 15th calendar day after it)."""
    d = _fifteen_day_draft(ctx) if ctx.rng.random() < 0.3 else ctx.draft(path=ReleasePath.TYPE_86)
    d.entry_filed = False
    ctx.finish(d, ("R25",))


@_scenario("risky_filer", ("R26",))
def _risky_filer(ctx: _Ctx) -> None:
    """R26: a Type 86 filed by a filer on the suspension or high-violation list."""
    d = ctx.draft(path=ReleasePath.TYPE_86)
    d.filer = ctx.rng.choice(ctx.refs.risky_filers)
    d.entry_serial = ctx.rng.randrange(10**7)
    ctx.finish(d, ("R26",))


# -- stream pathologies ---------------------------------------------------------------------------


@_scenario("amend_change")
def _amend_change(ctx: _Ctx) -> None:
    """CHANGE: the manifest is added with a vague description and changed 10-25 minutes
    later to a specific one; the newest version is clean, so the final decision is RELEASE."""
    d = ctx.draft()
    specific = d.lines[0].description
    d.lines[0].description = ctx.rng.choice(_VAGUE)
    ctx.version(d, Action.ADD, d.manifest_at)
    d.lines[0].description = specific
    ctx.version(d, Action.CHANGE, d.manifest_at + ctx.minutes(10, 25))
    ctx.finish(d)


@_scenario("amend_to_hold", ("R02",))
def _amend_to_hold(ctx: _Ctx) -> None:
    """CHANGE: a clean laptop parcel whose value the carrier corrects to over $800."""
    d = ctx.draft(product=_product("laptop"), lines=1)
    d.lines[0].quantity = 1
    d.lines[0].unit_value = ctx.money(300, 560)
    ctx.version(d, Action.ADD, d.manifest_at)
    d.lines[0].unit_value = ctx.money(820, 1200)
    ctx.version(d, Action.CHANGE, d.manifest_at + ctx.minutes(10, 60))
    ctx.finish(d, ("R02",))


@_scenario("amend_delete")
def _amend_delete(ctx: _Ctx) -> None:
    """DELETE: the manifest is withdrawn after its pilot data arrived: CANCELLED."""
    d = ctx.draft()
    ctx.version(d, Action.ADD, d.manifest_at)
    ctx.version(d, Action.DELETE, d.manifest_at + ctx.minutes(30, 90))
    ctx.finish(d, outcome="CANCELLED")


@_scenario("amend_out_of_order")
def _amend_out_of_order(ctx: _Ctx) -> None:
    """CHANGE before ADD: the correcting CHANGE (newer event time) is emitted before the ADD
    it corrects; the newest by event time is clean, so the final decision is RELEASE."""
    _amend_change(ctx)
    d, _ = ctx.finished[-1]
    add_at, change_at = d.versions[0][1], d.versions[1][1]
    d.emit_delay["manifest_add"] = change_at - add_at + timedelta(minutes=2)


@_scenario("duplicate")
def _duplicate(ctx: _Ctx) -> None:
    """Duplicates: every event of a clean shipment is emitted twice (same event id)."""
    d = ctx.draft()
    d.duplicate = True
    ctx.finish(d)


@_scenario("out_of_order")
def _out_of_order(ctx: _Ctx) -> None:
    """Out of order: the manifest is emitted 5-20 minutes after its event time, after the
    pilot record (and Type 86) whose event times follow it; still within the deadline."""
    d = ctx.draft()
    d.pilot_at = d.manifest_at + ctx.minutes(1, 4)
    d.filed_at = d.manifest_at + ctx.minutes(1, 4)
    d.emit_delay["manifest"] = ctx.minutes(5, 20)
    ctx.finish(d)


@_scenario("late_manifest")
def _late_manifest(ctx: _Ctx) -> None:
    """Partner first: the pilot record and Type 86 arrive 2-10 hours before the manifest."""
    d = ctx.draft()
    d.pilot_at = d.manifest_at - ctx.minutes(120, 600)
    d.filed_at = d.manifest_at - ctx.minutes(60, 110)
    ctx.finish(d)


@_scenario("tracking_only")
def _tracking_only(ctx: _Ctx) -> None:
    """Identifiers: a postal shipment whose marketplace pilot record knows only the tracking
    number (the manifest carries both, linking them)."""
    postal = next(c for c in world.CARRIERS if c.postal)
    d = ctx.draft(carrier=postal)
    d.pilot_kind = FilerType.ONLINE_MARKETPLACE
    d.pilot_house_bill = False
    ctx.finish(d)


@_scenario("orphan_pilot")
def _orphan_pilot(ctx: _Ctx) -> None:
    """Never: a pilot record whose manifest never comes: UNMATCHED after 24 hours."""
    d = ctx.draft()
    d.manifest = False
    d.release_path = ReleasePath.SECTION_321
    ctx.finish(d, outcome="UNMATCHED")


@_scenario("orphan_entry86")
def _orphan_entry86(ctx: _Ctx) -> None:
    """Never: a Type 86 entry whose manifest (and pilot data) never come: UNMATCHED."""
    d = ctx.draft(path=ReleasePath.TYPE_86)
    d.manifest = False
    d.pilot = False
    ctx.finish(d, outcome="UNMATCHED")


# -- mixes ----------------------------------------------------------------------------------------

_POSITIVE_WEIGHT = 0.007

#: Named mixes. ``demo``: mostly ordinary parcels, every positive and pathology present.
PRESETS: dict[str, dict[str, float]] = {
    "demo": {
        "ordinary": 0.62,
        "branded_authentic": 0.01,
        "pga_with_data": 0.01,
        "pill_press_dea": 0.004,
        **{
            name: _POSITIVE_WEIGHT
            for name in (
                "regime_cn_hk",
                "regime_suspended",
                "value_over",
                "double_entry",
                "adcvd",
                "trade_action",
                "excise",
                "pga_manifest",
                "cpsc_missing",
                "vague",
                "hts_mismatch",
                "value_weight",
                "freight",
                "undervalued",
                "disagree",
                "missing_pilot",
                "late_pilot",
                "incomplete_pilot",
                "fictitious",
                "reshipper",
                "watchlisted",
                "forced_labour",
                "pill_press",
                "narcotics",
                "counterfeit",
                "origin_invalid",
                "entry_integrity",
                "entry_after_15_days",
                "entry_missing",
                "risky_filer",
            )
        },
        "perfume_five_dollars": 0.004,
        "entry_within_15_days": 0.004,
        "person_day": 0.004,
        "split_lot": 0.004,
        "address_cluster": 0.002,
        "amend_change": 0.012,
        "amend_to_hold": 0.005,
        "amend_delete": 0.008,
        "amend_out_of_order": 0.005,
        "duplicate": 0.012,
        "out_of_order": 0.012,
        "late_manifest": 0.012,
        "tracking_only": 0.01,
        "orphan_pilot": 0.006,
        "orphan_entry86": 0.006,
    },
    "clean": {"ordinary": 1.0},
}
PRESETS["positives"] = {name: 1.0 for name in PRESETS["demo"] if name != "ordinary"}


def parse_mix(spec: str) -> dict[str, float]:
    """``demo``, ``ordinary=0.8,value_over=0.02`` or ``demo,value_over=0.1`` (preset first,
    then overrides) to scenario weights. Raises ConfigError naming what is wrong."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if "=" not in item:
            if item not in PRESETS:
                raise ConfigError(f"unknown mix preset {item!r} (known: {', '.join(PRESETS)})")
            weights.update(PRESETS[item])
            continue
        name, _, raw = item.partition("=")
        name = name.strip()
        if name not in SCENARIOS:
            raise ConfigError(f"unknown scenario {name!r} in the mix")
        try:
            weight = float(raw)
        except ValueError:
            raise ConfigError(f"weight of {name!r} is not a number: {raw!r}") from None
        if weight < 0 or math.isnan(weight) or math.isinf(weight):
            raise ConfigError(f"weight of {name!r} must be a finite number >= 0")
        weights[name] = weight
    if not weights:
        raise ConfigError("the mix is empty")
    return weights


# -- the stream -----------------------------------------------------------------------------------


def iter_stream(cfg: GeneratorConfig) -> Iterator[Event | Expected]:
    """Generate ``cfg.shipments`` shipments: their :class:`Expected` truths (as each is
    planned) and their :class:`Event` s (in emission order). Same config, same output."""
    ctx = _Ctx(cfg)
    names = [n for n, w in cfg.mix.items() if w > 0]
    weights = [cfg.mix[n] for n in names]
    span = datetime.combine(cfg.end + timedelta(days=1), time(0), UTC) - datetime.combine(
        cfg.start, time(0), UTC
    )
    origin = datetime.combine(cfg.start, time(0), UTC)
    heap: list[tuple[datetime, int, Event]] = []
    seq = 0
    made = 0
    total = cfg.shipments
    while made < total:
        ctx.base = (origin + span * ((made + ctx.rng.random()) / max(total, 1))).replace(
            microsecond=0
        )
        name = ctx.rng.choices(names, weights)[0]
        if SCENARIOS[name].size > total - made:
            name = "ordinary" if "ordinary" in names else name
            if SCENARIOS[name].size > total - made:
                # the mix's groups do not divide the count: finish with single parcels
                fits = [n for n in names if SCENARIOS[n].size <= total - made]
                name = fits[0] if fits else "ordinary"
        ctx.scenario = name
        ctx.finished.clear()
        SCENARIOS[name].build(ctx)
        for draft, truth in ctx.finished:
            made += 1
            yield truth
            for event in _render(ctx, draft):
                heapq.heappush(heap, (event.emit_at, seq, event))
                seq += 1
        limit = ctx.base - _HORIZON
        while heap and heap[0][0] < limit:
            yield heapq.heappop(heap)[2]
    while heap:
        yield heapq.heappop(heap)[2]


def generate(cfg: GeneratorConfig) -> Traffic:
    """The whole run in memory (for tests and small runs)."""
    events: list[Event] = []
    truth: list[Expected] = []
    for item in iter_stream(cfg):
        if isinstance(item, Event):
            events.append(item)
        else:
            truth.append(item)
    return Traffic(tuple(events), tuple(truth))
