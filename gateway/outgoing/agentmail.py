"""Mail about a ticket to agents (notifications carrying their proof token, help and error
replies) and to requesters on an agent's behalf (relayed replies, status mails).

Rules kept here: a notification's Message-ID and Reply-To carry the agent's proof token, and
such ids never appear in mail to a requester; relayed mail comes from the central address with
the agent's display name only."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway import logs
from gateway.agents import proof as agentproof
from gateway.agents import scope as agentscope
from gateway.agents.scope import SenderRole
from gateway.config import Settings
from gateway.errors import TemplateError
from gateway.mail import threadindex
from gateway.mail.compose import compose
from gateway.mail.model import Address, MailAttachment
from gateway.outgoing import limits as mailimits
from gateway.outgoing.render import RenderedMail, Renderer
from gateway.outgoing.views import (
    STATUS_TEMPLATES,
    agent_view,
    notification_view,
    requester_mail_view,
)
from gateway.pipeline.context import Context
from storage.models import Ticket
from storage.tickets import TicketStore

STATUS_NOTES = {"resolved": "solved", "pending": "waiting"}


@dataclass(frozen=True)
class Mailer:
    """What composing these mails needs: the config, the templates and the proof key."""

    settings: Settings
    renderer: Renderer
    proof_key: bytes


def _agent_language(settings: Settings, email: str) -> str:
    agent = settings.agent(email)
    return (agent.language if agent and agent.language else None) or settings.service.language


def _thread_index(ticket: Ticket, now: datetime) -> bytes | None:
    if not ticket.conversation:
        return None
    header = threadindex.header_from_key(ticket.conversation)
    return threadindex.child_index(header, now) if header else None


def _queue(
    store: TicketStore,
    ticket: Ticket,
    *,
    kind: str,
    message_id: str,
    raw: bytes,
    envelope_from: str,
    envelope_to: list[str],
    now: datetime,
) -> None:
    """Into the outbox, and its Message-ID into the ticket's index (replies thread by it)."""
    store.queue_outbox(
        ticket=ticket,
        kind=kind,
        message_id=message_id,
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        raw=raw,
        now=now,
    )
    store.add_message_refs(ticket, [message_id], "out")
    logs.event("mail.queued", ticket=ticket.ref, template=kind)


def quarantine_mail(
    store: TicketStore,
    ticket: Ticket,
    error: TemplateError,
    *,
    kind: str,
    envelope_from: str,
    envelope_to: list[str],
    now: datetime,
) -> None:
    """A mail that cannot be rendered (a broken template) is not dropped: it is recorded as a
    quarantined outbox row (never delivered) with the reason — template name and file:line,
    no mail data — shown by `postdesk status` and `outbox list`, and on the ticket's trail."""
    reason = str(error)[:500]
    store.queue_outbox(
        ticket=ticket,
        kind=kind,
        message_id=f"<unsent.{uuid.uuid4().hex}@postdesk.invalid>",  # unique, never sent
        envelope_from=envelope_from,
        envelope_to=envelope_to,
        raw=b"",
        now=now,
        quarantined=reason,
    )
    store.add_event(ticket, actor="system", kind="mail-quarantined", now=now, mail=kind,
                    reason=reason)
    where = f"{error.file}:{error.line}" if error.line is not None else error.file
    logs.event("mail.quarantined", logging.WARNING, ticket=ticket.ref, template=kind, at=where)


def _render(
    mailer: Mailer,
    store: TicketStore,
    ticket: Ticket,
    template: str,
    language: str,
    view: dict[str, Any],
    *,
    envelope_to: list[str],
    now: datetime,
) -> RenderedMail | None:
    """The rendered mail, or None once a broken template has been quarantined."""
    try:
        return mailer.renderer.render(template, language, view, queue=ticket.queue)
    except TemplateError as error:
        quarantine_mail(store, ticket, error, kind=template, now=now, envelope_to=envelope_to,
                        envelope_from=mailer.settings.service.address)
        return None


def queue_agent_notification(
    mailer: Mailer,
    store: TicketStore,
    ticket: Ticket,
    agent: str,
    *,
    reason: str,
    text: str,
    now: datetime,
    attachments: Sequence[str] = (),
) -> bool:
    """Tell an agent about a ticket; the mail carries the agent's proof token in its Message-ID
    and in a plus-addressed Reply-To, so a reply to it proves it comes from this agent. False
    when a cap of `limits.notification` held it back (see gateway.outgoing.limits)."""
    settings, service = mailer.settings, mailer.settings.service
    member = settings.agent(agent)
    language = _agent_language(settings, agent)
    view = notification_view(settings, ticket, agent, language, reason=reason, text=text,
                             attachments=attachments)
    rendered = _render(mailer, store, ticket, "agent-notify", language, view,
                       envelope_to=[agent], now=now)
    if rendered is None:
        return True  # quarantined
    if not mailimits.admit(settings, store, ticket, "notification", [agent], mail="agent-notify",
                           now=now):
        return False
    token = agentproof.token(mailer.proof_key, agent, ticket.ref)
    message_id = agentproof.notification_message_id(
        mailer.proof_key, agent, ticket.ref, service.domain, secrets.token_hex(8)
    )
    composed = compose(
        sender_address=service.address,
        sender_name=service.name,
        domain=service.domain,
        to=[Address(member.name if member else "", agent)],
        cc=[],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        in_reply_to=None,
        references=[],
        thread_index=_thread_index(ticket, now),
        automatic=True,
        now=now,
        message_id=message_id,
        reply_to=Address(
            service.name, agentproof.reply_address(service.address, token, ticket.ref)
        ),
    )
    _queue(
        store,
        ticket,
        kind="agent-notify",
        message_id=composed.message_id,
        raw=composed.raw,
        envelope_from=service.address,
        envelope_to=[agent],
        now=now,
    )
    return True


def queue_agent_reply(
    mailer: Mailer,
    store: TicketStore,
    ticket: Ticket,
    agent: str,
    template: str,
    *,
    now: datetime,
    in_reply_to: str | None,
    **extra: Any,
) -> bool:
    """A short automatic answer to an agent's mail (unverified, commands rejected, reply held);
    False when a cap of `limits.warning` held it back."""
    settings, service = mailer.settings, mailer.settings.service
    member = settings.agent(agent)
    language = _agent_language(settings, agent)
    view = agent_view(settings, ticket, agent, language, **extra)
    rendered = _render(mailer, store, ticket, template, language, view, envelope_to=[agent],
                       now=now)
    if rendered is None:
        return True  # quarantined
    if not mailimits.admit(settings, store, ticket, "warning", [agent], mail=template, now=now):
        return False
    composed = compose(
        sender_address=service.address,
        sender_name=service.name,
        domain=service.domain,
        to=[Address(member.name if member else "", agent)],
        cc=[],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        in_reply_to=in_reply_to,
        references=[in_reply_to] if in_reply_to else [],
        thread_index=None,
        automatic=True,
        now=now,
    )
    _queue(
        store,
        ticket,
        kind=template,
        message_id=composed.message_id,
        raw=composed.raw,
        envelope_from=service.address,
        envelope_to=[agent],
        now=now,
    )
    return True


def requester_recipients(store: TicketStore, ticket: Ticket) -> tuple[Address, list[Address]]:
    """The requester and the Cc'd parties of a ticket (never agents)."""
    parties = store.participants(ticket)
    cc = [Address("", email) for email, role in sorted(parties.items()) if role == "cc"]
    return Address("", ticket.requester), cc


def requester_thread(store: TicketStore, ticket: Ticket) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for mail to the requester: only ids the requester has seen,
    never an agent notification's (it carries a proof token)."""
    ids = agentproof.scrub_references(store.message_ids(ticket))
    return (ids[-1] if ids else None), ids[-10:]


def queue_requester_mail(
    mailer: Mailer,
    store: TicketStore,
    ticket: Ticket,
    *,
    template: str,
    now: datetime,
    automatic: bool,
    agent_name: str | None = None,
    text: str | None = None,
    status_note: str | None = None,
    attachments: Iterable[MailAttachment] = (),
) -> bool:
    """A relayed agent reply (`automatic=False`) or a status mail to the requester and the
    Cc'd parties, from the central address; an agent appears by display name only. False
    when a cap of `limits.requester` held it back."""
    settings, service = mailer.settings, mailer.settings.service
    language = ticket.language or service.language
    view = requester_mail_view(settings, ticket, language, automatic=automatic,
                               agent_name=agent_name, text=text, status_note=status_note)
    to, cc = requester_recipients(store, ticket)
    envelope_to = [to.email, *(a.email for a in cc)]
    rendered = _render(mailer, store, ticket, template, language, view,
                       envelope_to=envelope_to, now=now)
    if rendered is None:
        return True  # quarantined
    if not mailimits.admit(settings, store, ticket, "requester", envelope_to, mail=template,
                           now=now):
        return False
    in_reply_to, references = requester_thread(store, ticket)
    sender_name = f"{agent_name} ({service.name})" if agent_name else service.name
    composed = compose(
        sender_address=service.address,
        sender_name=sender_name,
        domain=service.domain,
        to=[to],
        cc=cc,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        in_reply_to=in_reply_to,
        references=references,
        thread_index=_thread_index(ticket, now),
        automatic=automatic,
        attachments=list(attachments),
        now=now,
        thread_topic=ticket.subject,
    )
    _queue(
        store,
        ticket,
        kind=template,
        message_id=composed.message_id,
        raw=composed.raw,
        envelope_from=service.address,
        envelope_to=envelope_to,
        now=now,
    )
    return True


def mailer_for(ctx: Context) -> Mailer:
    return Mailer(ctx.settings, ctx.renderer, ctx.proof_key)


def after_mail(ctx: Context) -> None:
    """The mails an agent's reply or a requester's mail calls for, besides acknowledgements:
    relay to the requester, status mails, help/error replies to agents, agent notifications.
    Automatic mail (out-of-office, bounces) is never answered. Each kind is capped per ticket
    and recipient (`limits:`, gateway.outgoing.limits)."""
    if ctx.ticket is None or ctx.mail is None:
        return
    if ctx.automatic_reason is not None:
        _kept_automatic(ctx)
        return
    mailer, ticket, mail = mailer_for(ctx), ctx.ticket, ctx.mail
    agent = mail.from_.email
    parent = None if mail.message_id_generated else mail.message_id
    if ctx.sender_role == SenderRole.AGENT_UNVERIFIED:
        queue_agent_reply(
            mailer, ctx.store, ticket, agent, "agent-unverified", now=ctx.now, in_reply_to=parent
        )
    elif ctx.sender_role == SenderRole.AGENT_NOT_IN_CHARGE:  # e.g. a former owner: who has it now
        queue_agent_reply(mailer, ctx.store, ticket, agent, agentscope.NOT_IN_CHARGE, now=ctx.now,
                          in_reply_to=parent, **agentscope.holder(ctx.settings, ctx.store, ticket))
    elif ctx.sender_role == SenderRole.AGENT and ctx.command_errors:
        errors = [
            {"line_no": e.line_no, "line": e.line, "message": e.message} for e in ctx.command_errors
        ]
        queue_agent_reply(
            mailer,
            ctx.store,
            ticket,
            agent,
            "agent-command-error",
            now=ctx.now,
            in_reply_to=parent,
            errors=errors,
        )
    elif ctx.sender_role == SenderRole.AGENT and ctx.held_reasons:
        queue_agent_reply(
            mailer, ctx.store, ticket, agent, "agent-reply-held", now=ctx.now,
            in_reply_to=parent, reasons=ctx.held_reasons,
        )
    elif ctx.sender_role == SenderRole.AGENT and not ctx.internal:
        _relay(ctx, mailer, ticket, agent)
    assigned = [who for who, reason in ctx.notify_agents if reason == "assigned"]
    if assigned and ctx.settings.notify.assigned_mail_to_requester:
        owner = ctx.settings.agent(assigned[-1])
        queue_requester_mail(
            mailer,
            ctx.store,
            ticket,
            template="requester-assigned",
            now=ctx.now,
            automatic=True,
            agent_name=owner.name if owner else None,
        )
    for recipient, reason in dict.fromkeys(ctx.notify_agents):
        if recipient != agent or ctx.sender_role == SenderRole.REQUESTER:
            attachments = [a.filename for a in mail.attachments]
            queue_agent_notification(
                mailer,
                ctx.store,
                ticket,
                recipient,
                reason=reason,
                text=mail.text,
                now=ctx.now,
                attachments=attachments,
            )


def _kept_automatic(ctx: Context) -> None:
    """An agent's automatic mail (an out-of-office above all) is a note on the ticket: never
    relayed, its commands not carried out, nobody told — answering it would feed a loop."""
    assert ctx.mail is not None and ctx.ticket is not None
    agent = ctx.mail.from_.email
    if ctx.settings.agent(agent) is None:
        return
    ctx.store.add_event(ctx.ticket, actor=agent, kind="agent-auto-reply-kept", now=ctx.now,
                        reason=ctx.automatic_reason)
    reason = ctx.automatic_reason or ""
    logs.event("agent.auto-reply-kept", ticket=ctx.ticket.ref,
               by="words" if reason.startswith("out-of-office") else "headers")


def _relay(ctx: Context, mailer: Mailer, ticket: Ticket, agent: str) -> None:
    """Send the agent's reply (its words as written, not the stored redacted text) to the
    requester; with only a status change and no text, the matching status mail."""
    assert ctx.mail is not None
    member = ctx.settings.agent(agent)
    text = ctx.texts.get("relay", "").strip()
    status_note = STATUS_NOTES.get(ticket.status) if ctx.status_changed else None
    if text or ctx.mail.attachments:
        relayed = queue_requester_mail(
            mailer,
            ctx.store,
            ticket,
            template="requester-agent-reply",
            now=ctx.now,
            automatic=False,
            agent_name=member.name if member else None,
            text=text,
            status_note=status_note,
            attachments=_original_attachments(ctx),
        )
        if relayed:
            ctx.decide("notify", "relayed")
        else:  # over a cap: the agent's words stay on the ticket, as a note
            if ctx.article is not None:
                ctx.store.set_article_kind(ctx.article, "note")
            ctx.decide("notify", "relay-held")
    elif status_note is not None:
        queue_requester_mail(
            mailer,
            ctx.store,
            ticket,
            template=STATUS_TEMPLATES[ticket.status],
            now=ctx.now,
            automatic=True,
        )


def _original_attachments(ctx: Context) -> list[MailAttachment]:
    """The reply's attachments under the names the agent gave them (redaction renamed the
    stored copies only)."""
    assert ctx.mail is not None
    if ctx.analysis is None:
        return list(ctx.mail.attachments)
    names = [found.text for found in ctx.analysis.filenames]
    return [
        dataclasses.replace(a, filename=name)
        for a, name in zip(ctx.mail.attachments, names, strict=True)
    ]
