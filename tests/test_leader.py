"""One leader for the timed jobs (issue 14, defects 8 and 9): the jobs lease is held by one
instance and renewed, taken by another once it expired or was given up; a leader-only job runs
once per period whoever leads; retention run twice changes nothing the second time."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from gateway.config import JobSettings, Settings
from gateway.jobs.leader import Leadership
from storage import cluster
from storage.engine import Database, open_database
from storage.models import ClusterInstance, InboxItem, JobRun, OutboxItem, utcnow
from storage.retention import purge_originals
from storage.sealing import Sealer


def leadership(db: Database, me: str, lease: float = 0.6) -> Leadership:
    return Leadership(db, JobSettings(leader_lease_seconds=lease), me=me)


def test_one_instance_leads_another_takes_over_once_the_lease_expired(db: Database) -> None:
    first, second, third = (leadership(db, name) for name in ("a:1", "b:2", "c:3"))
    assert first.beat() and first.is_leader()
    assert not second.beat() and not third.beat()
    assert first.beat()  # renewal
    with db.reading() as session:
        lease = cluster.read_lease(session, cluster.JOBS_LEASE)
        beats = {row.id for row in session.scalars(select(ClusterInstance))}
    assert lease.holder == "a:1" and beats == {"a:1", "b:2", "c:3"}
    # a:1 is killed: it beats no more; its lease runs out, and only then is it taken, by one
    time.sleep(0.7)
    assert not first.is_leader()  # by its own clock it stopped leading before the row expired
    taken = [second.beat(), third.beat()]
    assert taken == [True, False]
    assert not third.beat()


def test_a_graceful_stop_gives_the_lease_up_at_once(db: Database) -> None:
    first, second = leadership(db, "a:1", lease=60), leadership(db, "b:2", lease=60)
    assert first.beat() and not second.beat()
    first.stop()
    assert second.beat()
    with db.reading() as session:
        assert [row.id for row in cluster.instances(session)] == ["b:2"]


def test_a_leader_that_cannot_reach_the_database_stops_leading_within_its_lease(
    db: Database,
) -> None:
    now = [0.0]
    leader = Leadership(db, JobSettings(leader_lease_seconds=30), me="a:1",
                        clock=lambda: now[0])
    assert leader.beat()

    class Away:
        def session(self) -> Any:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    leader.db = cast(Database, Away())
    now[0] = 20.0
    assert not leader.beat() or leader.is_leader()  # still within the lease
    now[0] = 29.0
    assert not leader.beat() and not leader.is_leader()


def test_a_job_runs_once_per_period_whoever_asks(db: Database) -> None:
    with db.session() as session:
        assert cluster.start_run(session, "retention", "a:1", period=60, tolerance=6)
    with db.session() as session:  # the next leader, a moment later: not due yet
        assert not cluster.start_run(session, "retention", "b:2", period=60, tolerance=6)
        assert cluster.start_run(session, "poll-graph", "b:2", period=60, tolerance=6)
    with db.session() as session:
        run = session.get(JobRun, "retention")
        assert run is not None and run.instance == "a:1"
        run.last_run_at = utcnow() - timedelta(seconds=55)  # within the tolerance: due
    with db.session() as session:
        assert cluster.start_run(session, "retention", "b:2", period=60, tolerance=6)


def test_retention_run_twice_changes_nothing_the_second_time(settings: Settings) -> None:
    """Every sent outbox row was rewritten on every run, by every instance (defect 8): the
    second run must find nothing to do. With a key, as in production: a sealed b"" is not
    empty."""
    from cryptography.fernet import Fernet

    from storage.migrate import upgrade

    db = open_database(settings.database.url, Sealer(Fernet.generate_key()))
    upgrade(db)
    old = utcnow() - timedelta(days=30)
    with db.session() as session:
        for number in range(3):
            session.add(InboxItem(source="smtp", source_key=f"k{number}", raw=b"mail",
                                  state="done", received_at=old))
            session.add(OutboxItem(kind="requester-received", message_id=f"<m{number}@x>",
                                   envelope_from="servicedesk@example.org",
                                   envelope_to=["a@example.net"], raw=b"reply", state="sent",
                                   created_at=old, sent_at=old))
        session.add(OutboxItem(kind="requester-received", message_id="<queued@x>",
                               envelope_from="servicedesk@example.org",
                               envelope_to=["a@example.net"], raw=b"not yet", state="queued"))
    cutoff = utcnow() - timedelta(days=14)
    with db.session() as session:
        assert purge_originals(session, cutoff) == 6
    with db.session() as session:
        assert purge_originals(session, cutoff) == 0
    with db.reading() as session:
        raws = {m: r for m, r in session.execute(select(OutboxItem.message_id, OutboxItem.raw))}
        inbox = set(session.scalars(select(InboxItem.raw)))
    assert raws == {"<m0@x>": b"", "<m1@x>": b"", "<m2@x>": b"", "<queued@x>": b"not yet"}
    assert inbox == {None}
    db.dispose()
