"""Last stage: the ticket's statistics row (gateway.lifecycle.tally), written in the mail's
transaction when this mail changed a figure — a new ticket (with the channel it came by), a
reopening, the first relayed reply, a command that resolved it or moved it to another queue.
A follow-up that changes no figure writes nothing: the stage compares the snapshot the thread
stage took with the ticket now, in memory."""

from __future__ import annotations

from gateway.lifecycle import tally
from gateway.pipeline.context import Context


def run(ctx: Context) -> None:
    ticket = ctx.ticket
    if ticket is None:
        return
    before = None if ctx.ticket_is_new else ctx.figures_before
    channel = ctx.inbox.source if ctx.ticket_is_new else None
    tally.keep(ctx.store.session, ctx.services.lifecycle, ticket, before, channel=channel,
               reopened=ctx.reopened or None)
