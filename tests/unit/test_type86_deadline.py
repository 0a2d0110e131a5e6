"""A Type 86 shipment through the processor with the real rules: held until its entry is on file,
held for a missing entry once the filing deadline of its arrival date passes in event time, and
the same across restarts, replays and any order of its events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from s321.core.correlation import Deadlines, Part, ShipmentState, expire, merge
from s321.core.processor import Processor
from s321.core.state import deadline_of, decode_state
from s321.entry_number import make_entry_number
from s321.models import Action, CompleteRecord, Decision, Entry86, InputRef, Outcome, ReleasePath
from s321.refdata import ReferenceSnapshot
from s321.regime import EASTERN
from s321.rules import ENTRY_ACTION, ENTRY_MISSING, ENTRY_PENDING, TYPE86_ACTION, evaluate
from s321.rules import default_ruleset as _default_ruleset
from s321.rules.aggregates import Aggregates
from tests.factories import T0, PerRecord, manifest, pilot
from tests.factories import entry86 as _entry86
from tests.legacy_state import encode_json
from tests.unit.test_pipeline import Feed, P

_SNAP = ReferenceSnapshot.empty()
TYPE86 = ReleasePath.TYPE_86
ARRIVAL = T0 + timedelta(hours=6)  # the factories' manifest arrives six hours after T0


def entry86(bill: str, *, at: datetime) -> Entry86:
    """A Type 86 entry with a valid entry number, filed at ``at``."""
    return _entry86(bill, at=at, number=make_entry_number("ABC", 1234567))


def _evaluate(record: CompleteRecord) -> object:
    return evaluate(record, _default_ruleset(), _SNAP, Aggregates.empty())


#: The whole catalogue with the default rule set (no reference data, no cross-shipment state:
#: the rules that need them are not applicable).
rules = PerRecord(_evaluate)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _reasons(d: Decision) -> list[tuple[str, str]]:
    return [(h.rule_id, h.reason_code) for h in d.hits]


def test_a_type86_shipment_is_held_until_its_entry_is_on_file_then_released() -> None:
    """Manifest (Type 86) and pilot without an entry: a HOLD under R25 saying the entry is
    pending, with the action to file it; the entry filed before arrival makes version 2 a
    RELEASE. Both versions name the regime they were decided under."""
    f = Feed(rules)
    f.send(manifest("HT1", path=TYPE86))
    f.send(pilot("HT1", at=T0 + timedelta(minutes=1)))
    f.send(entry86("HT1", at=T0 + timedelta(minutes=2)))
    d1, d2 = f.decisions()
    assert (d1.version, d1.outcome, _reasons(d1)) == (1, Outcome.HOLD, [("R25", ENTRY_PENDING)])
    assert d1.required_actions == (TYPE86_ACTION,)
    assert d1.hits[0].evidence["due"] == ARRIVAL.astimezone(EASTERN).isoformat(timespec="seconds")
    assert (d2.version, d2.outcome, d2.hits) == (2, Outcome.RELEASE, ())
    assert d1.regime_version == d2.regime_version == "2024-type86-arrival"


def test_release_from_manifest_waits_for_no_entry() -> None:
    """The same shipment asking for release from manifest is released without any entry, and
    no deadline waits for one."""
    f = Feed(rules)
    f.send(manifest("HT2"))
    f.send(pilot("HT2", at=T0 + timedelta(minutes=1)))
    [d] = f.decisions()
    assert d.outcome is Outcome.RELEASE
    assert deadline_of(f.store["HT2"])[1] is None


def test_the_missing_entry_deadline_is_the_arrival_from_2024_04_13() -> None:
    """With no entry, event time reaching the arrival changes nothing; passing it holds the
    shipment for a missing entry (version 2, action: file another entry); an entry filed
    after arrival then gives version 3, R25 for late filing."""
    f = Feed(rules)
    f.send(manifest("HT3", path=TYPE86))
    f.send(pilot("HT3", at=T0 + timedelta(minutes=1)))
    f.tick(_ms(ARRIVAL))
    assert len(f.decisions()) == 1
    f.tick(_ms(ARRIVAL) + 1)
    _d1, d2 = f.decisions()
    assert _reasons(d2) == [("R25", ENTRY_MISSING)]
    assert (d2.version, d2.outcome, d2.required_actions) == (2, Outcome.HOLD, (ENTRY_ACTION,))
    late = ARRIVAL + timedelta(minutes=5)
    f.send(entry86("HT3", at=late))
    d3 = f.decisions()[-1]
    assert (d3.version, _reasons(d3)) == (3, [("R25", "TYPE86_INTEGRITY")])
    assert d3.hits[0].evidence["reasons"] == "filed_after_arrival"


def test_before_2024_04_13_the_missing_entry_deadline_is_the_15th_day_after_arrival() -> None:
    """A shipment arriving on 1 March 2024 (Eastern) waits for its entry through 16 March:
    event time at 23:59:59 that day changes nothing; midnight holds it for a missing entry."""
    at = datetime(2024, 3, 1, 9, 0, tzinfo=EASTERN).astimezone(UTC)
    f = Feed(rules)
    f.send(manifest("HT4", at=at, path=TYPE86))
    f.send(pilot("HT4", at=at + timedelta(minutes=1)))
    [d1] = f.decisions()
    assert d1.regime_version == "2019-type86"
    assert d1.hits[0].evidence["due"] == "2024-03-16T23:59:59-04:00"
    f.tick(_ms(datetime(2024, 3, 16, 23, 59, 59, tzinfo=EASTERN)))
    assert len(f.decisions()) == 1
    f.tick(_ms(datetime(2024, 3, 17, 0, 0, tzinfo=EASTERN)))
    assert _reasons(f.decisions()[-1]) == [("R25", ENTRY_MISSING)]


def test_a_pilot_deadline_then_the_entry_deadline_both_fire() -> None:
    """Without pilot data or entry, the pilot deadline (30 minutes) decides first (R16 and the
    entry pending); the entry's deadline, still pending, fires when event time passes the
    arrival (R16 and the entry missing)."""
    f = Feed(rules)
    f.send(manifest("HT5", path=TYPE86))
    f.tick(_ms(T0 + timedelta(minutes=31)))
    [d1] = f.decisions()
    assert set(_reasons(d1)) == {("R16", "MISSING_ADVANCE_DATA"), ("R25", ENTRY_PENDING)}
    f.tick(_ms(ARRIVAL) + 1)
    d2 = f.decisions()[-1]
    assert set(_reasons(d2)) == {("R16", "MISSING_ADVANCE_DATA"), ("R25", ENTRY_MISSING)}
    assert f.proc.expired_total == 2


def test_the_missing_entry_deadline_survives_a_restart() -> None:
    """After a restart (new processor, the same table), the deadline index rebuilt from the
    table still holds the awaited entry's deadline, and it fires in event time."""
    f = Feed(rules)
    f.send(manifest("HT6", path=TYPE86))
    f.send(pilot("HT6", at=T0 + timedelta(minutes=1)))
    assert deadline_of(f.store["HT6"]) == (decode_state(f.store["HT6"]).partition, _ms(ARRIVAL) + 1)
    restarted = Processor(rules, P)
    restarted.rebuild_deadlines(f.store, set(range(P)))
    assert restarted.index_deadlines()
    f.proc = restarted
    f.tick(_ms(ARRIVAL) + 1)
    assert [d.version for d in f.decisions()] == [1, 2]
    assert _reasons(f.decisions()[-1]) == [("R25", ENTRY_MISSING)]


def test_a_state_without_a_type86_deadline_has_the_partner_wait_at_its_head() -> None:
    """A shipment that awaits no Type 86 entry has no entry deadline, and its head deadline is
    the partner wait."""
    f = Feed(rules)
    f.send(manifest("HT7"))  # waits for its pilot record
    state = decode_state(f.store["HT7"])
    assert (state.deadline_ms, state.entry_due_ms, state.entry_expired) == (
        _ms(T0 + timedelta(minutes=30)),
        None,
        False,
    )
    assert deadline_of(f.store["HT7"]) == (state.partition, state.deadline_ms)


def _part(event_time: datetime, event_id: str) -> Part:
    return Part(b"", InputRef("t", 0, 0, event_id), _ms(event_time), Action.ADD, 0)


def test_a_manifest_that_moves_the_arrival_makes_the_entry_due_again() -> None:
    """Once the entry deadline passed, a later manifest with the same arrival keeps it passed;
    one that moves the arrival later makes the entry due again by the new deadline."""
    deadlines = Deadlines()
    m = manifest("HT8", path=TYPE86)
    state = merge(None, m, _part(T0, "m1"), 0, deadlines).state
    state = merge(state, pilot("HT8"), _part(T0, "p1"), 0, deadlines).state
    state = expire(state, _ms(ARRIVAL) + 1).state
    assert state.entry_missing
    assert state.next_deadline_ms is None
    same = manifest("HT8", at=T0 + timedelta(minutes=5), action=Action.CHANGE, path=TYPE86)
    same = replace(same, estimated_arrival=ARRIVAL)
    kept = merge(state, same, _part(T0 + timedelta(minutes=5), "m2"), 0, deadlines).state
    assert kept.entry_missing
    later = replace(same, estimated_arrival=ARRIVAL + timedelta(days=1))
    moved = merge(state, later, _part(T0 + timedelta(minutes=6), "m3"), 0, deadlines).state
    assert not moved.entry_missing
    assert moved.next_deadline_ms == _ms(ARRIVAL + timedelta(days=1)) + 1


def test_a_withdrawn_type86_manifest_waits_for_no_entry_and_its_cancellation_names_the_regime() -> (
    None
):
    """A DELETE of a Type 86 manifest drops the entry deadline; the CANCELLED version carries
    the regime, rule set and reference data of its evaluation, not "unknown"."""
    f = Feed(rules)
    f.send(manifest("HT9", path=TYPE86))
    f.send(pilot("HT9", at=T0 + timedelta(minutes=1)))
    deleted = manifest("HT9", at=T0 + timedelta(minutes=2), action=Action.DELETE, path=TYPE86)
    f.send(deleted)
    assert decode_state(f.store["HT9"]).next_deadline_ms is None
    cancelled = f.decisions()[-1]
    assert cancelled.outcome is Outcome.CANCELLED
    assert cancelled.regime_version == "2024-type86-arrival"
    assert cancelled.ruleset_version == _default_ruleset().version
    assert cancelled.refdata_version == _SNAP.version


@settings(max_examples=80, deadline=None)
@given(
    order=st.permutations(range(3)),
    entry=st.sampled_from([None, -timedelta(hours=1), timedelta(0), timedelta(minutes=1)]),
    tick_at=st.integers(0, 3),
    tick=st.sampled_from([timedelta(hours=1), timedelta(hours=7)]),
    restart_at=st.integers(0, 3),
    again=st.booleans(),
)
def test_any_order_restart_or_replay_gives_the_law_of_the_entry(
    order: list[int],
    entry: timedelta | None,
    tick_at: int,
    tick: timedelta,
    restart_at: int,
    again: bool,
) -> None:
    """Whatever the order of a Type 86 shipment's events, wherever event time passes (or not)
    its arrival and wherever the worker restarts, and if everything is read again, its newest
    decision is the law of its entry: on time (filed upon or before arrival) RELEASE, filed
    later R25 late filing, none on file R25 missing once event time passed the arrival and
    R25 pending before. Versions are consecutive."""
    events: list[object] = [
        manifest("HTX", path=TYPE86),
        pilot("HTX", at=T0 + timedelta(minutes=1)),
    ]
    if entry is not None:
        events.append(entry86("HTX", at=ARRIVAL + entry))
    sequence = [events[i] for i in order if i < len(events)]
    f = Feed(rules)
    steps = [*sequence, *(sequence if again else [])]
    for i in range(len(steps) + 1):
        if i == restart_at:
            f.proc = Processor(rules, P)
            f.proc.rebuild_deadlines(f.store, set(range(P)))
            assert f.proc.index_deadlines()
        if i == tick_at:
            f.tick(_ms(T0 + tick))
        if i < len(steps):
            f.send(steps[i])
    # the clock moves on a little, as the marks move it every second: a deadline the clock
    # had passed before its shipment's manifest was read fires then
    f.tick(_ms(T0 + tick) + 1)
    decisions = f.decisions()
    assert [d.version for d in decisions] == list(range(1, len(decisions) + 1))
    newest = decisions[-1]
    passed = tick > timedelta(hours=6)
    if entry is None:
        assert _reasons(newest) == [("R25", ENTRY_MISSING if passed else ENTRY_PENDING)]
    elif entry <= timedelta(0):
        assert (newest.outcome, newest.hits) == (Outcome.RELEASE, ())
    else:
        assert _reasons(newest) == [("R25", "TYPE86_INTEGRITY")]
        assert newest.hits[0].evidence["reasons"] == "filed_after_arrival"


def test_old_states_without_the_fields_still_decide() -> None:
    """A Type 86 state encoded before the entry deadline existed (no ``ed``) still decides when
    its entry comes: it awaited no deadline, and the entry releases it."""
    f = Feed(rules)
    f.send(manifest("HTO", path=TYPE86))
    f.send(pilot("HTO", at=T0 + timedelta(minutes=1)))
    raw = json.loads(encode_json(decode_state(f.store["HTO"])))  # as the old code wrote it
    raw["dl"] = raw.pop("pw")  # the head was the partner wait: none, the pilot being there
    del raw["ed"], raw["ex"]
    f.store["HTO"] = json.dumps(raw, separators=(",", ":")).encode()
    old: ShipmentState = decode_state(f.store["HTO"])
    assert (old.entry_due_ms, old.next_deadline_ms) == (None, None)
    assert deadline_of(f.store["HTO"])[1] is None
    f.send(entry86("HTO", at=T0 + timedelta(minutes=2)))
    assert [d.outcome for d in f.decisions()] == [Outcome.HOLD, Outcome.RELEASE]
    assert decode_state(f.store["HTO"]).entry86 is not None
