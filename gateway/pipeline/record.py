"""Write what the earlier stages decided: the ticket (new or found), the article, its attachments
(blobs first, rows after), the Message-ID index, participants and audit events."""

from __future__ import annotations

import uuid

from gateway import threadindex
from gateway.pipeline.context import Address, Context
from gateway.pipeline.thread import clean_subject
from storage.models import Ticket


def article_kind(ctx: Context) -> str:
    """requester | agent (relayed) | note (internal, unverified, or commands rejected)."""
    if ctx.sender_role == "agent":
        return "note" if ctx.internal or ctx.command_errors else "agent"
    return "note" if ctx.sender_role == "agent-unverified" else "requester"


def _open_ticket(ctx: Context) -> Ticket:
    assert ctx.mail is not None
    mail = ctx.mail
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
    )
    ctx.ticket_is_new = True
    ctx.store.add_participant(ticket, mail.from_.email, "requester")
    detail: dict[str, object] = {"source": ctx.inbox.source, "inbox_id": ctx.inbox.id}
    if ctx.linked_ticket is not None:
        detail["linked"] = ctx.linked_ticket.ref
        ctx.store.add_event(
            ctx.linked_ticket, actor="system", kind="linked", now=ctx.now, new_ticket=ticket.ref
        )
    ctx.store.add_event(ticket, actor="system", kind="created", now=ctx.now, **detail)
    if ctx.route is not None:
        _apply_route(ctx, ticket)
    return ticket


def _apply_route(ctx: Context, ticket: Ticket) -> None:
    """Queue, owner, priority and tags from the routing decision, recorded as one event."""
    assert ctx.route is not None
    route = ctx.route
    ticket.queue = route.queue
    ticket.owner = route.owner
    ticket.priority = route.priority or "normal"
    ticket.tags = list(route.tags)
    if route.owner is not None:
        ctx.store.add_participant(ticket, route.owner, "agent")
    ctx.store.add_event(
        ticket,
        actor="rules",
        kind="routed",
        now=ctx.now,
        ruleset=ctx.ruleset.version if ctx.ruleset else None,
        rules=list(route.rules),
        decision=route.describe(),
    )


def _agents_to_notify(ctx: Context, ticket: Ticket) -> None:
    """Who hears about this mail: on a new ticket its owner (or, with none, the team the rules
    chose); on a requester's follow-up the owner. Automatic mail notifies nobody."""
    if ctx.automatic_reason is not None or ctx.sender_role != "requester":
        return
    reopened = any(d.what == "reopened" for d in ctx.decisions)
    if ticket.owner is not None:
        reason = "new" if ctx.ticket_is_new else ("reopened" if reopened else "requester-replied")
        ctx.notify_agents.append((ticket.owner, reason))
    elif ctx.ticket_is_new and ctx.route is not None and ctx.route.team is not None:
        for agent in ctx.settings.team_members(ctx.route.team):
            ctx.notify_agents.append((agent.email, "new"))


def _is_service_address(ctx: Context, address: Address) -> bool:
    local, _, domain = address.email.partition("@")
    base = f"{local.split('+', 1)[0]}@{domain}"
    return base in ctx.settings.smtp.accept


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    mail = ctx.mail
    ticket = ctx.ticket if ctx.ticket is not None else _open_ticket(ctx)
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
        digest = ctx.blobs.put(attachment.data)
        ctx.store.add_attachment(
            article,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size=len(attachment.data),
            sha256=digest,
        )
    ctx.article = article
    ctx.store.add_message_refs(ticket, [mail.message_id], "in")
    if ctx.sender_role == "requester" and ctx.automatic_reason is None:
        # People the requester copies in are parties too: they may reply on the ticket.
        for address in mail.cc:
            if (
                address.email
                and not _is_service_address(ctx, address)
                and ctx.settings.agent(address.email) is None
            ):
                ctx.store.add_participant(ticket, address.email, "cc")
    ticket.updated_at = ctx.now
    _agents_to_notify(ctx, ticket)
    if ctx.pseudonyms is not None and ctx.pseudonyms != ticket.pseudonyms:
        ticket.pseudonyms = dict(ctx.pseudonyms)  # keyed hashes and numbers, never names
    if ctx.redactions:
        ctx.store.add_event(
            ticket,
            actor="system",
            kind="redacted",
            now=ctx.now,
            article_id=article.id,
            counts=dict(ctx.redactions),
        )
    ctx.store.add_event(
        ticket,
        actor="system",
        kind="article",
        now=ctx.now,
        article_id=article.id,
        article_kind=article.kind,
        attachments=len(mail.attachments),
        automatic=ctx.automatic_reason,
    )
