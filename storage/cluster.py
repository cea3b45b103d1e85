"""What several instances on one database agree on: a named lease with expiry (the leader of
the timed jobs), heartbeat rows of the running instances, and the last run of each leader-only
job, so that a job runs once per period whoever leads.

Every statement is conditional and takes effect in one UPDATE (or an INSERT that skips a row
already there), so it is safe on SQLite (one writer) and on PostgreSQL with any number of
instances. Times come from the database's clock on PostgreSQL, so hosts whose clocks differ
still agree on when a lease expired; SQLite instances share one host and its clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, case, delete, literal, select, text, update
from sqlalchemy.orm import Session

from storage.models import ClusterInstance, ClusterLease, JobRun, utcnow
from storage.spool import insert_unless_present

JOBS_LEASE = "jobs"  # the lease of the leader of the timed jobs (gateway.jobs.leader)

_LEASES = cast(Table, ClusterLease.__table__)
_INSTANCES = cast(Table, ClusterInstance.__table__)
_RUNS = cast(Table, JobRun.__table__)


def database_now(session: Session) -> datetime:
    """The time by the database's clock (PostgreSQL), else by this host's (SQLite)."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return cast(datetime, value).astimezone(UTC)
    return utcnow()


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str | None
    expires_at: datetime | None
    acquired_at: datetime | None


def hold_lease(session: Session, name: str, me: str, seconds: float) -> Lease:
    """Take the lease `name` for `seconds` if it is free, expired or already ours (then this
    renews it); the lease as it stands afterwards, whoever holds it."""
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    session.execute(insert_unless_present(dialect, _LEASES).values(name=name))
    session.execute(
        update(ClusterLease)
        .where(
            ClusterLease.name == name,
            (ClusterLease.holder == me)
            | ClusterLease.holder.is_(None)
            | ClusterLease.expires_at.is_(None)
            | (ClusterLease.expires_at < now),
        )
        .values(
            expires_at=now + timedelta(seconds=seconds),
            holder=me,
            acquired_at=case(  # the SET sees the row as it was: kept on renewal only
                (ClusterLease.holder == me, ClusterLease.acquired_at),
                else_=literal(now, ClusterLease.acquired_at.type),
            ),
        )
        .execution_options(synchronize_session=False)
    )
    return read_lease(session, name)


def read_lease(session: Session, name: str) -> Lease:
    row = session.execute(
        select(ClusterLease.holder, ClusterLease.expires_at, ClusterLease.acquired_at).where(
            ClusterLease.name == name
        )
    ).first()
    if row is None:
        return Lease(name, None, None, None)
    return Lease(name, row.holder, row.expires_at, row.acquired_at)


def release_lease(session: Session, name: str, me: str) -> bool:
    """Give the lease up at once (a graceful stop), if we hold it: another instance need not
    wait for it to expire."""
    result = session.execute(
        update(ClusterLease)
        .where(ClusterLease.name == name, ClusterLease.holder == me)
        .values(holder=None, expires_at=None, acquired_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def heartbeat(session: Session, me: str, host: str, pid: int, started_at: datetime) -> None:
    """Say that instance `me` is alive now (its row is created on the first beat)."""
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    session.execute(
        insert_unless_present(dialect, _INSTANCES).values(
            id=me, host=host, pid=pid, started_at=started_at, last_seen=now
        )
    )
    session.execute(
        update(ClusterInstance)
        .where(ClusterInstance.id == me)
        .values(last_seen=now)
        .execution_options(synchronize_session=False)
    )


def forget_instance(session: Session, me: str) -> None:
    """A graceful stop: the instance's row goes (a killed one stays, seen ever older)."""
    session.execute(delete(ClusterInstance).where(ClusterInstance.id == me))


def forget_silent(session: Session, silent_for: timedelta) -> int:
    """Remove rows of instances not seen for `silent_for` (killed long ago)."""
    cutoff = database_now(session) - silent_for
    result = session.execute(delete(ClusterInstance).where(ClusterInstance.last_seen < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


def instances(session: Session) -> Sequence[ClusterInstance]:
    return session.scalars(select(ClusterInstance).order_by(ClusterInstance.started_at)).all()


def start_run(session: Session, job: str, me: str, period: float, tolerance: float) -> bool:
    """Record that `me` runs `job` now, if its last run by any instance is at least one period
    (less `tolerance`, the scheduler's jitter) ago; False: run already this period, skip."""
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    inserted = session.execute(  # RETURNING: psycopg gives no rowcount for ON CONFLICT
        insert_unless_present(dialect, _RUNS)
        .values(name=job, last_run_at=now, instance=me, detail={})
        .returning(_RUNS.c.name)
    ).first()
    if inserted is not None:
        return True
    due = now - timedelta(seconds=max(0.0, period - tolerance))
    result = session.execute(
        update(JobRun)
        .where(JobRun.name == job, JobRun.last_run_at <= due)
        .values(last_run_at=now, instance=me)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def record_detail(session: Session, job: str, detail: dict[str, Any]) -> None:
    """Keep a short, content-free report of the job's last run (a mailbox poll's health)."""
    session.execute(
        update(JobRun)
        .where(JobRun.name == job)
        .values(detail=detail)
        .execution_options(synchronize_session=False)
    )


def job_runs(session: Session) -> Sequence[JobRun]:
    return session.scalars(select(JobRun).order_by(JobRun.name)).all()
