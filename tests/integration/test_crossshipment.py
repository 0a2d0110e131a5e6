"""Cross-shipment aggregates in the real Redis: idempotent, replay-safe, crossing signals."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import redis

from s321.models import Action, EventHeader, LineItem
from s321.stores.crossshipment import CrossShipmentStore, VersionLedger, _h
from tests.unit.test_rules import manifest, record


def _rec(key: str, value: str, action: Action = Action.ADD):  # type: ignore[no-untyped-def]
    m = manifest(
        lines=(
            LineItem(
                "Mens cotton crew neck T-shirt",
                1,
                Decimal(value),
                Decimal("0.5"),
                "6109100012",
                "CN",
            ),
        ),
        header=EventHeader(f"m-{key}", manifest().header.event_time, "C", action),
    )
    return dataclasses.replace(record(m, with_pilot=False), key=key)


def test_person_day_counts_each_shipment_once_and_signals_crossing(
    redis_client: redis.Redis, unique: str
) -> None:
    """Replays do not double count, and crossing $800 names the other shipments."""
    store = CrossShipmentStore(redis_client, prefix=f"{unique}:")
    a = store.record_and_read(_rec("A", "500"))
    assert a.person_day_total == Decimal("500.00")
    again = store.record_and_read(_rec("A", "500"))
    assert again.person_day_total == Decimal("500.00")
    assert again.person_day_count == 1
    b = store.record_and_read(_rec("B", "400"))
    assert b.person_day_total == Decimal("900.00")
    assert b.affected == ("A",)
    changed = store.record_and_read(_rec("B", "100"))
    assert changed.person_day_total == Decimal("600.00")
    assert changed.affected == ("A",)
    gone = store.record_and_read(_rec("B", "100", Action.DELETE))
    assert gone.affected == ("A",)
    assert store.record_and_read(_rec("A", "500")).person_day_total == Decimal("500.00")


def test_a_replayed_recording_still_names_the_shipments_it_keeps_over_the_limit(
    redis_client: redis.Redis, unique: str
) -> None:
    """B's first recording crossed $800 and named A; if that signal was lost in a crash, the
    repeat of B's recording (which changes nothing) names A as kept over the limit by B's
    presence. A's own repeat names B likewise, so the processor sends these only with a new
    decision version (two shipments never re-evaluate each other for ever)."""
    store = CrossShipmentStore(redis_client, prefix=f"{unique}:")
    store.record_and_read(_rec("A", "500"))
    first = store.record_and_read(_rec("B", "400"))
    assert (first.affected, first.affected_by_presence) == (("A",), ())
    replay = store.record_and_read(_rec("B", "400"))
    assert (replay.affected, replay.affected_by_presence) == ((), ("A",))
    assert store.record_and_read(_rec("A", "500")).affected_by_presence == ("B",)
    store.record_and_read(_rec("C", "900"))  # now over the limit with or without B
    assert store.record_and_read(_rec("B", "400")).affected_by_presence == ()


def test_unreachable_redis_gives_unavailable_aggregates(unique: str) -> None:
    """A store whose Redis cannot be reached returns aggregates marked unavailable."""
    client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    agg = CrossShipmentStore(client, prefix=f"{unique}:").record_and_read(_rec("A", "5"))
    assert not agg.available


def test_a_batch_recorded_in_one_round_trip_reads_as_one_by_one(
    redis_client: redis.Redis, unique: str
) -> None:
    """Recording a batch in one round trip gives each record the aggregates it would get
    alone, in order (B sees A, C sees both, the DELETE takes B out and names the others), also
    across script calls (groups of two here), and a script Redis no longer knows is loaded
    again without losing a call."""
    client = redis_client
    batch = [
        _rec("A", "500"),
        _rec("B", "400"),
        _rec("C", "50"),
        _rec("B", "400", Action.DELETE),
        _rec("A", "500"),
    ]
    alone = CrossShipmentStore(client, prefix=f"{unique}-1:")
    expected = [alone.record_and_read(r) for r in batch]
    together = CrossShipmentStore(client, prefix=f"{unique}-2:")
    together.GROUP = 2
    client.script_flush()
    got = together.record_and_read_many(batch)
    assert got == expected
    assert [a.person_day_total for a in got] == [
        Decimal("500.00"),
        Decimal("900.00"),
        Decimal("950.00"),
        None,
        Decimal("550.00"),
    ]
    assert got[1].affected == ("A",)


def test_a_recording_that_fails_leaves_the_others_in_its_batch_recorded(
    redis_client: redis.Redis, unique: str
) -> None:
    """When Redis refuses one record's recording (here B's index key holds a string), B gets
    unavailable aggregates and the records before and after it are recorded as usual."""
    store = CrossShipmentStore(redis_client, prefix=f"{unique}:")
    redis_client.set(f"{unique}:xs:ship:{_h('B')}", "not a hash")
    got = store.record_and_read_many([_rec("A", "500"), _rec("B", "400"), _rec("C", "50")])
    assert [a.available for a in got] == [True, False, True]
    assert got[2].person_day_total == Decimal("550.00")


def test_a_cancelled_shipment_leaves_the_aggregates_and_frees_the_others(
    redis_client: redis.Redis, unique: str
) -> None:
    """Two parcels for one person on one day sum over $800: R03 holds both. When one's
    manifest is withdrawn (DELETE) it is CANCELLED and taken out of the person-day, and the
    other is decided again: R03 no longer holds it."""
    from datetime import timedelta

    from s321.evaluator import RuleEvaluator
    from s321.models import Address, Party
    from s321.rules import default_ruleset
    from tests.unit.test_pipeline import Feed
    from tests.unit.test_rules import SELLER, SNAP, T, pilot

    other_seller = Party("Yiwu Bright Bags Co", Address("3 Futian Road", "Yiwu", "CN"), "S-2")
    store = CrossShipmentStore(redis_client, prefix=f"{unique}:")
    f = Feed(RuleEvaluator(default_ruleset(), SNAP, store))

    def parcel(hb: str, value: str, seller: Party, action: Action = Action.ADD):  # type: ignore[no-untyped-def]
        line = LineItem(
            "Mens cotton crew neck T-shirt", 1, Decimal(value), Decimal("0.5"), "6109100012", "CN"
        )
        at = T - timedelta(hours=5 if action is Action.DELETE else 6)
        return manifest(
            header=EventHeader(f"m-{hb}-{action.value}", at, "CARR1", action),
            house_bill=hb,
            shipper=seller,
            lines=(line,),
        )

    for hb, value, seller in (("HBA", "500", SELLER), ("HBB", "400", other_seller)):
        f.send(parcel(hb, value, seller))
        f.send(
            pilot(
                header=EventHeader(f"p-{hb}", T - timedelta(hours=8), "MKT1"),
                house_bill=hb,
                seller=seller,
                listed_price=Decimal(value),
                quantity=1,
            )
        )

    def latest(key: str):  # type: ignore[no-untyped-def]
        return [d for d in f.decisions() if d.shipment_key == key][-1]

    assert "R03" in {h.rule_id for h in latest("HBA").hits}
    assert "R03" in {h.rule_id for h in latest("HBB").hits}
    f.send(parcel("HBB", "400", other_seller, Action.DELETE))
    assert latest("HBB").outcome.value == "CANCELLED"
    assert "R03" not in {h.rule_id for h in latest("HBA").hits}


def test_the_version_ledger_keeps_each_shipments_newest_version(
    redis_client: redis.Redis, unique: str
) -> None:
    """What one worker wrote, another reads; an unknown shipment is absent; the decision
    records of a write are held until the next write or until let go; an unreachable Redis
    reads as an empty ledger and a write to it is dropped without raising."""
    ledger = VersionLedger(redis_client, prefix=f"{unique}:")
    ledger.write(
        {"A": (1, "RELEASE|"), "B": (3, "HOLD|R03:PERSON_DAY_AGGREGATE")},
        {("A", 1): b"a1", ("B", 2): b"b2", ("B", 3): b"b3"},
    )
    again = VersionLedger(redis_client, prefix=f"{unique}:")  # the worker that replays
    assert again.sent({"A": range(1, 2), "B": range(1, 4), "C": range(1, 2)}) == {
        "A": [(1, b"a1")],
        "B": [(2, b"b2"), (3, b"b3")],
    }
    assert 0 < redis_client.ttl(again._record_key("B", 3)) <= VersionLedger.TTL_S
    ledger.write({"A": (2, "HOLD|R02:X")}, {("A", 2): b"a2", ("B", 3): b"b3"})
    assert again.sent({"A": range(1, 3), "B": range(1, 4)}) == {
        "A": [(2, b"a2")],
        "B": [(3, b"b3")],
    }, "the records of the write before are let go, those written again kept"
    assert again.read(["A", "B", "C"]) == {
        "A": (2, "HOLD|R02:X"),
        "B": (3, "HOLD|R03:PERSON_DAY_AGGREGATE"),
    }
    assert 0 < redis_client.ttl(again._key("A")) <= VersionLedger.TTL_S
    ledger.let_go()  # the worker stops once all its decisions are acknowledged
    assert again.sent({"A": range(1, 3), "B": range(1, 4)}) == {}
    assert again.read(["A"]) == {"A": (2, "HOLD|R02:X")}, "the versions stay"
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    assert VersionLedger(down).read(["A"]) == {}
    assert VersionLedger(down).sent({"A": range(1, 2)}) == {}
    VersionLedger(down).write({"A": (1, "RELEASE|")}, {("A", 1): b"a1"})
    down.close()
