"""`postdesk report`: the figures for heads of unit (gateway.reports) as HTML, CSV or JSON,
from the statistics rows (so a report of a past period stays the same after its tickets are
deleted); `postdesk report rebuild` writes the rows of existing tickets afresh (after the
upgrade to migration 0012, or as a repair)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import command_database, command_settings
from gateway.errors import ConfigError

app = typer.Typer(invoke_without_command=True,
                  help="Reports: tickets in/out, response and resolution times, SLA, backlog.")


@app.callback()
def report(
    ctx: typer.Context,
    first: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD "
                                                "(default: 52 weeks before --to).")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD "
                                               "(default: today).")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="One queue only.")] = None,
    form: Annotated[str, typer.Option("--format", help="html | csv | json")] = "html",
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Write to FILE (default: stdout).")] = None,
) -> None:
    """Reports: tickets in/out, response and resolution times, SLA, backlog."""
    if ctx.invoked_subcommand is not None:
        return
    from gateway.reports import build
    from gateway.reports import output as out

    if form not in out.FORMATS:
        raise ConfigError(f"--format: {form!r} is not one of {', '.join(out.FORMATS)}")
    settings = command_settings()
    now = datetime.now(UTC)
    span = build.period(settings, first, last, queue, today=build.today_in(settings, now))
    result = build.make(command_database(settings), span)
    if form == "json":
        text = out.as_json(result)
    elif form == "csv":
        text = out.as_csv(result)
    else:
        text = out.as_html(result, settings, made_at=now).html
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"report written: {output}", err=True)


@app.command("rebuild")
def rebuild(
    missing: Annotated[bool, typer.Option("--missing", help="Only tickets without a row.")]
    = False,
) -> None:
    """Write every existing ticket's statistics row afresh (after an upgrade, or a repair)."""
    from gateway.lifecycle.clocks import Lifecycle
    from gateway.lifecycle.tally import rebuild as rebuild_rows

    settings = command_settings()
    db = command_database(settings)
    with db.session() as session:
        count = rebuild_rows(session, Lifecycle.load(settings), only_missing=missing)
    typer.echo(f"statistics rows written: {count}")
