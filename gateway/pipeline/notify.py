"""Tell the requester what happened to their mail (received, reopened, or filed as a new ticket
linked to an old one) by rendering a template into an OUTBOX row inside the ticket transaction,
so the acknowledgement exists exactly when the ticket does, with its Message-ID fixed now.

Only requesters get these mails, never automatic mail, and at most
`guard.max_auto_replies_per_hour` per recipient in any rolling hour. The mail goes to the From
address, never to Reply-To: a forged Reply-To must not receive ticket mail. The other mails a
mail calls for are decided in gateway.pipeline.followups; every letter is made by
gateway.outgoing.letters.
"""

from __future__ import annotations

from typing import Any

from gateway import logs
from gateway.outgoing.letters import NEW_LINKED, RECEIVED, REOPENED
from gateway.pipeline import followups
from gateway.pipeline.context import Context, SenderRole

STAGE = "notify"


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
    with ctx.letters.batch():  # all of this mail's outgoing mail: one INSERT per table
        followups.after_mail(ctx)  # relays, status mails, agent notifications and help
        _acknowledge(ctx)


def _acknowledge(ctx: Context) -> None:
    """The requester's acknowledgement, if this run calls for one."""
    assert ctx.mail is not None and ctx.ticket is not None
    template = choose_template(ctx)
    if (template is None or ctx.automatic_reason is not None
            or ctx.sender_role != SenderRole.REQUESTER):
        return
    mail = ctx.mail
    recipient = mail.from_
    reason = _unanswerable(ctx, recipient.email)
    if reason is not None:
        ctx.decide(STAGE, "not-answered", template=template, reason=reason)
        return
    parent = None if mail.message_id_generated else mail.message_id
    posted = ctx.letters.acknowledgement(
        ctx.ticket, template, recipient, language=ctx.language,
        received_at=ctx.inbox.received_at or ctx.now,
        linked_ref=ctx.linked_ticket.ref if ctx.linked_ticket is not None else None,
        in_reply_to=parent, references=mail.references, parent_index=mail.thread_index,
        thread_topic=mail.thread_topic, now=ctx.now,
    )
    if posted.outcome == "queued":
        ctx.decide(STAGE, "queued", template=template)
    elif posted.outcome == "quarantined":
        # A broken admin template must not stop tickets from being recorded, nor lose the
        # mail silently: the ticket is kept and the acknowledgement waits in quarantine.
        ctx.decide(STAGE, "quarantined", template=template)
    elif posted.outcome == "rate-limited":
        _suppress(ctx, template, "rate-limited")
    else:  # an address no mail can go to: on the trail and in the log
        _suppress(ctx, template, "cannot-compose", error=posted.error, detail=posted.detail)


def _unanswerable(ctx: Context, email: str) -> str | None:
    if "@" not in email:
        return "no usable sender address"
    if email == ctx.settings.service.address or email in ctx.settings.smtp.accept:
        return "sender is our own address"
    return None


def _suppress(ctx: Context, template: str, reason: str, **detail: Any) -> None:
    assert ctx.ticket is not None
    ctx.decide(STAGE, reason, template=template, **detail)
    ctx.store.add_event(ctx.ticket, actor="system", kind="auto-reply-suppressed", now=ctx.now,
                        reason=reason, template=template, **detail)
    logs.event(f"notify.{reason}", ticket=ctx.ticket.ref, template=template,
               error=detail.get("error"))
