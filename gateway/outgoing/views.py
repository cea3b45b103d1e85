"""The views mail templates see: whitelisted plain values (never ORM objects), one builder per
kind of mail, used both to send the mail and to check the templates against sample views (so a
template that uses a value no real mail provides fails `templates check`). Light on purpose:
the CLI imports it without the pipeline."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gateway.config import Settings
from gateway.mail.original import Original
from storage.models import Ticket

RECEIVED = "requester-received"
NEW_LINKED = "requester-new-linked"
REOPENED = "requester-reopened"
ACKNOWLEDGEMENTS = (RECEIVED, NEW_LINKED, REOPENED)
"""Acknowledgements to a requester's mail; a rule may name its own template instead."""
NOTIFICATION = "agent-notify"
ORIGINAL = "agent-original"
"""The answer to an agent's `#original`: the original of one article, or why there is none."""
AGENT_REPLIES = (
    "agent-unverified", "agent-command-error", "agent-reply-held", "agent-not-in-charge",
)
STATUS_TEMPLATES = {"resolved": "requester-solved", "pending": "requester-waiting"}
PENDING_REMINDER = "requester-pending-reminder"
"""A friendly reminder to a requester whose `pending` ticket waits for their answer."""
REQUESTER_MAILS = ("requester-agent-reply", "requester-assigned", *STATUS_TEMPLATES.values(),
                   PENDING_REMINDER)
"""Mail to the requester on an agent's behalf: relayed replies and status mails."""


def base_view(settings: Settings, ticket: Ticket, language: str, automatic: bool) -> dict[str, Any]:
    """What every mail shows: the ticket's plain fields and the service's name and address."""
    service = settings.service
    return {
        "ref": ticket.ref,
        "subject": ticket.subject,
        "status": ticket.status,
        "queue": ticket.queue,
        "priority": ticket.priority,
        "service_name": service.name,
        "service_address": service.address,
        "language": language,
        "automatic": automatic,
    }


def agent_view(
    settings: Settings, ticket: Ticket, agent: str, language: str, **extra: Any
) -> dict[str, Any]:
    """What a short automatic answer to an agent shows (`agent-unverified`; with `errors`,
    `agent-command-error`; with `reasons`, `agent-reply-held`; with `owner_name` and `team`,
    who has the ticket now, `agent-not-in-charge`)."""
    member = settings.agent(agent)
    return {
        **base_view(settings, ticket, language, automatic=True),
        "agent_name": member.name if member else agent,
        "marker": marker(ticket),
        **extra,
    }


SLA_REMINDER = "agent-sla-reminder"
SLA_ESCALATION = "agent-sla-escalation"
SLA_NOTICES = (SLA_REMINDER, SLA_ESCALATION)
"""Mail to agents about an SLA clock: its reminder share is used up, or it has passed."""


def sla_view(
    settings: Settings, ticket: Ticket, agent: str, language: str, *, clock: str,
    due_at: datetime, owner_name: str | None,
) -> dict[str, Any]:
    """What an SLA reminder or escalation shows: which clock (first_response, update,
    solution), when it is (was) due, and who owns the ticket (None: nobody)."""
    return {
        **agent_view(settings, ticket, agent, language),
        "clock": clock,
        "due_at": due_at,
        "owner_name": owner_name,
    }


DIGEST = "agent-digest"
"""The morning digest to an agent (gateway.lifecycle.digest): their open tickets and, for a
team lead, the team's backlog and escalations. About many tickets, so no `ref` of its own."""
DIGEST_SECTIONS = ("overdue", "due_today", "open", "backlog", "escalations")


def digest_view(
    settings: Settings, agent: str, language: str, *, day: datetime,
    sections: dict[str, dict[str, Any]], teams: list[str],
) -> dict[str, Any]:
    """What a digest shows: the day (local midnight), and per section (DIGEST_SECTIONS) up to
    a cap of items, each {ref, subject, status, priority, queue, owner_name, due_at, clock},
    with the section's `total`; `teams`: the teams the agent leads (empty: no lead part).
    Ticket refs and stored (redacted) subjects only, never a requester's address."""
    member = settings.agent(agent)
    service = settings.service
    return {
        "service_name": service.name,
        "service_address": service.address,
        "language": language,
        "automatic": True,
        "ref": "",  # about many tickets: none of its own (the HTML layout's title falls back)
        "agent_name": member.name if member else agent,
        "day": day,
        "teams": list(teams),
        **{name: sections.get(name, {"items": [], "total": 0}) for name in DIGEST_SECTIONS},
    }


def marker(ticket: Ticket) -> str:
    """The id in an agent mail's end marker line (see gateway.agents.reply): the ticket and a
    random part, so each mail's marker is its own and carries no token."""
    return f"{ticket.ref}/{secrets.token_hex(4)}"


def notification_view(
    settings: Settings, ticket: Ticket, agent: str, language: str, *, reason: str, text: str,
    attachments: Iterable[str], article: int | None = None, original: Original | None = None,
) -> dict[str, Any]:
    """What an `agent-notify` mail shows: the stored (redacted) text, the mail's article
    number (for `#original N`) and, where the queue's agents see originals, the original."""
    return agent_view(
        settings, ticket, agent, language, reason=reason, owner=ticket.owner,
        requester=ticket.requester, text=text, attachments=list(attachments), article=article,
        original=original.view() if original is not None else None,
    )


def original_view(
    settings: Settings, ticket: Ticket, agent: str, language: str, *, article: int,
    original: Original | None,
) -> dict[str, Any]:
    """What an `agent-original` mail shows: article `article`'s original, or None when it is
    not (or no longer) stored, with how long originals are kept."""
    return agent_view(
        settings, ticket, agent, language, article=article,
        original=original.view() if original is not None else None,
        retention_days=settings.redaction.raw_retention_days,
    )


def requester_mail_view(
    settings: Settings, ticket: Ticket, language: str, *, automatic: bool,
    agent_name: str | None, text: str | None, status_note: str | None,
    status_url: str | None = None,
) -> dict[str, Any]:
    """What a relayed reply or a status mail to the requester shows; `status_url`: the link to
    the status page (None without `web:` or when the mail has Cc'd parties)."""
    return {
        **base_view(settings, ticket, language, automatic=automatic),
        "status_url": status_url,
        "agent_name": agent_name or settings.service.name,
        "text": text or "",
        "status_note": status_note,
        "reopen_days": settings.tickets.reopen_days,
    }


def acknowledgement_view(
    settings: Settings, ticket: Ticket, language: str, *, received_at: datetime,
    linked_ref: str | None, requester_name: str, status_url: str | None = None,
) -> dict[str, Any]:
    """What an acknowledgement (received, new-linked, reopened, or a rule's own template)
    shows; `status_url` as in requester_mail_view."""
    return {
        **base_view(settings, ticket, language, automatic=True),
        "status_url": status_url,
        "created_at": ticket.created_at,
        "received_at": received_at,
        "linked_ref": linked_ref,
        "requester_name": requester_name,
    }
