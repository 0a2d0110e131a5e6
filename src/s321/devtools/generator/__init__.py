"""Synthetic Section 321 traffic with ground truth: seeded, deterministic, realistic.

``generate(GeneratorConfig(seed=7, shipments=3000))`` returns the events (manifest ADD /
CHANGE / DELETE, pilot records, Type 86 entries) in emission order and one
:class:`Expected` per shipment: the final outcome (RELEASE, HOLD, CANCELLED, or UNMATCHED when
no manifest ever comes) and the rule ids that should fire. Tests and benchmarks check those
outcomes, not message counts. ``s321 generate`` produces the same stream to Kafka
(:mod:`s321.devtools.generator.produce`) or to an Avro container file
(:mod:`s321.devtools.generator.ocf`).

Every company, person, brand, street and filer is invented (``world.py``); HTS numbers,
chapters, CBP port codes, countries and cities are real. The demo reference data
(``s321/data/refdata/demo``) is the one the positives are built against.

Ordinary parcels
    Arrive on a base date in the configured range (default 2024-06-01..2024-12-31, the
    pilot era), carry one or two specific descriptions (at least 3 meaningful words, no
    denylisted word, only keywords of their own HTS chapter), values and weights inside the
    HTS-6 band (gross and net weight), value at most $780, no gift flag, freight under half
    the value, the seller in the origin country and the manufacturer named on the manifest
    line and the pilot record in the same country, a unique consignee (name and address),
    complete pilot data (seller and deliver-to) within 30 minutes of the manifest, and, when
    the manifest asks for Type 86, a valid entry number from a clean filer filed before
    arrival. Rules the calendar decides (R01, R09) are added to the truth of any shipment
    whose final arrival falls under them, so a range outside the pilot era stays truthful;
    so is R25 for an entry filed after, or missing at, the deadline of the arrival date.

Timing semantics (event time, not wall-clock)
    * A manifest's pilot deadline is 30 minutes after the manifest's event time, or its
      estimated arrival if sooner. Pilot data after the deadline does not clear R16: the
      final decision of a late-pilot shipment still holds R16.
    * A Type 86 shipment is held (R25) until its entry is on file; an entry is judged by its
      filing time against the deadline of the arrival date, whenever it reaches the worker.
    * A pilot or Type 86 record without a manifest for 24 hours is UNMATCHED (the truth
      records no rules for it). Orphans here never get a manifest.
    * The final decision is the newest by event time: a CHANGE emitted before the ADD it
      amends still wins. A DELETE makes the shipment CANCELLED (no rules).
    * Any rule firing, whatever its severity, makes the expected outcome HOLD.
    * Events are emitted in event-time order except where a scenario says otherwise
      (``out_of_order``, ``amend_out_of_order``, ``duplicate``, ``late_manifest``).
      Date-window scenarios whose window lies outside the range are drawn inside their window
      and emitted in event-time order with the rest (usually at the end of the stream).

Semantics assumed for each rule's positive case (scenario in brackets)
    R01 [regime_cn_hk, regime_suspended] origin CN/HK arriving 2025-05-03..2025-08-27; any
        origin 2025-08-30..2026-07-07 (boundaries at 00:01 U.S. Eastern kept clear).
    R02 [value_over, amend_to_hold] declared value over $800, or gift over $100.
    R03 [person_day] 2-4 parcels, one consignee (same name and address: party_key), same
        arrival date (14:00-22:00 UTC), different sellers and orders, each <= $790, sum >
        $800: every parcel HOLD R03. A single parcel over $800 is R02 only, not R03.
    R04 [split_lot] one order id, one seller, one consignee, 2-3 parcels on consecutive days,
        all events within 72 h, each <= $790, sum > $800: every parcel HOLD R04 (one parcel a
        day, so no R03). [double_entry] one bill on two valid Type 86 entries: R04 and R25.
    R05 [adcvd] CN goods in hts_lists ADCVD (garment hangers 7326.20.0020, paper plates
        4823.69.0040, hand trucks 8716.80.5010), pilot era.
    R06 [trade_action] solar modules 8541.43 (TRADE_ACTION, any origin) from VN/MY. Off by
        default: recorded in ``off_rules``, outcome RELEASE unless enabled.
    R07 [excise] wine 2204, whisky 2208, cigarettes 2402, e-liquid 2404, perfume 3303 > $5.
        [perfume_five_dollars] is the negative control: one perfume at $5 or less (exactly
        $5 in a third of them), RELEASE although the demo data lists 3303 as EXCISE.
    R08 [pga_manifest] PGA-list goods (2106, 0901, 2309, 1209, 3808) on SECTION_321, or on a
        Type 86 whose lines carry no PGA data. [pga_with_data] is the negative control.
    R09 [cpsc_missing] toys 9503 / babies' garments 6111 arriving 2026-07-09..2027-06-30
        without a CPSC certificate: R09 and R01.
    R10 [vague] every line's description is one of: GIFT, Daily necessities, accessories,
        parts, Freight of all kinds, goods, SAMPLE, 123456, clothes, household goods;
        arrival on or after 2024-11-13 in case the rule follows the ACAS date.
    R11 [hts_mismatch] a specific description whose keyword chapter (hts_keywords.csv,
        keywords matched as whole words after folding punctuation) differs from the declared
        HTS chapter; value and weight inside the declared heading's band.
    R12 [value_weight] value per unit under a quarter of the band minimum, or value per kg
        (line net weight) under a quarter of the band minimum.
    R13 [freight] freight charge 1.3-4 x the declared value.
    R14 [undervalued] marketplace listed price x quantity more than twice the declared value.
    R15 [disagree] pilot deliver-to at another address, pilot carrier code differs from the
        manifest's, or Type 86 value 30-45 % above the manifest's. Pilot listed price is R14's.
    R16 [missing_pilot, late_pilot, incomplete_pilot] no pilot record at all; pilot 45 min to
        6 h after the manifest; pilot on time without seller, or without deliver-to.
    R17 [fictitious] consignee named John Doe / Jane Doe / TEST / Customer / Receiver / XXX,
        or a U.S. address whose ZIP is not 5 (+4) digits, or with an empty street line.
    R18 [reshipper] consignee at an address of reshippers.csv; [address_cluster] 7 distinct
        names at one unlisted address on one day (limit: more than 5 names per day).
    R19 [watchlisted] seller or manufacturer named as on watchlist.csv, or upper-cased, or
        without punctuation; goods outside forced-labour sectors.
    R20 [forced_labour] CN cotton T-shirts 6109 with the manufacturer in Xinjiang (region
        "Xinjiang", city Urumqi/Kashgar/Aksu/Hotan) or no manufacturer on any source.
    R21 [pill_press] tablet press 8479.89.94 (PILL_PRESS list) or a punch-and-die set 8207.30
        described as TDP tooling (R21's keywords), no DEA transaction id (a line's PGA data
        with agency DEA and a certificate id); [pill_press_dea] is the negative control.
    R22 [narcotics] at least three signals together: generic description (R10), weight
        anomaly (R12), consignee with a prior seizure (seizures.csv CONSIGNEE, same name and
        address), risk origin IN. Truth: R10, R12, R22. No other scenario combines a vague
        description or an anomaly with a risk origin (CN, HK, IN, MX) or a seizure link.
    R23 [counterfeit] a brands.csv brand in the description, unit price under 28 % of its
        reference price, seller id not authorised. [branded_authentic] is the control.
    R24 [origin_invalid] origin missing, XX or ZZ on manifest and pilot; no Type 86. Sellers
        and manufacturers are always in the origin country, so no transshipment pattern.
    R25 [entry_integrity] a wrong check digit (s321.entry_number), or filed after the
        estimated arrival (arrival on or after 2024-04-14, or in the first hour of
        2024-04-13 Eastern); [entry_after_15_days] arriving before 2024-04-13 (a quarter in
        its last hour) and filed after the 15th calendar day after the arrival date
        (Eastern); [entry_missing] a manifest asking for Type 86 whose entry never comes
        (held while due, then for the missing entry; R01 instead where the regime makes the
        shipment ineligible); [double_entry] as above. [entry_within_15_days] is the negative
        control: before 2024-04-13, filed after arrival but by the end of the 15th day (a
        third of them on that day), RELEASE. The deadline of each arrival date is
        ``scenarios.entry_due``; the truth of every Type 86 shipment follows it.
    R26 [risky_filer] a Type 86 entry number whose filer code is on filers.csv.

Stream pathologies (all RELEASE unless said): amend_change (vague ADD, specific CHANGE),
amend_to_hold (R02 after CHANGE), amend_delete (CANCELLED), amend_out_of_order, duplicate
(every event twice, same event id), out_of_order (manifest emitted after its partners),
late_manifest (partners 2-10 h first), tracking_only (postal pilot record knows only the
tracking number), orphan_pilot and orphan_entry86 (UNMATCHED).
"""

from s321.devtools.generator.scenarios import (
    OFF_BY_DEFAULT,
    PRESETS,
    SCENARIOS,
    Event,
    Expected,
    GeneratorConfig,
    Scenario,
    Traffic,
    generate,
    iter_stream,
    parse_mix,
)

__all__ = [
    "OFF_BY_DEFAULT",
    "PRESETS",
    "SCENARIOS",
    "Event",
    "Expected",
    "GeneratorConfig",
    "Scenario",
    "Traffic",
    "generate",
    "iter_stream",
    "parse_mix",
]
