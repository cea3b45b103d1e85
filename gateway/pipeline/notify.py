"""Tell the requester what happened to their mail (received, reopened, or filed as a new ticket
linked to an old one) by rendering a template into an OUTBOX row inside the ticket transaction,
so the acknowledgement exists exactly when the ticket does, with its Message-ID fixed now.

Only requesters get these mails, never automatic mail, and at most
`guard.max_auto_replies_per_hour` per recipient in any rolling hour. The mail goes to the From
address, never to Reply-To: a forged Reply-To must not receive ticket mail.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from gateway import logs
from gateway.errors import DeliveryError, TemplateError
from gateway.mail import threadindex
from gateway.mail.compose import ComposedMail, ascii_address, compose
from gateway.mail.model import Address
from gateway.outgoing import agentmail
from gateway.outgoing.render import RenderedMail
from gateway.outgoing.views import NEW_LINKED, RECEIVED, REOPENED, acknowledgement_view
from gateway.pipeline.context import Context, SenderRole

STAGE = "notify"
RATE_WINDOW = timedelta(hours=1)


def choose_template(ctx: Context) -> str | None:
    """The mail this run calls for, or None: new ticket → received (or new-linked when it was
    split from an older ticket); a reply that reopened a resolved ticket → reopened."""
    if ctx.ticket_is_new:
        if ctx.linked_ticket is not None:
            return NEW_LINKED
        chosen = ctx.route.template if ctx.route is not None else None  # a rule's `template:`
        return None if chosen == "none" else (chosen or RECEIVED)
    if ctx.reopened:
        return REOPENED
    return None


def run(ctx: Context) -> None:
    if ctx.mail is None or ctx.ticket is None:
        return
    with ctx.store.deferred():  # all of this mail's outgoing mail: one INSERT per table
        agentmail.after_mail(ctx)  # relays, status mails, agent notifications and help
        _acknowledge(ctx)


def _acknowledge(ctx: Context) -> None:
    """The requester's acknowledgement, if this run calls for one."""
    assert ctx.mail is not None and ctx.ticket is not None
    template = choose_template(ctx)
    if (template is None or ctx.automatic_reason is not None
            or ctx.sender_role != SenderRole.REQUESTER):
        return
    recipient = ctx.mail.from_
    reason = _unanswerable(ctx, recipient.email)
    if reason is not None:
        ctx.decide(STAGE, "not-answered", template=template, reason=reason)
        return
    log_id = _log_within_rate_limit(ctx, recipient.email)
    if log_id is None:
        _suppress(ctx, template, "rate-limited")
        return
    try:
        rendered = ctx.renderer.render(template, ctx.language, view(ctx), queue=ctx.ticket.queue)
    except TemplateError as exc:
        # A broken admin template must not stop tickets from being recorded, nor lose the
        # mail silently: the ticket is kept and the acknowledgement waits in quarantine.
        ctx.store.unlog_auto_reply(log_id)  # nothing was sent: it does not count
        agentmail.quarantine_mail(ctx.store, ctx.ticket, exc, kind=template, now=ctx.now,
                                  envelope_from=ctx.settings.service.address,
                                  envelope_to=[recipient.email])
        ctx.decide(STAGE, "quarantined", template=template)
        return
    try:
        composed = _compose(ctx, recipient, rendered)
        envelope_to = ascii_address(recipient.email)
    except DeliveryError as exc:  # an address no mail can go to: on the trail and in the log
        ctx.store.unlog_auto_reply(log_id)
        _suppress(ctx, template, "cannot-compose", error=type(exc).__name__, detail=str(exc))
        return
    _queue(ctx, template, recipient, envelope_to, rendered, composed)


def view(ctx: Context) -> dict[str, Any]:
    """The whitelisted, plain values templates may use (never ORM objects)."""
    assert ctx.ticket is not None and ctx.mail is not None
    return acknowledgement_view(
        ctx.settings, ctx.ticket, ctx.language,
        received_at=ctx.inbox.received_at or ctx.now,
        linked_ref=ctx.linked_ticket.ref if ctx.linked_ticket is not None else None,
        requester_name=ctx.mail.from_.name,
    )


def _unanswerable(ctx: Context, email: str) -> str | None:
    if "@" not in email:
        return "no usable sender address"
    if email == ctx.settings.service.address or email in ctx.settings.smtp.accept:
        return "sender is our own address"
    return None


def _log_within_rate_limit(ctx: Context, email: str) -> int | None:
    """Count the acknowledgement against the recipient's hourly limit before composing it (the
    check and the log in one statement): the log row's id, or None when the limit is reached.
    A mail that then cannot be composed takes its log row back."""
    return ctx.store.log_auto_reply_within(
        email,
        ctx.now,
        since=ctx.now - RATE_WINDOW,
        limit=ctx.settings.guard.max_auto_replies_per_hour,
    )


def _suppress(ctx: Context, template: str, reason: str, **detail: Any) -> None:
    assert ctx.ticket is not None
    ctx.decide(STAGE, reason, template=template, **detail)
    ctx.store.add_event(ctx.ticket, actor="system", kind="auto-reply-suppressed", now=ctx.now,
                        reason=reason, template=template, **detail)
    logs.event(f"notify.{reason}", ticket=ctx.ticket.ref, template=template,
               error=detail.get("error"))


def _thread_index(ctx: Context) -> bytes:
    """A child of the requester's Thread-Index, else of the ticket's conversation."""
    assert ctx.mail is not None and ctx.ticket is not None
    if ctx.mail.thread_index is not None:
        try:
            return threadindex.child_index(ctx.mail.thread_index, ctx.now)
        except ValueError:
            pass  # truncated or absurd index: fall back to the ticket's own conversation
    header = threadindex.header_from_key(ctx.ticket.conversation or "")
    if header is None:
        header = threadindex.new_index(ctx.now, uuid.uuid4())
    return threadindex.child_index(header, ctx.now)


def _compose(ctx: Context, recipient: Address, rendered: RenderedMail) -> ComposedMail:
    assert ctx.mail is not None and ctx.ticket is not None
    mail, service = ctx.mail, ctx.settings.service
    parent = None if mail.message_id_generated else mail.message_id
    return compose(
        sender_address=service.address,
        sender_name=service.name,
        domain=service.domain,
        to=[recipient],
        cc=[],
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        in_reply_to=parent,
        references=[*mail.references, *([parent] if parent else [])],
        thread_index=_thread_index(ctx),
        thread_topic=mail.thread_topic or ctx.ticket.subject,
        automatic=True,
        now=ctx.now,
    )


def _queue(ctx: Context, template: str, recipient: Address, envelope_to: str,
           rendered: RenderedMail, composed: ComposedMail) -> None:
    assert ctx.ticket is not None
    ticket, service = ctx.ticket, ctx.settings.service
    ctx.store.queue_outbox(
        ticket=ticket, kind=template, message_id=composed.message_id,
        envelope_from=service.address, envelope_to=[envelope_to], raw=composed.raw, now=ctx.now,
    )
    ctx.store.add_message_refs(ticket, [composed.message_id], "out")
    ctx.store.insert_article(
        ticket, kind="system", direction="out", from_addr=service.address,
        to_addrs=[recipient.email], cc_addrs=[], subject=rendered.subject, body=rendered.text,
        message_id=composed.message_id, created_at=ctx.now,
    )
    ctx.decide(STAGE, "queued", template=template)
    logs.event("notify.queued", ticket=ticket.ref, template=template)
