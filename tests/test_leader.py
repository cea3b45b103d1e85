"""One leader for the timed jobs (issue 14, defects 8 and 9): the jobs lease is held by one
instance and renewed, taken by another once it expired or was given up; a leader-only job runs
once per period whoever leads; retention run twice changes nothing the second time."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
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


def test_healthz_json_and_status_show_the_cluster_from_the_database(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`/healthz?format=json` and `status` read what every instance shares from the database:
    here the serving instance leads, a second one (a heartbeat row, killed long ago) is silent,
    a mailbox poll recorded by another instance's leader shows in `status`."""
    import json
    import urllib.request

    from gateway.app import App
    from gateway.cli import main
    from tests.helpers import serving, wait_for, write_config

    settings = make_settings(worker={"mode": "thread"}, metrics={"host": "127.0.0.1", "port": 0})
    with serving(App.build(settings)) as service:
        # serve listens (where `serving` waits) a moment before its leadership starts
        wait_for(lambda: service.leadership is not None and service.ops is not None)
        assert service.ops is not None and service.leadership is not None
        me = service.leadership.me
        with service.app.db.session() as session:
            long_ago = utcnow() - timedelta(minutes=5)
            cluster.heartbeat(session, "other-host:77", "other-host", 77, long_ago)
            session.get_one(ClusterInstance, "other-host:77").last_seen = long_ago
            cluster.start_run(session, "poll-graph", "other-host:77", 60, 6)
            cluster.record_detail(session, "poll-graph", {
                "source": "graph", "state": "ok", "line": "graph: ok, last poll 00:00"})
        url = f"http://127.0.0.1:{service.ops.port}/healthz?format=json"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            report = json.loads(response.read())
        with urllib.request.urlopen(url.split("?")[0], timeout=10) as response:
            assert response.read() == b"ok\n"  # the probe's answer stays as it was
        config = write_config(tmp_path / "config.yaml", settings)
        assert main(["--config", str(config), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert main(["--config", str(config), "status"]) == 0
        lines = capsys.readouterr().out.splitlines()
    assert report["status"] == "ok" and report["problems"] == [] and report["instance"] == me
    shared = report["cluster"]
    assert shared["inbox"]["queued"] == 0 and shared["quarantined"] == {"inbox": 0, "outbox": 0}
    assert shared["oldest_queued"] == {"inbox": None, "outbox": None}
    assert shared["leader"]["instance"] == me
    seen = {i["id"]: (i["leader"], i["stale"]) for i in shared["instances"]}
    assert seen == {me: (True, False), "other-host:77": (False, True)}
    assert status["cluster"]["leader"]["instance"] == me
    assert status["mailboxes"] == [{"source": "graph", "state": "ok",
                                    "line": "graph: ok, last poll 00:00"}]
    assert "mailbox: graph: ok, last poll 00:00" in lines
    assert any(line.startswith(f"leader: {me} runs the timed jobs since ") for line in lines)
    assert any(line.startswith(f"instance: {me} (leader), started ") for line in lines)
    assert any(line.startswith("instance: other-host:77, started ")
               and line.endswith("silent: not running?") for line in lines)
    assert any(line.startswith("job: poll-graph last ran ") for line in lines)


def test_job_settings_are_checked(make_settings: Callable[..., Settings]) -> None:
    from gateway.errors import ConfigError

    with pytest.raises(ConfigError, match=r"jobs.leader_lease_seconds"):
        make_settings(jobs={"leader_lease_seconds": 0})
    with pytest.raises(ConfigError, match=r"blobs.store"):
        make_settings(blobs={"store": "s3"})
    settings = make_settings()
    assert settings.jobs.leader_lease_seconds <= 30  # failover within a minute by default
    assert settings.blobs.store == "filesystem"


def test_healthz_fails_when_the_jobs_lease_lapsed_and_nobody_took_it(
    settings: Settings, db: Database
) -> None:
    from gateway import validity
    from gateway.opshttp import Health

    class Running:
        restarts = 0

        def alive(self) -> bool:
            return True

    health = Health(db, Running(), validity.Checks(settings), settings, "a:1")
    assert health.problems() == []  # no leader yet: an instance is about to take the lease
    with db.session() as session:
        cluster.hold_lease(session, cluster.JOBS_LEASE, "gone:9", 30)
    assert health.problems() == []  # led
    with db.session() as session:
        from storage.models import ClusterLease

        session.get_one(ClusterLease, cluster.JOBS_LEASE).expires_at = (
            utcnow() - timedelta(seconds=95))
    assert health.problems() == ["jobs: no leader for 95 s"]
