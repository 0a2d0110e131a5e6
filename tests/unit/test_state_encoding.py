"""The stored shipment state: compact (the input records as their own bytes), bounded in size
whatever its inputs, and states written by the old code (JSON, base64) still read."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from s321.core.correlation import Flag, Part, ShipmentState
from s321.core.processor import MAX_OUTPUT_BYTES
from s321.core.state import StateCodec, deadline_of, decode_state, encode_state
from s321.models import Action, InputRef, Outcome
from s321.validation import MAX_KEY_CHARS, MAX_RECORD_BYTES
from tests.factories import T0, manifest, pilot
from tests.legacy_state import encode_json
from tests.unit.test_pipeline import Feed

__all__: list[str] = []

#: The largest record Kafka takes by default (the producer's max.request.size, 1 MiB; the
#: broker's max.message.bytes is 1,048,588): a changelog record must stay well under it.
CHANGELOG_LIMIT = 1024 * 1024


def _part(raw: bytes, n: int, action: Action = Action.ADD) -> Part:
    ref = InputRef("s321.manifest.v1" + "x" * 200, 2**31 - 1, 2**63 - 1, "e" * 128)
    return Part(raw, ref, 1_725_000_000_000 + n, action, 1_800_000_000_000 + n)


def _largest() -> ShipmentState:
    """A state as large as accepted inputs can make it: three records of the largest size
    kept, every list at its limit, the longest ids."""
    key = "K" * MAX_KEY_CHARS
    raw = bytes(range(256)) * (MAX_RECORD_BYTES // 256)
    return ShipmentState(
        key=key,
        partition=2**31 - 1,
        manifest=_part(raw, 1, Action.CHANGE),
        pilot=_part(raw, 2),
        entry86=_part(raw, 3),
        seen=tuple("e" * 127 + str(i % 10) for i in range(32)),
        deadline_ms=2**62,
        pilot_expired=True,
        unmatched=True,
        version=2**31,
        signature="HOLD|" + ",".join(f"R{i:02d}:SOME_LONG_REASON_CODE_{i}" for i in range(40)),
        decided_ms=2**62,
        alias_of=key,
        entry_numbers=tuple(f"{i:035d}" for i in range(16)),
        entry_due_ms=2**62,
        entry_expired=True,
        invalid=tuple(Flag(k, 2**62, "f" * 200) for k in ("manifest", "pilot", "entry86")),
    )


def test_the_largest_state_fits_a_changelog_record_with_margin() -> None:
    """Three records of the largest size accepted and every other field at its limit encode
    in under 80 % of Kafka's default record limit, and under the worker's own output limit."""
    state = _largest()
    raw = encode_state(state)
    assert len(raw) < 0.8 * CHANGELOG_LIMIT
    assert len(raw) < MAX_OUTPUT_BYTES
    assert decode_state(raw) == state
    assert deadline_of(raw) == (state.partition, state.next_deadline_ms)
    # the old encoding could not hold it (base64 grows the records by a third)
    assert len(encode_json(state)) > CHANGELOG_LIMIT


_MS = st.integers(0, 2**62)


@given(
    st.binary(max_size=64),
    st.none() | st.binary(max_size=64),
    st.booleans(),
    st.none() | _MS,
    st.none() | _MS,
    st.lists(st.text(max_size=8), max_size=4),
)
@settings(max_examples=200, deadline=None)
def test_any_state_reads_back_as_written(
    raw: bytes,
    other: bytes | None,
    expired: bool,
    deadline: int | None,
    entry_due: int | None,
    seen: list[str],
) -> None:
    """A state of any shape reads back equal, its head giving its partition and next
    deadline."""
    state = ShipmentState(
        key="HB1",
        partition=3,
        manifest=_part(raw, 1),
        pilot=None if other is None else _part(other, 2),
        seen=tuple(seen),
        deadline_ms=deadline,
        pilot_expired=expired,
        entry_due_ms=entry_due,
        invalid=(Flag("pilot", 5, "currency"),) if expired else (),
    )
    data = encode_state(state)
    assert decode_state(data) == state
    assert deadline_of(data) == (3, state.next_deadline_ms)


def test_a_worker_restarted_on_states_written_by_the_old_code_goes_on() -> None:
    """States stored in the old JSON layout (a waiting manifest, a decided shipment) are read:
    the waiting one is decided when its pilot record comes, the decided one publishes its next
    version after its last, and both are written back compact."""
    f = Feed()
    f.send(manifest("HB40"))
    f.send(manifest("HB41"))
    f.send(pilot("HB41"))
    for key in ("HB40", "HB41"):
        f.store[key] = encode_json(decode_state(f.store[key]))
        assert f.store[key].startswith(b'{"p":')
        assert decode_state(f.store[key]).invalid == ()
    restarted = Feed()
    restarted.store = f.store
    restarted.proc.rebuild_deadlines(f.store, set(range(4)))
    restarted.proc.index_deadlines()
    restarted.send(pilot("HB40"))
    restarted.send(manifest("HB41", "900.00", at=T0 + timedelta(minutes=3)))
    got = [(d.shipment_key, d.version, d.outcome) for d in restarted.decisions()]
    assert got == [("HB40", 1, Outcome.RELEASE), ("HB41", 2, Outcome.HOLD)]
    assert all(not f.store[k].startswith(b"{") for k in ("HB40", "HB41"))


def test_a_flagged_state_keeps_its_flags() -> None:
    """Flags are stored with the state and read back."""
    state = replace(_largest(), manifest=None, pilot=None, entry86=None)
    assert decode_state(encode_state(state)).invalid == state.invalid


def test_the_codec_reads_the_bytes_it_wrote_without_decoding_them_again() -> None:
    codec = StateCodec(kept=2)
    first = ShipmentState(key="A", partition=1, version=1)
    raw = codec.encode("A", first)
    assert raw == encode_state(first)
    assert codec.decode("A", bytes(raw)) is first  # equal bytes, read back from a store
    # other bytes for the key (written elsewhere, or read from an older changelog) are decoded
    other = replace(first, version=2)
    assert codec.decode("A", encode_state(other)) == other
    # the codec remembers the newest keys only
    codec.encode("B", ShipmentState(key="B", partition=1))
    codec.encode("C", ShipmentState(key="C", partition=1))
    again = codec.decode("A", raw)
    assert again == first
    assert again is not first
