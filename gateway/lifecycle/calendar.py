"""Business time: SLA clocks and auto-close count only office hours on working days, in the
calendar's time zone, without public holidays (the `holidays` package, per country and Land)
and the site's extra closed days. Everything here is pure arithmetic on aware datetimes; the
results are UTC."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holiday_tables

from gateway.config import CalendarSettings, Settings

MAX_DAYS = 3 * 366  # a calendar with no open day in three years is a configuration mistake


class BusinessCalendar:
    """Office hours of one `calendars:` entry."""

    def __init__(self, settings: CalendarSettings, default_zone: str) -> None:
        self.zone = ZoneInfo(settings.timezone or default_zone)
        self.opening = settings.opening()
        self.closed = {day.strip() for day in settings.closed}
        source = settings.holidays
        # the table fills in years as they are asked for; one lock keeps threads from racing it
        self._holidays = (
            holiday_tables.country_holidays(source.country, subdiv=source.subdivision)
            if source is not None else None
        )
        self._lock = threading.Lock()

    def is_business_day(self, day: date) -> bool:
        if day.weekday() not in self.opening:
            return False
        if day.isoformat() in self.closed or day.strftime("%m-%d") in self.closed:
            return False
        if self._holidays is None:
            return True
        with self._lock:
            return day not in self._holidays

    def hours(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening as aware local datetimes, or None on a closed day."""
        if not self.is_business_day(day):
            return None
        start, end = self.opening[day.weekday()]
        midnight = datetime.combine(day, time(0), tzinfo=self.zone)
        return (_at(midnight, start), _at(midnight, end))

    def add(self, moment: datetime, minutes: float) -> datetime:
        """The moment `minutes` business minutes after `moment` (UTC). From outside office
        hours the count starts at the next opening."""
        local = moment.astimezone(self.zone)
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta(0):
            return moment.astimezone(UTC)
        day = local.date()
        for _ in range(MAX_DAYS):
            span = self.hours(day)
            if span is not None:
                begin, end = max(span[0], local), span[1]
                if begin < end:
                    if remaining <= end - begin:
                        return (begin + remaining).astimezone(UTC)
                    remaining -= end - begin
            day += timedelta(days=1)
        raise ValueError("calendar has no business hours within three years")

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Business minutes from `start` to `end` (0 if end is not after start)."""
        if end <= start:
            return 0.0
        first, last = start.astimezone(self.zone), end.astimezone(self.zone)
        total = timedelta(0)
        day = first.date()
        while day <= last.date():
            span = self.hours(day)
            if span is not None:
                begin, finish = max(span[0], first), min(span[1], last)
                if begin < finish:
                    total += finish - begin
            day += timedelta(days=1)
        return total.total_seconds() / 60

    def business_days_between(self, start: datetime, end: datetime) -> int:
        """Working days after `start`'s local date up to and including `end`'s: how many
        business days a ticket has waited."""
        first = start.astimezone(self.zone).date() + timedelta(days=1)
        last = end.astimezone(self.zone).date()
        count = 0
        while first <= last:
            count += self.is_business_day(first)
            first += timedelta(days=1)
        return count

    def add_business_days(self, moment: datetime, days: int) -> datetime:
        """The same local time on the `days`-th business day after `moment`'s date (UTC)."""
        local = moment.astimezone(self.zone)
        day, left = local.date(), days
        for _ in range(MAX_DAYS):
            if left <= 0:
                break
            day += timedelta(days=1)
            left -= self.is_business_day(day)
        else:
            raise ValueError("calendar has no business days within three years")
        return datetime.combine(day, local.timetz().replace(tzinfo=None),
                                tzinfo=self.zone).astimezone(UTC)


def _at(midnight: datetime, minute: int) -> datetime:
    if minute >= 24 * 60:
        return datetime.combine(midnight.date() + timedelta(days=1), time(0),
                                tzinfo=midnight.tzinfo)
    return midnight.replace(hour=minute // 60, minute=minute % 60)


class Calendars:
    """Every calendar of the config, built on first use (holiday tables are not free)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, BusinessCalendar] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> BusinessCalendar:
        with self._lock:
            calendar = self._built.get(name)
            if calendar is None:
                configured = self.settings.calendars.get(name) or self.settings.calendars[
                    "default"]
                calendar = BusinessCalendar(configured, self.settings.service.timezone)
                self._built[name] = calendar
            return calendar
