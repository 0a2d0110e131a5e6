"""The legal regime as an effective-dated table, chosen by a shipment's arrival time.

The table is data (``s321/data/regimes.csv``), never code: each row
is the *whole* regime in force from its ``effective_from`` (U.S. Eastern wall-clock time, as
the executive orders and Federal Register notices state it) until the next row's. A row says:

========================== ===============================================================
column                     meaning
========================== ===============================================================
version                    stable id recorded in every evaluation (e.g. ``2025-suspended``)
effective_from             ``YYYY-MM-DD HH:MM`` in America/New_York
threshold_usd              the de minimis value limit (19 USC 1321)
gift_threshold_usd         the limit for bona fide gifts (19 CFR 10.151-152)
section321_available       ``false``: no shipment can be released as Section 321 at all
excluded_origins           ISO-2 origins not eligible (``;``-separated), e.g. ``CN;HK``
pilot                      the Section 321 Data Pilot exists (R16 applies)
type86                     Entry Type 86 exists
type86_filing_days         when a Type 86 entry is due (R25, and a Type 86 shipment's
                           missing-entry deadline): ``0``, upon or before arrival (89 FR 2630);
                           ``N``, by the end of the Nth calendar day after the arrival date
                           (84 FR 40079: up to 15 calendar days after arrival)
vague_description_rejected vague descriptions are rejected in advance air cargo data (R10)
cpsc_efiling               CPSC certificate eFiling is mandatory (R09)
rules_enabled              rule ids this regime switches on even if the rule set has them off
source, note               the legal source and a human note
========================== ===============================================================

Boundaries are inclusive on the left: a shipment arriving exactly at ``effective_from`` is
judged under the new row. Calendar days are counted in U.S. Eastern time, like the boundaries.
"""

from __future__ import annotations

import bisect
import csv
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from s321.errors import ConfigError

__all__ = ["EASTERN", "Regime", "RegimeTable", "default_regimes", "load_regimes"]

#: The time zone the legal sources state their effective times in.
EASTERN = ZoneInfo("America/New_York")

_COLUMNS = (
    "version",
    "effective_from",
    "threshold_usd",
    "gift_threshold_usd",
    "section321_available",
    "excluded_origins",
    "pilot",
    "type86",
    "type86_filing_days",
    "vague_description_rejected",
    "cpsc_efiling",
    "rules_enabled",
    "source",
    "note",
)


@dataclass(frozen=True, slots=True)
class Regime:
    """One row of the table: the Section 321 rules in force from ``effective_from`` (UTC)."""

    version: str
    effective_from: datetime
    threshold_usd: Decimal
    gift_threshold_usd: Decimal
    section321_available: bool
    excluded_origins: frozenset[str]
    pilot: bool
    type86: bool
    type86_filing_days: int
    vague_description_rejected: bool
    cpsc_efiling: bool
    rules_enabled: frozenset[str]
    source: str
    note: str = ""

    def ineligibility(self, origins: Iterable[str | None]) -> str | None:
        """Why a shipment with these origins cannot be released as Section 321, or None.

        An unknown origin while some origins are excluded is ineligible: eligibility must be
        shown, and a missing origin cannot show it.
        """
        if not self.section321_available:
            return "suspended"
        if self.excluded_origins:
            seen = [o for o in origins]
            if not seen or any(o is None for o in seen):
                return "origin_unknown"
            if any(o in self.excluded_origins for o in seen):
                return "origin_excluded"
        return None

    def type86_due(self, arrival: datetime) -> datetime:
        """The last instant at which a Type 86 entry for goods arriving at ``arrival`` is
        filed on time; one filed after it is late.

        With ``type86_filing_days`` 0 that is the arrival itself ("upon or before arrival");
        with N, the end of the Nth calendar day after the arrival date, in U.S. Eastern time
        (the last microsecond before the next day starts).
        """
        if self.type86_filing_days == 0:
            return arrival
        day = arrival.astimezone(EASTERN).date() + timedelta(days=self.type86_filing_days + 1)
        return datetime.combine(day, time(0), EASTERN).astimezone(UTC) - timedelta(microseconds=1)


class RegimeTable:
    """The rows in effective order; :meth:`at` picks the one in force at an instant."""

    __slots__ = ("_regimes", "_starts")

    def __init__(self, regimes: Sequence[Regime]) -> None:
        if not regimes:
            raise ConfigError("regime table: no rows")
        ordered = sorted(regimes, key=lambda r: r.effective_from)
        versions = [r.version for r in ordered]
        if len(set(versions)) != len(versions):
            raise ConfigError("regime table: duplicate version ids")
        starts = [r.effective_from for r in ordered]
        if len(set(starts)) != len(starts):
            raise ConfigError("regime table: two rows start at the same instant")
        self._regimes = tuple(ordered)
        self._starts = tuple(starts)

    @property
    def regimes(self) -> tuple[Regime, ...]:
        return self._regimes

    def at(self, when: datetime) -> Regime:
        """The regime in force at ``when`` (timezone-aware); before the first row, the first.

        Times earlier than the first row (1900) do not occur in practice; returning the
        oldest regime keeps the function total.
        """
        if when.tzinfo is None:
            raise ValueError("regime lookup needs a timezone-aware datetime")
        i = bisect.bisect_right(self._starts, when) - 1
        return self._regimes[max(i, 0)]

    def by_version(self, version: str) -> Regime:
        for r in self._regimes:
            if r.version == version:
                return r
        raise KeyError(version)


def _bool(value: str, where: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "yes", "1"):
        return True
    if v in ("false", "no", "0", ""):
        return False
    raise ConfigError(f"{where}: not a boolean: {value!r}")


def _days(value: str, where: str) -> int:
    v = value.strip()
    if not v.isdigit():
        raise ConfigError(f"{where}: type86_filing_days must be a whole number of days: {value!r}")
    return int(v)


def _set(value: str) -> frozenset[str]:
    return frozenset(p.strip().upper() for p in value.split(";") if p.strip())


def _parse_row(row: dict[str, str], where: str) -> Regime:
    try:
        local = datetime.strptime(row["effective_from"].strip(), "%Y-%m-%d %H:%M")
    except ValueError as exc:
        raise ConfigError(f"{where}: effective_from must be 'YYYY-MM-DD HH:MM'") from exc
    try:
        threshold = Decimal(row["threshold_usd"])
        gift = Decimal(row["gift_threshold_usd"])
    except InvalidOperation as exc:
        raise ConfigError(f"{where}: threshold is not a number") from exc
    return Regime(
        version=row["version"].strip(),
        effective_from=local.replace(tzinfo=EASTERN).astimezone(UTC),
        threshold_usd=threshold,
        gift_threshold_usd=gift,
        section321_available=_bool(row["section321_available"], where),
        excluded_origins=_set(row["excluded_origins"]),
        pilot=_bool(row["pilot"], where),
        type86=_bool(row["type86"], where),
        type86_filing_days=_days(row["type86_filing_days"], where),
        vague_description_rejected=_bool(row["vague_description_rejected"], where),
        cpsc_efiling=_bool(row["cpsc_efiling"], where),
        rules_enabled=_set(row["rules_enabled"]),
        source=row["source"].strip(),
        note=row.get("note", "").strip(),
    )


def load_regimes(path: Path | None = None) -> RegimeTable:
    """Read a regime table CSV (the packaged one when ``path`` is None); fails naming the row."""
    if path is None:
        text = resources.files("s321").joinpath("data/regimes.csv").read_text(encoding="utf-8")
        name = "regimes.csv"
    else:
        text = path.read_text(encoding="utf-8")
        name = str(path)
    reader = csv.DictReader(text.splitlines())
    missing = set(_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise ConfigError(f"{name}: missing columns {sorted(missing)}")
    rows = [_parse_row(row, f"{name} line {i + 2}") for i, row in enumerate(reader)]
    return RegimeTable(rows)


@functools.cache
def default_regimes() -> RegimeTable:
    """The packaged table, read once per process."""
    return load_regimes()
