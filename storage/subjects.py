"""What is stored about one e-mail address, for a data subject's request (DSGVO Art. 15): the
tickets the address is a party to, and how.

An address is matched whole, never as a substring: exporting `a@x.de` must not find
`ba@x.de`. Stored addresses are lower-cased at parse (gateway.pipeline.parse), so an equality
on the lower-cased address is exact and uses the indexes. Three ways make a ticket the
person's:

- `requester`: the ticket's requester, or a participant with that role;
- `cc`: a participant copied in (role cc);
- `mentioned`: named in the To or Cc of a received mail without being a party (more Cc
  addresses than `tickets.max_cc_per_mail` let through, or a To beside the desk's address).

Agents are not found through their work on tickets (participant role `agent`, authors of
replies): that is the authority's record of its staff's work, not a citizen's data; an agent
who wrote in as a requester is found like anyone else."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session, selectinload

from storage.models import Article, Event, InboxItem, Participant, Ticket

ROLES = ("requester", "cc", "mentioned")
"""How an address is a party to a ticket, strongest first."""


@dataclass(slots=True)
class SubjectTicket:
    """One ticket of the person, its articles and attachments loaded, with their role on it."""

    ticket: Ticket
    role: str
    events: list[Event] = field(default_factory=list)
    participants: dict[str, str] = field(default_factory=dict)  # address → role


def subject_tickets(session: Session, email: str) -> list[SubjectTicket]:
    """Every ticket `email` (lower-cased, whole) is a party to, oldest first."""
    roles: dict[int, str] = {}

    def take(ticket_id: int, role: str) -> None:
        current = roles.get(ticket_id)
        if current is None or ROLES.index(role) < ROLES.index(current):
            roles[ticket_id] = role

    for ticket_id in session.scalars(select(Ticket.id).where(Ticket.requester == email)):
        take(ticket_id, "requester")
    parties = select(Participant.ticket_id, Participant.role).where(
        Participant.email == email, Participant.role.in_(("requester", "cc"))
    )
    for ticket_id, role in session.execute(parties):
        take(ticket_id, role)
    for ticket_id in _mentioned(session, email):
        take(ticket_id, "mentioned")
    if not roles:
        return []
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.id.in_(roles))
        .order_by(Ticket.id)
        .options(selectinload(Ticket.articles).selectinload(Article.attachments))
    )
    found = []
    for ticket in tickets:
        events = list(
            session.scalars(select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id))
        )
        rows = session.execute(
            select(Participant.email, Participant.role).where(Participant.ticket_id == ticket.id)
        )
        party_roles = {email: role for email, role in rows}
        found.append(SubjectTicket(ticket, roles[ticket.id], events, party_roles))
    return found


def _mentioned(session: Session, email: str) -> set[int]:
    """Tickets with a received mail naming `email` in To or Cc. The JSON lists are searched for
    the quoted address (whole, as JSON writes it), then checked element by element."""
    needle = json.dumps(email)
    rows = session.execute(
        select(Article.ticket_id, Article.to_addrs, Article.cc_addrs).where(
            Article.direction == "in",
            or_(
                cast(Article.to_addrs, Text).contains(needle, autoescape=True),
                cast(Article.cc_addrs, Text).contains(needle, autoescape=True),
            ),
        )
    )
    return {
        ticket_id
        for ticket_id, to, cc in rows
        if email in {str(a).lower() for a in [*(to or []), *(cc or [])]}
    }


def original_of(session: Session, article: Article) -> bytes | None:
    """The stored original of a received article, decrypted; None when there is none (kept
    `redaction.raw_retention_days`). Raises storage.sealing.SealError if it cannot be opened."""
    if article.inbox_id is None:
        return None
    return session.scalar(select(InboxItem.raw).where(InboxItem.id == article.inbox_id))
