"""Carry out the #commands at the top of a verified agent's reply — all of them or, if any line
is wrong, none (the agent gets a mail naming the line, and nothing reaches the requester).
A reply whose answer cannot be cleanly separated from the agent mail it quotes is held: kept
as a note, nothing carried out or relayed, the agent told (see gateway.agents.reply)."""

from __future__ import annotations

from gateway import logs
from gateway.agents import commands as agentcommands
from gateway.agents import proof as agentproof
from gateway.agents import reply as agentreply
from gateway.pipeline.context import Context, SenderRole


def run(ctx: Context) -> None:
    if ctx.sender_role != SenderRole.AGENT or ctx.commands is None or ctx.ticket is None:
        return
    assert ctx.mail is not None
    agent = ctx.mail.from_.email
    block = ctx.commands
    if _held(ctx, agent):
        return
    agents = [(a.email, a.name) for a in ctx.settings.agents]
    errors = agentcommands.validate(block, agents=agents, acting_agent=agent, queues=None)
    if errors:
        ctx.command_errors = errors
        ctx.decide("commands", "rejected", lines=[e.line_no for e in errors])
        ctx.store.add_event(
            ctx.ticket,
            actor=agent,
            kind="commands-rejected",
            now=ctx.now,
            lines=[e.line_no for e in errors],
        )
        return
    ticket, store = ctx.ticket, ctx.store
    for command in block.commands:
        if command.kind == "status" and command.value:
            store.set_status(ticket, command.value, actor=agent, now=ctx.now)
            ctx.status_changed = command.value  # the requester hears of it (outgoing)
        elif command.kind == "assign" and command.value:
            owner = agentcommands.resolve_agent(command.value, agents=agents, acting_agent=agent)
            if owner != ticket.owner:
                store.add_event(
                    ticket, actor=agent, kind="assigned", now=ctx.now, old=ticket.owner, new=owner
                )
                ticket.owner = owner
                store.add_participant(ticket, owner, "agent")
                if owner != agent:
                    ctx.notify_agents.append((owner, "assigned"))
        elif command.kind == "priority" and command.value and command.value != ticket.priority:
            store.add_event(
                ticket,
                actor=agent,
                kind="priority",
                now=ctx.now,
                old=ticket.priority,
                new=command.value,
            )
            ticket.priority = command.value
        elif command.kind == "queue" and command.value and command.value != ticket.queue:
            store.add_event(
                ticket, actor=agent, kind="queue", now=ctx.now, old=ticket.queue, new=command.value
            )
            ticket.queue = command.value
        elif command.kind == "tag" and command.value and command.value not in ticket.tags:
            store.add_event(ticket, actor=agent, kind="tag", now=ctx.now, tag=command.value)
            ticket.tags = [*ticket.tags, command.value]
        elif command.kind == "note":
            ctx.internal = True
    if block.commands:
        ctx.decide("commands", "applied", kinds=[c.kind for c in block.commands])
    ticket.updated_at = ctx.now


def _held(ctx: Context, agent: str) -> bool:
    """Scan the requester-bound text one last time; anything of an agent mail in it holds the
    reply (an internal note, an event, a mail to the agent), and no command is carried out."""
    assert ctx.ticket is not None and ctx.commands is not None
    if any(command.kind == "note" for command in ctx.commands.commands):
        return False  # an internal note is never relayed
    ticket, settings = ctx.ticket, ctx.settings
    inseparable = ctx.prepared.inseparable
    reasons = [inseparable] if inseparable is not None else []
    tokens = []
    if len(ctx.proof_key) >= agentproof.MIN_KEY_BYTES:
        tokens.append(agentproof.token(ctx.proof_key, agent, ticket.ref))
    reasons += agentreply.leaks(
        ctx.texts.get("relay", ""),
        agent_addresses=[a.email for a in settings.agents],
        tokens=tokens,
        notification_lines=agentreply.own_lines(ctx.store.agent_mails(ticket)),
        ignore=[settings.service.name, settings.service.address],
    )
    if not reasons:
        return False
    ctx.held_reasons = list(dict.fromkeys(reasons))
    ctx.internal = True
    ctx.decide("commands", "held", reasons=ctx.held_reasons)
    ctx.store.add_event(ticket, actor=agent, kind="reply-held", now=ctx.now,
                        reasons=ctx.held_reasons)
    logs.event("reply.held", ticket=ticket.ref, reasons=",".join(ctx.held_reasons))
    return True
