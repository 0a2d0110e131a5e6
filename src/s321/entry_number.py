"""CBP entry numbers: ``XXX-NNNNNNN-C`` (filer code, transaction number, check digit).

19 CFR 142.3a(b) fixes the format: a 3-character entry filer code assigned by CBP (letters
and/or digits), a 7-digit number assigned by the filer, and a check digit "computed from the
first 10 characters based on a formula provided by Customs". The formula is published in the
ACE CATAIR, Appendix E ("Valid Entry Numbers").

**What is implemented here.** The algorithm below is an assumption, not checked against the
appendix's worked examples; it is kept in this one function so that it can be corrected in one
place (rule R25's ``check_digit`` parameter switches the check off meanwhile):

1. Letters of the filer code become digits with the classic punched-card mapping used by
   mod-10 self-check schemes: ``A..I -> 1..9``, ``J..R -> 1..9``, ``S..Z -> 2..9``.
2. Over the resulting 10 digits, the Luhn (mod-10, "double every other") scheme runs from
   the right: the rightmost digit and every second digit leftward are doubled, a doubled
   value over 9 contributes its digit sum, and the check digit is ``(10 - sum % 10) % 10``.

Rule R25 (:mod:`s321.rules.catalogue`) checks entry numbers with :func:`entry_number_fault`, and
the synthetic traffic generator makes valid numbers with :func:`make_entry_number` and invalid
ones by changing the check digit, so both sides agree whatever the final formula turns out to be.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "check_digit",
    "entry_number_fault",
    "format_entry_number",
    "is_valid_entry_number",
    "make_entry_number",
]

_LETTER_DIGITS = {
    **{chr(ord("A") + i): i + 1 for i in range(9)},  # A..I
    **{chr(ord("J") + i): i + 1 for i in range(9)},  # J..R
    **{chr(ord("S") + i): i + 2 for i in range(8)},  # S..Z
}
_FILER = re.compile(r"^[0-9A-Z]{3}$")
_ENTRY = re.compile(r"^[0-9A-Z]{3}[0-9]{8}$")
_SEPARATORS = re.compile(r"[\s\-]")


def _digit(char: str) -> int:
    if char.isdigit():
        return int(char)
    return _LETTER_DIGITS[char]


def check_digit(first10: str) -> str:
    """The check digit of an entry number's first 10 characters (filer code + 7 digits).

    >>> check_digit("B760540301")
    '6'

    Raises :class:`ValueError` when the input is not 3 alphanumerics followed by 7 digits.
    """
    text = first10.upper()
    if len(text) != 10 or not _FILER.match(text[:3]) or not text[3:].isdigit():
        raise ValueError("an entry number's first 10 characters are 3 alphanumerics + 7 digits")
    total = 0
    for position, char in enumerate(reversed(text)):
        value = _digit(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def make_entry_number(filer_code: str, transaction: int) -> str:
    """A valid 11-character entry number (no separators) for a filer code and a serial."""
    if not 0 <= transaction <= 9_999_999:
        raise ValueError("the transaction number has 7 digits")
    first10 = f"{filer_code.upper()}{transaction:07d}"
    return first10 + check_digit(first10)


def entry_number_fault(entry_number: str) -> Literal["format", "check_digit"] | None:
    """What is wrong with a number (hyphens and whitespace allowed): ``"format"`` when it is
    not 3 alphanumerics and 8 digits, ``"check_digit"`` when its last digit is not
    :func:`check_digit` of the first ten, None when it is a valid entry number."""
    text = _SEPARATORS.sub("", entry_number).upper()
    if not _ENTRY.match(text):
        return "format"
    return None if check_digit(text[:10]) == text[10] else "check_digit"


def is_valid_entry_number(entry_number: str) -> bool:
    """Whether a number (hyphens and whitespace allowed) has the right form and check digit."""
    return entry_number_fault(entry_number) is None


def format_entry_number(entry_number: str) -> str:
    """The printed form ``XXX-NNNNNNN-C`` of an 11-character entry number."""
    text = _SEPARATORS.sub("", entry_number).upper()
    return f"{text[:3]}-{text[3:10]}-{text[10:]}"
