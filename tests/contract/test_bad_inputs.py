"""Hostile and broken values: each is refused with DecodeError, quickly and in bounded memory."""

from __future__ import annotations

import contextlib
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s321.errors import RecordError
from s321.models import ManifestEvent
from s321.serialization import MAGIC, DecodeError, decode, encode, fingerprint
from tests.contract import samples
from tests.contract.bad_inputs import BAD_INPUTS

__all__: list[str] = []

#: Far below what any hostile length prefix in the corpus claims (gigabytes).
_PEAK_LIMIT = 8 * 1024 * 1024


@pytest.mark.parametrize(("name", "data", "expected"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_refused_in_bounded_memory(
    name: str, data: bytes, expected: type[Any]
) -> None:
    """The corpus entry raises DecodeError carrying the original bytes, allocating little."""
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError) as info:
            decode(data, expected)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.raw == data
    assert info.value.reason
    assert peak < _PEAK_LIMIT, f"{name}: peak {peak} bytes"


def test_decode_error_is_a_record_error() -> None:
    """DecodeError sits under RecordError, so the pipeline dead-letters it like any bad record."""
    assert issubclass(DecodeError, RecordError)


def test_corpus_entries_differ_from_the_valid_value() -> None:
    """The corpus forges real encodings: the valid value itself still decodes (a sanity anchor)."""
    assert decode(encode(samples.manifest()), ManifestEvent) == samples.manifest()


def test_reason_carries_no_personal_data() -> None:
    """A type mismatch names types, not the names or addresses inside the value."""
    data = encode(samples.pilot())
    with pytest.raises(DecodeError) as info:
        decode(data, ManifestEvent)
    assert "Jane" not in str(info.value)
    assert "Main St" not in str(info.value)


def test_non_bytes_input_is_refused() -> None:
    """A str where bytes belong raises DecodeError, not TypeError."""
    with pytest.raises(DecodeError):
        decode("not bytes")  # type: ignore[arg-type]


@given(st.binary(max_size=512))
@settings(max_examples=300, deadline=None)
def test_random_bytes_never_crash(data: bytes) -> None:
    """Arbitrary bytes either decode or raise DecodeError; nothing else escapes."""
    with contextlib.suppress(DecodeError):
        decode(data)


@given(
    st.sampled_from(["ManifestEvent", "PilotRecord", "Entry86", "Decision", "DeadLetter"]),
    st.binary(max_size=512),
)
@settings(max_examples=500, deadline=None)
def test_random_body_behind_a_valid_header_never_crashes(name: str, body: bytes) -> None:
    """Random bodies behind a real fingerprint either decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        decode(MAGIC + fingerprint(name) + body)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_mutated_real_values_never_crash(data: st.DataObject) -> None:
    """Flipping, cutting or inserting bytes in a real value yields a record or DecodeError."""
    value = bytearray(encode(samples.manifest(lines=3)))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(10, len(value) - 1))
        value[i] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode(bytes(value))
