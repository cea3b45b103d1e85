"""`postdesk status`: one report dict, printed as text or as JSON, so both always say the same.

The report is a list of SECTIONS, each a key, a function that collects its value (plain JSON
values) and one that turns that value into text lines. A new line in `status` is one more
Section: nothing else changes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import clusterview, validity
from gateway.cli import command_database, command_settings, echo_json
from gateway.config import Settings
from storage import spool
from storage.assignment import unassigned_before
from storage.models import Event, Ticket, utcnow

UNASSIGNED_AFTER = timedelta(hours=1)
"""An open ticket nobody owns is worth a look once it is this old."""

app = typer.Typer()


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (one object).")] = False,
) -> None:
    """Health at a glance: queue depths, quarantined mails, rules, mailboxes, unassigned,
    mails held by a rate limit, the leader of the timed jobs and every instance."""
    settings = command_settings()
    with command_database(settings).reading() as session:
        data = collect(settings, session, utcnow())
    if as_json:
        echo_json(data)
        return
    for line in text(data, settings):
        typer.echo(line)


@dataclass
class Probe:
    """What sections read: the config, a read-only database session and the time now."""

    settings: Settings
    session: Session
    now: datetime

    @cached_property
    def depths(self) -> tuple[dict[str, int], dict[str, int]]:
        """Rows per state of the inbox and the outbox (one query, shared by sections)."""
        return spool.queue_depths(self.session)


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    collect: Callable[[Probe], Any]
    lines: Callable[[Any, Settings], list[str]]


def _inbox(probe: Probe) -> dict[str, int]:
    inbox = probe.depths[0]
    return {state: inbox.get(state, 0) for state in spool.INBOX_STATES}


def _outbox(probe: Probe) -> dict[str, int]:
    outbox = probe.depths[1]
    return {state: outbox.get(state, 0) for state in spool.OUTBOX_STATES}


def _counts_line(label: str) -> Callable[[dict[str, int], Settings], list[str]]:
    return lambda counts, _settings: [
        f"{label}" + ", ".join(f"{state} {count}" for state, count in counts.items())
    ]


def _quarantined(probe: Probe) -> dict[str, int]:
    inbox, outbox = probe.depths
    return {"inbox": inbox.get("quarantined", 0), "outbox": outbox.get("quarantined", 0)}


def _waiting(probe: Probe) -> dict[str, Any]:
    """Queued mails waiting out the back-off of a temporary fault (a full disk), by the fault's
    class only (the stored reason begins with it; nothing of the mail)."""
    rows = spool.waiting(probe.session, probe.now)
    by_fault: dict[str, int] = {}
    for reason, _ in rows:
        fault = reason.split(":", 1)[0]
        by_fault[fault] = by_fault.get(fault, 0) + 1
    return {
        "count": len(rows),
        "faults": by_fault,
        "next_try_at": rows[0][1].isoformat() if rows else None,
    }


def _waiting_lines(value: dict[str, Any], settings: Settings) -> list[str]:
    if not value["count"]:
        return []
    at = datetime.fromisoformat(value["next_try_at"]).astimezone(
        ZoneInfo(settings.service.timezone)
    )
    faults = ", ".join(f"{fault} {count}" for fault, count in value["faults"].items())
    return [
        f"waiting: {value['count']} mails after a temporary fault ({faults}), "
        f"next try at {at:%Y-%m-%d %H:%M:%S}"
    ]


def _rules(probe: Probe) -> dict[str, object]:
    return validity.remembered(probe.settings, "rules").to_json()


def _rules_lines(value: dict[str, Any], _settings: Settings) -> list[str]:
    if value["valid"]:
        return [f"rules:  version {value['version']}, {value['count']} rules"]
    errors = value["errors"]
    return [
        f"rules:  INVALID ({len(errors)} errors; serve keeps the last good rules): {errors[0]}"
    ]


def _templates(probe: Probe) -> dict[str, object]:
    return validity.remembered(probe.settings, "templates").to_json()


def _templates_lines(value: dict[str, Any], _settings: Settings) -> list[str]:
    if value["valid"]:
        return [f"templates: version {value['version']}, {value['count']} files"]
    errors = value["errors"]
    return [
        f"templates: INVALID ({len(errors)} errors; serve keeps the last good ones): {errors[0]}"
    ]


def _mailboxes(probe: Probe) -> list[dict[str, Any]]:
    return clusterview.mailbox_health(probe.session, probe.settings.data_dir)


def _oldest_queued(probe: Probe) -> dict[str, Any]:
    return clusterview.oldest_queued(probe.session, probe.now)


def _cluster(probe: Probe) -> dict[str, Any]:
    return clusterview.cluster_state(probe.session, probe.settings)


def _unassigned(probe: Probe) -> dict[str, object]:
    found = unassigned_before(probe.session, probe.now - UNASSIGNED_AFTER)
    at = found.oldest_created_at
    return {
        "older_than_minutes": int(UNASSIGNED_AFTER.total_seconds() // 60),
        "count": found.count,
        "oldest": found.oldest_ref,
        "oldest_created_at": at.isoformat() if at is not None else None,
    }


def _unassigned_lines(value: dict[str, Any], settings: Settings) -> list[str]:
    hours = value["older_than_minutes"] / 60
    if not value["count"]:
        return [f"unassigned: none older than {hours:g} h"]
    since = datetime.fromisoformat(value["oldest_created_at"])
    local = since.astimezone(ZoneInfo(settings.service.timezone))
    return [
        f"unassigned: {value['count']} open tickets without owner older than {hours:g} h, "
        f"oldest {value['oldest']} (since {local:%Y-%m-%d %H:%M})"
    ]


def _rate_limited(probe: Probe) -> dict[str, Any]:
    """Mails held back by a cap (`limits:`, and the acknowledgements' hourly cap) within the
    caps' window: on how many tickets, how many mails, by which cap, the latest ticket."""
    window = probe.settings.limits.window_seconds
    rows = probe.session.execute(
        select(Ticket.ref, Event.kind, Event.detail)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(
            Event.kind.in_(("rate-limited", "auto-reply-suppressed")),
            Event.created_at >= probe.now - timedelta(seconds=window),
        )
        .order_by(Event.id)
    ).all()
    held = [
        (ref, (detail or {}).get("limit") or "acknowledgement-per-recipient")
        for ref, kind, detail in rows
        if kind == "rate-limited" or (detail or {}).get("reason") == "rate-limited"
    ]
    return {
        "window_seconds": window,
        "tickets": len({ref for ref, _ in held}),
        "mails": len(held),
        "limits": dict(Counter(limit for _, limit in held).most_common()),
        "latest": held[-1][0] if held else None,
    }


def _window(seconds: float) -> str:
    if seconds == 3600:
        return "hour"
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def _rate_limited_lines(value: dict[str, Any], _settings: Settings) -> list[str]:
    window = _window(value["window_seconds"])
    if not value["mails"]:
        return [f"rate limited: none in the last {window}"]
    limits = ", ".join(f"{limit} {count}" for limit, count in value["limits"].items())
    tickets, mails = value["tickets"], value["mails"]
    return [
        f"rate limited: {tickets} ticket{'s' if tickets != 1 else ''} in the last {window}, "
        f"{mails} mail{'s' if mails != 1 else ''} held ({limits}), latest {value['latest']}"
    ]


SECTIONS: tuple[Section, ...] = (
    Section("inbox", _inbox, _counts_line("inbox:  ")),
    Section("outbox", _outbox, _counts_line("outbox: ")),
    Section("quarantined", _quarantined, _counts_line("quarantined: ")),
    Section("oldest_queued", _oldest_queued, clusterview.oldest_lines),
    Section("waiting", _waiting, _waiting_lines),
    Section("rules", _rules, _rules_lines),
    Section("templates", _templates, _templates_lines),
    Section("mailboxes", _mailboxes, lambda boxes, _s: [f"mailbox: {b['line']}" for b in boxes]),
    Section("unassigned", _unassigned, _unassigned_lines),
    Section("rate_limited", _rate_limited, _rate_limited_lines),
    Section("cluster", _cluster, clusterview.cluster_lines),
)


def collect(settings: Settings, session: Session, now: datetime) -> dict[str, Any]:
    """The whole report: one key per section, in SECTIONS order."""
    probe = Probe(settings, session, now)
    return {section.key: section.collect(probe) for section in SECTIONS}


def text(report: dict[str, Any], settings: Settings) -> list[str]:
    """The report as the lines `postdesk status` prints."""
    return [
        line
        for section in SECTIONS
        if section.key in report
        for line in section.lines(report[section.key], settings)
    ]
