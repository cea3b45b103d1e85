"""The audit trail across tickets (`postdesk audit`): events filtered by ticket, actor, kind and
time, newest first, with the ticket's reference — what a data-protection officer asks: who saw
which original, who changed what, which requests were answered."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from storage.models import Event, Ticket

EVENT_KINDS: tuple[str, ...] = (
    # a ticket's life (storage.tickets, gateway.pipeline.record, gateway.pipeline.actions)
    "created", "linked", "routed", "article", "redacted", "cc-limited", "status", "assigned",
    "priority", "queue", "tag", "note",
    # agents' mail (gateway.pipeline: commands, identify, followups)
    "commands-rejected", "reply-held", "not-in-charge", "agent-auto-reply-kept",
    # what was disclosed (gateway.pipeline.disclosure, gateway.cli.tickets)
    "original-viewed", "original-refused", "attachment-exported",
    # automatic mail and delivery (gateway.pipeline.guard/notify, gateway.outgoing)
    "duplicate", "auto-reply-suppressed", "rate-limited", "mail-quarantined", "delivery-failed",
    # the lifecycle jobs (gateway.lifecycle: reminders, autoclose) and the status page
    "sla-reminder", "escalated", "pending-reminder", "auto-resolved", "requester-resolved",
    # data-subject requests and deletion (gateway.lifecycle: export, erasure, retention)
    "requester-exported", "erased", "ticket-deleted", "ticket-pseudonymised",
)
"""Every kind of event postdesk writes; `audit --kind` accepts these and any kind stored."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What `postdesk audit` narrows by; values already checked by the CLI."""

    ticket_id: int | None = None
    actor: str | None = None
    kinds: Sequence[str] = ()
    since: datetime | None = None
    until: datetime | None = None  # exclusive

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.ticket_id is not None:
            where.append(Event.ticket_id == self.ticket_id)
        if self.actor:
            where.append(func.lower(Event.actor) == self.actor.lower())
        if self.kinds:
            where.append(Event.kind.in_(list(self.kinds)))
        if self.since is not None:
            where.append(Event.created_at >= self.since)
        if self.until is not None:
            where.append(Event.created_at < self.until)
        return where


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    created_at: datetime
    ticket: str | None  # the ticket's reference; None for an event of no ticket
    actor: str
    kind: str
    detail: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "ticket": self.ticket,
            "actor": self.actor,
            "kind": self.kind,
            "detail": self.detail,
        }


def audit_events(session: Session, filters: AuditFilter, *, limit: int | None) -> list[AuditRow]:
    """Matching events, newest first; at most `limit` (None: all)."""
    query = (
        select(Event.id, Event.created_at, Ticket.ref, Event.actor, Event.kind, Event.detail)
        .outerjoin(Ticket, Ticket.id == Event.ticket_id)
        .where(*filters.conditions())
        .order_by(Event.created_at.desc(), Event.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        AuditRow(id, created_at, ref, actor, kind, dict(detail or {}))
        for id, created_at, ref, actor, kind, detail in session.execute(query)
    ]


def count_events(session: Session, filters: AuditFilter) -> int:
    query = select(func.count()).select_from(Event).where(*filters.conditions())
    return int(session.execute(query).scalar_one())


def known_kinds(session: Session) -> list[str]:
    """EVENT_KINDS and any other kind stored (written by a newer or older version), sorted."""
    stored = session.scalars(select(Event.kind).distinct())
    return sorted({*EVENT_KINDS, *stored})
