"""`postdesk audit`: the audit trail over all tickets (storage.audit) for the data-protection
officer — who saw which original, who exported or changed what — as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from gateway.cli import command_database, command_settings, echo_json
from gateway.cli.view import Clock, detail_text
from gateway.errors import NotFoundError, PostdeskError
from storage.audit import AuditFilter, AuditRow, audit_events, count_events, known_kinds
from storage.tickets import TicketStore

app = typer.Typer()


@app.command()
def audit(
    ticket: Annotated[str | None, typer.Option(help="Only this ticket's events.")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Only events by this actor (an agent's address, cli:USER, "
                                 "system, rules; any case).")
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Only events of this kind (repeatable), e.g. original-viewed."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time on: YYYY-MM-DD or 'YYYY-MM-DD HH:MM' "
                                 "(service time zone).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this time; a date alone includes that day.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (a list).")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV output (detail as JSON).")] = False,
) -> None:
    """The audit trail: who saw which original, who changed what (newest first)."""
    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both")
    settings = command_settings()
    zone = ZoneInfo(settings.service.timezone)
    start = _moment(since, zone, "--since", end_of_day=False)
    end = _moment(until, zone, "--until", end_of_day=True)
    with command_database(settings).reading() as session:
        ticket_id = None
        if ticket is not None:
            found = TicketStore(session).by_ref(ticket.strip())
            if found is None:
                raise NotFoundError(f"no ticket {ticket.strip().upper()}")
            ticket_id = found.id
        kinds = [k.strip().lower() for k in kind or []]
        allowed = known_kinds(session)
        unknown = [k for k in kinds if k not in allowed]
        if unknown:
            raise PostdeskError(f"unknown kind {unknown[0]!r}; use one of {', '.join(allowed)}")
        filters = AuditFilter(ticket_id=ticket_id, actor=actor and actor.strip(), kinds=kinds,
                              since=start, until=end)
        rows = audit_events(session, filters, limit=limit)
        more = count_events(session, filters) - len(rows) if len(rows) == limit else 0
    footer = f"{more} more — use --limit or narrow the filters" if more else ""
    if as_json:
        echo_json([row.as_json() for row in rows])
    elif as_csv:
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(["id", "created_at", "ticket", "actor", "kind", "detail"])
        for row in rows:
            out.writerow([row.id, row.created_at.isoformat(), row.ticket or "", row.actor,
                          row.kind, json.dumps(row.detail, ensure_ascii=False, sort_keys=True)])
        sys.stdout.flush()
    else:
        _table(rows, Clock(settings.service.timezone), bool(filters.conditions()))
    if footer:
        typer.echo(footer, err=as_json or as_csv)  # stdout stays one document


def _table(rows: list[AuditRow], clock: Clock, filtered: bool) -> None:
    if not rows:
        typer.echo("no events" + (" match these filters" if filtered else " yet"))
        return
    typer.echo(f"{'TIME':<16}  {'TICKET':<12} {'KIND':<22} {'ACTOR':<28} DETAIL")
    for row in rows:
        typer.echo(f"{clock(row.created_at)}  {row.ticket or '-':<12} {row.kind:<22} "
                   f"{row.actor:<28} {detail_text(row.detail)}")


def _moment(value: str | None, zone: ZoneInfo, option: str, *, end_of_day: bool
            ) -> datetime | None:
    """A --since/--until value in the service's zone, as UTC; a date alone is its midnight
    (for --until the next one, so the day is included)."""
    if value is None:
        return None
    text = value.strip()
    for form, whole_day in (("%Y-%m-%d", True), ("%Y-%m-%d %H:%M", False),
                            ("%Y-%m-%dT%H:%M", False)):
        try:
            moment = datetime.strptime(text, form)
        except ValueError:
            continue
        if whole_day and end_of_day:
            moment += timedelta(days=1)
        return moment.replace(tzinfo=zone).astimezone(UTC)
    raise PostdeskError(f"{option}: expected YYYY-MM-DD or 'YYYY-MM-DD HH:MM', not {value!r}")
