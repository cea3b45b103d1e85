"""`postdesk tickets …`: list, show and export tickets, and the admin's actions on them
(assign, status, note) through gateway.pipeline.actions, the module the #commands of agents'
replies go through too. Every action and every export is an audit event, by `cli:USER`."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import command_database, command_settings, echo_json
from gateway.cli.view import Clock, detail_text, local_moment, size_text, ticket_status
from gateway.config import Settings
from gateway.errors import NotFoundError, PostdeskError
from gateway.lifecycle import clocks, tally
from gateway.lifecycle.clocks import Lifecycle
from gateway.pipeline import actions
from gateway.secrets import Keys, derive, load_secret
from storage.blobs import BlobMissing, open_store
from storage.models import Ticket, utcnow
from storage.retention import OriginalGone, original_mail
from storage.sealing import SealError
from storage.states import TICKET_STATUSES
from storage.tickets import (
    TicketFilter,
    TicketStore,
    next_due,
    ticket_attachments,
    ticket_detail,
    ticket_summary,
)

app = typer.Typer(no_args_is_help=True, help="List and show tickets.")


@app.command("list")
def tickets_list(
    status: Annotated[
        str | None, typer.Option(help="|".join(TICKET_STATUSES) + " (or offen, wartet, …)")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Only this agent's tickets; 'none': unassigned ones.")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(help="Text in the subject, a stored article or an attachment's text "
                     "(any case)."),
    ] = None,
    overdue: Annotated[
        bool, typer.Option("--overdue", help="Only tickets with an SLA clock past due.")
    ] = False,
    due_before: Annotated[
        str | None,
        typer.Option("--due-before", help="Only tickets with an SLA clock due before this "
                     "local time (YYYY-MM-DD or 'YYYY-MM-DD HH:MM')."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    show_all: Annotated[bool, typer.Option("--all", help="Show every match.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List tickets, newest first."""
    unassigned = owner is not None and owner.strip().lower() == "none"
    settings = command_settings()
    zone = settings.service.timezone
    filters = TicketFilter(
        due_before=local_moment(due_before, zone) if due_before is not None else None,
        overdue_at=utcnow() if overdue else None,
        status=ticket_status(status) if status is not None else None,
        queue=queue,
        owner=None if owner is None or unassigned else owner.strip().lower(),
        unassigned=unassigned,
        search=search or None,
    )
    with command_database(settings).reading() as session:
        store = TicketStore(session)
        tickets = store.list_tickets(filters, limit=None if show_all else limit)
        rows = [ticket_summary(t) for t in tickets]
        more = 0 if show_all or len(rows) < limit else store.count_tickets(filters) - len(rows)
        updated = [t.updated_at for t in tickets]
        dues = [next_due(t) for t in tickets]
    footer = f"{more} more — use --limit/--all" if more else ""
    if as_json:
        echo_json(rows)
        if footer:
            typer.echo(footer, err=True)  # stdout stays one JSON document
        return
    if not rows:
        typer.echo("no tickets" + (" match these filters" if filters.conditions() else " yet"))
        return
    clock = Clock(settings.service.timezone)
    typer.echo(
        f"{'REF':<12} {'STATUS':<9} {'QUEUE':<16} {'OWNER':<24} {'PRIO':<7} "
        f"{'DUE':<16} {'UPDATED':<16}  SUBJECT"
    )
    for row, moment, due in zip(rows, updated, dues, strict=True):
        typer.echo(
            f"{row['ref']:<12} {row['status']:<9} {row['queue'] or '-':<16} "
            f"{row['owner'] or '-':<24} {row['priority']:<7} {clock(due):<16} "
            f"{clock(moment)}  {row['subject']}"
        )
    if footer:
        typer.echo(footer)


@app.command("show")
def tickets_show(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show one ticket: its articles, numbered attachments and what happened to it (events)."""
    settings = command_settings()
    clock = Clock(settings.service.timezone)
    with command_database(settings).reading() as session:
        store = TicketStore(session)
        ticket = store.with_articles(ref)
        if ticket is None:
            raise NotFoundError(f"no ticket {ref}")
        events = store.events(ticket)
        data = ticket_detail(ticket, events)
        article_times = [clock(a.created_at) for a in ticket.articles]
        event_times = [clock(e.created_at) for e in events]
        created, updated = clock(ticket.created_at), clock(ticket.updated_at)
        dues = [(name, clock(getattr(ticket, f"{clock_name}_due_at")))
                for name, clock_name in (("first response", "first_response"),
                                         ("next update", "update"), ("solution", "solution"))]
        outcome = dict(ticket.sla_outcome or {})
    if as_json:
        echo_json(data)
        return
    typer.echo(f"{data['ref']}  {data['subject']}")
    typer.echo(
        f"status {data['status']}  queue {data['queue'] or '-'}  owner "
        f"{data['owner'] or '-'}  priority {data['priority']}  requester {data['requester']}"
    )
    typer.echo(f"created {created}  updated {updated}")
    typer.echo("due     " + "  ".join(f"{name} {moment}" for name, moment in dues)
               + ("  (" + detail_text(outcome) + ")" if outcome else ""))
    number = 0
    for index, (article, moment) in enumerate(zip(data["articles"], article_times, strict=True)):
        typer.echo(
            f"\n--- article {index + 1}  {moment}  {article['kind']} {article['direction']}  "
            f"{article['from']}"
        )
        typer.echo(article["body"].rstrip())
        for attachment in article["attachments"]:
            number += 1
            typer.echo(
                f"[attachment {number}] {attachment['filename']} ({attachment['content_type']}, "
                f"{size_text(attachment['size'])}){_text_note(attachment['text_state'])}"
            )
            if attachment["text"]:
                typer.echo(_indented(attachment["text"]))
    typer.echo("\n--- events")
    for event, moment in zip(data["events"], event_times, strict=True):
        detail = detail_text(event["detail"])
        typer.echo(f"{moment}  {event['kind']:<22} {event['actor']}  {detail}")
    if not data["events"]:
        typer.echo("none")


def _text_note(state: str) -> str:
    """What `tickets show` says of an attachment's text besides printing it."""
    if state == "unreadable":
        return "  text: unreadable (encrypted, broken or over the caps)"
    return ""


def _indented(text: str) -> str:
    """An attachment's (redacted) text below its line, set off from the article's body."""
    return "\n".join("    | " + line for line in text.rstrip().splitlines())


@app.command("attachment")
def tickets_attachment(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    number: Annotated[int, typer.Argument(help="Attachment number as listed by `tickets show`")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write one attachment out, byte-exact (audited, like `tickets original`)."""
    if output is None and sys.stdout.isatty():
        raise PostdeskError("an attachment is binary: give -o FILE or redirect the output")
    settings = command_settings()
    db = command_database(settings)
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.with_articles(ref)
        if ticket is None:
            raise NotFoundError(f"no ticket {ref}")
        attachments = ticket_attachments(ticket)
        if not 1 <= number <= len(attachments):
            raise NotFoundError(f"{ticket.ref} has {len(attachments)} attachment(s), no {number}")
        attachment = attachments[number - 1]
        try:
            keys = Keys.load(settings)
            blobs = open_store(settings.blobs.store, settings.data_dir / "blobs", db,
                               keys.sealer, keys.blob_address)
            data = blobs.bound(session).get(attachment.address)
        except SealError:
            raise PostdeskError(f"{ticket.ref} attachment {number}: the stored file cannot be "
                                "decrypted with this server secret (was it changed?)") from None
        except BlobMissing:
            raise NotFoundError(
                f"{ticket.ref} attachment {number}: stored file {attachment.sha256[:12]}… missing"
            ) from None
        if output is not None:
            output.write_bytes(data)
        store.add_event(
            ticket,
            actor=_actor(),
            kind="attachment-exported",
            now=utcnow(),
            attachment=number,
            sha256=attachment.sha256,
        )
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        typer.echo(f"{ticket.ref} attachment {number} written to {output} ({len(data)} bytes)")


@app.command("original")
def tickets_original(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    number: Annotated[int, typer.Argument(help="Article number as listed by `tickets show`")],
) -> None:
    """Print an article's original, unredacted mail (within the retention period); audited."""
    settings = command_settings()
    load_secret(settings)  # a clear error if the secret is missing
    with command_database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        try:
            raw = original_mail(session, ref, number)
        except (OriginalGone, SealError) as exc:
            days = settings.redaction.raw_retention_days
            raise NotFoundError(f"{exc} (originals are kept {days} days)") from None
        if raw is None:
            raise NotFoundError(f"{ticket.ref} has no article {number}")
        store.add_event(
            ticket,
            actor=_actor(),
            kind="original-viewed",  # as gateway.pipeline.disclosure writes it
            now=utcnow(),
            article=number,
            way="cli",
        )
    sys.stdout.buffer.write(raw)
    sys.stdout.flush()


@app.command("assign")
def tickets_assign(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    agent: Annotated[str, typer.Argument(help="Agent address, or 'none' to unassign")],
) -> None:
    """Assign a ticket to an agent (audited; the agent is notified by mail)."""
    settings = command_settings()
    owner = None if agent.lower() == "none" else agent.lower()
    if owner is not None and settings.agent(owner) is None:
        raise PostdeskError(f"{agent} is not an agent (see `agents:` in the config)")
    done = _act(settings, ref, actions.assign, owner)
    typer.echo(f"{done} assigned to {owner or 'nobody'}")


@app.command("status")
def tickets_status(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    status: Annotated[
        str, typer.Argument(help="|".join(TICKET_STATUSES) + " (or offen, wartet, erledigt, …)")
    ],
) -> None:
    """Set a ticket's status (audited)."""
    status = ticket_status(status)
    settings = command_settings()
    done = _act(settings, ref, actions.set_status, status)
    typer.echo(f"{done} is {status}")


def _act(settings: Settings, ref: str, action: Callable[..., actions.Notify],
         value: str | None) -> str:
    """Carry out one ticket action as the user at the terminal, in one transaction with the
    mails it calls for; the ticket's reference comes back."""
    with command_database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        now = utcnow()
        before = tally.snapshot(ticket)
        notify = action(store, ticket, value, actor=_actor(), now=now)
        lifecycle = Lifecycle.load(settings)
        clocks.refresh(lifecycle, ticket, now)  # pause, resume or stop clocks
        tally.keep(session, lifecycle, ticket, before)  # the report's figures
        _queue_mails(settings, store, ticket, notify, now)
        return ticket.ref


@app.command("note")
def tickets_note(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    text: Annotated[str, typer.Option("--text", help="The note (internal, never sent)")],
) -> None:
    """Add an internal note to a ticket (audited, not sent to anyone); personal data in it is
    replaced by the ticket's placeholders first, as in every stored mail."""
    # Presidio and spaCy: seconds to import, only for this command
    from gateway.pipeline.prepare import shared_redactor
    from gateway.pipeline.redact import redact_note

    settings = command_settings()
    keys = Keys.load(settings)
    with command_database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        now = utcnow()
        body, counts = redact_note(settings, shared_redactor(settings), keys.pseudonym, ticket,
                                   text, keys.previous_pseudonym)
        actions.add_note(store, ticket, body, actor=_actor(), now=now, redactions=counts)
        typer.echo(f"note added to {ticket.ref}")


def _ticket(store: TicketStore, ref: str) -> Ticket:
    """The ticket named on the command line, or a one-line error."""
    ticket = store.by_ref(ref)
    if ticket is None:
        raise NotFoundError(f"no ticket {ref}")
    return ticket


def _actor() -> str:
    """Who the audit events name: the operating-system user at the terminal."""
    return f"cli:{getpass.getuser()}"


def _queue_mails(
    settings: Settings, store: TicketStore, ticket: Ticket, notify: actions.Notify, now: datetime
) -> None:
    """Queue the mails an action calls for, as far as the CLI sends them: the new owner is
    told; the requester is not (an admin's change at the terminal mails agents only)."""
    if notify.owner is None:
        return
    # Jinja2 and the templates: a cost the other `tickets` commands need not pay
    from gateway.outgoing.letters import Letters, Renderer

    proof_key = derive(load_secret(settings), "agent-proof")
    letters = Letters(settings, Renderer.from_settings(settings), store, proof_key=proof_key)
    letters.agent_notification(ticket, notify.owner, reason="assigned", text="", now=now)
