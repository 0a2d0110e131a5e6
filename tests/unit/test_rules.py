"""The rule catalogue and ``evaluate``: each rule fires on its evidence, and the outcome."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from s321.entry_number import check_digit, format_entry_number, make_entry_number
from s321.models import (
    Action,
    Address,
    CompleteRecord,
    Entry86,
    Entry86Line,
    EventHeader,
    FilerType,
    LineItem,
    ManifestEvent,
    Mode,
    Outcome,
    Party,
    PgaData,
    PilotRecord,
    ReleasePath,
    Severity,
    engine_error_hit,
)
from s321.refdata import ReferenceSnapshot
from s321.regime import EASTERN
from s321.rules import (
    CATALOGUE,
    ENGINE_ERROR,
    ENTRY_ACTION,
    ENTRY_MISSING,
    ENTRY_PENDING,
    TYPE86_ACTION,
    default_ruleset,
    evaluate,
    parse_ruleset,
)
from s321.rules.aggregates import Aggregates
from s321.rules.catalogue import Ctx
from s321.rules.engine import REVIEW_ACTION

FIXTURE = Path(__file__).parent / "test_rules_fixture"
T = datetime(2024, 9, 2, 16, 0, tzinfo=UTC)  # pilot era, Type 86 arrival rule in force

CONSIGNEE_ADDR = Address("12 Elm Street", "Newark", "US", "NJ", "07102")
SELLER = Party("Shenzhen Good Shirts Ltd", Address("8 Bao An Road", "Shenzhen", "CN"), "S-1")


def snapshot() -> ReferenceSnapshot:
    return SNAP


SNAP = ReferenceSnapshot.from_directory(FIXTURE)


def manifest(**kw: Any) -> ManifestEvent:
    """A clean manifest: one cotton T-shirt line from CN to a U.S. consignee."""
    base: dict[str, Any] = dict(
        header=EventHeader("m-1", T - timedelta(hours=6), "CARR1"),
        house_bill="HB1",
        tracking_number=None,
        master_bill="MB1",
        carrier_code="CARR",
        mode=Mode.AIR,
        port_of_entry="4701",
        estimated_arrival=T,
        shipper=SELLER,
        consignee=Party("Maria Lopez", CONSIGNEE_ADDR),
        origin_country="CN",
        lines=(
            LineItem(
                "Mens cotton crew neck T-shirt",
                2,
                Decimal("20.00"),
                Decimal("0.5"),
                "6109100012",
                "CN",
            ),
        ),
        shipping_weight_kg=Decimal("0.5"),
    )
    base.update(kw)
    return ManifestEvent(**base)


def pilot(**kw: Any) -> PilotRecord:
    """Complete pilot data agreeing with :func:`manifest`."""
    base: dict[str, Any] = dict(
        header=EventHeader("p-1", T - timedelta(hours=8), "MKT1"),
        originator_code="MKT1",
        filer_type=FilerType.ONLINE_MARKETPLACE,
        mode=Mode.AIR,
        house_bill="HB1",
        carrier_code="CARR",
        seller=SELLER,
        deliver_to=Party("Maria Lopez", CONSIGNEE_ADDR),
        listed_price=Decimal("10.00"),
        quantity=2,
        origin_country="CN",
    )
    base.update(kw)
    return PilotRecord(**base)


def _entry_number(filer: str = "ABC", serial: str = "1234567") -> str:
    return make_entry_number(filer, int(serial))


def entry86(**kw: Any) -> Entry86:
    """A Type 86 entry filed before arrival, agreeing with :func:`manifest`."""
    base: dict[str, Any] = dict(
        header=EventHeader("e-1", T - timedelta(hours=4), "BRK1"),
        bill_number="HB1",
        entry_number=_entry_number(),
        port_of_entry="4701",
        shipper=SELLER,
        consignee=Party("Maria Lopez", CONSIGNEE_ADDR),
        origin_country="CN",
        lines=(Entry86Line("6109100012", 2, Decimal("20.00"), "Mens cotton crew neck T-shirt"),),
        filed_at=T - timedelta(hours=4),
    )
    base.update(kw)
    return Entry86(**base)


def record(
    m: ManifestEvent | None = None,
    p: PilotRecord | None = None,
    e: Entry86 | None = None,
    *,
    with_pilot: bool = True,
    deadline: bool = False,
    entry_deadline: bool = False,
) -> CompleteRecord:
    return CompleteRecord(
        "HB1",
        m if m is not None else manifest(),
        p if p is not None else (pilot() if with_pilot else None),
        e,
        pilot_deadline_passed=deadline,
        entry_deadline_passed=entry_deadline,
    )


AGG = Aggregates(
    person_day_total=Decimal(20),
    person_day_count=1,
    pair_total=Decimal(20),
    pair_count=1,
    address_day_parcels=1,
    address_day_names=1,
    consignee_history=3,
)


def run(rec: CompleteRecord, agg: Aggregates = AGG, ruleset: Any = None) -> Any:
    return evaluate(rec, ruleset or default_ruleset(), SNAP, agg)


def hit_ids(rec: CompleteRecord, agg: Aggregates = AGG) -> set[str]:
    return {h.rule_id for h in run(rec, agg).hits}


def test_catalogue_has_every_rule_r01_to_r26_with_metadata() -> None:
    """The catalogue lists R01-R26 once each, each with version, reason code and source."""
    assert [s.id for s in CATALOGUE] == [f"R{i:02d}" for i in range(1, 27)]
    for s in CATALOGUE:
        assert s.version >= 1
        assert s.reason_code
        assert s.description
        assert s.source


def test_clean_record_is_released_with_versions_recorded() -> None:
    """A complete, consistent, low-value record is released and names its versions."""
    ev = run(record())
    assert ev.outcome is Outcome.RELEASE, ev.hits
    assert ev.hits == ()
    assert ev.regime_version == "2024-type86-arrival"
    assert ev.ruleset_version == default_ruleset().version
    assert ev.refdata_version == "fx-1"
    assert ev.eligible


def test_rules_without_their_data_report_not_applicable() -> None:
    """With an empty snapshot, list-based rules are reported not-applicable, not passed."""
    ev = evaluate(record(), default_ruleset(), ReferenceSnapshot.empty(), AGG)
    assert {"R05", "R08", "R09", "R11", "R12", "R19", "R20", "R23", "R26"} <= set(ev.not_applicable)


def test_value_over_threshold_holds_with_entry_action() -> None:
    """R02 fires above $800 and the hold asks for an entry."""
    m = manifest(
        lines=(
            LineItem(
                "Mens cotton crew neck T-shirt",
                2,
                Decimal("800.01"),
                Decimal("0.5"),
                "6109100012",
                "CN",
            ),
        )
    )
    ev = run(record(m, with_pilot=False))
    hit = next(h for h in ev.hits if h.rule_id == "R02")
    assert hit.evidence["declared_value"] == "800.01"
    assert hit.evidence["threshold"] == "800.00"
    assert ev.outcome is Outcome.HOLD
    assert ENTRY_ACTION in ev.required_actions


def test_gift_threshold_is_100() -> None:
    """A gift at $150 is over the $100 gift limit (19 CFR 10.152)."""
    m = manifest(
        gift=True,
        lines=(
            LineItem("Mens cotton crew neck T-shirt", 2, Decimal("150"), None, "6109100012", "CN"),
        ),
    )
    assert "R02" in hit_ids(record(m))


@pytest.mark.parametrize(
    ("total", "count", "fires"), [("801", 2, True), ("800", 2, False), ("900", 1, False)]
)
def test_person_day_aggregate(total: str, count: int, fires: bool) -> None:
    """R03 fires when one person's shipments on a day sum over $800 (two or more)."""
    agg = dataclasses.replace(AGG, person_day_total=Decimal(total), person_day_count=count)
    assert ("R03" in hit_ids(record(), agg)) is fires


def test_cross_shipment_rules_hold_when_state_unavailable() -> None:
    """With the state store down, R03, R04 and R18 fire and the shipment holds."""
    ev = run(record(), Aggregates.unavailable())
    assert {"R03", "R04", "R18"} <= {h.rule_id for h in ev.hits}
    assert ev.outcome is Outcome.HOLD


def test_split_lots_and_duplicate_type86() -> None:
    """R04 fires on a pair total over $800 within the window and on two entries for a bill."""
    agg = dataclasses.replace(AGG, pair_total=Decimal(900), pair_count=3)
    assert "R04" in hit_ids(record(), agg)
    agg = dataclasses.replace(AGG, bill_entries=2)
    assert "R04" in hit_ids(record(), agg)
    assert "R04" not in hit_ids(record(), AGG)


def _line(
    hts: str,
    desc: str = "Mens cotton crew neck T-shirt",
    value: str = "20",
    pga: PgaData | None = None,
    origin: str = "CN",
) -> LineItem:
    return LineItem(desc, 2, Decimal(value), Decimal("0.5"), hts, origin, pga=pga)


@pytest.mark.parametrize(
    ("hts", "origin", "rule"),
    [
        ("7318150000", "CN", "R05"),
        ("2402100000", "DE", "R07"),
        ("2204210000", "FR", "R07"),
        ("3004900000", "IN", "R08"),
        ("8479300000", "CN", "R21"),
    ],
)
def test_list_rules_fire_on_listed_goods(hts: str, origin: str, rule: str) -> None:
    """Goods on an AD/CVD, excise, PGA or pill-press list fire their rule."""
    m = manifest(
        origin_country=origin, lines=(_line(hts, "Steel parts for machines use", origin=origin),)
    )
    assert rule in hit_ids(record(m, pilot(origin_country=origin)))


def test_adcvd_respects_origin() -> None:
    """A fastener from Germany is outside a CN-only AD/CVD scope."""
    m = manifest(origin_country="DE", lines=(_line("7318150000", origin="DE"),))
    assert "R05" not in hit_ids(record(m, pilot(origin_country="DE")))


def test_trade_action_rule_is_off_by_default() -> None:
    """R06 is disabled in the default rule set (never finalised)."""
    m = manifest(lines=(_line("8541400000", "Solar cells for panels mono"),))
    assert "R06" not in hit_ids(record(m))


def test_perfume_over_five_dollars_is_excise() -> None:
    """Alcoholic perfume (3303) fires R07 over $5 and not at $5."""
    m = manifest(lines=(_line("3303003000", "Eau de parfum spray bottle", "6"),))
    assert "R07" in hit_ids(record(m))
    m = manifest(lines=(_line("3303003000", "Eau de parfum spray bottle", "5"),))
    assert "R07" not in hit_ids(record(m))


def test_pga_type86_without_pga_data_and_with_it() -> None:
    """R08 fires on a Type 86 line of PGA goods without PGA data and not when it has it."""
    m = manifest(
        release_path=ReleasePath.TYPE_86,
        lines=(_line("3004900000", "Vitamin C tablets bottle pack"),),
    )
    e = entry86(lines=(Entry86Line("3004900000", 2, Decimal("20"), "Vitamin tablets"),))
    assert "R08" in hit_ids(record(m, e=e))
    e = entry86(
        lines=(
            Entry86Line("3004900000", 2, Decimal("20"), "Vitamin tablets", PgaData("FDA", "DRU")),
        )
    )
    assert "R08" not in hit_ids(record(m, e=e))


def test_cpsc_certificate_required_only_from_2026_07_08() -> None:
    """R09 fires for toys without a certificate after eFiling starts, not before."""
    lines = (_line("9503000073", "Plastic building blocks toy set", origin="VN"),)
    before = manifest(
        origin_country="VN", lines=lines, estimated_arrival=datetime(2026, 7, 8, 3, 59, tzinfo=UTC)
    )
    after = manifest(
        origin_country="VN", lines=lines, estimated_arrival=datetime(2026, 7, 8, 4, 0, tzinfo=UTC)
    )
    p = pilot(origin_country="VN")
    assert "R09" not in hit_ids(record(before, p))
    ev = run(record(after, p))
    assert "R09" in {h.rule_id for h in ev.hits}
    assert "provide a CPSC certificate" in ev.required_actions


@pytest.mark.parametrize("desc", ["gift", "Daily necessities", "12345", "parts", "shirt"])
def test_vague_descriptions_fire(desc: str) -> None:
    """R10 fires on denylisted, numeric-only or too-short descriptions."""
    m = manifest(lines=(_line("6109100012", desc),))
    ev = run(record(m))
    assert "R10" in {h.rule_id for h in ev.hits}
    assert "correct the description" in ev.required_actions


def test_description_chapter_mismatch() -> None:
    """R11 fires when the description's keywords point to another HTS chapter."""
    m = manifest(lines=(_line("9503000073", "Leather running shoes for men"),))
    hit = next(h for h in run(record(m)).hits if h.rule_id == "R11")
    assert hit.evidence["declared_chapter"] == "95"
    assert hit.evidence["description_chapters"] == "64"


def test_value_per_kg_outside_band() -> None:
    """R12 fires when value per kg falls outside the HTS-6 band."""
    m = manifest(
        lines=(
            LineItem(
                "Mens cotton crew neck T-shirt", 2, Decimal("2"), Decimal("1"), "6109100012", "CN"
            ),
        )
    )
    assert "R12" in hit_ids(record(m))


def test_freight_exceeds_value_by_condition() -> None:
    """R13 (a rule-set condition) fires when freight exceeds value, n/a without freight."""
    assert "R13" in hit_ids(record(manifest(freight_charge=Decimal("25"))))
    ev = run(record())
    assert "R13" in ev.not_applicable


def test_undervaluation_against_listed_price() -> None:
    """R14 fires when declared value is under half the listed price times quantity."""
    assert "R14" in hit_ids(record(p=pilot(listed_price=Decimal("25"))))
    assert "R14" not in hit_ids(record(p=pilot(listed_price=Decimal("15"))))


def test_cross_party_inconsistency() -> None:
    """R15 fires when pilot quantity, origin or carrier disagree with the manifest."""
    hit = next(
        h for h in run(record(p=pilot(quantity=5, carrier_code="OTHR"))).hits if h.rule_id == "R15"
    )
    assert "quantity" in hit.evidence
    assert "carrier" in hit.evidence


def test_missing_pilot_data_by_deadline() -> None:
    """R16 fires when the pilot deadline passed without pilot data; n/a before that."""
    assert "R16" in hit_ids(record(with_pilot=False, deadline=True))
    assert "R16" in run(record(with_pilot=False)).not_applicable
    assert "R16" in hit_ids(record(p=pilot(seller=None)))


def test_fictitious_consignee_without_name_in_evidence() -> None:
    """R17 fires on a placeholder consignee, and its evidence holds no name."""
    m = manifest(consignee=Party("Mickey Mouse", CONSIGNEE_ADDR))
    hit = next(h for h in run(record(m, with_pilot=False)).hits if h.rule_id == "R17")
    assert "placeholder_name" in hit.evidence["reasons"]
    assert all("Mickey" not in v for v in hit.evidence.values())


def test_reshipper_address_and_concentration() -> None:
    """R18 fires on a listed reshipper address or too many names at one address per day."""
    addr = Address("100 Forwarding Way", "Wilmington", "US", "DE", "19801")
    m = manifest(consignee=Party("Maria Lopez", addr))
    assert "R18" in hit_ids(record(m, with_pilot=False))
    agg = dataclasses.replace(AGG, address_day_names=6)
    assert "R18" in hit_ids(record(), agg)


def test_watchlisted_party_fuzzy_match_takes_entry_severity() -> None:
    """R19 matches a misspelt listed name with its score and the entry's severity."""
    m = manifest(shipper=Party("Xinjiang Example Cotton Co.", Address("1 Road", "Urumqi", "CN")))
    hit = next(h for h in run(record(m, with_pilot=False)).hits if h.rule_id == "R19")
    assert hit.severity is Severity.CRITICAL
    assert hit.evidence["list"] == "UFLPA"
    assert float(hit.evidence["score"]) >= 90
    assert all("Xinjiang" not in v for v in hit.evidence.values())


def test_forced_labour_sector_with_unknown_manufacturer() -> None:
    """R20 fires for CN cotton fabric without a known manufacturer."""
    m = manifest(lines=(_line("5208120000", "Woven cotton fabric bolt white"),))
    assert "R20" in hit_ids(record(m))


def test_narcotics_profile_combines_signals() -> None:
    """R22 fires when generic description, first-time consignee and risk origin combine."""
    m = manifest(lines=(_line("6109100012", "goods"),))
    agg = dataclasses.replace(AGG, consignee_history=1)
    assert "R22" in hit_ids(record(m), agg)
    assert "R22" not in hit_ids(record(), agg)


def test_counterfeit_brand_from_unauthorised_seller() -> None:
    """R23 fires for a brand at a fraction of its price from an unauthorised seller."""
    m = manifest(lines=(_line("9102110000", "ACMEWATCH mens steel wrist watch", "30"),))
    assert "R23" in hit_ids(record(m, pilot(listed_price=None)))
    ok = pilot(listed_price=None, seller=dataclasses.replace(SELLER, party_id="S-OK-1"))
    assert "R23" not in hit_ids(record(m, ok))


def test_origin_missing_or_invalid() -> None:
    """R24 fires on a missing or non-ISO origin."""
    m = manifest(origin_country=None, lines=(_line("6109100012", origin=None),))  # type: ignore[arg-type]
    assert "R24" in hit_ids(record(m, pilot(origin_country=None)))
    m = manifest(origin_country="QQ", lines=(_line("6109100012", origin="QQ"),))
    assert "R24" in hit_ids(record(m, pilot(origin_country="QQ")))


def test_type86_integrity_checks() -> None:
    """R25 fires on a bad check digit and on filing after arrival (from 2024-04-13)."""
    assert "R25" not in hit_ids(record(e=entry86()))
    wrong = str((int(check_digit("ABC1234567")) + 1) % 10)
    bad = entry86(entry_number=_entry_number()[:-1] + wrong)
    assert "R25" in hit_ids(record(e=bad))
    late = entry86(filed_at=T + timedelta(minutes=1))
    assert "R25" in hit_ids(record(e=late))


def _r25_reasons(entry_number: str, ruleset: Any = None) -> str | None:
    ev = run(record(e=entry86(entry_number=entry_number)), ruleset=ruleset)
    hit = next((h for h in ev.hits if h.rule_id == "R25"), None)
    return None if hit is None else hit.evidence["reasons"]


@pytest.mark.parametrize(
    ("first_ten", "digit"),
    [("ABC1234567", "6"), ("B760540301", "6"), ("ZZZ9999999", "0"), ("SJA0000001", "3")],
)
def test_r25_entry_number_check_digit(first_ten: str, digit: str) -> None:
    """R25 accepts the number whose check digit the filer-code letters and the Luhn scheme
    give (A-I, J-R = 1-9, S-Z = 2-9), in plain or printed form and lower case, and names
    every other final digit a bad check digit."""
    number = first_ten + digit
    assert _r25_reasons(number) is None
    assert _r25_reasons(format_entry_number(number)) is None
    assert _r25_reasons(number.lower()) is None
    for other in "0123456789":
        if other != digit:
            assert _r25_reasons(first_ten + other) == "bad_check_digit"


@pytest.mark.parametrize("number", ["AB12345678", "ABC1234567", "ABC12345X78", "A_C12345678"])
def test_r25_entry_number_format(number: str) -> None:
    """R25 names a number that is not 3 alphanumerics and 8 digits a format problem."""
    assert _r25_reasons(number) == "entry_number_format"


def test_r25_check_digit_can_be_switched_off() -> None:
    """With ``check_digit = false`` a wrong check digit passes, a wrong form still fires."""
    off = parse_ruleset('version = "cd-off"\n[rules.R25.params]\ncheck_digit = false\n')
    assert _r25_reasons("ABC12345670", off) is None
    assert _r25_reasons("ABC1234567", off) == "entry_number_format"


def test_filer_on_suspension_list() -> None:
    """R26 fires when the Type 86 filer code is on the filer list."""
    assert "R26" in hit_ids(record(e=entry86(entry_number=_entry_number("BAD"))))


def test_rule_that_raises_holds_with_engine_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule that raises makes the shipment a HOLD with an engine-error hit, no exception."""
    rs = default_ruleset()
    rule = rs.rule("R14")

    def boom(ctx: Ctx) -> None:
        raise ZeroDivisionError

    broken = dataclasses.replace(rule, check=lambda c, p: boom(c))
    rs2 = dataclasses.replace(rs, rules=tuple(broken if r.id == "R14" else r for r in rs.rules))
    ev = run(record(), ruleset=rs2)
    assert ev.outcome is Outcome.HOLD
    assert ev.errors == ("R14",)
    [hit] = [h for h in ev.hits if h.reason_code == ENGINE_ERROR]
    assert hit == engine_error_hit(ZeroDivisionError(), "R14", rule.version)
    assert hit.severity is Severity.CRITICAL
    assert REVIEW_ACTION in ev.required_actions


def test_hold_threshold_is_configurable() -> None:
    """A LOW hit holds under the default threshold (LOW) and releases when an analyst raises it to MEDIUM."""
    rec = record(with_pilot=False, deadline=True)
    assert run(rec).outcome is Outcome.HOLD
    medium = dataclasses.replace(default_ruleset(), hold_threshold=Severity.MEDIUM)
    assert run(rec, ruleset=medium).outcome is Outcome.RELEASE


def test_suspension_holds_but_risk_rules_still_report() -> None:
    """After 2025-08-29 a shipment holds for an entry and other rules still report."""
    m = manifest(
        origin_country="VN",
        estimated_arrival=datetime(2025, 9, 1, tzinfo=UTC),
        freight_charge=Decimal("99"),
        lines=(_line("6109100012", origin="VN"),),
    )
    ev = run(record(m, pilot(origin_country="VN")))
    ids = {h.rule_id for h in ev.hits}
    assert "R01" in ids
    assert "R13" in ids
    assert ev.outcome is Outcome.HOLD
    assert not ev.eligible
    assert ev.required_actions[0] == ENTRY_ACTION
    assert ev.regime_version == "2025-suspended"


def test_other_entry_path_is_not_judged_for_eligibility() -> None:
    """A shipment asking for another entry type is not held for Section 321 eligibility."""
    m = manifest(
        release_path=ReleasePath.OTHER_ENTRY, estimated_arrival=datetime(2025, 9, 1, tzinfo=UTC)
    )
    ev = run(record(m))
    assert ev.eligible
    assert "R01" in ev.not_applicable


def test_delete_action_record_still_evaluates() -> None:
    """A record whose manifest is a DELETE still evaluates without raising."""
    m = manifest(header=EventHeader("m-2", T, "CARR1", Action.DELETE))
    assert run(record(m)).outcome in (Outcome.RELEASE, Outcome.HOLD)


def test_hyphenated_and_three_word_keywords_match_descriptions() -> None:
    """Keywords such as T-SHIRT and FOOD STORAGE CONTAINERS match the words of a description."""
    from s321.refdata.loader import RefTables
    from s321.refdata.snapshot import ReferenceSnapshot
    from s321.rules.facts import terms

    snap = ReferenceSnapshot(
        RefTables(
            version="t",
            description="test",
            hts_keywords=(("T-SHIRT", "61"), ("FOOD STORAGE CONTAINERS", "39")),
        )
    )
    found = snap.keyword_chapters(terms("Men's t-shirt and food storage containers, set of 3"))
    assert found == {"T SHIRT": "61", "FOOD STORAGE CONTAINERS": "39"}


def test_snapshot_list_hits_give_the_first_hit_of_each_list() -> None:
    """``list_hits`` maps each list to the first (shortest-prefix) entry that covers the code
    and origin, as ``on_list`` reports it; origin-restricted entries skip other origins."""
    from s321.refdata.loader import HtsEntry, RefTables

    snap = ReferenceSnapshot(
        RefTables(
            version="l",
            description="test",
            hts_lists=(
                HtsEntry("PGA", "6109", None, ""),
                HtsEntry("PGA", "610910", None, ""),
                HtsEntry("ADCVD", "61091000", frozenset({"CN"}), ""),
            ),
        )
    )
    hits = snap.list_hits("6109100012", "CN")
    assert {k: h.prefix for k, h in hits.items()} == {"PGA": "6109", "ADCVD": "61091000"}
    assert snap.on_list("ADCVD", "6109100012", "VN") is None
    assert snap.on_list("ADCVD", "6109100012", None) is not None  # unknown origin: covered
    assert snap.list_hits("6109100012", "CN") is hits


def test_party_and_address_keys_are_memoised_by_the_fields_they_read() -> None:
    """Facts.pkey and Facts.akey equal party_key and address_key, for parties that differ
    only in fields the keys do not read and for ones that differ in fields they do."""
    from s321.models import address_key, party_key
    from s321.rules.facts import Facts

    a = Address("1 Main St", "Springfield", "US", "IL", "62701")
    parties = [
        Party("Ann Lee", a, "P-1"),
        Party("Ann Lee", dataclasses.replace(a, region="XX"), "P-2"),
        Party("Ann Lee", dataclasses.replace(a, postal_code="62702")),
        Party("Ann Lee"),
        Party("ann lee"),
    ]
    for p in parties * 2:
        assert Facts.pkey(p) == party_key(p)
        if p.address is not None:
            assert Facts.akey(p.address) == address_key(p.address)
    assert Facts.pkey(parties[0]) == Facts.pkey(parties[1])
    assert Facts.pkey(parties[0]) != Facts.pkey(parties[2])


def test_r08_and_r07_fire_on_a_later_line() -> None:
    """R08 finds PGA goods on the second line (the record's pairs are looked up once), and
    R07's one combined prefix test still tells tobacco from alcohol on a later line."""
    shirt = LineItem(
        "Mens cotton crew neck T-shirt", 1, Decimal("5.00"), Decimal("0.2"), "6109100012", "CN"
    )
    drug = LineItem("Ibuprofen tablets 200mg bottle", 1, Decimal("5.00"), None, "3004900000", "IN")
    pipe = LineItem("Pipe tobacco blend pouch", 1, Decimal("5.00"), None, "2403190000", "CN")
    ev = run(record(manifest(lines=(shirt, drug))))
    r08 = next(h for h in ev.hits if h.rule_id == "R08")
    assert r08.evidence == {
        "hts": "3004900000",
        "prefix": "3004",
        "reason": "pga_goods_on_manifest_release",
    }
    ev = run(record(manifest(lines=(shirt, pipe))))
    r07 = next(h for h in ev.hits if h.rule_id == "R07")
    assert r07.evidence == {"hts": "2403190000", "category": "tobacco"}


# -- Type 86: filing deadlines by date, no release without the entry ---------------------------

_OLD_RULE_ARRIVAL = datetime(2024, 4, 12, 10, 0, tzinfo=EASTERN)  # 15-calendar-day rule
_NEW_RULE_ARRIVAL = datetime(2024, 4, 13, 0, 0, tzinfo=EASTERN)  # upon or before arrival


def _r25(arrival: datetime, filed_at: datetime) -> dict[str, str] | None:
    """R25's evidence for a Type 86 shipment arriving at ``arrival`` whose entry was filed
    at ``filed_at`` (None: R25 did not fire), and the outcome agreeing with it."""
    m = manifest(estimated_arrival=arrival, release_path=ReleasePath.TYPE_86)
    e = entry86(filed_at=filed_at, header=EventHeader("e-1", filed_at, "BRK1"))
    ev = run(record(m, e=e))
    hit = next((h for h in ev.hits if h.rule_id == "R25"), None)
    assert ev.outcome is (Outcome.RELEASE if hit is None else Outcome.HOLD), ev.hits
    return None if hit is None else dict(hit.evidence)


@pytest.mark.parametrize(
    ("arrival", "filed_at", "late"),
    [
        # before 2024-04-13: on time through the 15th calendar day after the arrival date
        (_OLD_RULE_ARRIVAL, _OLD_RULE_ARRIVAL + timedelta(days=1), False),
        (_OLD_RULE_ARRIVAL, datetime(2024, 4, 27, 23, 59, 59, tzinfo=EASTERN), False),
        (_OLD_RULE_ARRIVAL, datetime(2024, 4, 28, 0, 0, tzinfo=EASTERN), True),
        # the last instant of the old rule: still 15 days
        (
            datetime(2024, 4, 12, 23, 59, 59, tzinfo=EASTERN),
            datetime(2024, 4, 27, 23, 0, tzinfo=EASTERN),
            False,
        ),
        # from 2024-04-13: upon or before arrival
        (_NEW_RULE_ARRIVAL, _NEW_RULE_ARRIVAL - timedelta(hours=2), False),
        (_NEW_RULE_ARRIVAL, _NEW_RULE_ARRIVAL, False),
        (_NEW_RULE_ARRIVAL, _NEW_RULE_ARRIVAL + timedelta(seconds=1), True),
        (_NEW_RULE_ARRIVAL, _NEW_RULE_ARRIVAL + timedelta(days=1), True),
    ],
)
def test_type86_filed_late_by_the_deadline_in_force_on_the_arrival_date(
    arrival: datetime, filed_at: datetime, late: bool
) -> None:
    """R25 flags an entry filed after the deadline of its arrival date's regime (15 calendar
    days before 2024-04-13, the arrival from then) and not one filed within it."""
    evidence = _r25(arrival, filed_at)
    if not late:
        assert evidence is None
        return
    assert evidence is not None
    new_rule = arrival >= _NEW_RULE_ARRIVAL
    assert evidence["reasons"] == ("filed_after_arrival" if new_rule else "filed_after_deadline")
    assert evidence["due"] == (
        "2024-04-13T00:00:00-04:00" if new_rule else "2024-04-27T23:59:59-04:00"
    )


def test_one_filing_two_days_after_arrival_is_late_only_from_the_2024_rule() -> None:
    """The same entry, filed two days after arrival, is on time for a shipment arriving one
    second before 2024-04-13 and late for one arriving at it."""
    before = datetime(2024, 4, 12, 23, 59, 59, tzinfo=EASTERN)
    assert _r25(before, before + timedelta(days=2)) is None
    assert _r25(_NEW_RULE_ARRIVAL, before + timedelta(days=2)) is not None


def _type86_waiting(**kw: Any) -> Any:
    m = manifest(release_path=ReleasePath.TYPE_86, **kw)
    return m


def test_type86_shipment_without_its_entry_is_held_until_it_is_on_file() -> None:
    """A shipment asking for Type 86 release with no entry on file is a HOLD under R25
    (entry pending, with its due time and the action to file it); with its entry filed in
    time it is released."""
    ev = run(record(_type86_waiting()))
    assert ev.outcome is Outcome.HOLD
    [hit] = ev.hits
    assert (hit.rule_id, hit.reason_code) == ("R25", ENTRY_PENDING)
    assert hit.evidence["due"] == T.astimezone(EASTERN).isoformat(timespec="seconds")
    assert ev.required_actions == (TYPE86_ACTION,)
    assert "R25" not in ev.not_applicable
    done = run(record(_type86_waiting(), e=entry86()))
    assert (done.outcome, done.hits) == (Outcome.RELEASE, ())


def test_type86_shipment_whose_deadline_passed_without_entry_is_held_for_a_missing_entry() -> None:
    """Once the filing deadline passed with no entry on file, the hold says the entry is
    missing and asks for a formal or informal entry (a late Type 86 is rejected)."""
    ev = run(record(_type86_waiting(), entry_deadline=True))
    assert ev.outcome is Outcome.HOLD
    assert [(h.rule_id, h.reason_code) for h in ev.hits] == [("R25", ENTRY_MISSING)]
    assert ev.required_actions == (ENTRY_ACTION,)


def test_the_entry_hold_is_law_whatever_the_rule_set_says() -> None:
    """With R25 disabled or the hold threshold raised to CRITICAL, a Type 86 shipment without
    its entry is still held, with its reason."""
    rs = default_ruleset()
    off = dataclasses.replace(
        rs,
        rules=tuple(
            dataclasses.replace(r, enabled=False) if r.id == "R25" else r for r in rs.rules
        ),
    )
    high = dataclasses.replace(rs, hold_threshold=Severity.CRITICAL)
    for ruleset in (off, high):
        ev = run(record(_type86_waiting()), ruleset=ruleset)
        assert ev.outcome is Outcome.HOLD
        assert [h.reason_code for h in ev.hits] == [ENTRY_PENDING]


def test_an_entry_is_awaited_only_on_the_type86_path_of_an_eligible_shipment() -> None:
    """Release from manifest needs no Type 86 entry; a shipment the regime makes ineligible
    is held for another entry (R01), not for a Type 86 one."""
    assert run(record(manifest())).outcome is Outcome.RELEASE
    suspended = _type86_waiting(
        origin_country="VN",
        estimated_arrival=datetime(2025, 9, 1, tzinfo=UTC),
        lines=(_line("6109100012", origin="VN"),),
    )
    for passed in (False, True):
        ev = run(record(suspended, pilot(origin_country="VN"), entry_deadline=passed))
        assert [h.rule_id for h in ev.hits] == ["R01"]
        assert ev.required_actions == (ENTRY_ACTION,)


# -- perfume: the $5 condition, whatever the reference data lists ------------------------------

DEMO = ReferenceSnapshot.from_directory(Path(__file__).parents[2] / "src/s321/data/refdata/demo")


def _perfume(value: str, quantity: int = 1, weight: str = "0.12") -> ManifestEvent:
    line = LineItem(
        "Eau de parfum spray 30 ml for women", quantity, Decimal(value), Decimal(weight),
        "3303003000", "FR",
    )  # fmt: skip
    return manifest(
        origin_country="FR",
        shipper=Party("Maison Lumiere SARL", Address("4 Rue de la Paix", "Paris", "FR")),
        lines=(line,),
        shipping_weight_kg=Decimal(weight),
    )


def _demo(m: ManifestEvent) -> Any:
    p = pilot(origin_country="FR", listed_price=m.lines[0].value, quantity=m.lines[0].quantity)
    return evaluate(record(m, p), default_ruleset(), DEMO, AGG)


def test_demo_reference_data_lists_perfume_as_excise() -> None:
    """The shipped demo data has an EXCISE row for perfume (3303) with no value condition:
    the tests below show the rule keeps the statute's $5 condition despite it."""
    assert DEMO.on_list("EXCISE", "3303003000", "FR") is not None


@pytest.mark.parametrize(
    ("value", "quantity", "excise"),
    [("5.00", 1, False), ("4.99", 1, False), ("5.01", 1, True), ("25.00", 1, True)],
)
def test_perfume_at_five_dollars_or_less_is_released_whatever_the_list_says(
    value: str, quantity: int, excise: bool
) -> None:
    """Alcoholic perfume valued at $5 or less is not excise-excluded (19 CFR 10.153), even
    with a perfume row on the EXCISE list; over $5 it is, and holds. At $5 or less, at a
    plausible weight, the shipped demo data holds it for nothing else either."""
    ev = _demo(_perfume(value, quantity))
    assert ("R07" in {h.rule_id for h in ev.hits}) is excise
    if excise:
        [r07] = [h for h in ev.hits if h.rule_id == "R07"]
        assert r07.evidence["category"] == "alcoholic_perfume"
    else:
        assert (ev.outcome, ev.hits) == (Outcome.RELEASE, ())


def test_a_cheap_perfume_beside_listed_excise_goods_still_holds_for_them() -> None:
    """The perfume exception skips only perfume: a $4 perfume line next to a line on the
    EXCISE list (here an analyst's list with no per-line category for it) still fires R07."""
    from s321.refdata.loader import HtsEntry, RefTables

    snap = ReferenceSnapshot(
        RefTables(
            version="x",
            description="test",
            hts_lists=(
                HtsEntry("EXCISE", "33", None, "all of chapter 33, as an analyst might list it"),
                HtsEntry("EXCISE", "9614", None, "smoking pipes"),
            ),
        )
    )
    cheap = _perfume("4.00").lines[0]
    pipe = LineItem("Briar wood smoking pipe", 1, Decimal("20"), Decimal("0.1"), "9614002000")
    ev = evaluate(record(manifest(lines=(cheap,))), default_ruleset(), snap, AGG)
    assert "R07" not in {h.rule_id for h in ev.hits}
    ev = evaluate(record(manifest(lines=(cheap, pipe))), default_ruleset(), snap, AGG)
    [r07] = [h for h in ev.hits if h.rule_id == "R07"]
    assert (r07.evidence["hts"], r07.evidence["category"]) == ("9614002000", "excise_list")


def test_a_type86_line_without_a_description_is_not_vague() -> None:
    """A Type 86 line need not describe its goods (the HTS does): R10 judges the descriptions
    there are, and a shipment whose entry lines have none is released."""
    m = manifest(release_path=ReleasePath.TYPE_86)
    e = entry86(lines=(Entry86Line("6109100012", 2, Decimal("20.00")),))
    ev = run(record(m, e=e))
    assert (ev.outcome, ev.hits) == (Outcome.RELEASE, ())
    vague = entry86(lines=(Entry86Line("6109100012", 2, Decimal("20.00"), "goods"),))
    assert "R10" in hit_ids(record(m, e=vague))
