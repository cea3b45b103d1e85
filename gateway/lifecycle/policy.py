"""Queue policies that admins edit as YAML, like the routing rules: per queue the business
calendar, the SLA times per priority, auto-close and the deletion period. Every mistake is
reported as `file:line: key.path: message`; a file that fails is refused as a whole.

File format (the shipped `rules/lifecycle/queues.yaml` documents every key):

    defaults:                 # every queue; a queue below overrides whole sections
      calendar: default       # a name under `calendars:` in the config
      sla:
        remind_at: 0.75       # share of the time at which the reminder goes out
        priorities:
          normal: {first_response: 8h, next_update: 16h, solution: 40h}   # business hours
      auto_close: {pending_reminder_days: 5, pending_resolve_days: 10, close_after_days: 7}
      retention: {trigger: closed, period: 2 years, on_request: delete}
    queues:
      personal:
        retention: {trigger: closed, period: 6 months}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from gateway.config import Settings
from gateway.errors import RuleError, RulesetInvalid
from gateway.routing.loader import YamlProblem, display_path, read_yaml
from gateway.routing.schema import error_message

Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")

_HOURS = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$", re.IGNORECASE)
_PERIOD = re.compile(r"^\s*(\d+)\s*([a-zäöü]+)\s*$", re.IGNORECASE)
_PERIOD_UNITS = {
    "day": "days", "days": "days", "tag": "days", "tage": "days", "tagen": "days",
    "week": "weeks", "weeks": "weeks", "woche": "weeks", "wochen": "weeks",
    "month": "months", "months": "months", "monat": "months", "monate": "months",
    "monaten": "months",
    "year": "years", "years": "years", "jahr": "years", "jahre": "years", "jahren": "years",
}


def _business_minutes(value: Any) -> Any:
    """`4h`, `30m`, `1h30m` (business time) → minutes; a bare number is hours."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return round(value * 60)
    if isinstance(value, str):
        match = _HOURS.match(value)
        if match and (match.group(1) or match.group(2)):
            return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
        raise ValueError(f"expected business hours such as 4h, 30m or 1h30m, got {value!r}")
    return value


BusinessMinutes = Annotated[int, BeforeValidator(_business_minutes), Field(gt=0)]


@dataclass(frozen=True)
class Period:
    """A deletion period: a count of days, weeks, months or years (calendar time)."""

    count: int
    unit: Literal["days", "weeks", "months", "years"]

    def before(self, moment: Any) -> Any:
        """The moment `self` before `moment` (months and years by the calendar)."""
        if self.unit == "days":
            return moment - timedelta(days=self.count)
        if self.unit == "weeks":
            return moment - timedelta(weeks=self.count)
        months = self.count * (12 if self.unit == "years" else 1)
        year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
        day = min(moment.day, _days_in(year, month + 1))
        return moment.replace(year=year, month=month + 1, day=day)

    def __str__(self) -> str:
        return f"{self.count} {self.unit if self.count != 1 else self.unit[:-1]}"


def _days_in(year: int, month: int) -> int:
    import calendar

    return calendar.monthrange(year, month)[1]


def _period(value: Any) -> Any:
    if isinstance(value, Period):
        return value
    if isinstance(value, str):
        match = _PERIOD.match(value)
        unit = _PERIOD_UNITS.get(match.group(2).lower()) if match else None
        if match and unit and int(match.group(1)) > 0:
            return Period(int(match.group(1)), unit)  # type: ignore[arg-type]
    raise ValueError(f"expected a period such as '6 months', '2 years' or '90 days', "
                     f"got {value!r}")


PeriodValue = Annotated[Period, BeforeValidator(_period)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class SlaTimes(_Strict):
    """Business time for each clock; a clock not given does not run."""

    first_response: BusinessMinutes | None = None  # until the first agent reply to the requester
    next_update: BusinessMinutes | None = None  # after each requester mail, until an answer
    solution: BusinessMinutes | None = None  # until resolved; `pending` pauses it


class SlaPolicy(_Strict):
    remind_at: float = Field(0.75, gt=0, lt=1)  # reminder at this share of the time
    priorities: dict[Priority, SlaTimes] = Field(default_factory=dict)


class AutoClosePolicy(_Strict):
    """Days without requester answer on a `pending` ticket (business days) until a friendly
    reminder and until it is resolved; calendar days from resolved to closed. None: never."""

    pending_reminder_days: int | None = Field(None, gt=0)
    pending_resolve_days: int | None = Field(None, gt=0)
    close_after_days: int | None = Field(None, gt=0)


class RetentionPolicy(_Strict):
    """When a ticket's personal data is deleted: `period` after the `trigger`; on an erasure
    request (Art. 17) either deleted too, or pseudonymised where the queue must keep tickets."""

    trigger: Literal["closed", "last_activity"] = "closed"
    period: PeriodValue = Period(2, "years")
    on_request: Literal["delete", "pseudonymise"] = "delete"


class QueuePolicy(_Strict):
    calendar: str | None = None
    sla: SlaPolicy | None = None
    auto_close: AutoClosePolicy | None = None
    retention: RetentionPolicy | None = None


class PolicyFile(_Strict):
    defaults: QueuePolicy = QueuePolicy()
    queues: dict[str, QueuePolicy] = Field(default_factory=dict)


@dataclass(frozen=True)
class EffectivePolicy:
    """What applies to one queue: its own sections, else the defaults' ones."""

    queue: str
    calendar: str
    sla: SlaPolicy
    auto_close: AutoClosePolicy
    retention: RetentionPolicy
    rule: str  # where the retention comes from: the queue's name or "defaults" (for records)


@dataclass(frozen=True)
class Policies:
    file: PolicyFile
    source: str  # the file read, or "built-in defaults"

    def for_queue(self, queue: str | None) -> EffectivePolicy:
        own = self.file.queues.get(queue or "")
        base = self.file.defaults

        def pick(name: str) -> Any:
            value = getattr(own, name) if own is not None else None
            return value if value is not None else getattr(base, name)

        return EffectivePolicy(
            queue=queue or "",
            calendar=pick("calendar") or "default",
            sla=pick("sla") or SlaPolicy(),
            auto_close=pick("auto_close") or AutoClosePolicy(),
            retention=pick("retention") or RetentionPolicy(),
            rule=(queue or "") if own is not None and own.retention is not None else "defaults",
        )


BUILT_IN = Policies(PolicyFile(), "built-in defaults")


def policy_path(settings: Settings) -> Path | None:
    """The policy file in use: `lifecycle_file`, else rules_dir/lifecycle/queues.yaml if there."""
    if settings.lifecycle_file is not None:
        return settings.lifecycle_file
    default = settings.rules_dir / "lifecycle" / "queues.yaml"
    return default if default.is_file() else None


def load_policies(settings: Settings) -> Policies:
    """The queue policies of this site; raises RulesetInvalid with every `file:line` problem
    (also for a calendar the config does not define)."""
    path = policy_path(settings)
    if path is None:
        return BUILT_IN
    label = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RulesetInvalid([RuleError(label, None, f"cannot read: {exc.strerror}")]) from exc
    policies = parse_policies(raw, label)
    unknown = [(name, p.calendar) for name, p in [("defaults", policies.file.defaults),
                                                  *policies.file.queues.items()]
               if p.calendar is not None and p.calendar not in settings.calendars]
    if unknown:
        raise RulesetInvalid([RuleError(label, None, f"{where}: calendar {cal!r} is not "
                                        "under calendars: in the config")
                              for where, cal in unknown])
    return policies


def parse_policies(raw: bytes, label: str) -> Policies:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise RulesetInvalid([RuleError(label, line, "not valid UTF-8; save the file as UTF-8")]
                             ) from exc
    try:
        doc, problems = read_yaml(text)
    except YamlProblem as problem:
        raise RulesetInvalid([RuleError(label, problem.line, problem.message)]) from problem
    errors = [RuleError(label, p.line, p.message) for p in problems]
    data = doc.data if doc.data is not None else {}
    try:
        parsed = PolicyFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = display_path(data, loc)
            message = error_message(err)
            errors.append(RuleError(label, doc.line_of(loc),
                                    f"{where}: {message}" if where else message))
        raise RulesetInvalid(errors) from None
    if errors:
        raise RulesetInvalid(errors)
    return Policies(parsed, label)
