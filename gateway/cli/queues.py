"""`postdesk inbox list|retry` and `outbox list`: the mail waiting, done or quarantined on its
way in and out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from gateway.cli import command_database, command_settings
from gateway.cli.view import Clock, one_of
from gateway.errors import NotFoundError
from storage import spool
from storage.states import INBOX_STATES, OUTBOX_STATES
from storage.tickets import TicketStore

app = typer.Typer()
inbox = typer.Typer(no_args_is_help=True, help="Received mails: list, retry quarantined ones.")
outbox = typer.Typer(no_args_is_help=True, help="Outgoing mails waiting or sent.")
app.add_typer(inbox, name="inbox")
app.add_typer(outbox, name="outbox")


@inbox.command("list")
def inbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(INBOX_STATES))] = None,
) -> None:
    """List received mails (newest first) with their state and, if quarantined, why."""
    if state is not None:
        state = one_of(state, INBOX_STATES, "state")
    settings = command_settings()
    clock = Clock(settings.service.timezone)
    now = datetime.now(UTC)
    with command_database(settings).reading() as session:
        items = spool.list_inbox(session, state, with_mail=False)
        if not items:
            typer.echo(f"no {state + ' ' if state else ''}mails in the inbox")
        for item in items:
            reason = f"  [{item.stage}] {item.reason}" if item.reason else ""
            if item.state == "queued" and item.not_before is not None and item.not_before > now:
                # waiting out a temporary fault: its class (the reason's start), not its text
                fault = (item.reason or "").split(":", 1)[0]
                reason = f"  waiting until {clock(item.not_before)} ({fault}, retry {item.retries})"
            typer.echo(
                f"{item.id:>7} {item.state:<11} {item.source:<7} "
                f"{clock(item.received_at)} {item.size:>8}B "
                f"attempts={item.attempts}{reason}"
            )


@inbox.command("retry")
def inbox_retry(item_id: Annotated[int, typer.Argument(help="Inbox row id")]) -> None:
    """Put a quarantined mail back in the queue (after a fix)."""
    settings = command_settings()
    with command_database(settings).session() as session:
        if not spool.retry_inbox(session, item_id):
            raise NotFoundError(f"inbox row {item_id} does not exist or is not quarantined")
    typer.echo(f"inbox row {item_id} queued again")


@outbox.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(OUTBOX_STATES))] = None,
) -> None:
    """List outgoing mails (newest first): state, ticket, recipient, why delivery failed."""
    if state is not None:
        state = one_of(state, OUTBOX_STATES, "state")
    settings = command_settings()
    clock = Clock(settings.service.timezone)
    with command_database(settings).reading() as session:
        items = spool.list_outbox(session, state, with_mail=False)
        refs = TicketStore(session).refs(item.ticket_id for item in items)
        if not items:
            typer.echo(f"no {state + ' ' if state else ''}mails in the outbox")
        for item in items:
            error = f"  {item.last_error}" if item.last_error else ""
            ticket = refs.get(item.ticket_id, "-") if item.ticket_id is not None else "-"
            typer.echo(
                f"{item.id:>7} {item.state:<11} {clock(item.created_at)} {ticket:<12} "
                f"{item.kind:<24} {', '.join(item.envelope_to)} attempts={item.attempts}{error}"
            )
