"""Business-time arithmetic (gateway.lifecycle.calendar): office hours 8–16 in Saxony."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.config import CalendarSettings
from gateway.lifecycle.calendar import BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.fixture
def saxony() -> BusinessCalendar:
    return BusinessCalendar(CalendarSettings(), "Europe/Berlin")


def test_friday_afternoon_is_due_monday_morning(saxony: BusinessCalendar) -> None:
    due = saxony.add(local(2026, 11, 13, 15, 0), 4 * 60)
    assert due == local(2026, 11, 16, 11, 0)
    assert due.tzinfo == UTC


def test_buss_und_bettag_is_skipped_in_saxony(saxony: BusinessCalendar) -> None:
    assert saxony.add(local(2026, 11, 17, 15, 0), 4 * 60) == local(2026, 11, 19, 11, 0)
    elsewhere = BusinessCalendar(CalendarSettings(holidays={"country": "DE",
                                                            "subdivision": "BE"}),
                                 "Europe/Berlin")
    assert elsewhere.add(local(2026, 11, 17, 15, 0), 4 * 60) == local(2026, 11, 18, 11, 0)


def test_closed_days_and_reformation_day(saxony: BusinessCalendar) -> None:
    assert not saxony.is_business_day(date(2026, 12, 24))  # closed: 12-24
    assert not saxony.is_business_day(date(2026, 12, 31))  # closed: 12-31
    assert not saxony.is_business_day(date(2025, 10, 31))  # Reformationstag (a Friday)
    assert saxony.is_business_day(date(2026, 12, 23))
    # Wed 23 Dec 15:00 + 2 h: 1 h on the 23rd, then 24/25/26/27 closed, Mon 28 Dec 9:00
    assert saxony.add(local(2026, 12, 23, 15, 0), 120) == local(2026, 12, 28, 9, 0)


def test_outside_hours_starts_at_next_opening(saxony: BusinessCalendar) -> None:
    assert saxony.add(local(2026, 11, 16, 6, 30), 30) == local(2026, 11, 16, 8, 30)
    assert saxony.add(local(2026, 11, 14, 12, 0), 60) == local(2026, 11, 16, 9, 0)  # Saturday


def test_minutes_between_counts_only_office_hours(saxony: BusinessCalendar) -> None:
    assert saxony.minutes_between(local(2026, 11, 13, 15, 0), local(2026, 11, 16, 11, 0)) == 240
    assert saxony.minutes_between(local(2026, 11, 17, 15, 0), local(2026, 11, 19, 11, 0)) == 240
    assert saxony.minutes_between(local(2026, 11, 16, 11, 0), local(2026, 11, 13, 15, 0)) == 0
    start = local(2026, 11, 2, 9, 17)
    for minutes in (1, 59, 400, 481, 2000):
        assert saxony.minutes_between(start, saxony.add(start, minutes)) == pytest.approx(minutes)


def test_business_days(saxony: BusinessCalendar) -> None:
    # Fri 13 Nov → Thu 19 Nov: Mon, Tue, Thu (Wed is Buß- und Bettag)
    assert saxony.business_days_between(local(2026, 11, 13, 10, 0), local(2026, 11, 19, 9, 0)) == 3
    assert saxony.add_business_days(local(2026, 11, 13, 10, 0), 3) == local(2026, 11, 19, 10, 0)


def test_summer_time_change_keeps_local_hours(saxony: BusinessCalendar) -> None:
    # last Sunday of March 2026 is the 29th: Friday 15:00 + 2 h → Monday 9:00 local (CEST)
    assert saxony.add(local(2026, 3, 27, 15, 0), 120) == local(2026, 3, 30, 9, 0)
