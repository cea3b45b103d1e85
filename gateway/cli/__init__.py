"""The `postdesk` command line: thin commands over the App; errors become one line and an exit
code (0 ok, 1 user error, 2 usage error).

Start-up time matters to a person at a terminal: this module imports only typer and light
modules at the top; the database, the config model and everything heavy (Presidio, Exchange,
Graph, the SMTP server) are imported inside the commands that use them.
"""

from __future__ import annotations

import gc
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.exceptions import TyperException

from gateway import logs
from gateway.errors import NotFoundError, PostdeskError
from storage.states import INBOX_STATES, OUTBOX_STATES, TICKET_STATUSES

if TYPE_CHECKING:
    from gateway.config import Settings
    from storage.engine import Database
    from storage.models import Ticket
    from storage.tickets import TicketStore

cli = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="postdesk: email-gateway ticketing for service desks.",
)
tickets_cli = typer.Typer(no_args_is_help=True, help="List and show tickets.")
inbox_cli = typer.Typer(no_args_is_help=True, help="Received mails: list, retry quarantined ones.")
outbox_cli = typer.Typer(no_args_is_help=True, help="Outgoing mails waiting or sent.")
cli.add_typer(tickets_cli, name="tickets")
cli.add_typer(inbox_cli, name="inbox")
cli.add_typer(outbox_cli, name="outbox")
exchange_cli = typer.Typer(no_args_is_help=True, help="Exchange Server mailbox (EWS).")
graph_cli = typer.Typer(no_args_is_help=True, help="Exchange Online mailbox (Microsoft Graph).")
cli.add_typer(exchange_cli, name="exchange")
cli.add_typer(graph_cli, name="graph")
rules_cli = typer.Typer(no_args_is_help=True, help="Check routing rules and dry-run them on mails.")
cli.add_typer(rules_cli, name="rules")

_config_path: list[Path] = []
_verbose: list[bool] = []


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"postdesk {version('postdesk')}")
        raise typer.Exit()


@cli.callback()
def _options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default ./config.yaml, else $POSTDESK_CONFIG)."
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show INFO log lines (serve always does).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                     is_eager=True),
    ] = False,
) -> None:
    _config_path[:] = [config] if config else []
    _verbose[:] = [verbose]


def _settings(*, serving: bool = False) -> Settings:
    """The config; a command other than `serve` logs only warnings and errors unless -v (its
    child processes too: they take the level from these settings)."""
    from gateway.config import default_config_path, load_settings

    settings = load_settings(_config_path[0] if _config_path else default_config_path())
    level = settings.log_level
    if not serving and level in ("DEBUG", "INFO"):
        level = level if any(_verbose) else "WARNING"
    elif not serving and any(_verbose):
        level = "INFO"
    if level != settings.log_level:
        settings = settings.model_copy(update={"log_level": level})
    logs.setup(settings.log_level)
    return settings


def _database(settings: Settings) -> Database:
    from gateway.errors import ConfigError
    from gateway.secrets import fernet_key, load_secret
    from storage.engine import open_database
    from storage.sealing import Sealer

    try:  # stored mail is encrypted; without a secret yet, only plain rows can be read
        sealer = Sealer(fernet_key(load_secret(settings)))
    except ConfigError:
        sealer = Sealer(None)
    return open_database(settings.database.url, sealer)


def _ticket(store: TicketStore, ref: str) -> Ticket:
    """The ticket named on the command line, or a one-line error."""
    ticket = store.by_ref(ref)
    if ticket is None:
        raise NotFoundError(f"no ticket {ref}")
    return ticket


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@cli.command()
def init(
    site: Annotated[
        Path | None,
        typer.Option(
            "--site",
            help="Create a new site in this folder: config.yaml, rules/ and templates/ from the "
            "package, then its secret key and database. Never overwrites.",
        ),
    ] = None,
) -> None:
    """Create or upgrade the database and the data folder (or, with --site, a whole site)."""
    from gateway import sitesetup
    from gateway.app import App

    if site is not None:
        config = sitesetup.scaffold(site)
        _config_path[:] = [config]
        typer.echo(f"site created: {config}, {site / 'rules'}, {site / 'templates'}")
    settings = _settings()
    _checked_templates(settings)  # a broken template fails init with its file:line
    app = App.build(settings)
    app.init_database()
    if site is not None and settings.secrets.key_file.is_file():
        typer.echo(f"secret key: {settings.secrets.key_file} (set {settings.secrets.key_env} "
                   "in production instead)")
    for line in sitesetup.tighten_private_paths(settings):
        typer.echo(line)
    typer.echo(f"database ready: {app.db.engine.url.render_as_string(hide_password=True)}")
    if site is not None:
        typer.echo(f"next: adapt {config}, then: postdesk --config {config} serve")


@cli.command()
def serve() -> None:
    """Run the SMTP listener, the worker and the scheduler until stopped."""
    from gateway.app import App
    from gateway.serve import serve as run

    gc.enable()  # a long run: collect garbage as Python normally does (see `console`)

    run(App.build(_settings(serving=True)))


@cli.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help=".eml or .mbox files, maildirs, folders")],
    process: Annotated[bool, typer.Option(help="Run the pipeline right away.")] = True,
) -> None:
    """Take mails from files into the inbox (idempotent), then process them."""
    from gateway.app import App
    from gateway.intake.files import import_paths

    gc.enable()  # an mbox may hold thousands of mails (see `console`)

    app = App.build(_settings())
    app.init_database()
    report = import_paths(app.db, paths)
    for error in report.errors:
        typer.echo(f"error: {error}", err=True)
    processed = len(app.worker.drain()) if process else 0
    typer.echo(
        f"imported {report.added} new, {report.already_present} already present, "
        f"{len(report.errors)} errors, {processed} processed"
    )
    if report.errors and not report.added and not report.already_present:
        raise typer.Exit(1)


@tickets_cli.command("list")
def tickets_list(
    status: Annotated[
        str | None, typer.Option(help="|".join(TICKET_STATUSES) + " (or offen, wartet, …)")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    owner: Annotated[
        str | None, typer.Option(help="Only this agent's tickets; 'none': unassigned ones.")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Text in the subject or a stored article (any case).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 50,
    show_all: Annotated[bool, typer.Option("--all", help="Show every match.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List tickets, newest first."""
    from gateway.cli.view import Clock, ticket_status
    from storage.tickets import TicketFilter, TicketStore, ticket_summary

    unassigned = owner is not None and owner.strip().lower() == "none"
    filters = TicketFilter(
        status=ticket_status(status) if status is not None else None,
        queue=queue,
        owner=None if owner is None or unassigned else owner.strip().lower(),
        unassigned=unassigned,
        search=search or None,
    )
    settings = _settings()
    with _database(settings).reading() as session:
        store = TicketStore(session)
        tickets = store.list_tickets(filters, limit=None if show_all else limit)
        rows = [ticket_summary(t) for t in tickets]
        more = 0 if show_all or len(rows) < limit else store.count_tickets(filters) - len(rows)
        updated = [t.updated_at for t in tickets]
    footer = f"{more} more — use --limit/--all" if more else ""
    if as_json:
        _echo_json(rows)
        if footer:
            typer.echo(footer, err=True)  # stdout stays one JSON document
        return
    if not rows:
        typer.echo("no tickets" + (" match these filters" if filters.conditions() else " yet"))
        return
    clock = Clock(settings.service.timezone)
    typer.echo(
        f"{'REF':<12} {'STATUS':<9} {'QUEUE':<16} {'OWNER':<24} {'PRIO':<7} "
        f"{'UPDATED':<16}  SUBJECT"
    )
    for row, moment in zip(rows, updated, strict=True):
        typer.echo(
            f"{row['ref']:<12} {row['status']:<9} {row['queue'] or '-':<16} "
            f"{row['owner'] or '-':<24} {row['priority']:<7} {clock(moment)}  {row['subject']}"
        )
    if footer:
        typer.echo(footer)


@tickets_cli.command("show")
def tickets_show(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show one ticket: its articles, numbered attachments and what happened to it (events)."""
    from gateway.cli.view import Clock, detail_text, size_text
    from storage.tickets import TicketStore, ticket_detail

    settings = _settings()
    clock = Clock(settings.service.timezone)
    with _database(settings).reading() as session:
        store = TicketStore(session)
        ticket = store.with_articles(ref)
        if ticket is None:
            raise NotFoundError(f"no ticket {ref}")
        events = store.events(ticket)
        data = ticket_detail(ticket, events)
        article_times = [clock(a.created_at) for a in ticket.articles]
        event_times = [clock(e.created_at) for e in events]
        created, updated = clock(ticket.created_at), clock(ticket.updated_at)
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"{data['ref']}  {data['subject']}")
    typer.echo(
        f"status {data['status']}  queue {data['queue'] or '-'}  owner "
        f"{data['owner'] or '-'}  priority {data['priority']}  requester {data['requester']}"
    )
    typer.echo(f"created {created}  updated {updated}")
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
                f"{size_text(attachment['size'])})"
            )
    typer.echo("\n--- events")
    for event, moment in zip(data["events"], event_times, strict=True):
        detail = detail_text(event["detail"])
        typer.echo(f"{moment}  {event['kind']:<22} {event['actor']}  {detail}")
    if not data["events"]:
        typer.echo("none")


@tickets_cli.command("attachment")
def tickets_attachment(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    number: Annotated[int, typer.Argument(help="Attachment number as listed by `tickets show`")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
) -> None:
    """Write one attachment out, byte-exact (audited, like `tickets original`)."""
    from storage.blobs import BlobStore
    from storage.models import utcnow
    from storage.tickets import TicketStore, ticket_attachments

    if output is None and sys.stdout.isatty():
        raise PostdeskError("an attachment is binary: give -o FILE or redirect the output")
    settings = _settings()
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = store.with_articles(ref)
        if ticket is None:
            raise NotFoundError(f"no ticket {ref}")
        attachments = ticket_attachments(ticket)
        if not 1 <= number <= len(attachments):
            raise NotFoundError(f"{ticket.ref} has {len(attachments)} attachment(s), no {number}")
        attachment = attachments[number - 1]
        try:
            data = BlobStore(settings.data_dir / "blobs").get(attachment.sha256)
        except FileNotFoundError:
            raise NotFoundError(
                f"{ticket.ref} attachment {number}: stored file {attachment.sha256[:12]}… missing"
            ) from None
        if output is not None:
            output.write_bytes(data)
        store.add_event(
            ticket,
            actor=_cli_actor(),
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


@tickets_cli.command("original")
def tickets_original(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    number: Annotated[int, typer.Argument(help="Article number as listed by `tickets show`")],
) -> None:
    """Print an article's original, unredacted mail (within the retention period); audited."""
    import getpass

    from gateway.secrets import load_secret
    from storage import sealing
    from storage.models import utcnow
    from storage.retention import OriginalGone, original_mail
    from storage.tickets import TicketStore

    settings = _settings()
    load_secret(settings)  # a clear error if the secret is missing
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        try:
            raw = original_mail(session, ref, number)
        except (OriginalGone, sealing.SealError) as exc:
            days = settings.redaction.raw_retention_days
            raise NotFoundError(f"{exc} (originals are kept {days} days)") from None
        if raw is None:
            raise NotFoundError(f"{ticket.ref} has no article {number}")
        store.add_event(
            ticket,
            actor=f"cli:{getpass.getuser()}",
            kind="original-viewed",
            now=utcnow(),
            article=number,
        )
    sys.stdout.buffer.write(raw)
    sys.stdout.flush()


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@tickets_cli.command("assign")
def tickets_assign(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    agent: Annotated[str, typer.Argument(help="Agent address, or 'none' to unassign")],
) -> None:
    """Assign a ticket to an agent (audited; the agent is notified by mail)."""
    from gateway.outgoing.letters import Letters
    from gateway.outgoing.render import Renderer
    from gateway.secrets import derive, load_secret
    from storage.models import utcnow
    from storage.tickets import TicketStore

    settings = _settings()
    owner = None if agent.lower() == "none" else agent.lower()
    if owner is not None and settings.agent(owner) is None:
        raise PostdeskError(f"{agent} is not an agent (see `agents:` in the config)")
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        now = utcnow()
        if ticket.owner != owner:
            store.add_event(
                ticket, actor=_cli_actor(), kind="assigned", now=now, old=ticket.owner, new=owner
            )
            ticket.owner, ticket.updated_at = owner, now
            if owner is not None:
                store.add_participant(ticket, owner, "agent")
                letters = Letters(settings, Renderer.from_settings(settings), store,
                                  proof_key=derive(load_secret(settings), "agent-proof"))
                letters.agent_notification(ticket, owner, reason="assigned", text="", now=now)
        typer.echo(f"{ticket.ref} assigned to {owner or 'nobody'}")


@tickets_cli.command("status")
def tickets_status(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    status: Annotated[
        str, typer.Argument(help="|".join(TICKET_STATUSES) + " (or offen, wartet, erledigt, …)")
    ],
) -> None:
    """Set a ticket's status (audited)."""
    from gateway.cli.view import ticket_status
    from storage.models import utcnow
    from storage.tickets import TicketStore

    status = ticket_status(status)
    settings = _settings()
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        store.set_status(ticket, status, actor=_cli_actor(), now=utcnow())
        typer.echo(f"{ticket.ref} is {status}")


@tickets_cli.command("note")
def tickets_note(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    text: Annotated[str, typer.Option("--text", help="The note (internal, never sent)")],
) -> None:
    """Add an internal note to a ticket (audited, not sent to anyone); personal data in it is
    replaced by the ticket's placeholders first, as in every stored mail."""
    from gateway.pipeline.prepare import shared_redactor
    from gateway.pipeline.redact import redact_note
    from gateway.secrets import derive, load_secret
    from storage.models import utcnow
    from storage.tickets import TicketStore

    settings = _settings()
    pseudonym_key = derive(load_secret(settings), "pseudonyms")
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        now = utcnow()
        body, counts = redact_note(settings, shared_redactor(settings), pseudonym_key, ticket, text)
        article = store.add_article(
            ticket,
            kind="note",
            direction="in",
            from_addr=_cli_actor(),
            subject=ticket.subject,
            body=body,
            created_at=now,
        )
        store.add_event(
            ticket, actor=_cli_actor(), kind="note", now=now, article_id=article.id, **counts
        )
        ticket.updated_at = now
        typer.echo(f"note added to {ticket.ref}")


@inbox_cli.command("list")
def inbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(INBOX_STATES))] = None,
) -> None:
    """List received mails (newest first) with their state and, if quarantined, why."""
    from gateway.cli.view import Clock, one_of
    from storage import spool

    if state is not None:
        state = one_of(state, INBOX_STATES, "state")
    settings = _settings()
    clock = Clock(settings.service.timezone)
    now = datetime.now(UTC)
    with _database(settings).reading() as session:
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


@inbox_cli.command("retry")
def inbox_retry(item_id: Annotated[int, typer.Argument(help="Inbox row id")]) -> None:
    """Put a quarantined mail back in the queue (after a fix)."""
    from storage import spool

    settings = _settings()
    with _database(settings).session() as session:
        if not spool.retry_inbox(session, item_id):
            raise NotFoundError(f"inbox row {item_id} does not exist or is not quarantined")
    typer.echo(f"inbox row {item_id} queued again")


@outbox_cli.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(OUTBOX_STATES))] = None,
) -> None:
    """List outgoing mails (newest first): state, ticket, recipient, why delivery failed."""
    from gateway.cli.view import Clock, one_of
    from storage import spool
    from storage.tickets import TicketStore

    if state is not None:
        state = one_of(state, OUTBOX_STATES, "state")
    settings = _settings()
    clock = Clock(settings.service.timezone)
    with _database(settings).reading() as session:
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


@rules_cli.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Rules folder (default: rules_dir)")
    ] = None,
) -> None:
    """Validate every rule file; list every error as file:line: message."""
    from gateway.errors import RulesetInvalid
    from gateway.routing import active as routing

    settings = _settings()
    try:
        ruleset = routing.load(settings, directory)
    except RulesetInvalid as exc:
        for error in exc.errors:
            typer.echo(str(error), err=True)
        typer.echo(f"{len(exc.errors)} error(s); the rules were not accepted", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"ok: {len(ruleset.rules)} rules in {len(ruleset.files)} files, version {ruleset.version}"
    )


def _mail_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.eml")) if path.is_dir() else [path])
    return files


@rules_cli.command("test")
def rules_test(
    mails: Annotated[list[Path], typer.Argument(help=".eml files or folders of them")],
    rules: Annotated[Path | None, typer.Option("--rules", help="Rules folder to try")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show which rules match each mail and what they decide; stores nothing."""
    from datetime import UTC, datetime

    from gateway.mail import language
    from gateway.pipeline.parse import parse_mail
    from gateway.routing import active as routing
    from gateway.routing.ruleset import MailFacts

    settings = _settings()
    ruleset = routing.load(settings, rules)
    files = _mail_files(mails)
    one_line = len(files) > 1 and not as_json
    results: list[dict[str, Any]] = []
    failed = 0
    for path in files:
        try:
            mail = parse_mail(path.read_bytes(), domain=settings.service.domain)
        except (OSError, PostdeskError) as exc:
            failed += 1
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            typer.echo(f"{path}: error: {reason}", err=True)
            continue
        text = f"{mail.subject}\n{mail.text}"
        facts = MailFacts.from_parsed(
            mail,
            language=language.detect(text, settings.service.language),
            sender_is_agent=settings.agent(mail.from_.email) is not None,
            received_at=mail.date or datetime.now(UTC),  # replayed mails: at their own time
        )
        evaluation = ruleset.evaluate(facts)
        if as_json:
            results.append({"file": str(path), **evaluation.to_json()})
        elif one_line:
            typer.echo(f"{path}: {evaluation.decision.describe()}")
        else:
            typer.echo(f"{path}:")
            for line in evaluation.explain():
                typer.echo(f"  {line}")
    if as_json:
        _echo_json(results)
    if failed:
        raise typer.Exit(1)


templates_cli = typer.Typer(no_args_is_help=True, help="Check the mail templates.")
cli.add_typer(templates_cli, name="templates")


@templates_cli.command("check")
def templates_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Templates folder (default: templates_dir)")
    ] = None,
) -> None:
    """Parse every template and render every mail of every language and layer against sample
    views; list every error as file:line: message."""
    renderer = _checked_templates(_settings(), directory)
    typer.echo(f"ok: {len(renderer.sources.files)} template files, version {renderer.version}")


def _checked_templates(settings: Settings, directory: Path | None = None) -> Any:
    """The checked templates' renderer; else every error on stderr and exit 1."""
    from gateway.errors import TemplatesInvalid
    from gateway.outgoing.templateset import check

    try:
        return check(settings, directory)
    except TemplatesInvalid as exc:
        for error in exc.errors:
            typer.echo(error.located(), err=True)
        typer.echo(f"{len(exc.errors)} error(s); the templates were not accepted", err=True)
        raise typer.Exit(1) from None


CreateFolder = Annotated[
    bool, typer.Option("--create-folder", help="Create the processed folder if it is missing.")
]


@exchange_cli.command("check")
def exchange_check(create_folder: CreateFolder = False) -> None:
    """Log in, count the watched folder, verify the processed folder; one-line diagnosis."""
    settings = _settings()
    if settings.exchange is None:  # before importing exchangelib: it takes a second
        raise PostdeskError("exchange: not configured (add an `exchange:` section)")
    from gateway.intake.exchange import check

    _report_check(check(settings, create_folder=create_folder))


@graph_cli.command("check")
def graph_check(create_folder: CreateFolder = False) -> None:
    """Get a token, count the watched folder, verify folder and permissions; one line."""
    settings = _settings()
    if settings.graph is None:  # before importing msal and httpx
        raise PostdeskError("graph: not configured (add a `graph:` section)")
    from gateway.intake.graph import check

    _report_check(check(settings, create_folder=create_folder))


def _report_check(result: Any) -> None:
    if not result.ok:
        raise PostdeskError(result.message)
    typer.echo(result.message)


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (one object).")] = False,
) -> None:
    """Health at a glance: queue depths, quarantined mails, rules, mailboxes, unassigned,
    mails held by a rate limit."""
    from gateway.cli import report
    from storage.models import utcnow

    settings = _settings()
    with _database(settings).reading() as session:
        data = report.collect(settings, session, utcnow())
    if as_json:
        _echo_json(data)
        return
    for line in report.text(data, settings):
        typer.echo(line)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and map errors to exit codes with one line on stderr."""
    try:
        result = cli(args=argv, standalone_mode=False, prog_name="postdesk")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 1
    except TyperException as exc:  # usage errors: click's UsageError and friends
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 2))
    except PostdeskError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            typer.echo(f"postdesk: error: {line}", err=True)
        return 1
    except Exception as exc:
        message = _database_error(exc)
        if message is None:
            raise
        typer.echo(f"postdesk: error: {message}", err=True)
        return 1
    return result if isinstance(result, int) else 0


def _database_error(exc: Exception) -> str | None:
    """One line for a database that is missing, not set up or unreachable; None for anything
    else. Never the driver's full text: it may quote the statement's values (mail data)."""
    from sqlalchemy.exc import DBAPIError

    from storage.sealing import SealError

    if isinstance(exc, SealError):
        return "a stored mail cannot be decrypted with this server secret (was it changed?)"
    if not isinstance(exc, DBAPIError):
        return None
    detail = str(exc.orig).lower()
    if "no such table" in detail or "does not exist" in detail:
        return "the database is not set up: run `postdesk init` first"
    return f"database error ({type(exc.orig).__name__}); is the database reachable?"


def console() -> None:
    """The `postdesk` program (a short-lived process, unlike the tests that call `main`).

    Start-up is mostly allocation of long-lived objects (SQLAlchemy, pydantic, typer), which
    the garbage collector would scan again and again, and once more at exit. A command of a
    few hundred milliseconds leaves nothing worth collecting, so the collector is off and what
    is alive at the end is frozen: together about a third of a read command's time. The
    commands that run long (`serve`, `import`) switch it back on.

    postdesk uses no pydantic plugins; looking for them reads the metadata of every installed
    package (about 10 ms), and a plugin found there would see the config of a service holding
    personal data. An admin who wants one sets PYDANTIC_DISABLE_PLUGINS themselves.
    """
    import os

    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    gc.disable()
    code = main()
    gc.freeze()  # nothing is freed after this; the interpreter's final collection skips it all
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
