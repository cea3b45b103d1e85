"""Find the ticket a mail belongs to, so a reply never opens a second ticket and a stranger who
copies a ticket reference never joins someone else's ticket.

Order: `[PREFIX-N]` in the subject (behind any Re:/AW:/WG:/Fwd:/SV:/VS: chain), then
In-Reply-To/References against every Message-ID seen or sent on a ticket, then Outlook's
Thread-Index conversation (its first 22 bytes). Nothing found: a new ticket (made by `record`).
"""

from __future__ import annotations

import re
from datetime import timedelta

from gateway.lifecycle import tally
from gateway.mail import threadindex
from gateway.pipeline.context import Context
from storage.models import Ticket

REPLY_PREFIX = re.compile(r"^\s*((re|aw|wg|fwd?|sv|vs|antw|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)


def subject_ref(subject: str, prefix: str) -> str | None:
    """The first `[PREFIX-N]` tag in a subject, upper-cased, or None."""
    match = re.search(rf"\[\s*({re.escape(prefix)})\s*-\s*(\d+)\s*\]", subject, re.I)
    return f"{match.group(1).upper()}-{int(match.group(2))}" if match else None


def clean_subject(subject: str, prefix: str) -> str:
    """The subject without reply prefixes and ticket tags, for a new ticket's title."""
    without_tags = re.sub(rf"\[\s*{re.escape(prefix)}\s*-\s*\d+\s*\]", " ", subject, flags=re.I)
    return " ".join(REPLY_PREFIX.sub("", without_tags).split())


def _find(ctx: Context) -> tuple[Ticket | None, str]:
    assert ctx.mail is not None
    mail = ctx.mail
    ref = subject_ref(mail.subject, ctx.settings.service.ticket_prefix)
    if ref is not None:
        ticket = ctx.store.by_ref(ref)
        if ticket is not None:
            return ticket, "subject reference"
    ticket = ctx.store.by_message_ids([*mail.in_reply_to, *reversed(mail.references)])
    if ticket is not None:
        return ticket, "In-Reply-To/References"
    if mail.thread_index is not None:
        key = threadindex.conversation_key(mail.thread_index)
        if key is not None:
            ticket = ctx.store.by_conversation(key)
            if ticket is not None:
                return ticket, "Thread-Index"
    return None, ""


def _is_party(ctx: Context, ticket: Ticket) -> bool:
    assert ctx.mail is not None
    sender = ctx.mail.from_.email
    return sender in ctx.store.participants(ticket) or ctx.settings.agent(sender) is not None


def run(ctx: Context) -> None:
    ticket, how = _find(ctx)
    if ticket is None:
        return  # `record` opens a new ticket
    if not _is_party(ctx, ticket):
        # Someone outside the ticket quotes its reference: never append to it and never make the
        # sender a recipient of its mail; a new ticket that links the old one instead.
        ctx.linked_ticket = ticket
        ctx.decide(
            "thread", "new-linked", reason=f"sender is not a party ({how})", linked=ticket.ref
        )
        return
    assert ctx.mail is not None
    ctx.figures_before = tally.snapshot(ticket)  # before a reopening changes them
    # Automatic mail (an out-of-office answer to "solved") and agents' mail never reopen a ticket.
    from_requester_side = (
        ctx.automatic_reason is None and ctx.settings.agent(ctx.mail.from_.email) is None
    )
    if ticket.status in ("resolved", "closed") and from_requester_side:
        resolved_at = ticket.resolved_at or ticket.updated_at
        if ticket.status == "closed":  # closed is final: a later reply opens a linked ticket
            ctx.linked_ticket = ticket
            ctx.decide("thread", "new-linked", reason="ticket is closed", linked=ticket.ref)
            return
        if ctx.now - resolved_at > timedelta(days=ctx.settings.tickets.reopen_days):
            ctx.linked_ticket = ticket
            ctx.decide(
                "thread", "new-linked", reason="reply after reopen period", linked=ticket.ref
            )
            return
        ctx.store.set_status(ticket, "open", actor="system", now=ctx.now)
        ctx.reopened = True
        ctx.decide("thread", "reopened", ref=ticket.ref)
    elif ticket.status == "pending" and from_requester_side:
        ctx.store.set_status(ticket, "open", actor="system", now=ctx.now)
        ctx.decide("thread", "requester-answered", ref=ticket.ref)
    ctx.ticket = ticket
    ctx.decide("thread", "threaded", ref=ticket.ref, by=how)
