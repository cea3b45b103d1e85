"""Who may act on a ticket by mail now. A proof token shows that a mail comes from the agent a
notification went to; it does not show that this agent still handles the ticket. So a verified
agent acts (commands carried out, reply relayed) only while in charge of the ticket:

- the dispatchers (`routing.dispatchers` and the members of `routing.default_team`): on any
  ticket, since they are the ones who hand tickets out and take them back;
- the ticket's owner;
- while nobody owns it: the members of the team the rules gave it (all of them were told, and
  any of them may take it with #übernehmen).

Anyone else, above all a former owner after a reassignment or a colleague after someone else
took the ticket, acts on nothing: the mail is kept as an internal note and its writer is told
who has the ticket now. A team member who is not the owner is not in charge on purpose: a
reassignment would otherwise leave the old owner's token working whenever the new owner is in
the same team, which is the usual case."""

from __future__ import annotations

from enum import StrEnum

from gateway.config import Settings
from storage.models import Ticket
from storage.tickets import TicketStore


class SenderRole(StrEnum):
    """Who a mail is from, as far as it may act (gateway.pipeline.identify decides)."""

    REQUESTER = "requester"  # a requester, or an agent writing in with a request of their own
    AGENT = "agent"  # a proven agent in charge of the ticket: commands run, the reply relayed
    AGENT_UNVERIFIED = "agent-unverified"  # an agent's address without proof: kept as a note
    AGENT_NOT_IN_CHARGE = "agent-not-in-charge"  # proven, but no longer in charge: a note


NOT_IN_CHARGE = SenderRole.AGENT_NOT_IN_CHARGE.value  # also the mail that tells the agent


def in_charge(settings: Settings, store: TicketStore, ticket: Ticket, agent: str) -> bool:
    """True if `agent` may act on `ticket` now (see the module docstring)."""
    agent = agent.strip().lower()
    if agent == ticket.owner or agent in settings.dispatchers():
        return True
    if ticket.owner is not None:
        return False
    team = store.team(ticket)
    return team is not None and any(m.email == agent for m in settings.team_members(team))


def holder(settings: Settings, store: TicketStore, ticket: Ticket) -> dict[str, str | None]:
    """Who has the ticket now, for the mail that tells a former owner: the owner's display name
    or, while nobody owns it, the team's name (both None: the dispatchers will assign it)."""
    if ticket.owner is not None:
        member = settings.agent(ticket.owner)
        return {"owner_name": member.name if member else ticket.owner, "team": None}
    return {"owner_name": None, "team": store.team(ticket)}
