"""Deletion periods (Löschfristen): which tickets the queue policies say are due, what a run
would delete (`plan`, changing nothing) and the run itself (`run`: the timed job `deletion`
and `postdesk retention run`). Each ticket is deleted in a transaction of its own
(storage.deletion), so a run that stops half-way has deleted whole tickets only and the next
run goes on where it stopped.

A queue's `retention` policy (gateway.lifecycle.policy): `trigger: closed` counts the period
from `closed_at` (only closed tickets are ever due), `last_activity` from `updated_at`.
Not to be confused with storage.retention, which forgets the raw originals of live tickets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from gateway import logs
from gateway.lifecycle.policy import Policies
from storage import deletion
from storage.blobs import Blobs
from storage.deletion import Why
from storage.engine import Database


@dataclass(frozen=True)
class Due:
    """One ticket whose deletion period is over, and the rule that says so."""

    ticket_id: int
    ref: str
    queue: str | None
    why: Why


@dataclass
class PlanLine:
    """What a run would delete in one queue under one rule."""

    queue: str | None
    rule: str
    trigger: str
    period: str
    cutoff: datetime
    tickets: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"queue": self.queue, "rule": self.rule, "trigger": self.trigger,
                "period": self.period, "cutoff": self.cutoff.isoformat(),
                "tickets": self.tickets, **dict(sorted(self.counts.items()))}


@dataclass
class RunReport:
    tickets: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    refs: list[str] = field(default_factory=list)


def due(db: Database, policies: Policies, now: datetime, actor: str = "system") -> list[Due]:
    """Every ticket whose queue's deletion period is over at `now`."""
    found: list[Due] = []
    with db.reading() as session:
        for queue in deletion.queues_in_use(session):
            policy = policies.for_queue(queue)
            retention = policy.retention
            why = Why("period", policy.rule, retention.trigger, str(retention.period), actor)
            cutoff = retention.period.before(now)
            found.extend(Due(ticket_id, ref, queue, why) for ticket_id, ref
                         in deletion.expired(session, queue, retention.trigger, cutoff))
    return found


def plan(db: Database, policies: Policies, now: datetime) -> list[PlanLine]:
    """What a run at `now` would delete, per queue and rule (nothing is changed): one line
    per queue that has tickets, due or not."""
    lines: list[PlanLine] = []
    with db.reading() as session:
        for queue in sorted(deletion.queues_in_use(session), key=lambda q: (q is None, q or "")):
            policy = policies.for_queue(queue)
            retention = policy.retention
            cutoff = retention.period.before(now)
            line = PlanLine(queue, policy.rule, retention.trigger, str(retention.period), cutoff)
            for ticket_id, _ref in deletion.expired(session, queue, retention.trigger, cutoff):
                line.tickets += 1
                line.counts.update(deletion.ticket_counts(session, ticket_id))
            lines.append(line)
    return lines


def run(db: Database, blobs: Blobs, policies: Policies, now: datetime, *,
        actor: str = "system", limit: int | None = None) -> RunReport:
    """Delete every due ticket (at most `limit`), one transaction each; blob files that no
    row refers to any more are removed after each commit. Logged without personal data."""
    report = RunReport()
    for item in due(db, policies, now, actor)[:limit]:
        with db.session() as session:
            done = deletion.delete_ticket(session, item.ticket_id, item.why, blobs, now)
        with db.reading() as session:
            deletion.remove_blobs(blobs, session, done.blobs)
        if not done.refs:
            continue  # deleted meanwhile (another run)
        report.tickets += 1
        report.counts.update(done.counts)
        report.refs.extend(done.refs)
        logs.event("retention.deleted", ticket=item.ref, queue=item.queue or "-",
                   rule=item.why.rule, articles=done.counts["articles"],
                   attachments=done.counts["attachments"])
    if report.tickets:
        deletion.scrub_wal(db)
        logs.event("retention.run", tickets=report.tickets, articles=report.counts["articles"],
                   attachments=report.counts["attachments"])
    return report
