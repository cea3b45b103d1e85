"""The `postdesk` command line: thin commands over the App; errors become one line and an exit
code (0 ok, 1 user error, 2 usage error).

This module is what every command pays for, `--help` and a usage error included: the typer app,
the global options, loading the config, opening the database, and the mapping of errors to exit
codes. The commands live in one module per group (`site`: init, serve, import; `tickets`;
`queues`: inbox and outbox; `rules`; `templates`; `mailboxes`: exchange and graph; `report`:
status), each importing what it needs at its top; a group's module is imported only when one
of its commands runs or shows its help (see COMMANDS), so `tickets list` never loads what
`serve` needs, and `postdesk --help` loads none of them.
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import TyperException

from gateway import logs
from gateway.errors import PostdeskError

if TYPE_CHECKING:
    from typer._click import Command, Context  # typer's own copy of click (since typer 0.29)

    from gateway.config import Settings
    from storage.engine import Database

# What `postdesk --help` lists, in its order: name, where it lives ("module" for a command
# group: the module's `app`; "module:name" for a command of the module's `app`), and the
# first paragraph of its help (shown without importing the module; tests/test_cli_startup.py
# checks it against the command's own).
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("init", "gateway.cli.site:init",
     "Create or upgrade the database and the data folder (or, with --site, a whole site)."),
    ("serve", "gateway.cli.site:serve",
     "Run the SMTP listener, the worker and the scheduler until stopped."),
    ("import", "gateway.cli.site:import",
     "Take mails from files into the inbox (idempotent), then process them."),
    ("status", "gateway.cli.report:status",
     "Health at a glance: queue depths, quarantined mails, rules, mailboxes, unassigned,\n"
     "mails held by a rate limit, the leader of the timed jobs and every instance."),
    ("tickets", "gateway.cli.tickets", "List and show tickets."),
    ("inbox", "gateway.cli.queues:inbox", "Received mails: list, retry quarantined ones."),
    ("outbox", "gateway.cli.queues:outbox", "Outgoing mails waiting or sent."),
    ("exchange", "gateway.cli.mailboxes:exchange", "Exchange Server mailbox (EWS)."),
    ("graph", "gateway.cli.mailboxes:graph", "Exchange Online mailbox (Microsoft Graph)."),
    ("rules", "gateway.cli.rules", "Check routing rules and dry-run them on mails."),
    ("templates", "gateway.cli.templates", "Check the mail templates."),
    ("secrets", "gateway.cli.secrets",
     "The server secret: re-encrypt stored mail and attachments after a rotation."),
    ("requester", "gateway.cli.requester",
     "A data subject's requests: export (and erase) what is stored about an address."),
    ("audit", "gateway.cli.audit:audit",
     "The audit trail: who saw which original, who changed what (newest first)."),
    ("retention", "gateway.cli.retention",
     "Deletion periods: what is due, delete it, the deletion records."),
    ("report", "gateway.cli.reports",
     "Reports: tickets in/out, response and resolution times, SLA, backlog."),
)


class DeferredCommand(TyperCommand):
    """Stands in for a command or group of another module in the root's list: its name and
    help are known here; parsing its arguments (or showing its own help) imports the module
    and hands over to the real command."""

    def __init__(self, name: str, target: str, help: str) -> None:
        super().__init__(name, help=help)
        self.target = target

    def load(self) -> Command:
        module, _, name = self.target.partition(":")
        group = typer.main.get_group(importlib.import_module(module).app)
        return group.commands[name] if name else group

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        return self.load().make_context(info_name, args, parent=parent, **extra)


class _Root(TyperGroup):
    """The `postdesk` group: the global options, and COMMANDS as stand-ins."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, target, text in COMMANDS:
            self.add_command(DeferredCommand(name, target, text))


cli = typer.Typer(
    cls=_Root,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="postdesk: email-gateway ticketing for service desks.",
)

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


def use_config(path: Path) -> None:
    """Read the config from `path` from now on (`init --site` has just written it)."""
    _config_path[:] = [path]


def command_settings(*, serving: bool = False) -> Settings:
    """The config; a command other than `serve` logs only warnings and errors unless -v (its
    child processes too: they take the level from these settings)."""
    from gateway.config import default_config_path, load_settings  # pydantic: not for --help

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


def command_database(settings: Settings) -> Database:
    """The database, able to read stored (encrypted) mail if the server secret is there (and
    mail sealed with a previous secret listed in the config)."""
    from gateway.errors import ConfigError
    from gateway.secrets import load_previous, load_secret, sealer
    from storage.engine import open_database  # SQLAlchemy: not for --help
    from storage.sealing import Sealer

    try:  # stored mail is encrypted; without a secret yet, only plain rows can be read
        secret = load_secret(settings)
    except ConfigError:
        return open_database(settings.database.url, Sealer(None))
    # a previous secret that cannot be read is an error of its own (not "no secret")
    return open_database(settings.database.url, sealer(secret, load_previous(settings)))


def echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


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
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    gc.disable()
    code = main()
    gc.freeze()  # nothing is freed after this; the interpreter's final collection skips it all
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
