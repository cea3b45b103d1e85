"""`postdesk exchange check` and `graph check`: can postdesk reach the mailbox it polls?"""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import command_settings
from gateway.errors import PostdeskError
from gateway.mailboxes.common import CheckResult

app = typer.Typer()
exchange = typer.Typer(no_args_is_help=True, help="Exchange Server mailbox (EWS).")
graph = typer.Typer(no_args_is_help=True, help="Exchange Online mailbox (Microsoft Graph).")
app.add_typer(exchange, name="exchange")
app.add_typer(graph, name="graph")

CreateFolder = Annotated[
    bool, typer.Option("--create-folder", help="Create the processed folder if it is missing.")
]


@exchange.command("check")
def exchange_check(create_folder: CreateFolder = False) -> None:
    """Log in, count the watched folder, verify the processed folder; one-line diagnosis."""
    settings = command_settings()
    if settings.exchange is None:  # before importing exchangelib: it takes a second
        raise PostdeskError("exchange: not configured (add an `exchange:` section)")
    from gateway.intake.exchange import check

    _report(check(settings, create_folder=create_folder))


@graph.command("check")
def graph_check(create_folder: CreateFolder = False) -> None:
    """Get a token, count the watched folder, verify folder and permissions; one line."""
    settings = command_settings()
    if settings.graph is None:  # before importing msal and httpx
        raise PostdeskError("graph: not configured (add a `graph:` section)")
    from gateway.intake.graph import check

    _report(check(settings, create_folder=create_folder))


def _report(result: CheckResult) -> None:
    if not result.ok:
        raise PostdeskError(result.message)
    typer.echo(result.message)
