"""Which mails a mail calls for besides the requester's acknowledgement: an agent's reply is
relayed to the requester (or, with only a status change, the matching status mail goes out),
an agent's mail that cannot act gets a short answer (unverified, not in charge, commands
rejected, reply held), and the agents the run names are notified. The letters themselves are
made by gateway.outgoing.letters; this module only decides."""

from __future__ import annotations

import dataclasses

from gateway import logs
from gateway.lifecycle import clocks
from gateway.mail.model import MailAttachment
from gateway.outgoing.letters import STATUS_TEMPLATES
from gateway.pipeline import disclosure
from gateway.pipeline import scope as agentscope
from gateway.pipeline.context import Context, SenderRole

STATUS_NOTES = {"resolved": "solved", "pending": "waiting"}


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
    letters, ticket, mail = ctx.letters, ctx.ticket, ctx.mail
    agent = mail.from_.email
    parent = None if mail.message_id_generated else mail.message_id
    if ctx.sender_role == SenderRole.AGENT_UNVERIFIED and disclosure.asked(ctx):
        disclosure.refuse_all(ctx, agent, "unverified")  # a forger learns nothing: no mail
    elif ctx.sender_role == SenderRole.AGENT_UNVERIFIED:
        letters.agent_reply(ticket, agent, "agent-unverified", now=ctx.now, in_reply_to=parent)
    elif ctx.sender_role == SenderRole.AGENT_NOT_IN_CHARGE:  # e.g. a former owner: who has it now
        disclosure.refuse_all(ctx, agent, agentscope.NOT_IN_CHARGE)
        letters.agent_reply(ticket, agent, agentscope.NOT_IN_CHARGE, now=ctx.now,
                            in_reply_to=parent,
                            **agentscope.holder(ctx.settings, ctx.store, ticket))
    elif ctx.sender_role == SenderRole.AGENT and ctx.command_errors:
        errors = [
            {"line_no": e.line_no, "line": e.line, "message": e.message} for e in ctx.command_errors
        ]
        letters.agent_reply(ticket, agent, "agent-command-error", now=ctx.now,
                            in_reply_to=parent, errors=errors)
    elif ctx.sender_role == SenderRole.AGENT and ctx.held_reasons:
        letters.agent_reply(ticket, agent, "agent-reply-held", now=ctx.now, in_reply_to=parent,
                            reasons=ctx.held_reasons)
    elif ctx.sender_role == SenderRole.AGENT and not ctx.internal:
        _relay(ctx, agent)
    if ctx.sender_role == SenderRole.AGENT and ctx.originals_asked:  # set only when applied
        disclosure.answer(ctx, agent, parent)
    assigned = [who for who, reason in ctx.notify_agents if reason == "assigned"]
    if assigned and ctx.settings.notify.assigned_mail_to_requester:
        owner = ctx.settings.agent(assigned[-1])
        letters.requester_mail(ticket, template="requester-assigned", now=ctx.now,
                               automatic=True, agent_name=owner.name if owner else None)
    _notify_agents(ctx, agent)


def _notify_agents(ctx: Context, sender: str) -> None:
    """The notifications this run calls for: the stored (redacted) text, or, for agents in
    charge of a ticket whose queue shows originals, the original (an audited disclosure)."""
    assert ctx.mail is not None and ctx.ticket is not None
    mail, ticket = ctx.mail, ctx.ticket
    recipients = [(who, why) for who, why in dict.fromkeys(ctx.notify_agents)
                  if who != sender or ctx.sender_role == SenderRole.REQUESTER]
    if not recipients:
        return
    article = disclosure.article_number(ctx)
    attachments = [a.filename for a in mail.attachments]
    for recipient, reason in recipients:
        original = (disclosure.for_notification(ctx, recipient, article)
                    if article is not None else None)
        posted = ctx.letters.agent_notification(
            ticket, recipient, reason=reason, text=mail.text, now=ctx.now,
            attachments=attachments, article=article, original=original)
        if original is not None and article is not None and posted.outcome == "queued":
            disclosure.record(ctx.store, ticket, actor=recipient, article=article,
                              way="notification", now=ctx.now,
                              attachments=len(original.attachments))


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


def _relay(ctx: Context, agent: str) -> None:
    """Send the agent's reply (its words as written, not the stored redacted text) to the
    requester; with only a status change and no text, the matching status mail."""
    assert ctx.mail is not None and ctx.ticket is not None
    ticket = ctx.ticket
    member = ctx.settings.agent(agent)
    text = ctx.texts.get("relay", "").strip()
    status_note = STATUS_NOTES.get(ticket.status) if ctx.status_changed else None
    if text or ctx.mail.attachments:
        relayed = ctx.letters.requester_mail(
            ticket,
            template="requester-agent-reply",
            now=ctx.now,
            automatic=False,
            agent_name=member.name if member else None,
            text=text,
            status_note=status_note,
            attachments=_original_attachments(ctx),
        )
        if relayed.made:
            ctx.decide("notify", "relayed")
            if ctx.services.lifecycle is not None:  # first response and update clocks stop
                clocks.answered(ctx.services.lifecycle, ticket, ctx.now)
        else:  # over a cap, or no mail can go to the requester: the words stay, as a note
            if ctx.article is not None:
                ctx.store.set_article_kind(ctx.article, "note")
            detail = {"reason": relayed.outcome} if relayed.outcome != "rate-limited" else {}
            ctx.decide("notify", "relay-held", **detail)
    elif status_note is not None:
        ctx.letters.requester_mail(ticket, template=STATUS_TEMPLATES[ticket.status], now=ctx.now,
                                   automatic=True)


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
