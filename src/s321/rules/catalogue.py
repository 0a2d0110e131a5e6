"""The rule catalogue R01-R26: ids, metadata and the pure checks.

Each check is ``check(ctx, params) -> None | NA | evidence | (severity, evidence)``:

* ``None``: the rule applied and did not fire;
* :data:`NA`: the data it needs is absent (reported as not-applicable, never a silent pass);
* a ``dict[str, str]``: it fired, with evidence (field values, hashed keys; never names);
* ``(Severity, dict)``: it fired with a severity decided by the data (R19: the list entry's).

Thresholds, lists and severities are parameters whose defaults live here and whose values in
force come from the rule-set file (:mod:`s321.rules.ruleset`). A rule's ``prepare`` turns its
validated parameters, once when the rule set is loaded, into what its check reads (numbers as
Decimal, prefix lists as tuples, memos of per-text results bound to the lists). Evidence dicts
are built only when a rule fires. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from s321.entry_number import entry_number_fault
from s321.models import Party, ReleasePath, Severity
from s321.refdata.snapshot import MEMO_LIMIT, HtsHit, ReferenceSnapshot
from s321.regime import EASTERN, Regime
from s321.rules.aggregates import Aggregates
from s321.rules.facts import BoundedMemo, Facts, Line
from s321.rules.facts import words as _words

__all__ = [
    "CATALOGUE",
    "NA",
    "Ctx",
    "Result",
    "RuleSpec",
    "eastern_text",
]


class _NotApplicable:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NA"


#: Returned by a check whose data is absent.
NA: Final = _NotApplicable()
#: A per-record value not computed yet.
_UNSET: Final = object()

Evidence = dict[str, str]
Result = None | _NotApplicable | Evidence | tuple[Severity, Evidence]
#: The first of a record's (HTS, origin) pairs on a list, with its hit.
_Listed = tuple[str, str | None, HtsHit]


class Ctx:
    """Everything a check may read: the facts, the reference snapshot, aggregates, regime and
    every rule's prepared parameters (``params[rule_id]``).

    It also keeps what several checks derive from one record (list hits, the vague-description
    and weight findings), computed by the first check that asks.
    """

    __slots__ = ("_listed", "_now", "_vague", "_weight", "agg", "facts", "params", "regime", "snap")

    def __init__(
        self,
        facts: Facts,
        snap: ReferenceSnapshot,
        agg: Aggregates,
        regime: Regime,
        now: datetime | None,
        params: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.facts = facts
        self.params = params
        self.snap = snap
        self.agg = agg
        self.regime = regime
        self._now = now
        self._listed: dict[str, _Listed] | None = None
        self._vague: Any = _UNSET
        self._weight: Any = _UNSET

    @property
    def now(self) -> datetime:
        """The evaluation's time (the clock, read once, when the caller gave none)."""
        if self._now is None:
            self._now = datetime.now(UTC)
        return self._now

    def on_list(self, name: str) -> _Listed | None:
        """The first of the record's (HTS, origin) pairs on HTS list ``name``, with its hit
        (every list looked up at once, on the first call)."""
        listed = self._listed
        if listed is None:
            listed = self._listed = {}
            hits = self.snap.list_hits
            for hts, origin in self.facts.hts_origins:
                for name_, hit in hits(hts, origin).items():
                    if name_ not in listed:
                        listed[name_] = (hts, origin, hit)
        return listed.get(name)


Check = Callable[[Ctx, Mapping[str, Any]], Result]
Prepare = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One catalogue rule: metadata, default parameters and its check (None: condition-only).

    ``prepare`` (if any) turns validated parameters into the mapping the check reads; it runs
    once per rule set, when the rule set is loaded.
    """

    id: str
    version: int
    severity: Severity
    reason_code: str
    description: str
    source: str
    check: Check | None
    params: Mapping[str, Any] = field(default_factory=dict)
    action: str = ""
    default_enabled: bool = True
    default_condition: str = ""
    prepare: Prepare | None = None


_ENTRY = "file a formal or informal entry"
_D0 = Decimal(0)
_OTHER = ReleasePath.OTHER_ENTRY
_S321 = ReleasePath.SECTION_321
_TYPE86 = ReleasePath.TYPE_86


def _dec(v: Any) -> Decimal:
    """A rule-set number as Decimal (via its text, so 0.2 is exactly 0.2)."""
    return Decimal(str(v))


def _money(v: Decimal | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _prepared(p: Mapping[str, Any], **derived: Any) -> Mapping[str, Any]:
    """The validated parameters with some replaced or added (what a check reads)."""
    return {**p, **derived}


# -- R01-R04: eligibility and aggregation -------------------------------------------------------


def _r01(c: Ctx, p: Mapping[str, Any]) -> Result:
    path = c.facts.release_path
    if path is _OTHER or path is None:
        return NA
    why = c.regime.ineligibility(c.facts.origins)
    if why is None:
        return None
    return {
        "regime": c.regime.version,
        "reason": why,
        "origin": ";".join(sorted(o or "unknown" for o in c.facts.origins)),
    }


def _prepare_threshold(p: Mapping[str, Any]) -> Mapping[str, Any]:
    override = p.get("threshold_usd", 0)
    # None: the threshold of the regime in force
    return _prepared(p, threshold_usd=_dec(override) if override else None)


def _r02(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    value = f.declared_value
    if value is None or f.release_path is _OTHER:
        return NA
    limit = c.regime.gift_threshold_usd if f.gift else p["threshold_usd"] or c.regime.threshold_usd
    if value > limit:
        return {
            "declared_value": _money(value),
            "threshold": _money(limit),
            "gift": str(f.gift).lower(),
        }
    return None


def _r03(c: Ctx, p: Mapping[str, Any]) -> Result:
    if c.facts.release_path is _OTHER:
        return NA
    a = c.agg
    if not a.available:
        return {"state": "unavailable"}
    total = a.person_day_total
    if total is None:
        return NA
    limit = p["threshold_usd"] or c.regime.threshold_usd
    if total > limit and a.person_day_count > 1:
        return {
            "person_day_total": _money(total),
            "shipments": str(a.person_day_count),
            "threshold": _money(limit),
        }
    return None


def _r04(c: Ctx, p: Mapping[str, Any]) -> Result:
    a = c.agg
    if not a.available:
        return {"state": "unavailable"}
    numbers = len(c.facts.record.entry_numbers)
    if a.pair_total is None and a.order_total is None and a.bill_entries is None and numbers < 2:
        return NA
    limit = p["threshold_usd"] or c.regime.threshold_usd
    own = c.facts.declared_value or _D0
    pair = order = False
    if c.facts.release_path is not _OTHER and own <= limit:
        pair = a.pair_total is not None and a.pair_count > 1 and a.pair_total > limit
        order = a.order_total is not None and a.order_count > 1 and a.order_total > limit
    entries = max(a.bill_entries or 0, numbers)
    if not (pair or order or entries > 1):
        return None
    ev: Evidence = {}
    if pair:
        ev["pair_total"] = _money(a.pair_total)
        ev["pair_shipments"] = str(a.pair_count)
        ev["window_hours"] = str(p["window_hours"])
    if order:
        ev["order_total"] = _money(a.order_total)
        ev["order_shipments"] = str(a.order_count)
    if entries > 1:
        ev["type86_entries_for_bill"] = str(entries)
    ev["threshold"] = _money(limit)
    return ev


# -- R05-R09: goods on lists --------------------------------------------------------------------


def _list_rule(c: Ctx, name: str) -> Result:
    if not c.facts.hts_origins or not c.snap.has_list(name):
        return NA
    found = c.on_list(name)
    if found is None:
        return None
    hts, origin, hit = found
    return {"list": name, "hts": hts, "origin": origin or "unknown", "prefix": hit.prefix}


def _r05(c: Ctx, p: Mapping[str, Any]) -> Result:
    return _list_rule(c, "ADCVD")


def _r06(c: Ctx, p: Mapping[str, Any]) -> Result:
    return _list_rule(c, "TRADE_ACTION")


def _first_keyword(descriptions: tuple[str, ...], words: frozenset[str]) -> str | None:
    """The first term of the descriptions that is in ``words``."""
    for d in descriptions:
        for t in Facts.terms(d):
            if t in words:
                return t
    return None


def _keyword_scan(words: frozenset[str]) -> BoundedMemo:
    """descriptions -> :func:`_first_keyword` of them in ``words``, memoised (a record's
    descriptions, as a tuple, repeat with its product)."""
    return BoundedMemo(lambda descriptions: _first_keyword(descriptions, words))


def _prepare_r07(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(
        p,
        alcohol_prefixes=tuple(sorted(p["alcohol_prefixes"])),
        tobacco_prefixes=tuple(sorted(p["tobacco_prefixes"])),
        perfume_prefixes=tuple(sorted(p["perfume_prefixes"])),
        perfume_limit_usd=_dec(p["perfume_limit_usd"]),
        keyword_scan=_keyword_scan(p["keywords"]),
        any_prefix=tuple(
            sorted(p["alcohol_prefixes"] | p["tobacco_prefixes"] | p["perfume_prefixes"])
        ),
    )


def _excise_listed(c: Ctx, perfume: tuple[str, ...]) -> _Listed | None:
    """The first of the record's (HTS, origin) pairs on the EXCISE list, perfume aside.

    Perfume containing alcohol is excluded only when valued over $5 (19 CFR 10.153), which
    :func:`_r07` decides per line before it looks at the list: whatever the reference data
    lists for a perfume heading, its value condition holds.
    """
    found = c.on_list("EXCISE")
    if found is None or not found[0].startswith(perfume):
        return found
    hits = c.snap.list_hits
    for hts, origin in c.facts.hts_origins:
        if not hts.startswith(perfume):
            hit = hits(hts, origin).get("EXCISE")
            if hit is not None:
                return hts, origin, hit
    return None


def _r07(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.hts_origins and not f.descriptions:
        return NA
    excise = p["any_prefix"]
    for li in f.lines:
        h = li.hts
        if not h or not h.startswith(excise):  # the common case: one test per line
            continue
        if h.startswith(p["alcohol_prefixes"]):
            return {"hts": h, "category": "alcohol"}
        if h.startswith(p["tobacco_prefixes"]):
            return {"hts": h, "category": "tobacco"}
        if h.startswith(p["perfume_prefixes"]) and li.value > p["perfume_limit_usd"]:
            return {
                "hts": h,
                "category": "alcoholic_perfume",
                "value": _money(li.value),
                "limit": _money(p["perfume_limit_usd"]),
            }
    if c.snap.has_list("EXCISE"):
        found = _excise_listed(c, p["perfume_prefixes"])
        if found is not None:
            return {"hts": found[0], "category": "excise_list", "prefix": found[2].prefix}
    t = p["keyword_scan"][f.descriptions]
    if t is not None:
        return {"category": "description_keyword", "keyword": t}
    return None


def _r08(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.hts_origins or not c.snap.has_list("PGA"):
        return NA
    if c.on_list("PGA") is None:  # the lines' pairs are among the record's pairs
        return None
    hits = c.snap.list_hits
    manifest_release = f.release_path is _S321
    for li in f.lines:
        if not li.hts:
            continue
        hit = hits(li.hts, li.origin).get("PGA")
        if hit is None:
            continue
        if li.source == "manifest" and manifest_release:
            return {"hts": li.hts, "prefix": hit.prefix, "reason": "pga_goods_on_manifest_release"}
        if li.source == "entry86" and li.pga is None:
            return {"hts": li.hts, "prefix": hit.prefix, "reason": "type86_without_pga_data"}
    return None


def _certified(lines: tuple[Line, ...], agency: str) -> bool:
    """Some line's PGA data is from ``agency`` with a certificate or transaction id."""
    for li in lines:  # only the lines with PGA data (Facts.pga_lines)
        pga = li.pga
        if pga is not None and pga.agency.upper() == agency and pga.certificate_id:
            return True
    return False


def _r09(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.hts_origins or not c.snap.has_list("CPSC"):
        return NA
    if not c.regime.cpsc_efiling:
        return None
    if f.pga_lines and _certified(f.pga_lines, "CPSC"):
        return None
    found = c.on_list("CPSC")
    if found is not None:
        return {"hts": found[0], "prefix": found[2].prefix, "regime": c.regime.version}
    return None


# -- R10-R15: data quality and value ------------------------------------------------------------

_STOP = frozenset(
    {
        "AND",
        "OF",
        "THE",
        "FOR",
        "WITH",
        "IN",
        "ON",
        "A",
        "AN",
        "TO",
        "OR",
        "X",
        "PCS",
        "PC",
        "SET",
        "NEW",
        "ETC",
    }
)
_NUMERIC = re.compile(r"^[\s0-9.,#/\-]*$")


def _vague_text(d: str, deny: frozenset[str], min_words: int) -> tuple[tuple[str, str], ...] | None:
    """Why one description is vague (evidence items), or None."""
    words = _words(d)
    norm = " ".join(words)
    if _NUMERIC.match(d):
        return (("reason", "numeric_only"),)
    if norm in deny:
        return (("reason", "denylist"), ("term", norm))
    meaningful = sum(
        1 for w in words if len(w) > 1 and not w.isdigit() and w not in _STOP and w not in deny
    )
    if meaningful < min_words:
        return (
            ("reason", "too_few_words"),
            ("meaningful_words", str(meaningful)),
            ("minimum", str(min_words)),
        )
    return None


def _prepare_r10(p: Mapping[str, Any]) -> Mapping[str, Any]:
    deny: frozenset[str] = p["denylist"]
    min_words = int(p["min_meaningful_words"])
    return _prepared(
        p,
        min_meaningful_words=min_words,
        vague_of=BoundedMemo(lambda d: _vague_text(d, deny, min_words)),
    )


def _vague(c: Ctx) -> Evidence | None:
    """First vague goods description among the manifest / Type 86 lines (once per record;
    R10's parameters, also when R22 asks)."""
    out: Evidence | None = c._vague
    if out is _UNSET:
        vague_of = c.params["R10"]["vague_of"]
        out = None
        for i, li in enumerate(c.facts.lines):
            if li.description is None:
                continue  # a Type 86 line need not describe its goods (the HTS does)
            why = vague_of[li.description]
            if why is not None:
                out = {"line": str(i + 1), **dict(why)}
                break
        c._vague = out
    return out


def _r10(c: Ctx, p: Mapping[str, Any]) -> Result:
    if not c.facts.described:
        return NA
    return _vague(c)


def _chapters_of(snap: ReferenceSnapshot, text: str) -> tuple[frozenset[str], str, str] | None:
    """The HTS chapters the snapshot's keywords give a description (with the evidence text
    of chapters and keywords), or None when it names no keyword; kept in the snapshot's
    ``memo("R11")``, which :func:`_r11` reads first."""
    memo = snap.memo("R11")
    found = snap.keyword_chapters(Facts.terms(text))
    out = None
    if found:
        chapters = frozenset(found.values())
        out = (chapters, ";".join(sorted(chapters)), ";".join(sorted(found)))
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[text] = out
    return out


def _r11(c: Ctx, p: Mapping[str, Any]) -> Result:
    snap = c.snap
    if not snap.has_keywords:
        return NA
    applicable = False
    memo = snap.memo("R11")
    for li in c.facts.lines:
        if not li.hts or not li.description:
            continue
        applicable = True
        found = memo.get(li.description, _UNSET)
        if found is _UNSET:
            found = _chapters_of(snap, li.description)
        if found is not None and li.hts[:2] not in found[0]:
            return {
                "hts": li.hts,
                "declared_chapter": li.hts[:2],
                "description_chapters": found[1],
                "keywords": found[2],
            }
    return None if applicable else NA


def _weight_anomaly(c: Ctx) -> Evidence | _NotApplicable | None:
    out: Evidence | _NotApplicable | None = c._weight
    if out is not _UNSET:
        return out
    f = c.facts
    out = NA
    snap = c.snap
    if snap.has_bands:
        single = len(f.lines) == 1
        for li in f.lines:
            band = snap.band(li.hts[:6]) if li.hts else None
            if band is None:
                continue
            out = None
            weight = li.weight_kg if li.weight_kg else (f.weight_kg if single else None)
            if weight and weight > 0:
                per_kg = li.value / weight
                if (band.min_usd_per_kg is not None and per_kg < band.min_usd_per_kg) or (
                    band.max_usd_per_kg is not None and per_kg > band.max_usd_per_kg
                ):
                    out = {
                        "hts6": li.hts[:6] if li.hts else "",
                        "usd_per_kg": _money(per_kg),
                        "band": f"{_money(band.min_usd_per_kg)}-{_money(band.max_usd_per_kg)}",
                    }
                    break
            if li.quantity > 0:
                per_unit = li.value / li.quantity
                if (band.min_usd_per_unit is not None and per_unit < band.min_usd_per_unit) or (
                    band.max_usd_per_unit is not None and per_unit > band.max_usd_per_unit
                ):
                    out = {
                        "hts6": li.hts[:6] if li.hts else "",
                        "usd_per_unit": _money(per_unit),
                        "band": f"{_money(band.min_usd_per_unit)}-{_money(band.max_usd_per_unit)}",
                    }
                    break
    c._weight = out
    return out


def _r12(c: Ctx, p: Mapping[str, Any]) -> Result:
    return _weight_anomaly(c)


def _prepare_ratio(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, min_ratio=_dec(p["min_ratio"]))


def _r14(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if f.listed_price is None or f.declared_value is None:
        return NA
    qty = f.pilot_quantity or f.quantity or 1
    listed = f.listed_price * qty
    ratio = p["min_ratio"]
    if f.declared_value < listed * ratio:
        return {
            "declared_value": _money(f.declared_value),
            "listed_total": _money(listed),
            "min_ratio": str(ratio),
        }
    return None


def _prepare_r15(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, value_tolerance=_dec(p["value_tolerance"]))


def _r15(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    r = f.record
    m, pi, e = r.manifest, r.pilot, r.entry86
    if (m is None) + (pi is None) + (e is None) > 1:
        return NA
    mq = f.manifest_quantity
    pq = pi.quantity if pi is not None else None
    eq = f.entry_quantity
    # two present quantities differ (0 is present: "is not None", not truthiness)
    if mq is not None:
        quantity = (pq is not None and pq != mq) or (eq is not None and eq != mq)
    else:
        quantity = pq is not None and eq is not None and pq != eq
    value = False
    if m is not None and e is not None:
        a, b = f.manifest_value or _D0, f.entry_value or _D0
        if a != b:
            hi = a if a > b else b
            value = hi > 0 and abs(a - b) / hi > p["value_tolerance"]
    mo = m.origin_country if m is not None else None
    po = pi.origin_country if pi is not None else None
    eo = e.origin_country if e is not None else None
    origin = bool((mo and po and mo != po) or (mo and eo and mo != eo) or (po and eo and po != eo))
    deliver_to = False
    carrier: str | None = None
    if m is not None and pi is not None:
        here = m.consignee.address
        there = pi.deliver_to.address if pi.deliver_to is not None else None
        deliver_to = (
            there is not None
            and here is not None
            and there is not here
            and there != here
            and f.akey(there) != f.akey(here)
        )
        if (
            pi.carrier_code
            and pi.carrier_code != m.carrier_code
            and pi.carrier_code.upper() != m.carrier_code.upper()
        ):
            carrier = f"manifest={m.carrier_code};pilot={pi.carrier_code}"
    consignee = False
    if e is not None and m is not None:
        here, there = m.consignee.address, e.consignee.address
        consignee = (
            here is not None
            and there is not None
            and here is not there
            and here != there
            and f.akey(here) != f.akey(there)
        )
    if not (quantity or value or origin or deliver_to or carrier is not None or consignee):
        return None
    ev: Evidence = {}
    if quantity:
        pairs = (("manifest", mq), ("pilot", pq), ("entry86", eq))
        ev["quantity"] = ";".join(f"{k}={v}" for k, v in pairs if v is not None)
    if value:
        ev["value"] = (
            f"manifest={_money(f.manifest_value or _D0)};entry86={_money(f.entry_value or _D0)}"
        )
    if origin:
        ev["origin"] = ";".join(
            f"{k}={v}" for k, v in (("manifest", mo), ("pilot", po), ("entry86", eo)) if v
        )
    if deliver_to:
        ev["deliver_to"] = "differs"
    if carrier is not None:
        ev["carrier"] = carrier
    if consignee:
        ev["consignee_address"] = "differs"
    return ev


def _r16(c: Ctx, p: Mapping[str, Any]) -> Result:
    if not c.regime.pilot:
        return NA
    r = c.facts.record
    if r.pilot_deadline_passed:  # late pilot data is not advance data: it does not clear R16
        return {"reason": "no_pilot_data_by_deadline"}
    pilot = r.pilot
    if pilot is None:
        return NA
    if pilot.seller is not None and pilot.deliver_to is not None:
        return None
    missing = [
        n for n, v in (("seller", pilot.seller), ("deliver_to", pilot.deliver_to)) if v is None
    ]
    return {"reason": "incomplete_pilot_data", "missing": ";".join(missing)}


# -- R17-R23: parties and profiles --------------------------------------------------------------

_US_ZIP = re.compile(r"^[0-9]{5}(-?[0-9]{4})?$")


def _r17_reasons(party: Party, placeholders: frozenset[str], min_letters: int) -> str | None:
    """Why a consignee looks fictitious (``;``-joined reasons), or None."""
    reasons: list[str] = []
    name = " ".join(_words(party.name))
    if name in placeholders:
        reasons.append("placeholder_name")
    if sum(map(str.isalpha, name)) < min_letters:
        reasons.append("name_too_short")
    addr = party.address
    if addr is None:
        reasons.append("no_address")
    else:
        if not addr.line1.strip() or not addr.city.strip():
            reasons.append("address_incomplete")
        if addr.country == "US" and not _US_ZIP.match((addr.postal_code or "").strip()):
            reasons.append("invalid_us_postal_code")
    return ";".join(reasons) or None


def _prepare_r17(p: Mapping[str, Any]) -> Mapping[str, Any]:
    # memoised by the fields the reasons read (not by the dataclass, whose hash is slow)
    return _prepared(p, min_name_letters=int(p["min_name_letters"]), reasons_of={})


def _r17(c: Ctx, p: Mapping[str, Any]) -> Result:
    party = c.facts.consignee
    if party is None:
        return NA
    a = party.address
    key = (party.name,) if a is None else (party.name, a.line1, a.city, a.country, a.postal_code)
    memo: dict[tuple[str | None, ...], str | None] = p["reasons_of"]
    if key in memo:
        reasons = memo[key]
    else:
        reasons = _r17_reasons(party, p["placeholder_names"], p["min_name_letters"])
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = reasons
    if reasons:
        return {"reasons": reasons, "consignee_key": c.facts.pkey(party)}
    return None


def _prepare_r18(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(
        p,
        max_names_per_day=int(p["max_names_per_day"]),
        max_parcels_per_day=int(p["max_parcels_per_day"]),
    )


def _r18(c: Ctx, p: Mapping[str, Any]) -> Result:
    party = c.facts.consignee
    if party is None or party.address is None:
        return NA
    ak = c.facts.akey(party.address)
    if c.snap.has_reshippers and c.snap.is_reshipper(ak):
        return {"reason": "reshipper_list", "address_key": ak}
    a = c.agg
    if not a.available:
        return {"state": "unavailable", "address_key": ak}
    if a.address_day_names is None or a.address_day_parcels is None:
        return None if c.snap.has_reshippers else NA
    names, parcels = p["max_names_per_day"], p["max_parcels_per_day"]
    if a.address_day_names > names or a.address_day_parcels > parcels:
        return {
            "reason": "address_concentration",
            "address_key": ak,
            "distinct_names": str(a.address_day_names),
            "parcels": str(a.address_day_parcels),
            "limits": f"names>{names};parcels>{parcels}",
        }
    return None


def _prepare_r19(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, min_score=float(p["min_score"]))


def _r19(c: Ctx, p: Mapping[str, Any]) -> Result:
    snap = c.snap
    if not snap.has_watchlist:
        return NA
    cutoff = p["min_score"]
    # (name, country) -> matches, for this snapshot and cutoff (the snapshot's own memo of
    # watch_matches is keyed the same way, behind a method call and a longer key)
    memo = snap.memo(("R19", cutoff))
    best: tuple[float, str, Any, Party] | None = None
    count = 0
    for role, party in c.facts.parties:
        key = (party.name, party.address.country if party.address else None)
        matches = memo.get(key)
        if matches is None:
            matches = snap.watch_matches(key[0], key[1], cutoff)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[key] = matches
        for m in matches:
            count += 1
            rank = (1 if m.entry.severity == "CRITICAL" else 0) * 1000 + m.score
            if best is None or rank > best[0]:
                best = (rank, role, m, party)
    if best is None:
        return None
    _, role, match, party = best
    sev = Severity.CRITICAL if match.entry.severity == "CRITICAL" else Severity.HIGH
    return sev, {
        "list": match.entry.list,
        "entry": match.entry.entry_id,
        "score": f"{match.score:.1f}",
        "role": role,
        "party_key": c.facts.pkey(party),
        "matches": str(count),
    }


def _location_terms(c: Ctx, words: frozenset[str]) -> bool:
    for _, party in c.facts.parties:
        a = party.address
        if a is None:
            continue
        for part in (a.region, a.city, a.line1):
            if part and any(t in words for t in c.facts.terms(part)):
                return True
    return False


def _r20(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.hts_origins or not c.snap.has_list("FORCED_LABOUR"):
        return NA
    found = c.on_list("FORCED_LABOUR")
    if found is None:
        return None
    located = _location_terms(c, p["region_terms"])
    no_maker = not any(role == "manufacturer" for role, _ in f.parties)
    if located or no_maker:
        hts, origin, hit = found
        return {
            "hts": hts,
            "origin": origin or "unknown",
            "prefix": hit.prefix,
            "region_location": str(located).lower(),
            "manufacturer_unknown": str(no_maker).lower(),
        }
    return None


def _prepare_r21(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, keyword_scan=_keyword_scan(p["keywords"]))


def _r21(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.hts_origins and not f.descriptions:
        return NA
    if f.pga_lines and _certified(f.pga_lines, "DEA"):
        return None
    if c.snap.has_list("PILL_PRESS"):
        found = c.on_list("PILL_PRESS")
        if found is not None:
            return {"hts": found[0], "prefix": found[2].prefix, "dea_transaction_id": "missing"}
    t = p["keyword_scan"][f.descriptions]
    if t is not None:
        return {"keyword": t, "dea_transaction_id": "missing"}
    return None


def _prepare_r22(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, min_signals=int(p["min_signals"]))


def _r22(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not f.lines:
        return NA
    signals: list[str] = []
    if _vague(c) is not None:
        signals.append("generic_description")
    if isinstance(_weight_anomaly(c), dict):
        signals.append("weight_anomaly")
    if c.agg.available and c.agg.consignee_history == 1:
        signals.append("first_time_consignee")
    snap = c.snap
    if snap.has_seizures:
        if f.consignee is not None and snap.seized("CONSIGNEE", f.pkey(f.consignee)):
            signals.append("consignee_prior_seizure")
        if f.seller is not None and snap.seized("SELLER", f.pkey(f.seller)):
            signals.append("seller_prior_seizure")
    if f.origin in p["risk_origins"]:
        signals.append("risk_origin")
    if len(signals) >= p["min_signals"]:
        return {"signals": ";".join(signals), "count": str(len(signals))}
    return None


def _prepare_r23(p: Mapping[str, Any]) -> Mapping[str, Any]:
    return _prepared(p, max_price_fraction=_dec(p["max_price_fraction"]))


def _brands_of(snap: ReferenceSnapshot, text: str) -> tuple[Any, ...]:
    """The protected brands a description names, kept in the snapshot's ``memo("R23")``,
    which :func:`_r23` reads first."""
    memo = snap.memo("R23")
    found = tuple(snap.brands_in(Facts.terms(text)))
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[text] = found
    return found


def _r23(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if not c.snap.has_brands or not f.descriptions:
        return NA
    fraction = p["max_price_fraction"]
    seller_id = f.seller.party_id if f.seller is not None else None
    memo = c.snap.memo("R23")
    for li in f.lines:
        if not li.description:
            continue
        brands = memo.get(li.description)
        if brands is None:
            brands = _brands_of(c.snap, li.description)
        for brand in brands:
            if seller_id is not None and seller_id in brand.authorised_sellers:
                continue
            unit = (
                f.listed_price
                if f.listed_price is not None
                else (li.value / li.quantity if li.quantity > 0 else li.value)
            )
            if unit < brand.reference_price_usd * fraction:
                return {
                    "brand": brand.brand,
                    "unit_price": _money(unit),
                    "reference_price": _money(brand.reference_price_usd),
                    "max_fraction": str(fraction),
                    "seller_authorised": "false",
                }
    return None


# -- R24-R26: origin, entry integrity, filer ----------------------------------------------------

_ISO2: Final = frozenset(
    [
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "XK",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    ]
)


def _r24(c: Ctx, p: Mapping[str, Any]) -> Result:
    f = c.facts
    if f.record.manifest is None and f.record.entry86 is None:
        return NA
    if f.origin is None:
        return {"reason": "origin_missing"}
    if not _ISO2.issuperset(f.origins):
        bad = sorted(o for o in f.origins if o is not None and o not in _ISO2)
        if bad:
            return {"reason": "origin_invalid", "origin": ";".join(bad)}
    hubs: frozenset[str] = p["transshipment_hubs"]
    watched: frozenset[str] = p["watched_origins"]
    if f.shipper_country in hubs and f.origin == f.shipper_country:
        others = {o for o in f.origins if o in watched}
        makers = {
            party.address.country
            for role, party in f.parties
            if role == "manufacturer" and party.address is not None
        }
        linked = sorted(others | (makers & watched))
        if linked:
            return {
                "reason": "transshipment_pattern",
                "origin": f.origin,
                "shipper_country": f.shipper_country,
                "linked_origins": ";".join(linked),
            }
    return None


_MULTI_BILL = re.compile(r"[,;/\s]")


def _number_problem(entry_number: str, check_digit: bool) -> str | None:
    """What is wrong with an entry number's form or check digit, or None."""
    fault = entry_number_fault(entry_number)
    if fault == "format":
        return "entry_number_format"
    if fault == "check_digit" and check_digit:
        return "bad_check_digit"
    return None


_MULTI_BILLS = BoundedMemo(lambda bill: _MULTI_BILL.search(bill.strip()) is not None)


def _prepare_r25(p: Mapping[str, Any]) -> Mapping[str, Any]:
    check = bool(p["check_digit"])
    return _prepared(p, number_problem=BoundedMemo(lambda n: _number_problem(n, check)))


def _r25(c: Ctx, p: Mapping[str, Any]) -> Result:
    """The entry on file, if any (a Type 86 shipment without one is held by the engine, which
    reports it under R25 too: see :func:`s321.rules.engine.evaluate`)."""
    r = c.facts.record
    e = r.entry86
    if e is None:
        return None if r.manifest is not None and c.facts.release_path is _TYPE86 else NA
    number: str | None = p["number_problem"][e.entry_number]
    multi: bool = _MULTI_BILLS[e.bill_number]
    # due by the rule in force on the arrival date; without a manifest there is no arrival
    # to be late for (Facts.arrival is then the filing time itself)
    due = c.regime.type86_due(c.facts.arrival) if r.manifest is not None else None
    late = due is not None and e.filed_at > due
    duplicate = len(r.entry_numbers) > 1 or (
        c.agg.available and c.agg.bill_entries is not None and c.agg.bill_entries > 1
    )
    if number is None and not multi and not late and not duplicate:
        return None
    reasons = [number] if number is not None else []
    if multi:
        reasons.append("more_than_one_bill")
    if late:
        reasons.append(
            "filed_after_arrival" if c.regime.type86_filing_days == 0 else "filed_after_deadline"
        )
    if duplicate:
        reasons.append("duplicate_entry_for_bill")
    ev = {"reasons": ";".join(reasons), "filer_code": e.filer_code}
    if late and due is not None:
        ev["due"] = eastern_text(due)
    return ev


def eastern_text(when: datetime) -> str:
    """An instant as U.S. Eastern wall-clock text to the second (how deadlines are stated)."""
    return when.astimezone(EASTERN).isoformat(timespec="seconds")


def _r26(c: Ctx, p: Mapping[str, Any]) -> Result:
    code = c.facts.filer_code
    if code is None or not c.snap.has_filers:
        return NA
    risk = c.snap.filer_risk(code)
    if risk is None:
        return None
    return {"filer_code": code, "risk": risk}


# -- the catalogue ------------------------------------------------------------------------------

_S = Severity

CATALOGUE: Final[tuple[RuleSpec, ...]] = (
    RuleSpec(
        "R01",
        1,
        _S.CRITICAL,
        "REGIME_INELIGIBLE",
        "the regime in force at arrival excludes this shipment from Section 321",
        "EO 14256; EO 14324; CSMS 66065494",
        _r01,
        action=_ENTRY,
    ),
    RuleSpec(
        "R02",
        1,
        _S.CRITICAL,
        "VALUE_OVER_THRESHOLD",
        "declared value over the de minimis threshold (gifts: over the gift limit)",
        "19 USC 1321; 19 CFR 10.151-152",
        _r02,
        {"threshold_usd": 0},
        action=_ENTRY,
        prepare=_prepare_threshold,
    ),
    RuleSpec(
        "R03",
        1,
        _S.HIGH,
        "PERSON_DAY_AGGREGATE",
        "one person's shipments on one day sum over the threshold",
        "19 CFR 10.151; ACE code 4M",
        _r03,
        {"threshold_usd": 0},
        action=_ENTRY,
        prepare=_prepare_threshold,
    ),
    RuleSpec(
        "R04",
        1,
        _S.HIGH,
        "SPLIT_LOTS",
        "an order or seller-consignee pair split into parcels summing over the threshold "
        "within the window, or one bill on two Type 86 entries",
        "19 USC 1321(a)(2); CBP broker suspensions 2024",
        _r04,
        {"threshold_usd": 0, "window_hours": 72},
        action=_ENTRY,
        prepare=_prepare_threshold,
    ),
    RuleSpec(
        "R05",
        1,
        _S.CRITICAL,
        "ADCVD_GOODS",
        "HTS and origin within an AD/CVD scope list",
        "CBP e-commerce FAQ",
        _r05,
        action=_ENTRY,
    ),
    RuleSpec(
        "R06",
        1,
        _S.MEDIUM,
        "TRADE_ACTION_GOODS",
        "goods subject to Section 201/232/301 duties (proposed, never finalised)",
        "90 FR 6852",
        _r06,
        default_enabled=False,
        action=_ENTRY,
    ),
    RuleSpec(
        "R07",
        1,
        _S.CRITICAL,
        "EXCISE_GOODS",
        "alcohol, tobacco, or alcoholic perfume over $5",
        "19 CFR 10.153",
        _r07,
        {
            "alcohol_prefixes": ["2203", "2204", "2205", "2206", "2207", "2208"],
            "tobacco_prefixes": ["24"],
            "perfume_prefixes": ["3303"],
            "perfume_limit_usd": 5,
            "keywords": [
                "WINE",
                "VODKA",
                "WHISKY",
                "WHISKEY",
                "BEER",
                "LIQUOR",
                "RUM",
                "CIGARETTE",
                "CIGARETTES",
                "CIGAR",
                "CIGARS",
                "TOBACCO",
            ],
        },
        action=_ENTRY,
        prepare=_prepare_r07,
    ),
    RuleSpec(
        "R08",
        1,
        _S.HIGH,
        "PGA_ON_MANIFEST_RELEASE",
        "PGA-regulated goods asking for release from manifest, or Type 86 without PGA data",
        "19 CFR 143; CBP Type 86 FAQ",
        _r08,
        action="provide PGA data",
    ),
    RuleSpec(
        "R09",
        1,
        _S.HIGH,
        "CPSC_CERTIFICATE_MISSING",
        "CPSC-regulated goods without certificate data once eFiling is mandatory",
        "90 FR 1800",
        _r09,
        action="provide a CPSC certificate",
    ),
    RuleSpec(
        "R10",
        1,
        _S.MEDIUM,
        "VAGUE_DESCRIPTION",
        "goods description on the denylist, numeric only or too short",
        "CSMS 62081967",
        _r10,
        {
            "denylist": [
                "gift",
                "gifts",
                "daily necessities",
                "accessories",
                "parts",
                "freight of all kinds",
                "FAK",
                "goods",
                "sample",
                "samples",
                "general merchandise",
                "consolidated",
                "said to contain",
                "STC",
                "misc",
                "miscellaneous",
                "various",
                "items",
                "products",
                "merchandise",
                "stuff",
                "personal effects",
                "household goods",
            ],
            "min_meaningful_words": 3,
        },
        action="correct the description",
        prepare=_prepare_r10,
    ),
    RuleSpec(
        "R11",
        1,
        _S.MEDIUM,
        "DESCRIPTION_HTS_MISMATCH",
        "the description's HTS chapter disagrees with the declared HTS chapter",
        "CBP guidance to brokers, 2024",
        _r11,
        action="correct the description",
    ),
    RuleSpec(
        "R12",
        1,
        _S.MEDIUM,
        "VALUE_WEIGHT_ANOMALY",
        "value per kg or per unit outside the HTS-6 reference band",
        "CBP statements on 'junk data', 2024",
        _r12,
    ),
    RuleSpec(
        "R13",
        1,
        _S.MEDIUM,
        "FREIGHT_EXCEEDS_VALUE",
        "freight charge exceeds declared value",
        "CBP case reports",
        None,
        default_condition="freight_charge > declared_value",
    ),
    RuleSpec(
        "R14",
        1,
        _S.HIGH,
        "UNDERVALUED_VS_LISTED",
        "declared value under a fraction of the listed price times quantity",
        "pilot listed-price element",
        _r14,
        {"min_ratio": 0.5},
        prepare=_prepare_ratio,
    ),
    RuleSpec(
        "R15",
        1,
        _S.HIGH,
        "CROSS_PARTY_INCONSISTENCY",
        "manifest, pilot and Type 86 disagree on quantity, value, origin or deliver-to",
        "pilot purpose (multi-party data)",
        _r15,
        {"value_tolerance": 0.2},
        prepare=_prepare_r15,
    ),
    RuleSpec(
        "R16",
        1,
        _S.LOW,
        "MISSING_ADVANCE_DATA",
        "no pilot data by the deadline, or pilot data without seller or deliver-to",
        "CBP informational note on the Section 321 Data Pilot, 2023",
        _r16,
        action="provide Section 321 Data Pilot data",
    ),
    RuleSpec(
        "R17",
        1,
        _S.MEDIUM,
        "FICTITIOUS_CONSIGNEE",
        "placeholder or fictional consignee name, or invalid address",
        "CBP guidance to brokers, 2024",
        _r17,
        {
            "placeholder_names": [
                "test",
                "n/a",
                "na",
                "none",
                "unknown",
                "consignee",
                "customer",
                "receiver",
                "recipient",
                "john doe",
                "jane doe",
                "mickey mouse",
                "donald duck",
                "xxx",
                "asdf",
                "abc",
                "name",
                "to whom it may concern",
            ],
            "min_name_letters": 3,
        },
        prepare=_prepare_r17,
    ),
    RuleSpec(
        "R18",
        1,
        _S.MEDIUM,
        "ADDRESS_CONCENTRATION",
        "address on a reshipper list, or many names or parcels per day at one address",
        "CBP ruling on warehouses as 'person', 2020",
        _r18,
        {"max_names_per_day": 5, "max_parcels_per_day": 20},
        prepare=_prepare_r18,
    ),
    RuleSpec(
        "R19",
        1,
        _S.HIGH,
        "WATCHLISTED_PARTY",
        "a party fuzzily matches a watch-list entry (severity from the entry)",
        "UFLPA; OFAC",
        _r19,
        {"min_score": 90},
        prepare=_prepare_r19,
    ),
    RuleSpec(
        "R20",
        1,
        _S.HIGH,
        "FORCED_LABOUR_SECTOR",
        "high-priority sector with a Xinjiang location or an unknown manufacturer",
        "UFLPA strategy",
        _r20,
        {
            "region_terms": [
                "XINJIANG",
                "URUMQI",
                "KASHGAR",
                "HOTAN",
                "AKSU",
                "TURPAN",
                "KORLA",
                "SHIHEZI",
                "KARAMAY",
                "YINING",
                "CHANGJI",
            ]
        },
    ),
    RuleSpec(
        "R21",
        1,
        _S.CRITICAL,
        "PILL_PRESS_NO_DEA",
        "tableting machine, punches or dies without a DEA transaction id",
        "21 USC 843(a)(6)-(7); DEA Form 452",
        _r21,
        {
            "keywords": [
                "PILL PRESS",
                "TABLET PRESS",
                "TABLETING",
                "TDP",
                "PUNCH DIE",
                "PUNCHES",
                "ENCAPSULATOR",
                "ENCAPSULATION MACHINE",
            ]
        },
        prepare=_prepare_r21,
    ),
    RuleSpec(
        "R22",
        1,
        _S.HIGH,
        "NARCOTICS_PROFILE",
        "generic description, weight anomaly, first-time consignee, prior seizure link "
        "or risk origin in combination",
        "CBP seizure reports",
        _r22,
        {"min_signals": 3, "risk_origins": ["CN", "HK", "IN", "MX"]},
        prepare=_prepare_r22,
    ),
    RuleSpec(
        "R23",
        1,
        _S.HIGH,
        "COUNTERFEIT_IPR",
        "protected brand at a fraction of its reference price by an unauthorised seller",
        "CBP IPR seizure statistics",
        _r23,
        {"max_price_fraction": 0.3},
        prepare=_prepare_r23,
    ),
    RuleSpec(
        "R24",
        1,
        _S.MEDIUM,
        "ORIGIN_INCONSISTENCY",
        "origin missing or invalid, or a transshipment pattern",
        "CSMS 64825584",
        _r24,
        {
            "transshipment_hubs": ["VN", "MY", "TH", "KH", "ID", "MX"],
            "watched_origins": ["CN", "HK"],
        },
    ),
    RuleSpec(
        "R25",
        1,
        _S.MEDIUM,
        "TYPE86_INTEGRITY",
        "bad entry number or check digit, more than one bill, filed late (after arrival from "
        "2024-04-13; after the 15th calendar day after arrival before), or a duplicate entry "
        "for one bill",
        "84 FR 40079; 89 FR 2630",
        _r25,
        {"check_digit": True},
        action="correct the Type 86 entry",
        prepare=_prepare_r25,
    ),
    RuleSpec(
        "R26",
        1,
        _S.MEDIUM,
        "FILER_RISK",
        "filer on a suspension or high-violation list",
        "CBP broker suspensions, 2024",
        _r26,
    ),
)
