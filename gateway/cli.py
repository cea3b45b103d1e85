"""The `postdesk` command line: thin commands over the App; errors become one line and an exit
code (0 ok, 1 user error, 2 usage error)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from gateway import logs
from gateway.config import Settings, default_config_path, load_settings
from gateway.errors import NotFoundError, PostdeskError
from storage import spool
from storage.engine import Database, open_database
from storage.models import Ticket
from storage.tickets import TicketStore, ticket_detail, ticket_summary

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


@cli.callback()
def _options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default ./config.yaml, else $POSTDESK_CONFIG)."
        ),
    ] = None,
) -> None:
    _config_path[:] = [config or default_config_path()]


def _settings() -> Settings:
    settings = load_settings(_config_path[0] if _config_path else default_config_path())
    logs.setup(settings.log_level)
    return settings


def _database(settings: Settings) -> Database:
    from gateway.errors import ConfigError
    from gateway.secrets import fernet_key, load_secret
    from storage import sealing

    try:  # stored mail is encrypted; without a secret yet, only plain rows can be read
        sealing.configure(fernet_key(load_secret(settings)))
    except ConfigError:
        sealing.configure(None)
    return open_database(settings.database.url)


def _ticket(store: TicketStore, ref: str) -> Ticket:
    """The ticket named on the command line, or a one-line error."""
    ticket = store.by_ref(ref)
    if ticket is None:
        raise NotFoundError(f"no ticket {ref}")
    return ticket


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@cli.command()
def init() -> None:
    """Create or upgrade the database and the data folder."""
    from gateway.app import App

    settings = _settings()
    app = App.build(settings)
    app.init_database()
    typer.echo(f"database ready: {app.db.engine.url.render_as_string(hide_password=True)}")


@cli.command()
def serve() -> None:
    """Run the SMTP listener, the worker and the scheduler until stopped."""
    from gateway.app import App

    App.build(_settings()).serve()


@cli.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help=".eml or .mbox files, maildirs, folders")],
    process: Annotated[bool, typer.Option(help="Run the pipeline right away.")] = True,
) -> None:
    """Take mails from files into the inbox (idempotent), then process them."""
    from gateway.app import App
    from gateway.intake.files import import_paths

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
    status: Annotated[str | None, typer.Option(help="new|open|pending|resolved|closed")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """List tickets, newest first."""
    settings = _settings()
    with _database(settings).reading() as session:
        rows = [
            ticket_summary(t) for t in TicketStore(session).list_tickets(status=status, queue=queue)
        ]
    if as_json:
        _echo_json(rows)
        return
    for row in rows:
        typer.echo(
            f"{row['ref']:<12} {row['status']:<9} {row['queue'] or '-':<16} "
            f"{row['priority']:<7} {row['subject']}"
        )


@tickets_cli.command("show")
def tickets_show(
    ref: Annotated[str, typer.Argument(help="Ticket reference, e.g. LDS-1042")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show one ticket with its articles."""
    settings = _settings()
    with _database(settings).reading() as session:
        ticket = TicketStore(session).with_articles(ref)
        if ticket is None:
            raise NotFoundError(f"no ticket {ref}")
        data = ticket_detail(ticket)
    if as_json:
        _echo_json(data)
        return
    typer.echo(f"{data['ref']}  {data['subject']}")
    typer.echo(
        f"status {data['status']}  queue {data['queue'] or '-'}  owner "
        f"{data['owner'] or '-'}  priority {data['priority']}  requester {data['requester']}"
    )
    for article in data["articles"]:
        typer.echo(
            f"\n--- {article['created_at']}  {article['kind']} {article['direction']}  "
            f"{article['from']}"
        )
        typer.echo(article["body"].rstrip())
        for attachment in article["attachments"]:
            typer.echo(
                f"[attachment] {attachment['filename']} ({attachment['content_type']}, "
                f"{attachment['size']} bytes)"
            )


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


STATUSES = ("new", "open", "pending", "resolved", "closed")


def _cli_actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


@tickets_cli.command("assign")
def tickets_assign(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    agent: Annotated[str, typer.Argument(help="Agent address, or 'none' to unassign")],
) -> None:
    """Assign a ticket to an agent (audited; the agent is notified by mail)."""
    from gateway import agentmail
    from gateway.render import Renderer
    from gateway.secrets import derive, load_secret
    from storage.models import utcnow

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
                mailer = agentmail.Mailer(
                    settings,
                    Renderer.from_settings(settings),
                    derive(load_secret(settings), "agent-proof"),
                )
                agentmail.queue_agent_notification(
                    mailer, store, ticket, owner, reason="assigned", text="", now=now
                )
        typer.echo(f"{ticket.ref} assigned to {owner or 'nobody'}")


@tickets_cli.command("status")
def tickets_status(
    ref: Annotated[str, typer.Argument(help="Ticket reference")],
    status: Annotated[str, typer.Argument(help="|".join(STATUSES))],
) -> None:
    """Set a ticket's status (audited)."""
    from storage.models import utcnow

    if status not in STATUSES:
        raise PostdeskError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
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
    """Add an internal note to a ticket (audited, not sent to anyone)."""
    from storage.models import utcnow

    settings = _settings()
    with _database(settings).session() as session:
        store = TicketStore(session)
        ticket = _ticket(store, ref)
        now = utcnow()
        article = store.add_article(
            ticket,
            kind="note",
            direction="in",
            from_addr=_cli_actor(),
            subject=ticket.subject,
            body=text,
            created_at=now,
        )
        store.add_event(ticket, actor=_cli_actor(), kind="note", now=now, article_id=article.id)
        ticket.updated_at = now
        typer.echo(f"note added to {ticket.ref}")


@inbox_cli.command("list")
def inbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(spool.INBOX_STATES))] = None,
) -> None:
    """List received mails (newest first) with their state and, if quarantined, why."""
    settings = _settings()
    with _database(settings).reading() as session:
        for item in spool.list_inbox(session, state):
            reason = f"  [{item.stage}] {item.reason}" if item.reason else ""
            typer.echo(
                f"{item.id:>7} {item.state:<11} {item.source:<7} "
                f"{item.received_at:%Y-%m-%d %H:%M:%S} {item.size:>8}B "
                f"attempts={item.attempts}{reason}"
            )


@inbox_cli.command("retry")
def inbox_retry(item_id: Annotated[int, typer.Argument(help="Inbox row id")]) -> None:
    """Put a quarantined mail back in the queue (after a fix)."""
    settings = _settings()
    with _database(settings).session() as session:
        if not spool.retry_inbox(session, item_id):
            raise NotFoundError(f"inbox row {item_id} does not exist or is not quarantined")
    typer.echo(f"inbox row {item_id} queued again")


@outbox_cli.command("list")
def outbox_list(
    state: Annotated[str | None, typer.Option(help="|".join(spool.OUTBOX_STATES))] = None,
) -> None:
    """List outgoing mails (newest first) with their delivery state."""
    settings = _settings()
    with _database(settings).reading() as session:
        for item in spool.list_outbox(session, state):
            error = f"  {item.last_error}" if item.last_error else ""
            typer.echo(
                f"{item.id:>7} {item.state:<8} {item.kind:<24} attempts={item.attempts}{error}"
            )


@rules_cli.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Rules folder (default: rules_dir)")
    ] = None,
) -> None:
    """Validate every rule file; list every error as file:line: message."""
    from gateway import routing
    from gateway.errors import RulesetInvalid

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
    from gateway import language, routing
    from gateway.pipeline.parse import parse_mail
    from gateway.ruleset import MailFacts
    from storage.models import utcnow

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
            received_at=mail.date or utcnow(),  # replayed mails are judged at their own time
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


CreateFolder = Annotated[
    bool, typer.Option("--create-folder", help="Create the processed folder if it is missing.")
]


@exchange_cli.command("check")
def exchange_check(create_folder: CreateFolder = False) -> None:
    """Log in, count the watched folder, verify the processed folder; one-line diagnosis."""
    from gateway.intake.exchange import check

    _report_check(check(_settings(), create_folder=create_folder))


@graph_cli.command("check")
def graph_check(create_folder: CreateFolder = False) -> None:
    """Get a token, count the watched folder, verify folder and permissions; one line."""
    from gateway.intake.graph import check

    _report_check(check(_settings(), create_folder=create_folder))


def _report_check(result: Any) -> None:
    if not result.ok:
        raise PostdeskError(result.message)
    typer.echo(result.message)


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="JSON output (one object).")] = False,
) -> None:
    """Health at a glance: queue depths, quarantined mails, rules, mailboxes, unassigned."""
    from gateway import status as report
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
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
