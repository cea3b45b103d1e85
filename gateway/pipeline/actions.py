"""What an agent or an admin does to a ticket — assign, status, priority, queue, tag, note — in
one place, so the `#commands` stage and the CLI change a ticket the same way: each action
writes its audit event and says which mails it calls for.

The actions send nothing: the caller queues the mails with the mail service it holds (the
pipeline and the CLI build theirs differently), from the plain `Notify` value each returns.
Values come in checked and canonical (`gateway.agents.commands` for a reply, the CLI's own
parsing for a command line); an action whose value is already the ticket's changes nothing and
records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from storage.models import Ticket
from storage.tickets import TicketStore

RequesterNews = Literal["assigned", "status"]


@dataclass(frozen=True, slots=True)
class Notify:
    """The mails an action calls for, as plain data for whoever queues them.

    `owner`: the new owner, to be told the ticket is theirs (an agent notification, reason
    "assigned"); never the actor themself. `requester`: news the requester may be told of —
    "assigned" (who handles the ticket; config `notify.assigned_mail_to_requester`) or
    "status" (the ticket's new status). The CLI tells agents only; the pipeline tells both.
    """

    owner: str | None = None
    requester: RequesterNews | None = None


NOTHING = Notify()


def assign(
    store: TicketStore, ticket: Ticket, owner: str | None, *, actor: str, now: datetime
) -> Notify:
    """Give the ticket to `owner` (an agent's lower-case address; None: to nobody). The owner
    becomes a participant, so their replies are recognised as the ticket's agent's."""
    if owner == ticket.owner:
        return NOTHING
    store.add_event(ticket, actor=actor, kind="assigned", now=now, old=ticket.owner, new=owner)
    ticket.owner, ticket.updated_at = owner, now
    if owner is None:
        return NOTHING
    store.add_participant(ticket, owner, "agent")
    if owner == actor:  # `#take`: nobody needs telling
        return NOTHING
    return Notify(owner=owner, requester="assigned")


def set_status(
    store: TicketStore, ticket: Ticket, status: str, *, actor: str, now: datetime
) -> Notify:
    """Set the status (one of storage.states.TICKET_STATUSES)."""
    if status == ticket.status:
        return NOTHING
    store.set_status(ticket, status, actor=actor, now=now)
    return Notify(requester="status")


def set_priority(
    store: TicketStore, ticket: Ticket, priority: str, *, actor: str, now: datetime
) -> Notify:
    """Set the priority (low, normal, high, urgent: see gateway.mail.words.PRIORITIES)."""
    if priority == ticket.priority:
        return NOTHING
    store.add_event(ticket, actor=actor, kind="priority", now=now, old=ticket.priority,
                    new=priority)
    ticket.priority, ticket.updated_at = priority, now
    return NOTHING


def move_to_queue(
    store: TicketStore, ticket: Ticket, queue: str, *, actor: str, now: datetime
) -> Notify:
    """Move the ticket to another queue; its owner and team stay."""
    if queue == ticket.queue:
        return NOTHING
    store.add_event(ticket, actor=actor, kind="queue", now=now, old=ticket.queue, new=queue)
    ticket.queue, ticket.updated_at = queue, now
    return NOTHING


def add_tag(store: TicketStore, ticket: Ticket, tag: str, *, actor: str, now: datetime) -> Notify:
    """Add a tag (kept once)."""
    if tag in ticket.tags:
        return NOTHING
    store.add_event(ticket, actor=actor, kind="tag", now=now, tag=tag)
    ticket.tags, ticket.updated_at = [*ticket.tags, tag], now
    return NOTHING


def add_note(
    store: TicketStore,
    ticket: Ticket,
    body: str,
    *,
    actor: str,
    now: datetime,
    redactions: Mapping[str, int] | None = None,
) -> Notify:
    """Store an internal note (never sent to anyone). `body` is already redacted; `redactions`
    counts what was replaced, per entity, for the audit event."""
    article = store.add_article(
        ticket,
        kind="note",
        direction="in",
        from_addr=actor,
        subject=ticket.subject,
        body=body,
        created_at=now,
    )
    store.add_event(
        ticket, actor=actor, kind="note", now=now, article_id=article.id, **(redactions or {})
    )
    ticket.updated_at = now
    return NOTHING
