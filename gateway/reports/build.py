"""One report from the database: the period from the command line or the query string, the
rows of storage.statistics, the figures."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.reports.figures import Period, Report, compute
from storage.engine import Database
from storage.statistics import report_rows

DEFAULT_DAYS = 364  # 52 weeks up to today


def period(settings: Settings, first: str | None, last: str | None, queue: str | None, *,
           today: date) -> Period:
    """[first, last] as days in the service's time zone (YYYY-MM-DD); defaults: the last 52
    weeks up to `today`. A bad date or an empty period is a ConfigError with one line."""
    end = _day(last, "--to") if last else today
    start = _day(first, "--from") if first else end - timedelta(days=DEFAULT_DAYS)
    if start > end:
        raise ConfigError(f"--from {start.isoformat()} is after --to {end.isoformat()}")
    return Period(start, end, ZoneInfo(settings.service.timezone), queue or None)


def make(db: Database, span: Period) -> Report:
    with db.reading() as session:
        rows = report_rows(session, span.start, span.end, span.queue)
    return compute(rows, span)


def today_in(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.service.timezone)).date()


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {text[:20]}") from None
