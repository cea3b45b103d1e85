"""Write what the earlier stages decided: the ticket (new or found), the article, its attachments
(blobs first, rows after), the Message-ID index, participants and audit events.

It runs for every mail inside the write transaction, so it writes each table once: a new
ticket's INSERT already carries its routing and pseudonyms (no UPDATE follows), and the mail's
participants and events are collected in order and written with one statement each."""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway import logs
from gateway.lifecycle import clocks
from gateway.mail import threadindex
from gateway.mail.model import Address
from gateway.pipeline.context import Context, SenderRole
from gateway.pipeline.thread import clean_subject
from storage.models import Ticket
from storage.tickets import event_row


@dataclass(slots=True)
class _Rows:
    """What this mail adds to the ticket's participants and audit trail, in order."""

    participants: list[tuple[str, str]] = field(default_factory=list)  # (email, role)
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, ctx: Context, ticket: Ticket, actor: str, kind: str, **detail: Any) -> None:
        self.events.append(event_row(ticket, actor=actor, kind=kind, now=ctx.now, **detail))


def article_kind(ctx: Context) -> str:
    """requester | agent (relayed) | note (internal, unverified, commands rejected, or from an
    agent no longer in charge)."""
    if ctx.sender_role == SenderRole.AGENT:
        return "note" if ctx.internal or ctx.command_errors else "agent"
    return "requester" if ctx.sender_role == SenderRole.REQUESTER else "note"


def _open_ticket(ctx: Context, rows: _Rows) -> Ticket:
    assert ctx.mail is not None
    mail, route = ctx.mail, ctx.route
    index = mail.thread_index
    key = threadindex.conversation_key(index) if index is not None else None
    if key is None:  # no usable Outlook conversation: start one so our mails carry it
        key = threadindex.conversation_key(threadindex.new_index(ctx.now, uuid.uuid4()))
    ticket = ctx.store.create_ticket(
        prefix=ctx.settings.service.ticket_prefix,
        subject=clean_subject(mail.subject, ctx.settings.service.ticket_prefix) or "(kein Betreff)",
        requester=mail.from_.email,
        language=ctx.language,
        conversation=key,
        now=ctx.now,
        linked=ctx.linked_ticket,
        # queue, owner, priority and tags from the routing decision
        queue=route.queue if route is not None else None,
        owner=route.owner if route is not None else None,
        priority=(route.priority or "normal") if route is not None else "normal",
        tags=list(route.tags) if route is not None else [],
        pseudonyms=ctx.pseudonyms,  # keyed hashes and numbers, never names
        clocks=_clocks(ctx, route.queue if route is not None else None,
                       (route.priority or "normal") if route is not None else "normal"),
    )
    ctx.ticket_is_new = True
    rows.participants.append((mail.from_.email, "requester"))
    detail: dict[str, object] = {"source": ctx.inbox.source, "inbox_id": ctx.inbox.id}
    if ctx.linked_ticket is not None:
        detail["linked"] = ctx.linked_ticket.ref
        rows.event(ctx, ctx.linked_ticket, "system", "linked", new_ticket=ticket.ref)
    rows.event(ctx, ticket, "system", "created", **detail)
    if route is not None:
        if route.owner is not None:
            rows.participants.append((route.owner, "agent"))
        rows.event(
            ctx,
            ticket,
            "rules",
            "routed",
            ruleset=ctx.ruleset.version if ctx.ruleset else None,
            rules=list(route.rules),
            decision=route.describe(),
            team=route.team,  # who may act on the ticket while nobody owns it (agentscope)
        )
    return ticket


def _clocks(ctx: Context, queue: str | None, priority: str) -> dict[str, Any] | None:
    """A new ticket's SLA due moments, written with its INSERT."""
    lifecycle = ctx.services.lifecycle
    if lifecycle is None:
        return None
    return clocks.initial(lifecycle, queue=queue, priority=priority, now=ctx.now)


def _keep_clocks(ctx: Context, ticket: Ticket) -> None:
    """A requester's follow-up restarts the update clock; status, queue or priority changes
    (commands, reopening) pause, resume or recompute the others."""
    lifecycle = ctx.services.lifecycle
    if lifecycle is None:
        return
    if (not ctx.ticket_is_new and ctx.sender_role == SenderRole.REQUESTER
            and ctx.automatic_reason is None):
        clocks.requester_wrote(lifecycle, ticket, ctx.now)
    clocks.refresh(lifecycle, ticket, ctx.now)


def _agents_to_notify(ctx: Context, ticket: Ticket) -> None:
    """Who hears about this mail: on a new ticket its owner, else the team the rules chose,
    else the dispatchers (`routing.dispatchers`, `routing.default_team`), so that no new
    ticket waits unseen; on a requester's follow-up the owner. Automatic mail notifies nobody."""
    if ctx.automatic_reason is not None or ctx.sender_role != SenderRole.REQUESTER:
        return
    if ticket.owner is not None:
        reason = "requester-replied"
        if ctx.ticket_is_new or ctx.reopened:
            reason = "new" if ctx.ticket_is_new else "reopened"
        ctx.notify_agents.append((ticket.owner, reason))
    elif ctx.ticket_is_new:
        team = ctx.route.team if ctx.route is not None else None
        members = [agent.email for agent in ctx.settings.team_members(team)] if team else []
        recipients = members or ctx.settings.dispatchers()
        if not recipients:
            logs.event("record.nobody-notified", logging.WARNING, ticket=ticket.ref)
        for email in recipients:
            ctx.notify_agents.append((email, "new"))


def _is_service_address(ctx: Context, address: Address) -> bool:
    local, _, domain = address.email.partition("@")
    base = f"{local.split('+', 1)[0]}@{domain}"
    return base in ctx.settings.smtp.accept


def _copied_in(ctx: Context, ticket: Ticket, rows: _Rows) -> None:
    """People the requester copies in are parties too: they get the ticket's mail and may reply
    on it. At most `tickets.max_cc_per_mail` of one mail and `max_cc_per_ticket` in all, so one
    mail with thousands of Cc addresses does not make every later mail a mass mailing; the
    others stay on the stored mail (the article's Cc list), counted in a `cc-limited` event."""
    assert ctx.mail is not None and ctx.article is not None
    known = {ctx.mail.from_.email, ticket.requester}
    copied = [
        address.email
        for address in ctx.mail.cc
        if address.email
        and address.email not in known
        and not _is_service_address(ctx, address)
        and ctx.settings.agent(address.email) is None
    ]
    if not copied:
        return
    parties = {} if ctx.ticket_is_new else ctx.store.participants(ticket)
    new = [email for email in dict.fromkeys(copied) if email not in parties]
    limits = ctx.settings.tickets
    room = limits.max_cc_per_ticket - sum(role == "cc" for role in parties.values())
    taken = new[: max(0, min(limits.max_cc_per_mail, room))]
    rows.participants.extend((email, "cc") for email in taken)
    if len(taken) < len(new):
        left = len(new) - len(taken)
        rows.event(ctx, ticket, "system", "cc-limited", article_id=ctx.article.id,
                   copied=len(new), parties=len(taken), not_mailed=left)
        logs.event("record.cc-limited", ticket=ticket.ref, parties=len(taken), not_mailed=left)


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    mail = ctx.mail
    rows = _Rows()
    ticket = ctx.ticket if ctx.ticket is not None else _open_ticket(ctx, rows)
    ctx.ticket = ticket
    article = ctx.store.add_article(
        ticket,
        kind=article_kind(ctx),
        direction="in",
        from_addr=mail.from_.email,
        to_addrs=[a.email for a in mail.to],
        cc_addrs=[a.email for a in mail.cc],
        subject=mail.subject,
        body=mail.text,
        message_id=mail.message_id,
        inbox_id=ctx.inbox.id,
        created_at=ctx.now,
    )
    for attachment in mail.attachments:
        address = ctx.blobs.put(attachment.data)  # sealed, under a keyed hash of the bytes
        ctx.store.add_attachment(
            article,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=len(attachment.data),
            sha256=hashlib.sha256(attachment.data).hexdigest(),
            blob=address,
            text=attachment.text,
            text_state=attachment.text_state,
        )
    ctx.article = article
    ctx.store.add_message_refs(ticket, [mail.message_id], "in")
    if ctx.sender_role == SenderRole.REQUESTER and ctx.automatic_reason is None:
        _copied_in(ctx, ticket, rows)
    if ctx.pseudonyms is not None and ctx.pseudonyms != ticket.pseudonyms:
        ticket.pseudonyms = dict(ctx.pseudonyms)  # keyed hashes and numbers, never names
    _keep_clocks(ctx, ticket)
    ctx.store.touch(ticket, ctx.now)  # updated_at, with the changes above in one UPDATE
    _agents_to_notify(ctx, ticket)
    if ctx.redactions:
        rows.event(
            ctx, ticket, "system", "redacted", article_id=article.id, counts=dict(ctx.redactions)
        )
    rows.event(
        ctx,
        ticket,
        "system",
        "article",
        article_id=article.id,
        article_kind=article.kind,
        attachments=len(mail.attachments),
        automatic=ctx.automatic_reason,
    )
    ctx.store.add_participants(ticket, rows.participants)
    ctx.store.add_events(rows.events)
