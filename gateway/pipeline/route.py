"""Decide where a new ticket goes: evaluate the admins' YAML rules (queue, owner or team
assignment, priority, tags, acknowledgement template) and pick the agent for team rules.
Follow-up mails keep the routing of their ticket."""

from __future__ import annotations

import dataclasses

from gateway import language
from gateway.config import Settings
from gateway.pipeline.context import Context
from gateway.ruleset import MailFacts, RouteDecision
from storage.assignment import next_in_rotation, open_tickets_per_owner
from storage.tickets import TicketStore


def pick_agent(decision: RouteDecision, settings: Settings, store: TicketStore) -> str | None:
    """The owner a team rule assigns: next in the team's rotation, or the member with the
    fewest open tickets right now (ties go to the one listed first in the config)."""
    members = [agent.email for agent in settings.team_members(decision.team or "")]
    if not members:
        return None
    if decision.assign == "least_open":
        counts = open_tickets_per_owner(store.session, members)
        return min(members, key=lambda email: counts[email])
    return members[next_in_rotation(store.session, decision.team or "") % len(members)]


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    mail = ctx.mail
    ctx.language = language.detect(f"{mail.subject}\n{mail.text}", ctx.settings.service.language)
    if ctx.ticket is not None or ctx.ruleset is None:
        return
    facts = MailFacts.from_parsed(
        mail,
        language=ctx.language,
        sender_is_agent=ctx.sender_role != "requester",
        received_at=ctx.inbox.received_at,
    )
    decision = ctx.ruleset.evaluate(facts).decision
    if decision.owner is None and decision.team is not None:
        decision = dataclasses.replace(
            decision, owner=pick_agent(decision, ctx.settings, ctx.store)
        )
    ctx.route = decision
    ctx.decide(
        "route",
        "routed",
        ruleset=ctx.ruleset.version,
        rules=list(decision.rules),
        decision=decision.describe(),
    )
