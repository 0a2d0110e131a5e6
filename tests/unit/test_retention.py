"""A shipment's state is forgotten in event time: once nothing is pending, the retention after
its last activity; its decisions stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from s321.core.correlation import DEFAULT_RETENTION, Deadlines, ShipmentState, expire, retained
from s321.core.processor import Output, Processor
from s321.core.state import deadline_of, deadlines_of, decode_state, encode_state
from s321.models import ReleasePath
from tests.factories import T0, PerRecord, entry86, manifest, pilot, value_rule
from tests.unit.test_pipeline import Feed as _Feed

DAY = timedelta(days=1)


class Feed(_Feed):
    """Records fed as a live stream brings them: each one's broker timestamp is its event time
    (retention runs from the later of the two)."""

    def send(self, event: object, *args: Any, **kwargs: Any) -> list[Output]:
        header = event.header  # type: ignore[attr-defined]  # every input event has one
        kwargs.setdefault("timestamp_ms", _ms(header.event_time))
        return super().send(event, *args, **kwargs)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def test_default_retention_outlasts_the_longest_wait() -> None:
    """21 days: beyond the 15-day Type 86 filing deadline of arrivals before 2024-04-13 and the
    24 h manifest wait."""
    assert timedelta(days=21) == DEFAULT_RETENTION
    assert Deadlines().retention == DEFAULT_RETENTION


def test_a_decided_state_is_forgotten_when_the_clock_passes_its_retention() -> None:
    """Decided at T0; kept while the partition clock is short of T0 + 21 days, deleted once it
    passes; its decision was sent and is not taken back."""
    f = Feed()
    f.send(manifest("HBR1"))
    f.send(pilot("HBR1", at=T0 + timedelta(minutes=1)))
    [decision] = f.decisions()
    state = decode_state(f.store["HBR1"])
    assert state.forget_at_ms == _ms(T0 + timedelta(minutes=1) + 21 * DAY)
    f.tick(_ms(T0 + 21 * DAY))
    assert "HBR1" in f.store
    assert f.proc.forgotten_total == 0
    f.tick(_ms(T0 + 21 * DAY + timedelta(minutes=1)))
    assert "HBR1" not in f.store
    assert f.proc.forgotten_total == 1
    assert f.decisions() == [decision]


def test_a_later_change_moves_the_time_to_forget() -> None:
    """An amendment ten days on is activity: the state lives 21 days from it."""
    f = Feed()
    f.send(manifest("HBR2"))
    f.send(pilot("HBR2", at=T0 + timedelta(minutes=1)))
    f.send(manifest("HBR2", "45.00", at=T0 + 10 * DAY, event_id="m-HBR2-change"))
    f.tick(_ms(T0 + 25 * DAY))
    assert "HBR2" in f.store
    f.tick(_ms(T0 + 31 * DAY + timedelta(minutes=1)))
    assert "HBR2" not in f.store


def test_an_awaited_type86_entry_is_waited_for_and_then_retained_from_its_deadline() -> None:
    """Arrival before 2024-04-13: the entry is due 15 days after arrival. The state is held for
    the missing entry when that passes, and forgotten 21 days after the deadline, not the
    manifest."""
    t = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    f = Feed()
    f.send(manifest("HBR3", at=t, path=ReleasePath.TYPE_86))
    f.send(pilot("HBR3", at=t + timedelta(minutes=1)))
    state = decode_state(f.store["HBR3"])
    assert state.entry_due_ms is not None
    assert state.forget_at_ms is None  # a deadline is pending
    assert state.forget_ms == state.entry_due_ms + 21 * DAY // timedelta(milliseconds=1)
    f.tick(state.entry_due_ms + 1)
    assert decode_state(f.store["HBR3"]).entry_missing
    f.tick(state.forget_ms - 1)
    assert "HBR3" in f.store
    f.tick(state.forget_ms)
    assert "HBR3" not in f.store


def test_an_unmatched_state_is_reported_then_forgotten() -> None:
    """Pilot data whose manifest never came is reported after 24 h and forgotten 21 days after
    it was filed: its record is on the unmatched topic, not in the table for ever."""
    from s321 import topics

    f = Feed()
    f.send(pilot("HBR4"))
    f.tick(_ms(T0 + 2 * DAY))
    assert len(f.of(topics.UNMATCHED)) == 1
    assert "HBR4" in f.store
    f.tick(_ms(T0 + 21 * DAY + timedelta(seconds=1)))
    assert "HBR4" not in f.store


def test_a_restarted_processor_indexes_the_times_to_forget_from_the_table() -> None:
    """After a rebalance the index is rebuilt from the states' heads: a state decided before it
    is forgotten all the same, and a forgotten key is not forgotten twice."""
    f = Feed()
    f.send(manifest("HBR5"))
    f.send(pilot("HBR5", at=T0 + timedelta(minutes=1)))
    f.send(entry86("HBR6"))
    partition, deadline, at = deadlines_of(f.store["HBR5"])
    assert (deadline, at) == (None, _ms(T0 + timedelta(minutes=1) + 21 * DAY))
    assert deadline_of(f.store["HBR5"]) == (partition, None)
    f.proc = Processor(PerRecord(value_rule), 4)
    f.proc.rebuild_deadlines(f.store, set(range(4)))
    assert f.proc.index_deadlines()
    f.tick(_ms(T0 + 30 * DAY))
    assert "HBR5" not in f.store
    assert "HBR6" not in f.store  # reported unmatched, then forgotten in the same clock move
    assert f.proc.forgotten_total == 2


def test_the_retention_is_configurable_and_an_alias_is_kept() -> None:
    """A processor given 3 days forgets after 3 days; a state with no activity of its own (an
    identifier alias) has no time to be forgotten at."""
    f = Feed()
    f.proc = Processor(PerRecord(value_rule), 4, deadlines=Deadlines(retention=3 * DAY))
    f.send(manifest("HBR7"))
    f.send(pilot("HBR7", at=T0 + timedelta(minutes=1)))
    f.tick(_ms(T0 + 3 * DAY + timedelta(minutes=2)))
    assert "HBR7" not in f.store
    alias = retained(ShipmentState(key="TN1", partition=0, alias_of="HBR7"), Deadlines())
    assert alias.forget_ms is None
    assert not expire(alias, _ms(T0 + 365 * DAY)).changed


def test_a_state_written_before_retention_reads_as_never_forgotten_until_it_changes() -> None:
    """An S2 state (no time to forget in its head) decodes with none; written again, it has."""
    f = Feed()
    f.send(manifest("HBR8"))
    f.send(pilot("HBR8", at=T0 + timedelta(minutes=1)))
    state = decode_state(f.store["HBR8"])
    s2 = _as_s2(encode_state(state))
    assert decode_state(s2).forget_ms is None
    assert deadlines_of(s2)[2] is None
    assert decode_state(encode_state(retained(decode_state(s2), Deadlines()))) == state


def _as_s2(raw: bytes) -> bytes:
    """The same state in the encoding before the time to forget (S2 head, no ``fg``)."""
    import json
    import struct

    partition, deadline, _ = struct.unpack_from(">Iqq", raw, 3)
    at = 3 + 20
    (size,) = struct.unpack_from(">i", raw, at)
    meta = json.loads(raw[at + 4 : at + 4 + size])
    del meta["fg"]
    text = json.dumps(meta, separators=(",", ":")).encode()
    rest = raw[at + 4 + size :]
    return (
        b"\x00S2"
        + struct.pack(">Iq", partition, deadline)
        + struct.pack(">i", len(text))
        + text
        + rest
    )


def test_a_replayed_state_is_kept_for_the_retention_after_its_receipt() -> None:
    """Traffic replayed a year after its events (broker time a year later): the state is not
    forgotten 21 days after its events, only 21 days after it was received, so a replay whose
    clock runs up to the replay's own time keeps what its later records still need."""
    f = _Feed()
    f.send(manifest("HBR9"))
    f.send(pilot("HBR9", at=T0 + timedelta(minutes=1)))
    f.tick(_ms(T0 + 22 * DAY))
    assert "HBR9" in f.store
    received = decode_state(f.store["HBR9"]).forget_at_ms
    assert received is not None
    f.tick(received + 1)
    assert "HBR9" not in f.store
