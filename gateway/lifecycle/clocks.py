"""The SLA clocks of a ticket, kept as due moments on the ticket row so that `tickets list
--overdue` and the reminder job find them with an index.

- first response: runs from creation until the first agent reply relayed to the requester;
- next update: restarts with every requester follow-up, stops with the next relayed reply;
- solution: runs from creation until resolved; `pending` (and resolved/closed) pause it, and
  the paused business minutes push its due moment back when it runs again.

A clock the queue's policy does not give for the ticket's priority does not run. A change of
queue or priority recomputes the due moments of the running clocks from their start
(`sla_basis` remembers what they were computed for). `sla_outcome` records per clock whether
it was met or missed; the statistics row of a deleted ticket keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.config import Settings
from gateway.lifecycle.calendar import BusinessCalendar, Calendars
from gateway.lifecycle.policy import (
    EffectivePolicy,
    Policies,
    SlaTimes,
    load_policies,
)
from storage.models import Ticket

CLOCKS = ("first_response", "update", "solution")
DUE = {"first_response": "first_response_due_at", "update": "update_due_at",
       "solution": "solution_due_at"}
MINUTES = {"first_response": "first_response", "update": "next_update",
           "solution": "solution"}
STOPPED = ("resolved", "closed")  # every clock stands still
PAUSED = ("pending", *STOPPED)  # the solution clock stands still


@dataclass(frozen=True)
class Lifecycle:
    """The queue policies and business calendars of a process, built once."""

    policies: Policies
    calendars: Calendars

    @classmethod
    def load(cls, settings: Settings) -> Lifecycle:
        return cls(load_policies(settings), Calendars(settings))

    def policy(self, queue: str | None) -> EffectivePolicy:
        return self.policies.for_queue(queue)

    def calendar(self, queue: str | None) -> BusinessCalendar:
        return self.calendars.get(self.policy(queue).calendar)

    def times(self, queue: str | None, priority: str) -> SlaTimes:
        sla = self.policy(queue).sla
        return sla.priorities.get(priority, SlaTimes())  # type: ignore[call-overload]


def basis(queue: str | None, priority: str) -> str:
    return f"{queue or ''}/{priority}"


def initial(lc: Lifecycle, *, queue: str | None, priority: str, now: datetime
            ) -> dict[str, Any]:
    """The clock columns of a ticket created `now` (they go into its INSERT)."""
    times, calendar = lc.times(queue, priority), lc.calendar(queue)
    return {
        "first_response_due_at": _due(calendar, now, times.first_response),
        "solution_due_at": _due(calendar, now, times.solution),
        "sla_basis": basis(queue, priority),
        "status_changed_at": now,
    }


def _due(calendar: BusinessCalendar, start: datetime, minutes: float | None
         ) -> datetime | None:
    return None if minutes is None else calendar.add(start, minutes)


def total_minutes(lc: Lifecycle, ticket: Ticket, clock: str) -> int | None:
    value = getattr(lc.times(ticket.queue, ticket.priority), MINUTES[clock])
    return int(value) if value is not None else None


def started(ticket: Ticket, clock: str) -> datetime | None:
    """Where the clock's count starts (the solution clock's paused time is added on top)."""
    if clock == "update":
        return ticket.update_started_at
    return ticket.created_at


def moment(lc: Lifecycle, ticket: Ticket, clock: str, share: float) -> datetime | None:
    """When `share` of the clock's time is used up (1.0: its due moment), None if it has no
    time. Recomputed from the start, so it agrees with the stored due moment."""
    total, start = total_minutes(lc, ticket, clock), started(ticket, clock)
    if total is None or start is None:
        return None
    paused = (ticket.solution_paused_minutes or 0) if clock == "solution" else 0
    return lc.calendar(ticket.queue).add(start, total * share + paused)


def record(ticket: Ticket, clock: str, outcome: str) -> None:
    """Set a clock's outcome; a miss is never turned back into a hit."""
    current = dict(ticket.sla_outcome or {})
    if current.get(clock) == "missed" or current.get(clock) == outcome:
        return
    current[clock] = outcome
    ticket.sla_outcome = current  # a new dict: the ORM sees the change


def _stop(ticket: Ticket, clock: str, now: datetime) -> None:
    due = getattr(ticket, DUE[clock])
    if due is not None:
        record(ticket, clock, "met" if now <= due else "missed")
        setattr(ticket, DUE[clock], None)


def answered(lc: Lifecycle, ticket: Ticket, now: datetime) -> None:
    """An agent's reply went to the requester: first response and update clocks stop."""
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
        _stop(ticket, "first_response", now)
    _stop(ticket, "update", now)


def requester_wrote(lc: Lifecycle, ticket: Ticket, now: datetime) -> None:
    """A requester's follow-up: the update clock (re)starts."""
    if ticket.status in STOPPED:
        return
    ticket.update_started_at = now
    ticket.update_due_at = moment(lc, ticket, "update", 1.0)


def refresh(lc: Lifecycle, ticket: Ticket, now: datetime) -> None:
    """Bring the clocks in line with the ticket's status, queue and priority: pause or resume
    the solution clock, stop every clock on resolved/closed, recompute on a new basis."""
    if ticket.status in PAUSED and ticket.solution_paused_at is None:
        ticket.solution_paused_at = now
        if ticket.solution_due_at is not None:
            if ticket.status in STOPPED:
                _stop(ticket, "solution", now)
            ticket.solution_due_at = None
    elif ticket.status not in PAUSED and ticket.solution_paused_at is not None:
        calendar = lc.calendar(ticket.queue)
        paused = round(calendar.minutes_between(ticket.solution_paused_at, now))
        ticket.solution_paused_minutes = (ticket.solution_paused_minutes or 0) + paused
        ticket.solution_paused_at = None
        ticket.solution_due_at = moment(lc, ticket, "solution", 1.0)
    if ticket.status in STOPPED:
        if ticket.solution_paused_at is not None and "solution" not in (ticket.sla_outcome or {}):
            due = moment(lc, ticket, "solution", 1.0)
            if due is not None:
                record(ticket, "solution", "met" if ticket.solution_paused_at <= due else "missed")
        ticket.first_response_due_at = ticket.update_due_at = None
    if ticket.sla_basis != basis(ticket.queue, ticket.priority):
        recompute(lc, ticket)


def recompute(lc: Lifecycle, ticket: Ticket) -> None:
    """Due moments of the running clocks for the ticket's queue and priority now."""
    ticket.sla_basis = basis(ticket.queue, ticket.priority)
    running = ticket.status not in STOPPED
    ticket.first_response_due_at = (
        moment(lc, ticket, "first_response", 1.0)
        if running and ticket.first_responded_at is None else None)
    ticket.update_due_at = (
        moment(lc, ticket, "update", 1.0)
        if running and ticket.update_due_at is not None else None)
    ticket.solution_due_at = (
        moment(lc, ticket, "solution", 1.0)
        if ticket.solution_paused_at is None and ticket.status not in PAUSED else None)
