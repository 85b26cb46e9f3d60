"""Maintenance window parsing and membership (Europe/Paris), overnight windows included."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tnoctl.config.window import Window

PARIS = ZoneInfo("Europe/Paris")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-11-30 is a Monday: day 0 = Monday."""
    return datetime(2026, 11, 30, hour, minute, tzinfo=PARIS) + timedelta(days=day)


def test_simple_window():
    w = Window.parse("Sun 02:00-05:00")
    assert w.days == frozenset({6}) and not w.overnight
    assert w.contains(at(6, 2, 0)) and w.contains(at(6, 4, 59))
    assert not w.contains(at(6, 5, 0)) and not w.contains(at(6, 1, 59)) and not w.contains(at(5, 3))


def test_overnight_window_spills_into_next_day():
    w = Window.parse("Mon-Fri 22:00-06:00")
    assert w.overnight
    assert w.contains(at(4, 23))  # Friday night
    assert w.contains(at(5, 5, 59))  # ... until Saturday 06:00
    assert not w.contains(at(5, 22))  # Saturday night is not listed
    assert w.contains(at(0, 3)) is False  # Monday 03:00 follows Sunday, not listed
    assert w.contains(at(1, 3))  # Tuesday 03:00 follows Monday 22:00


def test_comma_list_and_wrapping_range():
    assert Window.parse("Sat,Sun 01:00-04:00").days == frozenset({5, 6})
    assert Window.parse("Fri-Mon 01:00-04:00").days == frozenset({4, 5, 6, 0})
    assert Window.parse("Mon-Sun 00:00-23:59").days == frozenset(range(7))


def test_other_time_zones_are_converted():
    w = Window.parse("Sun 02:00-05:00")
    assert w.contains(datetime(2026, 12, 6, 1, 30, tzinfo=UTC))  # 02:30 in Paris (winter, UTC+1)
    assert not w.contains(datetime(2026, 12, 6, 4, 30, tzinfo=UTC))  # 05:30 in Paris
    assert w.contains(datetime(2026, 12, 6, 3, 0))  # naive = Paris


@pytest.mark.parametrize("text", ["Sun 2:00-05:00", "sunday 02:00-05:00", "Sun 02:00-25:00", "Sun 02:00-02:00",
                                  "Sun,02:00-05:00", "", "Sun 02:00-05:00 ", "Mon-Fri", "x" * 500])
def test_bad_windows_are_refused_with_a_message(text):
    with pytest.raises(ValueError) as err:
        Window.parse(text)
    assert "window" in str(err.value) or "time of day" in str(err.value)


def test_24_00_closes_the_window_at_the_end_of_the_day() -> None:
    from datetime import datetime

    always = Window.parse("Mon-Sun 00:00-24:00")
    assert always.contains(datetime(2026, 11, 29, 23, 59, 59))
    assert always.contains(datetime(2026, 11, 30, 0, 0, 0))
    evening = Window.parse("Fri 20:00-24:00")
    assert evening.contains(datetime(2026, 11, 27, 23, 59)) and not evening.contains(datetime(2026, 11, 28, 0, 1))
    with pytest.raises(ValueError):
        Window.parse("Sun 24:00-05:00")
