"""Tell requesters from agents. An agent address alone proves nothing (From is trivially forged),
so until agent proof tokens exist (issue 5) mail from an agent address is kept as an unverified
internal note: stored, never relayed, never acted on, never answered."""

from __future__ import annotations

from gateway.pipeline.context import Context


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    if ctx.settings.agent(ctx.mail.from_.email) is not None:
        ctx.sender_role = "agent-unverified"
        ctx.decide("identify", "agent-unverified", reason="agent address without proof")
    else:
        ctx.sender_role = "requester"
