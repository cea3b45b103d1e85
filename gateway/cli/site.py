"""`postdesk init`, `serve` and `import`: the commands that set a site up and run it."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Annotated

import typer

from gateway import sitesetup
from gateway.app import App
from gateway.cli import command_settings, use_config
from gateway.cli.templates import checked_templates
from gateway.intake.files import import_paths

app = typer.Typer()


@app.command()
def init(
    site: Annotated[
        Path | None,
        typer.Option(
            "--site",
            help="Create a new site in this folder: config.yaml, rules/ and templates/ from the "
            "package, then its secret key and database. Never overwrites.",
        ),
    ] = None,
    new_secret: Annotated[
        bool,
        typer.Option(
            "--new-secret",
            help="Accept a changed server secret: store its fingerprint in place of the old "
            "one (mail and attachments sealed with the old secret can no longer be read; to "
            "rotate instead, list the old one in secrets.previous_key_files and run "
            "`postdesk secrets reseal`).",
        ),
    ] = False,
) -> None:
    """Create or upgrade the database and the data folder (or, with --site, a whole site)."""
    if site is not None:
        config = sitesetup.scaffold(site)
        use_config(config)
        typer.echo(f"site created: {config}, {site / 'rules'}, {site / 'templates'}")
    settings = command_settings()
    checked_templates(settings)  # a broken template fails init with its file:line
    service = App.build(settings)
    service.init_database(new_secret=new_secret)
    if site is not None and settings.secrets.key_file.is_file():
        typer.echo(f"secret key: {settings.secrets.key_file} (set {settings.secrets.key_env} "
                   "in production instead)")
    for line in sitesetup.tighten_private_paths(settings):
        typer.echo(line)
    typer.echo(f"database ready: {service.db.engine.url.render_as_string(hide_password=True)}")
    if site is not None:
        typer.echo(f"next: adapt {config}, then: postdesk --config {config} serve")


@app.command()
def serve() -> None:
    """Run the SMTP listener, the worker and the scheduler until stopped."""
    from gateway.serve import serve as run  # the SMTP intake, scheduler, ops server

    gc.enable()  # a long run: collect garbage as Python normally does (see gateway.cli.console)

    run(App.build(command_settings(serving=True)))


@app.command("import")
def import_(
    paths: Annotated[list[Path], typer.Argument(help=".eml or .mbox files, maildirs, folders")],
    process: Annotated[bool, typer.Option(help="Run the pipeline right away.")] = True,
) -> None:
    """Take mails from files into the inbox (idempotent), then process them."""
    gc.enable()  # an mbox may hold thousands of mails (see gateway.cli.console)

    service = App.build(command_settings())
    service.init_database()
    report = import_paths(service.db, paths)
    for error in report.errors:
        typer.echo(f"error: {error}", err=True)
    processed = 0
    if process:
        with service.running_instance():  # its claims are a running instance's
            processed = len(service.worker.drain())
    typer.echo(
        f"imported {report.added} new, {report.already_present} already present, "
        f"{len(report.errors)} errors, {processed} processed"
    )
    if report.errors and not report.added and not report.already_present:
        raise typer.Exit(1)
