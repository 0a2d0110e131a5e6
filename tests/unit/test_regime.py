"""The effective-dated regime table: the right row on both sides of every boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from s321.errors import ConfigError
from s321.regime import EASTERN, default_regimes, load_regimes

_BOUNDARIES = [
    ("2016-800", datetime(2016, 8, 26, 0, 0, tzinfo=EASTERN)),
    ("2019-pilot", datetime(2019, 8, 22, 0, 0, tzinfo=EASTERN)),
    ("2019-type86", datetime(2019, 9, 28, 0, 0, tzinfo=EASTERN)),
    ("2024-type86-arrival", datetime(2024, 4, 13, 0, 0, tzinfo=EASTERN)),
    ("2024-acas-description", datetime(2024, 11, 12, 0, 0, tzinfo=EASTERN)),
    ("2025-cn-hk-excluded", datetime(2025, 5, 2, 0, 1, tzinfo=EASTERN)),
    ("2025-suspended", datetime(2025, 8, 29, 0, 1, tzinfo=EASTERN)),
    ("2026-codified", datetime(2026, 6, 24, 0, 0, tzinfo=EASTERN)),
    ("2026-cpsc-efiling", datetime(2026, 7, 8, 0, 0, tzinfo=EASTERN)),
    ("2027-statute-end", datetime(2027, 7, 1, 0, 0, tzinfo=EASTERN)),
]


@pytest.mark.parametrize(("version", "start"), _BOUNDARIES)
def test_each_boundary_switches_exactly_at_its_eastern_time(version: str, start: datetime) -> None:
    """One second before a boundary the previous row is in force; at it, the new one."""
    table = default_regimes()
    assert table.at(start.astimezone(UTC)).version == version
    assert table.at((start - timedelta(seconds=1)).astimezone(UTC)).version != version


def test_china_exclusion_starts_at_0001_eastern_not_utc() -> None:
    """CN/HK exclusion is in force from 04:01 UTC on 2025-05-02 (00:01 EDT), not earlier."""
    table = default_regimes()
    before = table.at(datetime(2025, 5, 2, 4, 0, 59, tzinfo=UTC))
    after = table.at(datetime(2025, 5, 2, 4, 1, tzinfo=UTC))
    assert before.ineligibility(["CN"]) is None
    assert after.ineligibility(["CN"]) == "origin_excluded"
    assert after.ineligibility(["HK"]) == "origin_excluded"
    assert after.ineligibility(["VN"]) is None
    assert after.ineligibility([None]) == "origin_unknown"


def test_suspension_makes_every_origin_ineligible() -> None:
    """From 2025-08-29 00:01 Eastern no origin is eligible."""
    r = default_regimes().at(datetime(2025, 8, 29, 4, 1, tzinfo=UTC))
    assert r.ineligibility(["VN"]) == "suspended"
    prev = default_regimes().at(datetime(2025, 8, 29, 4, 0, tzinfo=UTC))
    assert prev.ineligibility(["VN"]) is None


def test_threshold_was_200_before_2016() -> None:
    """The threshold is $200 before 2016-08-26 and $800 from then on."""
    table = default_regimes()
    assert table.at(datetime(2016, 8, 25, 12, tzinfo=UTC)).threshold_usd == Decimal(200)
    assert table.at(datetime(2016, 8, 26, 12, tzinfo=UTC)).threshold_usd == Decimal(800)


def test_naive_datetime_is_refused() -> None:
    """A lookup with a naive datetime raises rather than guessing a zone."""
    with pytest.raises(ValueError, match="timezone-aware"):
        default_regimes().at(datetime(2025, 1, 1))


def test_bad_table_is_refused_naming_the_line(tmp_path: Path) -> None:
    """A malformed regime table fails at load naming the file line."""
    text = (Path(__file__).parents[2] / "src/s321/data/regimes.csv").read_text()
    bad = tmp_path / "regimes.csv"
    bad.write_text(text.replace("2016-08-26 00:00", "26/08/2016"))
    with pytest.raises(ConfigError, match="line 3"):
        load_regimes(bad)


def test_type86_is_due_15_calendar_days_after_arrival_before_2024_04_13_and_at_arrival_from_then() -> (
    None
):
    """Under the rows before 2024-04-13 a Type 86 entry is due by the end of the 15th calendar
    day after the arrival date (U.S. Eastern, 84 FR 40079 and 19 CFR 142.2); from 2024-04-13
    at the arrival itself (89 FR 2630), on both sides of the boundary."""
    table = default_regimes()
    last_old = datetime(2024, 4, 12, 23, 59, 59, tzinfo=EASTERN)
    first_new = datetime(2024, 4, 13, 0, 0, tzinfo=EASTERN)
    old, new = table.at(last_old), table.at(first_new)
    assert (old.type86_filing_days, new.type86_filing_days) == (15, 0)
    due = old.type86_due(last_old)
    assert due == datetime(2024, 4, 28, tzinfo=EASTERN) - timedelta(microseconds=1)
    assert new.type86_due(first_new) == first_new
    # the calendar day counts in Eastern time: 02:00 UTC on 1 March is still 29 February there
    late_evening = datetime(2024, 3, 1, 2, 0, tzinfo=UTC)
    assert table.at(late_evening).type86_due(late_evening).astimezone(EASTERN).date() == (
        datetime(2024, 3, 15).date()
    )


def test_a_filing_window_that_is_not_a_whole_number_of_days_is_refused(tmp_path: Path) -> None:
    """A regime table whose type86_filing_days is not a whole number fails at load naming the line."""
    text = (Path(__file__).parents[2] / "src/s321/data/regimes.csv").read_text()
    lines = text.splitlines()
    row = lines[4].split(",")
    row[8] = "15.5"
    lines[4] = ",".join(row)
    bad = tmp_path / "regimes.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"line 5: type86_filing_days"):
        load_regimes(bad)
