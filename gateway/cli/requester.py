"""`postdesk requester …`: a data subject's requests — `export` (access, DSGVO Art. 15;
gateway.lifecycle.export) and `erase` (Art. 17). Both are audit events by `cli:USER`, which
name the person only by a keyed hash of the address."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli import command_database, command_settings
from gateway.cli.erasure import erase
from gateway.lifecycle.export import (
    address_of,
    audit_export,
    private_output,
    write_export,
)
from gateway.secrets import Keys, subject_hash
from storage.blobs import open_store
from storage.models import utcnow
from storage.tickets import TicketStore

app = typer.Typer(
    no_args_is_help=True,
    help="A data subject's requests: export (and erase) what is stored about an address.",
)

app.command("erase")(erase)


@app.command("export")
def requester_export(
    email: Annotated[str, typer.Argument(help="The person's e-mail address (whole, any case)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The ZIP file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
) -> None:
    """Write everything stored about an address into a ZIP (JSON, attachments, own originals,
    README in German and English); audited."""
    address = address_of(email)
    settings = command_settings()
    keys = Keys.load(settings)
    db = command_database(settings)
    blobs = open_store(settings.blobs.store, settings.data_dir / "blobs", db, keys.sealer,
                       keys.blob_address)
    subject = subject_hash(keys.data_subject, address)
    # the events commit when the session ends, and only then is the file renamed into place
    with private_output(output, force=force) as temporary, db.session() as session:
        now = utcnow()
        report = write_export(temporary, session, blobs.bound(session), address,
                              settings=settings, now=now)
        audit_export(TicketStore(session), report, actor=_actor(), subject=subject, now=now)
    withheld = f", {report.withheld} of other people withheld" if report.withheld else ""
    typer.echo(
        f"{output}: {len(report.tickets)} ticket(s), {report.articles} message(s){withheld}, "
        f"{report.attachments} attachment(s), {report.originals} original(s)"
    )
    if report.unreadable:
        typer.echo(f"warning: {report.unreadable} stored file(s) missing or not decryptable; "
                   "listed without content", err=True)


def _actor() -> str:
    """Who the audit events name: the operating-system user at the terminal."""
    return f"cli:{getpass.getuser()}"
