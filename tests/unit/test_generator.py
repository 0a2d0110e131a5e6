"""The synthetic traffic generator: determinism, ground truth, catalogue and pathologies."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cache

import pytest

from s321.devtools.generator import SCENARIOS, GeneratorConfig, Traffic, generate, parse_mix, world
from s321.devtools.generator.scenarios import DEMO_REFDATA
from s321.entry_number import is_valid_entry_number
from s321.errors import ConfigError
from s321.models import Action, Entry86, ManifestEvent, PilotRecord, party_key
from s321.serialization import decode, encode

ALL_RULES = {f"R{i:02d}" for i in range(1, 27)}


@cache
def _demo() -> Traffic:
    return generate(GeneratorConfig(seed=11, shipments=3000))


def _rows(name: str) -> list[dict[str, str]]:
    with (DEMO_REFDATA / name).open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _manifests(traffic: Traffic) -> dict[str, ManifestEvent]:
    """The newest manifest version per shipment key, by event time."""
    out: dict[str, ManifestEvent] = {}
    for e in traffic.events:
        if isinstance(e.value, ManifestEvent):
            old = out.get(e.key)
            if old is None or e.value.header.event_time >= old.header.event_time:
                out[e.key] = e.value
    return out


def test_same_seed_same_events_and_truth() -> None:
    """Two runs with one seed produce identical events and identical ground truth."""
    a = generate(GeneratorConfig(seed=5, shipments=400))
    b = generate(GeneratorConfig(seed=5, shipments=400))
    assert a == b
    c = generate(GeneratorConfig(seed=6, shipments=400))
    assert [e.value for e in a.events] != [e.value for e in c.events]


def test_exact_shipment_count_and_unique_keys() -> None:
    """--shipments N yields N truth records with N distinct shipment keys."""
    traffic = _demo()
    assert len(traffic.truth) == 3000
    assert len({t.key for t in traffic.truth}) == 3000


def test_every_catalogue_rule_is_expected_in_the_demo_mix() -> None:
    """Each of R01-R26 is expected to fire (R06 as an off-by-default rule) in a demo run."""
    traffic = _demo()
    fired = Counter(r for t in traffic.truth for r in t.rules)
    off = Counter(r for t in traffic.truth for r in t.off_rules)
    assert set(fired) | set(off) == ALL_RULES
    assert set(off) == {"R06"}


def test_every_scenario_truth_is_its_declared_rules_in_the_default_range() -> None:
    """With the default dates a shipment's expected rules are exactly its scenario's rules."""
    for t in _demo().truth:
        declared = SCENARIOS[t.scenario].rules
        if t.outcome in ("CANCELLED", "UNMATCHED"):
            assert t.rules == ()
        else:
            assert set(t.rules) | set(t.off_rules) == declared, t
            assert t.outcome == ("HOLD" if t.rules else "RELEASE")


def test_ordinary_parcels_are_clean() -> None:
    """Ordinary parcels: pilot-era arrival, <= $800, in-band, specific, consistent, complete."""
    traffic = _demo()
    truth = traffic.truth_by_key()
    manifests = _manifests(traffic)
    bands = {r["hts6"]: r for r in _rows("value_bands.csv")}
    pilots = {e.key: e.value for e in traffic.events if isinstance(e.value, PilotRecord)}
    entries = {e.key: e.value for e in traffic.events if isinstance(e.value, Entry86)}
    watch = {r["name"].upper() for r in _rows("watchlist.csv")}
    ordinary = [k for k, t in truth.items() if t.scenario == "ordinary"]
    assert len(ordinary) > 1500
    for key in ordinary:
        m = manifests[key]
        assert date(2024, 6, 1) <= m.arrival.date() <= date(2024, 12, 31)
        assert m.declared_value <= 800
        assert not m.gift
        assert m.freight_charge is None or m.freight_charge < m.declared_value
        for line in m.lines:
            band = bands[line.hts[:6]]  # type: ignore[index]
            per_unit = line.value / line.quantity
            assert (
                Decimal(band["min_usd_per_unit"]) <= per_unit <= Decimal(band["max_usd_per_unit"])
            )
            per_kg = line.value / line.weight_kg  # type: ignore[operator]
            assert Decimal(band["min_usd_per_kg"]) <= per_kg <= Decimal(band["max_usd_per_kg"])
            assert len(re.findall(r"[a-z]{3,}", line.description.lower())) >= 3
            assert line.manufacturer is not None
        p = pilots[key]
        assert p.seller is not None
        assert p.deliver_to == m.consignee
        assert p.header.event_time <= m.header.event_time + timedelta(minutes=30)
        assert p.quantity == m.quantity
        assert p.origin_country == m.origin_country
        assert m.shipper.name.upper() not in watch
        if key in entries:
            e = entries[key]
            assert is_valid_entry_number(e.entry_number)
            assert e.filed_at < m.estimated_arrival
            assert e.declared_value == m.declared_value


def test_person_day_groups_are_consistent() -> None:
    """Each R03 group: 2-4 parcels, one person, one date, each <= $800, sum > $800."""
    traffic = _demo()
    manifests = _manifests(traffic)
    groups: dict[str, list[str]] = defaultdict(list)
    for t in traffic.truth:
        if t.scenario == "person_day":
            assert t.group is not None
            assert t.rules == ("R03",)
            assert t.outcome == "HOLD"
            groups[t.group].append(t.key)
    assert groups
    for keys in groups.values():
        ms = [manifests[k] for k in keys]
        assert 2 <= len(ms) <= 4
        assert len({party_key(m.consignee) for m in ms}) == 1
        assert len({m.arrival.date() for m in ms}) == 1
        assert len({m.shipper.name for m in ms}) == len(ms)
        assert all(m.declared_value <= 800 for m in ms)
        assert sum(m.declared_value for m in ms) > 800


def test_split_lots_are_consistent() -> None:
    """Each R04 group: one order, seller and consignee, one parcel a day, sum > $800, < 72 h."""
    traffic = _demo()
    manifests = _manifests(traffic)
    pilots = {e.key: e.value for e in traffic.events if isinstance(e.value, PilotRecord)}
    groups: dict[str, list[str]] = defaultdict(list)
    for t in traffic.truth:
        if t.scenario == "split_lot":
            groups[str(t.group)].append(t.key)
    assert groups
    for keys in groups.values():
        ms = [manifests[k] for k in keys]
        assert len({pilots[k].order_id for k in keys}) == 1
        assert len({m.arrival.date() for m in ms}) == len(ms)
        assert sum(m.declared_value for m in ms) > 800
        assert all(m.declared_value <= 800 for m in ms)
        times = [m.header.event_time for m in ms] + [pilots[k].header.event_time for k in keys]
        assert max(times) - min(times) < timedelta(hours=72)


def test_pathologies_are_present() -> None:
    """The demo stream has CHANGE, DELETE, duplicates, out-of-order, orphans and tracking-only."""
    traffic = _demo()
    actions = Counter(e.value.header.action for e in traffic.events)
    assert actions[Action.CHANGE] > 0
    assert actions[Action.DELETE] > 0
    ids = Counter(e.value.header.event_id for e in traffic.events)
    assert any(n == 2 for n in ids.values())
    late = 0
    newest = None
    for e in traffic.events:
        t = e.value.header.event_time
        if newest is not None and t < newest:
            late += 1
        newest = t if newest is None else max(newest, t)
    assert late > 0
    outcomes = Counter(t.outcome for t in traffic.truth)
    assert outcomes["UNMATCHED"] > 0
    assert outcomes["CANCELLED"] > 0
    truth_keys = {t.key for t in traffic.truth}
    assert any(e.key not in truth_keys for e in traffic.events)  # a tracking-number-only key


def test_orphans_have_no_manifest() -> None:
    """An UNMATCHED shipment has pilot or Type 86 events and no manifest event."""
    traffic = _demo()
    manifests = _manifests(traffic)
    for t in traffic.truth:
        if t.outcome == "UNMATCHED":
            assert t.key not in manifests
            assert any(e.key == t.key for e in traffic.events)


def test_every_event_round_trips_through_the_wire_format() -> None:
    """Every generated payload encodes and decodes to an equal object."""
    for e in generate(GeneratorConfig(seed=3, shipments=600, mix=parse_mix("positives"))).events:
        assert decode(encode(e.value), type(e.value)) == e.value


def _keywords() -> dict[str, str]:
    return {r["keyword"]: r["chapter"] for r in _rows("hts_keywords.csv")}


def _found(description: str, keywords: dict[str, str]) -> set[str]:
    fold = " " + re.sub(r"[^a-z0-9]+", " ", description.lower()) + " "
    return {
        ch
        for kw, ch in keywords.items()
        if " " + re.sub(r"[^a-z0-9]+", " ", kw.lower()).strip() + " " in fold
    }


@pytest.mark.parametrize(
    "product", [*world.CATALOGUE, *world.SPECIAL.values()], ids=lambda p: p.code
)
def test_descriptions_name_only_their_own_chapter(product: world.Product) -> None:
    """Every description template has a keyword of its HTS chapter and none of another."""
    keywords = _keywords()
    for template in product.descriptions:
        text = template.format(color="black", size="M", shoe="9", brand="Stridemax")
        assert _found(text, keywords) == {product.chapter}, text


def test_value_bands_cover_every_product() -> None:
    """value_bands.csv has the band of every HTS-6 the generator uses, as derived from it."""
    bands = {r["hts6"]: r for r in _rows("value_bands.csv")}
    by_hts6: dict[str, list[world.Product]] = defaultdict(list)
    for p in (*world.CATALOGUE, *world.SPECIAL.values()):
        by_hts6[p.hts6].append(p)
    for hts6, products in by_hts6.items():
        expected = world.band_for(tuple(products))
        row = bands[hts6]
        assert (
            tuple(
                float(row[c])
                for c in (
                    "min_usd_per_kg",
                    "max_usd_per_kg",
                    "min_usd_per_unit",
                    "max_usd_per_unit",
                )
            )
            == expected
        )


def test_reference_files_have_the_fixed_columns() -> None:
    """Each demo reference file has exactly the columns of the fixed directory format."""
    columns = {
        "watchlist.csv": ["list", "name", "country", "severity"],
        "hts_lists.csv": ["list", "hts_prefix", "origins", "note"],
        "value_bands.csv": [
            "hts6",
            "min_usd_per_kg",
            "max_usd_per_kg",
            "min_usd_per_unit",
            "max_usd_per_unit",
        ],
        "reshippers.csv": ["line1", "city", "postal_code", "country"],
        "seizures.csv": ["kind", "line1", "city", "postal_code", "country", "name"],
        "filers.csv": ["filer_code", "risk", "note"],
        "brands.csv": ["brand", "reference_price_usd", "authorised_sellers"],
        "hts_keywords.csv": ["keyword", "chapter"],
    }
    for name, cols in columns.items():
        with (DEMO_REFDATA / name).open(newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == cols
    assert (DEMO_REFDATA / "manifest.json").exists()


def test_clean_filers_are_not_on_the_risky_list() -> None:
    """No broker filer code used for clean entries is listed in filers.csv."""
    risky = {r["filer_code"] for r in _rows("filers.csv")}
    assert not risky & set(world.BROKER_FILERS)


def test_later_date_range_adds_regime_rules_to_the_truth() -> None:
    """A range after the 2025-08-29 suspension makes every ordinary parcel HOLD with R01."""
    traffic = generate(
        GeneratorConfig(
            seed=2,
            shipments=50,
            start=date(2025, 9, 2),
            end=date(2025, 9, 30),
            mix={"ordinary": 1.0},
        )
    )
    assert {t.rules for t in traffic.truth} == {("R01",)}


def test_enabling_an_off_rule_moves_it_into_the_rules() -> None:
    """With R06 enabled, trade-action shipments are expected to HOLD with R06."""
    traffic = generate(
        GeneratorConfig(seed=2, shipments=20, mix={"trade_action": 1.0}, enable=frozenset({"R06"}))
    )
    assert {(t.outcome, t.rules) for t in traffic.truth} == {("HOLD", ("R06",))}


@pytest.mark.parametrize("spec", ["nope", "ordinary=x", "ordinary=-1", "bogus=1", ""])
def test_bad_mixes_are_refused(spec: str) -> None:
    """A mix naming an unknown preset or scenario, or a bad weight, is a ConfigError."""
    with pytest.raises(ConfigError):
        parse_mix(spec)


def test_mix_presets_and_overrides_combine() -> None:
    """A preset followed by overrides keeps the preset and applies the overrides."""
    mix = parse_mix("demo,value_over=0.5")
    assert mix["value_over"] == 0.5
    assert mix["ordinary"] == parse_mix("demo")["ordinary"]


def test_bad_config_is_refused() -> None:
    """Dates out of order, before Type 86, or an unknown scenario are ConfigErrors."""
    with pytest.raises(ConfigError):
        GeneratorConfig(start=date(2024, 6, 2), end=date(2024, 6, 1))
    with pytest.raises(ConfigError):
        GeneratorConfig(start=date(2018, 1, 1))
    with pytest.raises(ConfigError):
        GeneratorConfig(mix={"nope": 1.0})


def test_a_mix_of_groups_that_does_not_divide_the_count_still_makes_that_many() -> None:
    """Asking for 60 shipments of a 7-parcel group scenario gives 60, the rest single parcels."""
    from s321.devtools.generator.scenarios import GeneratorConfig, generate

    traffic = generate(GeneratorConfig(seed=5, shipments=60, mix={"address_cluster": 1.0}))
    assert len(traffic.truth) == 60
    assert {t.scenario for t in traffic.truth} == {"address_cluster", "ordinary"}


def test_disagreeing_type86_value_never_crosses_the_threshold() -> None:
    """A Type 86 value raised to disagree with the manifest stays within $800, so only R15 is expected."""
    from s321.devtools.generator.scenarios import GeneratorConfig, generate
    from s321.models import Entry86

    traffic = generate(GeneratorConfig(seed=3, shipments=400, mix={"disagree": 1.0}))
    entries = [e.value for e in traffic.events if isinstance(e.value, Entry86)]
    assert entries, "the mix produced no Type 86 entry to check"
    assert all(e.declared_value <= 800 for e in entries)


@cache
def _type86_traffic() -> Traffic:
    return generate(
        GeneratorConfig(
            seed=21,
            shipments=900,
            mix={
                "ordinary": 1.0,
                "entry_within_15_days": 1.0,
                "entry_after_15_days": 1.0,
                "entry_missing": 1.0,
                "entry_integrity": 1.0,
                "perfume_five_dollars": 1.0,
                "excise": 1.0,
            },
        )
    )


def test_type86_truth_follows_the_filing_deadline_of_the_arrival_date() -> None:
    """A Type 86 shipment's truth has R25 exactly when its entry was filed after the deadline
    the regime table gives its arrival date (15 calendar days before 2024-04-13, the arrival
    from then) or never filed at all; the generator's own deadline agrees with the table."""
    from s321.devtools.generator.scenarios import entry_due
    from s321.models import ReleasePath
    from s321.regime import default_regimes

    traffic = _type86_traffic()
    manifests = _manifests(traffic)
    entries = {e.key: e.value for e in traffic.events if isinstance(e.value, Entry86)}
    table = default_regimes()
    judged: Counter[tuple[str, bool]] = Counter()
    for t in traffic.truth:
        if t.scenario not in (
            "ordinary",
            "entry_within_15_days",
            "entry_after_15_days",
            "entry_missing",
        ):
            continue
        m = manifests[t.key]
        if m.release_path is not ReleasePath.TYPE_86:
            continue
        due = table.at(m.arrival).type86_due(m.arrival)
        assert entry_due(m.arrival) == due
        e = entries.get(t.key)
        late = e is None or e.filed_at > due
        assert ("R25" in t.rules) is late, (t, m.arrival, e and e.filed_at, due)
        judged[(t.scenario, late)] += 1
    assert judged[("entry_within_15_days", False)] > 20
    assert judged[("entry_after_15_days", True)] > 20
    assert judged[("entry_missing", True)] > 20
    assert judged[("ordinary", False)] > 20


def test_type86_scenarios_straddle_each_deadline_boundary() -> None:
    """The Type 86 scenarios arrive on both sides of 2024-04-13 00:00 Eastern (within the hour)
    and file on the last on-time day and the first late day of the 15-day rule, with entries
    missing under both rules."""
    from s321.devtools.generator.scenarios import entry_due
    from s321.regime import EASTERN

    traffic = _type86_traffic()
    manifests = _manifests(traffic)
    entries = {e.key: e.value for e in traffic.events if isinstance(e.value, Entry86)}
    rule = datetime(2024, 4, 13, tzinfo=EASTERN)
    seen: Counter[str] = Counter()
    for t in traffic.truth:
        m = manifests.get(t.key)
        if m is None:
            continue
        arrival, e = m.arrival, entries.get(t.key)
        if rule - timedelta(hours=1) <= arrival < rule and e is not None and e.filed_at > arrival:
            seen[f"{t.scenario}: last hour of the 15-day rule"] += 1
        if rule <= arrival < rule + timedelta(hours=1) and e is not None and e.filed_at > arrival:
            seen[f"{t.scenario}: first hour of the arrival rule"] += 1
        if e is not None and arrival < rule:
            last_day = entry_due(arrival).astimezone(EASTERN).date()
            filed_day = e.filed_at.astimezone(EASTERN).date()
            if filed_day == last_day:
                seen[f"{t.scenario}: filed on the 15th day"] += 1
            if filed_day == last_day + timedelta(days=1):
                seen[f"{t.scenario}: filed on the 16th day"] += 1
        if e is None and t.scenario == "entry_missing":
            seen[f"missing under the {'arrival' if arrival >= rule else '15-day'} rule"] += 1
    for case in (
        "entry_within_15_days: last hour of the 15-day rule",
        "entry_after_15_days: last hour of the 15-day rule",
        "entry_integrity: first hour of the arrival rule",
        "entry_within_15_days: filed on the 15th day",
        "entry_after_15_days: filed on the 16th day",
        "missing under the arrival rule",
        "missing under the 15-day rule",
    ):
        assert seen[case] > 0, (case, seen)


def test_perfume_is_expected_excise_only_over_five_dollars() -> None:
    """Perfume (3303) is an R07 positive only when its line is worth over $5; at $5 or less
    (exactly $5 included) it is expected to be released with no rule."""
    traffic = _type86_traffic()
    manifests = _manifests(traffic)
    values: dict[str, list[Decimal]] = defaultdict(list)
    for t in traffic.truth:
        lines = [li for li in manifests[t.key].lines if (li.hts or "").startswith("3303")]
        if not lines:
            continue
        values[t.scenario].extend(li.value for li in lines)
        if t.scenario == "perfume_five_dollars":
            assert (t.outcome, t.rules) == ("RELEASE", ())
            assert all(li.value <= 5 for li in lines)
        else:
            assert t.scenario == "excise"
            assert "R07" in t.rules
            assert all(li.value > 5 for li in lines)
    assert Decimal(5) in values["perfume_five_dollars"]
    assert values["excise"]


def test_the_demo_mix_has_the_type86_deadline_and_perfume_cases() -> None:
    """The demo mix draws the Type 86 deadline scenarios and the perfume control."""
    scenarios = Counter(t.scenario for t in _demo().truth)
    for name in (
        "entry_within_15_days",
        "entry_after_15_days",
        "entry_missing",
        "perfume_five_dollars",
    ):
        assert scenarios[name] > 0, name


def test_a_missing_entry_of_an_ineligible_shipment_is_not_expected_under_r25() -> None:
    """After the 2025-08-29 suspension a Type 86 shipment is held for another entry (R01) and
    no Type 86 entry is awaited, so its truth is R01 alone even when no entry comes."""
    traffic = generate(
        GeneratorConfig(
            seed=4, shipments=30, start=date(2025, 9, 2), end=date(2025, 9, 30),
            mix={"entry_missing": 1.0},
        )
    )  # fmt: skip
    suspended = [t for t in traffic.truth if t.arrival and t.arrival.date() >= date(2025, 9, 2)]
    assert len(suspended) > 10
    assert {t.rules for t in suspended} == {("R01",)}
    # those the scenario draws from before 2024-04-13 are eligible: held for the missing entry
    assert {t.rules for t in traffic.truth if t not in suspended} == {("R25",)}
