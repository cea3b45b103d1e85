"""Tell requesters from agents. An agent address alone proves nothing (From is trivially
forged), so a mail acts as an agent only with proof: a valid proof token for this agent and
ticket (from a notification: plus-addressed recipient, In-Reply-To or References), or — if the
operator trusts the MTA in front of postdesk — its Authentication-Results showing DMARC/DKIM pass
for the agent's domain. Agent mail without proof on a ticket is kept as an unverified note; a
proven agent who is no longer in charge of the ticket (gateway.pipeline.scope) acts on nothing
either: the mail is kept as a note."""

from __future__ import annotations

from gateway import logs
from gateway.agents import proof as agentproof
from gateway.pipeline import scope as agentscope
from gateway.pipeline.context import Context, SenderRole


def _trusted_authentication(ctx: Context, agent: str) -> bool:
    assert ctx.mail is not None
    authserv_id = ctx.settings.agent_proof.trusted_authserv_id
    if authserv_id is None:
        return False
    return agentproof.authentication_results_verdict(
        ctx.mail.headers.get("authentication-results", []),
        authserv_id,
        agent.rsplit("@", 1)[1],
    )


def _verified(ctx: Context, agent: str, via: str | None) -> None:
    """A proven agent acts only while in charge of the ticket (gateway.pipeline.scope): a former
    owner's reply, token and all, is kept as a note, with an event, and its writer told."""
    assert ctx.ticket is not None
    if agentscope.in_charge(ctx.settings, ctx.store, ctx.ticket, agent):
        ctx.sender_role = SenderRole.AGENT
        ctx.decide("identify", "agent", via=via)
        return
    ticket = ctx.ticket
    ctx.sender_role = SenderRole.AGENT_NOT_IN_CHARGE
    ctx.decide("identify", agentscope.NOT_IN_CHARGE, via=via)
    ctx.store.add_event(ticket, actor=agent, kind="not-in-charge", now=ctx.now,
                        owner=ticket.owner, via=via)
    logs.event("identify.not-in-charge", ticket=ticket.ref)


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    mail = ctx.mail
    sender = mail.from_.email
    if ctx.settings.agent(sender) is None:
        ctx.sender_role = SenderRole.REQUESTER
        return
    if ctx.automatic_reason is not None:  # e.g. an agent's out-of-office: kept, never acted on
        ctx.sender_role = (
            SenderRole.AGENT_UNVERIFIED if ctx.ticket is not None else SenderRole.REQUESTER
        )
        return
    proof = agentproof.verify(
        ctx.proof_keys,
        sender,
        recipients=[*ctx.inbox.envelope_to, *(a.email for a in (*mail.to, *mail.cc))],
        in_reply_to=" ".join(mail.in_reply_to) or None,
        references=mail.references,
        ticket_ref_hint=ctx.ticket.ref if ctx.ticket is not None else None,
    )
    if proof.ok and ctx.ticket is None and proof.ticket_ref is not None:
        ctx.ticket = ctx.store.by_ref(proof.ticket_ref)  # subject and threading headers lost
    if ctx.ticket is None:
        ctx.sender_role = SenderRole.REQUESTER  # an agent writing in with a request of their own
    elif proof.ok or _trusted_authentication(ctx, sender):
        _verified(ctx, sender, proof.via if proof.ok else "authentication-results")
    else:
        ctx.sender_role = SenderRole.AGENT_UNVERIFIED
        ctx.decide("identify", "agent-unverified", reason=proof.reason)
