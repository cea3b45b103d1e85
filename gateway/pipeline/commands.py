"""Carry out the #commands at the top of a verified agent's reply — all of them or, if any line
is wrong, none (the agent gets a mail naming the line, and nothing reaches the requester).
`#original` is checked here (the article must exist) and answered by the notify stage.
A reply whose answer cannot be cleanly separated from the agent mail it quotes is held: kept
as a note, nothing carried out or relayed, the agent told (see gateway.agents.reply)."""

from __future__ import annotations

from collections.abc import Callable

from gateway import logs
from gateway.agents import commands as agentcommands
from gateway.agents import proof as agentproof
from gateway.agents import reply as agentreply
from gateway.pipeline import actions, disclosure
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
    originals, unknown = disclosure.resolve(ctx, block.commands)
    errors = sorted([*errors, *unknown], key=lambda e: e.line_no)
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
    ctx.originals_asked = originals  # mailed by the notify stage (gateway.pipeline.disclosure)
    for command in block.commands:
        notify = _apply(ctx, command, agent, agents)
        if notify.owner is not None:
            ctx.notify_agents.append((notify.owner, "assigned"))
        if command.kind == "status" and command.value:
            ctx.status_changed = command.value  # the requester hears of it (followups)
    if block.commands:
        ctx.decide("commands", "applied", kinds=[c.kind for c in block.commands])
    ctx.ticket.updated_at = ctx.now


# command kind -> the action that carries it out (values are canonical after validate)
_ACTIONS: dict[str, Callable[..., actions.Notify]] = {
    "status": actions.set_status,
    "assign": actions.assign,
    "priority": actions.set_priority,
    "queue": actions.move_to_queue,
    "tag": actions.add_tag,
}


def _apply(
    ctx: Context, command: agentcommands.Command, agent: str, agents: list[tuple[str, str]]
) -> actions.Notify:
    """Carry out one validated command as `agent`."""
    if command.kind == "note":
        ctx.internal = True  # the mail itself is stored as the note (record stage)
        return actions.NOTHING
    if command.kind == "original":  # answered in the notify stage, after the record
        return actions.NOTHING
    value, action = command.value, _ACTIONS.get(command.kind)
    if value is None or action is None:
        return actions.NOTHING
    if command.kind == "assign":
        value = agentcommands.resolve_agent(value, agents=agents, acting_agent=agent)
    return action(ctx.store, ctx.ticket, value, actor=agent, now=ctx.now)


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
        notification_lines=agentreply.own_lines(ctx.letters.agent_mails(ticket)),
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
