"""The figures of a report, computed from statistics rows (storage.statistics.report_rows)
alone, so a report of a past year says the same after its tickets are deleted.

Definitions (docs/web.md, "Reports"):
- a ticket counts *in* in the week (Monday to Sunday, service time zone) it was created, *out*
  in the week it was resolved (closed, if it never was resolved);
- first response and resolution: business minutes from creation (precomputed on the queue's
  calendar), shown in business hours; median (the mean of the middle two for an even count)
  and 90th percentile (nearest rank: the smallest value at least 90 % of the tickets reach);
- SLA share: per clock, met / (met + missed) of the tickets created in the period; overall,
  the tickets whose every recorded clock was met, of those with any recorded clock;
- backlog: tickets created and not done at the end of each week (Sunday 24:00);
- reopen rate: tickets created in the period that were reopened at least once;
- tags and channels: tickets created in the period per tag (top 10) and per channel.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.statistics import ReportRow

CLOCKS = ("first_response", "update", "solution")
CHANNELS = {"smtp": "SMTP", "exchange": "Exchange", "graph": "Graph", "import": "Import",
            "web": "Web"}
TOP_TAGS = 10


@dataclass(frozen=True)
class Period:
    """Days `first` to `last` (both included) in `zone`."""

    first: date
    last: date
    zone: ZoneInfo
    queue: str | None = None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=self.zone).astimezone(UTC)

    @property
    def end(self) -> datetime:
        following = self.last + timedelta(days=1)
        return datetime.combine(following, time(0), tzinfo=self.zone).astimezone(UTC)

    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches."""
        monday = self.first - timedelta(days=self.first.weekday())
        out = []
        while monday <= self.last:
            out.append(monday)
            monday += timedelta(days=7)
        return out


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a duration, in business hours (None: no ticket)."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class WeekRow:
    week: str  # ISO week, "2026-W05"
    monday: date
    tickets_in: int = 0
    tickets_out: int = 0
    backlog: int = 0


@dataclass
class Report:
    period: Period
    tickets: int = 0  # created in the period
    resolved: int = 0  # done in the period
    weeks: list[WeekRow] = field(default_factory=list)
    queues: list[dict[str, Any]] = field(default_factory=list)  # week, queue, in, out
    first_response: Spread = Spread(0, None, None)
    resolution: Spread = Spread(0, None, None)
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)  # clock → met, missed, share
    sla_overall: dict[str, Any] = field(default_factory=dict)
    reopened: int = 0
    reopens: int = 0
    tags: list[tuple[str, int]] = field(default_factory=list)
    channels: list[tuple[str, int]] = field(default_factory=list)

    @property
    def reopen_rate(self) -> float | None:
        return share(self.reopened, self.tickets)


def share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def spread(minutes: Iterable[int | None]) -> Spread:
    values = sorted(m for m in minutes if m is not None)
    if not values:
        return Spread(0, None, None)
    p90 = values[max(0, math.ceil(0.9 * len(values)) - 1)]
    return Spread(len(values), round(statistics.median(values) / 60, 2), round(p90 / 60, 2))


def compute(rows: Sequence[ReportRow], period: Period) -> Report:
    """The report of `period` from its rows (storage.statistics.report_rows: naive UTC)."""
    report = Report(period=period)
    start, end = _naive(period.start), _naive(period.end)
    mondays = period.weeks()
    report.weeks = [WeekRow(week=_iso_week(m), monday=m) for m in mondays]
    starts = [_naive(datetime.combine(m, time(0), tzinfo=period.zone)) for m in mondays]
    ends = [*starts[1:], _naive(datetime.combine(mondays[-1] + timedelta(days=7), time(0),
                                                 tzinfo=period.zone))]
    per_queue: Counter[tuple[int, str, str]] = Counter()
    opened = [0] * (len(mondays) + 1)  # difference arrays over the week ends
    closed = [0] * (len(mondays) + 1)
    created_rows = []
    weeks = report.weeks
    for row in rows:
        created, done = row.created_at, row.done_at
        if start <= created < end:
            created_rows.append(row)
            week = bisect.bisect_right(starts, created) - 1
            weeks[week].tickets_in += 1
            per_queue[(week, row.queue or "–", "in")] += 1
        opened[bisect.bisect_right(ends, created)] += 1
        if done is not None:
            closed[bisect.bisect_right(ends, done)] += 1
            if start <= done < end:
                report.resolved += 1
                week = bisect.bisect_right(starts, done) - 1
                weeks[week].tickets_out += 1
                per_queue[(week, row.queue or "–", "out")] += 1
    running = 0
    for i, week_row in enumerate(weeks):
        running += opened[i] - closed[i]
        week_row.backlog = running
    report.queues = [
        {"week": weeks[w].week, "queue": q, "in": per_queue[(w, q, "in")],
         "out": per_queue[(w, q, "out")]}
        for w, q in sorted({(w, q) for w, q, _ in per_queue})
    ]
    _created_figures(report, created_rows)
    return report


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _created_figures(report: Report, rows: list[ReportRow]) -> None:
    """The figures of the tickets created in the period."""
    report.tickets = len(rows)
    report.first_response = spread(r.first_response_minutes for r in rows)
    report.resolution = spread(r.resolution_minutes for r in rows)
    outcomes: Counter[tuple[str, str]] = Counter()
    all_met = with_outcome = 0
    tags: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    for row in rows:
        recorded = row.sla_outcome or {}
        for clock, outcome in recorded.items():
            outcomes[(clock, outcome)] += 1
        if recorded:
            with_outcome += 1
            all_met += all(v == "met" for v in recorded.values())
        if row.reopens:
            report.reopened += 1
            report.reopens += row.reopens
        tags.update(set(row.tags or []))
        channels[CHANNELS.get(row.channel or "", row.channel or "unbekannt")] += 1
    for clock in CLOCKS:
        met, missed = outcomes[(clock, "met")], outcomes[(clock, "missed")]
        report.sla[clock] = {"met": met, "missed": missed, "share": share(met, met + missed)}
    report.sla_overall = {"met": all_met, "counted": with_outcome,
                          "share": share(all_met, with_outcome)}
    report.tags = sorted(tags.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TAGS]
    report.channels = sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))


def _iso_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"
