"""An erasure request (DSGVO Art. 17) for one address: every ticket the person asked, deleted
as by a deletion period, or pseudonymised where the queue's policy says `on_request:
pseudonymise` (tickets the authority must keep); then the address is taken out of other
tickets' party lists, their articles' recipient lists and the rate-limit log. All in one
transaction, recorded as an `ErasureRequest` under a keyed hash of the address.

The address is matched as a whole, case-insensitively: erasing a@x.de leaves ba@x.de alone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gateway import logs
from gateway.errors import PostdeskError
from gateway.lifecycle.policy import Policies
from gateway.secrets import subject_hash
from storage import deletion
from storage.blobs import Blobs
from storage.deletion import Deleted, Why
from storage.engine import Database
from storage.models import ErasureRequest, Event
from storage.tickets import event_row

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class ErasurePlan:
    """What an erasure does (or, dry, would do): per ticket its ref and the answer."""

    subject: str  # the keyed hash of the address
    deleted: list[str] = field(default_factory=list)
    pseudonymised: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    request_id: int | None = None


def placeholder(subject: str) -> str:
    """What stands where the address stood in a pseudonymised ticket."""
    return f"geloescht-{subject[:12]}@pseudonym.invalid"


def normalise(address: str) -> str:
    value = address.strip().lower()
    if value.count("@") != 1 or value.startswith("@") or value.endswith("@") or " " in value:
        raise PostdeskError("not an e-mail address (give the whole address, e.g. "
                            "name@example.org)")
    return value


def erase(db: Database, blobs: Blobs, policies: Policies, key: bytes, address: str, *,
          reason: str, actor: str, now: datetime, dry_run: bool = False) -> ErasurePlan:
    """Erase (or with `dry_run` only count) everything of `address`; returns what was done."""
    address = normalise(address)
    if not reason.strip():
        raise PostdeskError("--reason must not be empty")
    result = ErasurePlan(subject_hash(key, address))
    if dry_run:
        with db.reading() as session:
            for ticket in deletion.tickets_of(session, address):
                keep = policies.for_queue(ticket.queue).retention.on_request == "pseudonymise"
                (result.pseudonymised if keep else result.deleted).append(ticket.ref)
                result.counts.update(deletion.ticket_counts(session, ticket.id))
            result.counts.update(deletion.address_counts(session, address))
        return result
    orphans: list[str] = []  # blobs to remove after the commit
    with db.session() as session:
        _erase(session, result, blobs, policies, address, actor, now, orphans)
        counts = {k: n for k, n in sorted(result.counts.items()) if n}
        counts.update(tickets_deleted=len(result.deleted),
                      tickets_pseudonymised=len(result.pseudonymised))
        request = ErasureRequest(subject_hash=result.subject, reason=reason.strip(),
                                 actor=actor, counts=counts, requested_at=now)
        session.add(request)
        session.flush()
        result.request_id = request.id
        session.add(Event(**event_row(None, actor=actor, kind="erased", now=now,
                                      request=request.id, **counts)))
    with db.reading() as session:
        deletion.remove_blobs(blobs, session, orphans)
    deletion.scrub_wal(db)
    logs.event("requester.erased", request=result.request_id, deleted=len(result.deleted),
               pseudonymised=len(result.pseudonymised))
    return result


def _erase(session: Session, result: ErasurePlan, blobs: Blobs, policies: Policies,
           address: str, actor: str, now: datetime, orphans: list[str]) -> None:
    """Each ticket of the person deleted or pseudonymised, then the address elsewhere."""
    stand_in = placeholder(result.subject)
    for ticket in deletion.tickets_of(session, address):
        policy = policies.for_queue(ticket.queue)
        keep = policy.retention.on_request == "pseudonymise"
        (result.pseudonymised if keep else result.deleted).append(ticket.ref)
        why = Why("pseudonymised" if keep else "erasure", policy.rule, "request", "", actor)
        done: Deleted = (
            deletion.pseudonymise_ticket(session, ticket.id, address, stand_in, why, blobs, now)
            if keep else deletion.delete_ticket(session, ticket.id, why, blobs, now))
        result.counts.update(done.counts)
        orphans.extend(done.blobs)
    result.counts.update(deletion.forget_address(session, address, stand_in))
