"""What the CLI shows a person: filter values checked against the ones that exist (a typo is an
error naming the allowed values, never an empty list), the German status words the mail
commands accept, and times in the service's time zone, to the minute.

Imports only the standard library and `gateway.agents.commands` (itself light), so that read
commands keep their start-up time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.errors import PostdeskError
from gateway.mail.words import STATUS, status_word
from storage.states import TICKET_STATUSES

TIME_FORMAT = "%Y-%m-%d %H:%M"


def ticket_status(value: str) -> str:
    """`open`, `Offen`, `wartet`, `erledigt` … → the stored status; else a one-line error."""
    canonical = value.strip().lower()
    if canonical in TICKET_STATUSES:
        return canonical
    named = status_word(value)
    if named is not None:
        return named
    words = ", ".join(word for word in STATUS if word not in TICKET_STATUSES)
    raise PostdeskError(
        f"unknown status {value!r}; use one of {', '.join(TICKET_STATUSES)} (or {words})"
    )


def one_of(value: str, allowed: Sequence[str], what: str) -> str:
    """`value` if it is one of `allowed`, else a one-line error that names them."""
    if value in allowed:
        return value
    raise PostdeskError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")


class Clock:
    """Formats stored UTC times in the configured zone (`service.timezone`), to the minute."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def __call__(self, moment: datetime | None) -> str:
        return "-" if moment is None else moment.astimezone(self.zone).strftime(TIME_FORMAT)


def detail_text(detail: dict[str, Any]) -> str:
    """An event's detail as `key=value …` (refs, ids, states: no mail content is stored there)."""
    return " ".join(f"{key}={'-' if value is None else value}" for key, value in detail.items())


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def local_moment(value: str, timezone: str) -> datetime:
    """`2026-11-16` or `2026-11-16 11:00` (local time in `timezone`) → an aware datetime; else
    a one-line error."""
    text = value.strip()
    for pattern in (TIME_FORMAT, "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return parsed.replace(tzinfo=ZoneInfo(timezone))
    raise PostdeskError(f"not a time: {value!r}; use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'")
