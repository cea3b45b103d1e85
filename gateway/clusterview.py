"""What every instance on the database shares, read from the database (not from this host's
files): queue depths, the oldest queued mail, quarantined mails, which instance leads the timed
jobs, the heartbeat of every instance, the last run of each leader-only job. `postdesk status`
and `/healthz?format=json` show it; plain JSON values, nothing of any mail."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.intake import health
from storage import cluster, spool


def mailbox_health(session: Session | None, data_dir: Path) -> list[dict[str, Any]]:
    """The last poll of each mailbox: as the leader that polled it recorded it in the database
    (whichever instance that was), else from this host's health files; by source."""
    found = {box["source"]: box for box in health.read_all(data_dir)}
    if session is not None:
        for run in cluster.job_runs(session):
            if run.name.startswith("poll-") and run.detail.get("source"):
                found[run.detail["source"]] = run.detail
    return [found[source] for source in sorted(found)]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def oldest_queued(session: Session, now: datetime) -> dict[str, Any]:
    """When the oldest queued inbox and outbox rows came, and how many seconds ago."""
    inbox, outbox = spool.oldest_by_state(session)
    found = {"inbox": inbox.get("queued"), "outbox": outbox.get("queued")}
    return {
        box: {"at": _iso(at), "age_seconds": round((now - at).total_seconds(), 1)}
        if at is not None else None
        for box, at in found.items()
    }


def cluster_state(session: Session, settings: Settings) -> dict[str, Any]:
    """The leader of the timed jobs, the instances with their last heartbeat, the jobs' last
    runs. An instance not seen for a whole lease is `stale` (killed, or cut off)."""
    now = cluster.database_now(session)
    lease = cluster.read_lease(session, cluster.JOBS_LEASE)
    leading = lease.holder is not None and lease.expires_at is not None and lease.expires_at > now
    stale_after = timedelta(seconds=settings.jobs.leader_lease_seconds)
    instances = [
        {
            "id": row.id,
            "host": row.host,
            "pid": row.pid,
            "started_at": _iso(row.started_at),
            "last_seen": _iso(row.last_seen),
            "seen_seconds_ago": round(max(0.0, (now - row.last_seen).total_seconds()), 1),
            "leader": leading and row.id == lease.holder,
            "stale": now - row.last_seen > stale_after,
        }
        for row in cluster.instances(session)
    ]
    return {
        "leader": {
            "instance": lease.holder,
            "since": _iso(lease.acquired_at),
            "lease_expires_at": _iso(lease.expires_at),
        } if leading else None,
        "instances": instances,
        "jobs": [
            {"name": run.name, "last_run_at": _iso(run.last_run_at), "instance": run.instance}
            for run in cluster.job_runs(session)
        ],
    }


def cluster_lines(value: dict[str, Any], settings: Settings) -> list[str]:
    """The cluster as `status` prints it: nothing while no `serve` ever ran on the database."""
    if not value["instances"] and not value["jobs"] and value["leader"] is None:
        return []
    zone = ZoneInfo(settings.service.timezone)

    def local(at: str | None) -> str:
        return f"{datetime.fromisoformat(at).astimezone(zone):%Y-%m-%d %H:%M:%S}" if at else "-"

    leader = value["leader"]
    lines = [
        f"leader: {leader['instance']} runs the timed jobs since {local(leader['since'])}"
        if leader is not None else "leader: none (no instance holds the jobs lease)"
    ]
    for instance in value["instances"]:
        role = " (leader)" if instance["leader"] else ""
        gone = ", silent: not running?" if instance["stale"] else ""
        lines.append(
            f"instance: {instance['id']}{role}, started {local(instance['started_at'])}, "
            f"last seen {instance['seen_seconds_ago']:g} s ago{gone}"
        )
    for job in value["jobs"]:
        lines.append(f"job: {job['name']} last ran {local(job['last_run_at'])} "
                     f"on {job['instance']}")
    return lines


def oldest_lines(value: dict[str, Any], _settings: Settings) -> list[str]:
    """One line while something is queued: how long the oldest has waited."""
    waiting = [f"{box} {found['age_seconds']:g} s" for box, found in value.items() if found]
    return [f"oldest queued: {', '.join(waiting)}"] if waiting else []


def overview(session: Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Everything above plus the queue depths and quarantined mails, in one object."""
    inbox, outbox = spool.queue_depths(session)
    return {
        "inbox": {state: inbox.get(state, 0) for state in spool.INBOX_STATES},
        "outbox": {state: outbox.get(state, 0) for state in spool.OUTBOX_STATES},
        "quarantined": {"inbox": inbox.get("quarantined", 0),
                        "outbox": outbox.get("quarantined", 0)},
        "oldest_queued": oldest_queued(session, now),
        **cluster_state(session, settings),
    }
