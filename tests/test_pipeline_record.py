"""record stage: what the earlier stages decided is written once — a new ticket with its routing
(or the article on the ticket found), attachments (blob first, row after), the Message-ID,
participants (copied-in people up to the caps) and audit events — and who hears of it is
chosen. The stage function on a Context over a real database. (Cc caps over real SMTP:
test_participants.py.)"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.mail.model import Address, MailAttachment
from gateway.pipeline import record
from gateway.pipeline.context import Context
from gateway.routing.ruleset import RouteDecision
from storage.engine import Database
from storage.models import Attachment, Event, MessageRef, Participant
from tests.helpers import open_ticket_row, parsed_mail, stage_context

ANNA = "anna.schmidt@example.org"
REQUESTER = "erika.muster@example.net"


def rows(ctx: Context, model: Any) -> list[Any]:
    ctx.store.session.flush()
    return list(ctx.store.session.scalars(select(model).order_by(model.id)))


def test_a_new_ticket_carries_its_routing_and_the_mail_is_its_first_article(
    db: Database, settings: Settings
) -> None:
    mail = parsed_mail(subject="AW: WG: Drucker im 3. OG defekt")
    decision = RouteDecision(queue="it-stoerung", owner=ANNA, priority="high", tags=("drucker",),
                             rules=("it-stoerung",))
    with stage_context(db, settings, mail, route=decision) as ctx:
        record.run(ctx)
        ticket, article = ctx.ticket, ctx.article
        assert ticket is not None and article is not None and ctx.ticket_is_new
        assert (ticket.ref, ticket.subject, ticket.requester) == (
            "LDS-1", "Drucker im 3. OG defekt", REQUESTER)
        assert (ticket.queue, ticket.owner, ticket.priority, ticket.tags) == (
            "it-stoerung", ANNA, "high", ["drucker"])
        assert ticket.conversation  # a Thread-Index conversation of its own
        assert (article.kind, article.direction, article.message_id) == (
            "requester", "in", mail.message_id)
        assert [(p.email, p.role) for p in rows(ctx, Participant)] == [
            (REQUESTER, "requester"), (ANNA, "agent")]
        assert [e.kind for e in rows(ctx, Event)] == ["created", "routed", "article"]
        assert [(r.message_id, r.direction) for r in rows(ctx, MessageRef)] == [
            (mail.message_id, "in")]
        assert ctx.notify_agents == [(ANNA, "new")]


def test_attachments_go_to_the_blob_store_and_rows_point_at_them(
    db: Database, settings: Settings
) -> None:
    data = b"%PDF-1.4 Rechnung"
    mail = parsed_mail(attachments=[MailAttachment("rechnung.pdf", "application/pdf", data)])
    with stage_context(db, settings, mail) as ctx:
        record.run(ctx)
        [row] = rows(ctx, Attachment)
        assert ctx.article is not None and row.article_id == ctx.article.id
        assert (row.filename, row.size, row.sha256) == (
            "rechnung.pdf", len(data), hashlib.sha256(data).hexdigest())
        assert ctx.blobs.get(row.sha256) == data


def test_a_follow_up_is_appended_and_its_owner_told(db: Database, settings: Settings) -> None:
    with stage_context(db, settings) as ctx:
        ticket = ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        record.run(ctx)
        assert ctx.ticket is ticket and not ctx.ticket_is_new
        assert ctx.article is not None and ctx.article.ticket_id == ticket.id
        assert ctx.notify_agents == [(ANNA, "requester-replied")]
        assert [e.kind for e in rows(ctx, Event)] == ["article"]


@pytest.mark.parametrize(
    ("role", "fields", "kind"),
    [
        ("requester", {}, "requester"),
        ("agent", {}, "agent"),
        ("agent", {"internal": True}, "note"),
        ("agent", {"command_errors": ["x"]}, "note"),
        ("agent-unverified", {}, "note"),
        ("agent-not-in-charge", {}, "note"),
    ],
)
def test_article_kind(
    role: str, fields: dict[str, Any], kind: str, db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, sender_role=role, **fields) as ctx:
        assert record.article_kind(ctx) == kind


def test_copied_in_people_become_parties_up_to_the_cap(
    make_settings: Callable[..., Settings], db: Database
) -> None:
    settings = make_settings(tickets={"max_cc_per_mail": 3, "max_cc_per_ticket": 4})
    cc = [Address("", f"kollege.{n}@example.com") for n in range(5)]
    cc += [Address("", "servicedesk+LDS-9@example.org"), Address("", ANNA)]  # never parties
    with stage_context(db, settings, parsed_mail(cc=cc)) as ctx:
        record.run(ctx)
        parties = [p.email for p in rows(ctx, Participant) if p.role == "cc"]
        assert parties == ["kollege.0@example.com", "kollege.1@example.com",
                           "kollege.2@example.com"]
        [limited] = [e for e in rows(ctx, Event) if e.kind == "cc-limited"]
        assert (limited.detail["copied"], limited.detail["not_mailed"]) == (5, 2)


def test_automatic_mail_notifies_nobody(db: Database, settings: Settings) -> None:
    with stage_context(db, settings, automatic_reason="Auto-Submitted: auto-replied") as ctx:
        ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        record.run(ctx)
        assert ctx.notify_agents == []
        [event] = [e for e in rows(ctx, Event) if e.kind == "article"]
        assert event.detail["automatic"] == "Auto-Submitted: auto-replied"
