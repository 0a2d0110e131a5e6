"""Read and validate one reference-data directory into :class:`RefTables` (plain, hashable rows).

Personal data in the seizure and reshipper files is hashed here, at load time, with
:func:`s321.models.party_key` / :func:`s321.models.address_key`: nothing downstream (Redis,
the snapshot, evidence) ever holds those names or addresses. Watch-list names are kept: they
are published list entries and fuzzy matching needs the text.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

from s321.errors import ConfigError
from s321.models import Address, Party, address_key, party_key

__all__ = [
    "FILES",
    "HTS_LISTS",
    "WATCH_LISTS",
    "Brand",
    "HtsEntry",
    "RefTables",
    "ValueBand",
    "WatchEntry",
    "demo_refdata_dir",
    "read_directory",
]

WATCH_LISTS = frozenset({"UFLPA", "OFAC", "SEIZURE"})
HTS_LISTS = frozenset(
    {"ADCVD", "EXCISE", "PGA", "CPSC", "FORCED_LABOUR", "PILL_PRESS", "TRADE_ACTION"}
)
_SEVERITIES = frozenset({"CRITICAL", "HIGH"})
_FILER_RISKS = frozenset({"SUSPENDED", "HIGH_VIOLATION"})
_SEIZURE_KINDS = frozenset({"CONSIGNEE", "SELLER"})
_HTS_PREFIX = re.compile(r"^[0-9]{2,10}$")
_ISO2 = re.compile(r"^[A-Z]{2}$")

#: file name -> required columns (the fixed directory format, see the package docstring)
FILES: Mapping[str, tuple[str, ...]] = {
    "watchlist.csv": ("list", "name", "country", "severity"),
    "hts_lists.csv": ("list", "hts_prefix", "origins", "note"),
    "value_bands.csv": (
        "hts6",
        "min_usd_per_kg",
        "max_usd_per_kg",
        "min_usd_per_unit",
        "max_usd_per_unit",
    ),
    "reshippers.csv": ("line1", "city", "postal_code", "country"),
    "seizures.csv": ("kind", "line1", "city", "postal_code", "country", "name"),
    "filers.csv": ("filer_code", "risk", "note"),
    "brands.csv": ("brand", "reference_price_usd", "authorised_sellers"),
    "hts_keywords.csv": ("keyword", "chapter"),
}


@dataclass(frozen=True, slots=True)
class WatchEntry:
    """One watch-list row; ``entry_id`` (list:row) is what evidence cites, never the name."""

    entry_id: str
    list: str
    name: str
    country: str | None
    severity: str


@dataclass(frozen=True, slots=True)
class HtsEntry:
    """An HTS prefix on a named list; ``origins`` None means every origin (``*``)."""

    list: str
    hts_prefix: str
    origins: frozenset[str] | None
    note: str


@dataclass(frozen=True, slots=True)
class ValueBand:
    """Plausible value per kilogram and per unit for one HTS-6 heading (None: no bound)."""

    min_usd_per_kg: Decimal | None
    max_usd_per_kg: Decimal | None
    min_usd_per_unit: Decimal | None
    max_usd_per_unit: Decimal | None


@dataclass(frozen=True, slots=True)
class Brand:
    brand: str
    reference_price_usd: Decimal
    authorised_sellers: frozenset[str]


@dataclass(frozen=True, slots=True)
class RefTables:
    """One version of the reference data, validated; personal data already hashed."""

    version: str
    description: str
    watchlist: tuple[WatchEntry, ...] = ()
    hts_lists: tuple[HtsEntry, ...] = ()
    value_bands: tuple[tuple[str, ValueBand], ...] = ()
    reshipper_keys: frozenset[str] = frozenset()
    seizure_keys: frozenset[tuple[str, str]] = frozenset()  # (kind, party_key)
    filers: tuple[tuple[str, str], ...] = ()  # (filer_code, risk)
    brands: tuple[Brand, ...] = ()
    hts_keywords: tuple[tuple[str, str], ...] = ()  # (keyword upper-case, 2-digit chapter)

    def to_json(self) -> dict[str, str]:
        """One JSON document per table, for storage under a versioned key set."""
        return {
            "manifest": json.dumps({"version": self.version, "description": self.description}),
            "watchlist": json.dumps(
                [[e.entry_id, e.list, e.name, e.country, e.severity] for e in self.watchlist]
            ),
            "hts_lists": json.dumps(
                [
                    [e.list, e.hts_prefix, None if e.origins is None else sorted(e.origins), e.note]
                    for e in self.hts_lists
                ]
            ),
            "value_bands": json.dumps(
                [
                    [
                        h,
                        *(
                            None if v is None else str(v)
                            for v in (
                                b.min_usd_per_kg,
                                b.max_usd_per_kg,
                                b.min_usd_per_unit,
                                b.max_usd_per_unit,
                            )
                        ),
                    ]
                    for h, b in self.value_bands
                ]
            ),
            "reshippers": json.dumps(sorted(self.reshipper_keys)),
            "seizures": json.dumps(sorted([list(k) for k in self.seizure_keys])),
            "filers": json.dumps([list(f) for f in self.filers]),
            "brands": json.dumps(
                [
                    [b.brand, str(b.reference_price_usd), sorted(b.authorised_sellers)]
                    for b in self.brands
                ]
            ),
            "hts_keywords": json.dumps([list(k) for k in self.hts_keywords]),
        }

    @classmethod
    def from_json(cls, docs: Mapping[str, str]) -> RefTables:
        """Inverse of :meth:`to_json`; raises ConfigError naming a missing or broken table."""
        try:
            man = json.loads(docs["manifest"])
            raw: dict[str, Any] = {k: json.loads(v) for k, v in docs.items() if k != "manifest"}

            def dec(v: str | None) -> Decimal | None:
                return None if v is None else Decimal(v)

            return cls(
                version=str(man["version"]),
                description=str(man.get("description", "")),
                watchlist=tuple(WatchEntry(*row) for row in raw["watchlist"]),
                hts_lists=tuple(
                    HtsEntry(lst, p, None if o is None else frozenset(o), n)
                    for lst, p, o, n in raw["hts_lists"]
                ),
                value_bands=tuple(
                    (h, ValueBand(dec(a), dec(b), dec(c), dec(d)))
                    for h, a, b, c, d in raw["value_bands"]
                ),
                reshipper_keys=frozenset(raw["reshippers"]),
                seizure_keys=frozenset((k, p) for k, p in raw["seizures"]),
                filers=tuple((c, r) for c, r in raw["filers"]),
                brands=tuple(Brand(b, Decimal(p), frozenset(s)) for b, p, s in raw["brands"]),
                hts_keywords=tuple((k, c) for k, c in raw["hts_keywords"]),
            )
        except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
            raise ConfigError(
                f"reference data: stored tables are incomplete or corrupt: {exc}"
            ) from exc


def _rows(directory: Path, name: str) -> Iterator[tuple[str, dict[str, str]]]:
    path = directory / name
    if not path.exists():
        raise ConfigError(f"{path}: missing (every reference file must be present, may be empty)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(FILES[name]) - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}: missing columns {sorted(missing)}")
        for i, row in enumerate(reader):
            yield f"{path.name} line {i + 2}", {k: (v or "").strip() for k, v in row.items() if k}


def _money(value: str, where: str, column: str, optional: bool = True) -> Decimal | None:
    if value == "" and optional:
        return None
    try:
        out = Decimal(value)
    except InvalidOperation:
        raise ConfigError(f"{where}: {column} is not a number") from None
    if out < 0:
        raise ConfigError(f"{where}: {column} is negative")
    return out


def _country(value: str, where: str, column: str) -> str:
    v = value.upper()
    if not _ISO2.match(v):
        raise ConfigError(f"{where}: {column} is not an ISO-2 country code")
    return v


def _address(row: Mapping[str, str], where: str) -> Address:
    return Address(
        line1=row["line1"],
        city=row["city"],
        country=_country(row["country"], where, "country"),
        postal_code=row["postal_code"] or None,
    )


def demo_refdata_dir() -> Path:
    """The synthetic reference set shipped with s321: what a worker decides with until
    reference data is published, and what the demo and tests use."""
    return Path(str(resources.files("s321").joinpath("data/refdata/demo")))


def read_directory(directory: Path) -> RefTables:
    """Read and validate every file of one reference-data version.

    Raises :class:`ConfigError` naming the file, line and column of the first problem.
    """
    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        version = str(manifest["version"]).strip()
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{manifest_path}: unreadable or without a version: {exc}") from exc
    if not version or not re.fullmatch(r"[A-Za-z0-9._-]+", version):
        raise ConfigError(f"{manifest_path}: version must be letters, digits, '.', '_' or '-'")

    watch: list[WatchEntry] = []
    for where, row in _rows(directory, "watchlist.csv"):
        if row["list"] not in WATCH_LISTS:
            raise ConfigError(f"{where}: list must be one of {sorted(WATCH_LISTS)}")
        if row["severity"] not in _SEVERITIES:
            raise ConfigError(f"{where}: severity must be CRITICAL or HIGH")
        if not row["name"]:
            raise ConfigError(f"{where}: name is empty")
        country = _country(row["country"], where, "country") if row["country"] else None
        watch.append(
            WatchEntry(
                f"{row['list']}:{len(watch) + 1}",
                row["list"],
                row["name"],
                country,
                row["severity"],
            )
        )

    hts: list[HtsEntry] = []
    for where, row in _rows(directory, "hts_lists.csv"):
        if row["list"] not in HTS_LISTS:
            raise ConfigError(f"{where}: list must be one of {sorted(HTS_LISTS)}")
        prefix = row["hts_prefix"].replace(".", "")
        if not _HTS_PREFIX.match(prefix):
            raise ConfigError(f"{where}: hts_prefix must be 2 to 10 digits")
        origins_raw = row["origins"]
        origins = (
            None
            if origins_raw in ("*", "")
            else frozenset(
                _country(o.strip(), where, "origins") for o in origins_raw.split(";") if o.strip()
            )
        )
        hts.append(HtsEntry(row["list"], prefix, origins, row["note"]))

    bands: dict[str, ValueBand] = {}
    for where, row in _rows(directory, "value_bands.csv"):
        h6 = row["hts6"].replace(".", "")
        if not re.fullmatch(r"[0-9]{6}", h6):
            raise ConfigError(f"{where}: hts6 must be 6 digits")
        bands[h6] = ValueBand(*(_money(row[c], where, c) for c in FILES["value_bands.csv"][1:]))

    reshippers = frozenset(
        address_key(_address(row, where)) for where, row in _rows(directory, "reshippers.csv")
    )

    seizures: set[tuple[str, str]] = set()
    for where, row in _rows(directory, "seizures.csv"):
        if row["kind"] not in _SEIZURE_KINDS:
            raise ConfigError(f"{where}: kind must be CONSIGNEE or SELLER")
        seizures.add((row["kind"], party_key(Party(row["name"], _address(row, where)))))

    filers: list[tuple[str, str]] = []
    for where, row in _rows(directory, "filers.csv"):
        if row["risk"] not in _FILER_RISKS:
            raise ConfigError(f"{where}: risk must be SUSPENDED or HIGH_VIOLATION")
        if not re.fullmatch(r"[A-Z0-9]{3}", row["filer_code"].upper()):
            raise ConfigError(f"{where}: filer_code must be 3 letters or digits")
        filers.append((row["filer_code"].upper(), row["risk"]))

    brands: list[Brand] = []
    for where, row in _rows(directory, "brands.csv"):
        price = _money(row["reference_price_usd"], where, "reference_price_usd", optional=False)
        assert price is not None
        if not row["brand"]:
            raise ConfigError(f"{where}: brand is empty")
        sellers = frozenset(s.strip() for s in row["authorised_sellers"].split(";") if s.strip())
        brands.append(Brand(row["brand"], price, sellers))

    keywords: list[tuple[str, str]] = []
    for where, row in _rows(directory, "hts_keywords.csv"):
        chapter = row["chapter"].zfill(2)
        if not re.fullmatch(r"[0-9]{2}", chapter):
            raise ConfigError(f"{where}: chapter must be a 2-digit HTS chapter")
        if not row["keyword"]:
            raise ConfigError(f"{where}: keyword is empty")
        keywords.append((row["keyword"].upper(), chapter))

    return RefTables(
        version=version,
        description=str(manifest.get("description", "")),
        watchlist=tuple(watch),
        hts_lists=tuple(hts),
        value_bands=tuple(sorted(bands.items())),
        reshipper_keys=reshippers,
        seizure_keys=frozenset(seizures),
        filers=tuple(filers),
        brands=tuple(brands),
        hts_keywords=tuple(keywords),
    )
