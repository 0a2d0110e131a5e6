"""The entry-number check digit (documented mod-10 Luhn with letter mapping)."""

from __future__ import annotations

import doctest

import pytest

import s321.entry_number as en
from s321.entry_number import (
    check_digit,
    format_entry_number,
    is_valid_entry_number,
    make_entry_number,
)


def test_numeric_input_matches_the_textbook_luhn_example() -> None:
    """On ten digits the function is plain Luhn: 7992739871 gets check digit 3."""
    assert check_digit("7992739871") == "3"


def test_letters_map_like_their_punched_card_digits() -> None:
    """A filer-code letter counts as its mapped digit (A=1, J=1, S=2, Z=9)."""
    assert check_digit("A000000000") == check_digit("1000000000")
    assert check_digit("J000000000") == check_digit("1000000000")
    assert check_digit("S000000000") == check_digit("2000000000")
    assert check_digit("00Z0000000") == check_digit("0090000000")


def test_made_numbers_are_valid_and_any_other_check_digit_is_not() -> None:
    """make_entry_number yields a valid number; each of the nine other final digits is invalid."""
    number = make_entry_number("B7T", 4_512_003)
    assert len(number) == 11
    assert is_valid_entry_number(number)
    assert is_valid_entry_number(format_entry_number(number))
    for wrong in "0123456789":
        if wrong != number[-1]:
            assert not is_valid_entry_number(number[:-1] + wrong)


def test_single_digit_typos_are_detected() -> None:
    """Changing any one of the seven transaction digits invalidates the number."""
    number = make_entry_number("M2L", 1_234_567)
    for i in range(3, 10):
        changed = number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1 :]
        assert not is_valid_entry_number(changed)


@pytest.mark.parametrize(
    "bad", ["", "AB", "AB-1234567-8", "ABCD234567", "A_B1234567", "ABC12345678X"]
)
def test_malformed_numbers_are_invalid(bad: str) -> None:
    """Wrong lengths and characters are rejected without raising."""
    assert not is_valid_entry_number(bad)


def test_check_digit_rejects_malformed_input() -> None:
    """check_digit raises ValueError on anything but 3 alphanumerics + 7 digits."""
    with pytest.raises(ValueError, match="3 alphanumerics"):
        check_digit("ABC123456")
    with pytest.raises(ValueError, match="7 digits"):
        make_entry_number("ABC", 10_000_000)


def test_docstring_example_holds() -> None:
    """The module's doctest example is correct."""
    assert doctest.testmod(en).failed == 0
