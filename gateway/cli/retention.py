"""`postdesk retention plan|run|records`: the deletion periods of the queue policies
(gateway.lifecycle.retention). `plan` shows what the next run would delete and changes
nothing; `run` deletes (the timed job `deletion` does the same); `records` lists the deletion
records, the proof for an auditor (ref, queue, rule, counts: no content, no address)."""

from __future__ import annotations

import csv
import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gateway.cli import command_settings, echo_json
from gateway.cli.view import Clock
from gateway.errors import PostdeskError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.secrets import Keys
    from storage.blobs import Blobs
    from storage.engine import Database

app = typer.Typer(no_args_is_help=True,
                  help="Deletion periods: what is due, delete it, the deletion records.")

PLAN_KINDS = ("articles", "attachments", "originals", "outbox", "events")


def open_parts(settings: Settings) -> tuple[Database, Keys, Blobs]:
    """The database (opening sealed rows), the keys and the blob store; the server secret
    must be there (a deletion never makes a new one)."""
    from gateway.app import open_blobs
    from gateway.secrets import Keys
    from storage.engine import open_database

    keys = Keys.load(settings)
    db = open_database(settings.database.url, keys.sealer)
    return db, keys, open_blobs(settings, db, keys)


def cli_actor() -> str:
    """Who the records and events name: the operating-system user at the terminal."""
    return f"cli:{getpass.getuser()}"


@app.command("plan")
def retention_plan(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """What the next deletion run would delete, per queue and rule (a dry run)."""
    from gateway.lifecycle.policy import load_policies
    from gateway.lifecycle.retention import plan

    settings = command_settings()
    policies = load_policies(settings)
    db, _keys, _blobs = open_parts(settings)
    lines = plan(db, policies, datetime.now(UTC))
    if as_json:
        echo_json([line.as_dict() for line in lines])
        return
    if not lines:
        typer.echo("no tickets")
        return
    clock = Clock(settings.service.timezone)
    typer.echo(f"{'queue':<16} {'rule':<12} {'trigger':<14} {'period':<10} {'before':<16} "
               f"{'tickets':>7} " + " ".join(f"{kind:>11}" for kind in PLAN_KINDS))
    for line in lines:
        typer.echo(f"{line.queue or '-':<16} {line.rule:<12} {line.trigger:<14} "
                   f"{line.period:<10} {clock(line.cutoff):<16} {line.tickets:>7} "
                   + " ".join(f"{line.counts[kind]:>11}" for kind in PLAN_KINDS))
    total = sum(line.tickets for line in lines)
    typer.echo(f"{total} ticket(s) due for deletion" if total else "nothing is due")


@app.command("run")
def retention_run(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Delete every ticket whose deletion period is over (as the timed job does)."""
    from gateway.lifecycle.policy import load_policies
    from gateway.lifecycle.retention import run

    settings = command_settings()
    policies = load_policies(settings)
    db, _keys, blobs = open_parts(settings)
    report = run(db, blobs, policies, datetime.now(UTC), actor=cli_actor())
    counts = {kind: n for kind, n in sorted(report.counts.items()) if n}
    if as_json:
        echo_json({"tickets": report.refs, "counts": counts})
        return
    if not report.tickets:
        typer.echo("nothing was due")
        return
    typer.echo(f"deleted {report.tickets} ticket(s): {', '.join(report.refs)}")
    typer.echo("  " + ", ".join(f"{kind}: {n}" for kind, n in counts.items()))


RECORD_FIELDS = ("deleted_at", "ticket", "queue", "cause", "rule", "trigger", "period",
                 "actor", "counts")


@app.command("records")
def retention_records(
    since: Annotated[str | None, typer.Option(help="From this day on (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV output.")] = False,
) -> None:
    """The deletion records, oldest first: which ticket went when, why, and how much."""
    from gateway.cli import command_database
    from storage.deletion import deletion_records

    if as_json and as_csv:
        raise PostdeskError("give --json or --csv, not both")
    start = _day(since) if since is not None else None
    settings = command_settings()
    clock = Clock(settings.service.timezone)
    with command_database(settings).reading() as session:
        rows: list[dict[str, Any]] = [
            {"deleted_at": r.deleted_at.isoformat(), "ticket": r.ticket_ref, "queue": r.queue,
             "cause": r.cause, "rule": r.rule, "trigger": r.trigger, "period": r.period,
             "actor": r.actor, "counts": dict(r.counts or {})}
            for r in deletion_records(session, start)]
    if as_json:
        echo_json(rows)
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            counts = " ".join(f"{k}={v}" for k, v in row["counts"].items())
            writer.writerow({**row, "counts": counts})
    elif not rows:
        typer.echo("no deletion records")
    else:
        for row in rows:
            counts = " ".join(f"{k}={v}" for k, v in row["counts"].items())
            when = clock(datetime.fromisoformat(row["deleted_at"]))
            typer.echo(f"{when}  {row['ticket']:<12} {row['queue'] or '-':<14} "
                       f"{row['cause']:<13} {row['rule']:<10} {row['trigger']:<13} "
                       f"{row['period'] or '-':<10} {row['actor']}  {counts}")


def _day(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise PostdeskError(f"--since: expected a day such as 2026-01-31, got {value!r}") from None
