"""`postdesk templates check`; `init` checks the templates the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import command_settings
from gateway.config import Settings
from gateway.errors import TemplatesInvalid
from gateway.outgoing.render import Renderer
from gateway.outgoing.templateset import check

app = typer.Typer(no_args_is_help=True, help="Check the mail templates.")


@app.command("check")
def templates_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Templates folder (default: templates_dir)")
    ] = None,
) -> None:
    """Parse every template and render every mail of every language and layer against sample
    views; list every error as file:line: message."""
    renderer = checked_templates(command_settings(), directory)
    borrowed = renderer.sources.borrowed
    own = len(renderer.sources.files) - len(borrowed)
    typer.echo(f"ok: {own} template files, version {renderer.version}")
    if borrowed:
        typer.echo(f"note: {len(borrowed)} file(s) not in {renderer.root}; the shipped ones are "
                   "used (copy them to edit):")
        for relative in borrowed:
            typer.echo(f"  shipped: {relative}")


def checked_templates(settings: Settings, directory: Path | None = None) -> Renderer:
    """The checked templates' renderer; else every error on stderr and exit 1."""
    try:
        return check(settings, directory)
    except TemplatesInvalid as exc:
        for error in exc.errors:
            typer.echo(error.located(), err=True)
        typer.echo(f"{len(exc.errors)} error(s); the templates were not accepted", err=True)
        raise typer.Exit(1) from None
