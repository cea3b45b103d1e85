"""`postdesk secrets reseal`: after a rotation of the server secret, re-encrypt the stored
originals and attachments under the new one, so that the previous secret can be dropped from
the config (docs/operations.md, "The server secret")."""

from __future__ import annotations

from typing import Annotated

import typer

from gateway.cli import command_settings, echo_json

app = typer.Typer(no_args_is_help=True,
                  help="The server secret: re-encrypt stored mail and attachments after a "
                  "rotation.")


@app.command("reseal")
def reseal(
    batch: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Re-encrypt inbox/outbox originals and attachment blobs under the current secret
    (resumable: run it again after an interruption; what is current is skipped)."""
    from gateway.app import open_blobs
    from gateway.secrets import Keys, check_secret
    from storage.engine import open_database
    from storage.rekey import Resealed, reseal_attachments, reseal_originals

    settings = command_settings()
    keys = Keys.load(settings)
    db = open_database(settings.database.url, keys.sealer)
    check_secret(db, settings, keys)  # the database's secret must be this one or a previous
    done = Resealed()
    reseal_originals(db, keys.sealer, done, batch)
    reseal_attachments(db, open_blobs(settings, db, keys), done, batch)
    if as_json:
        echo_json(done.counts)
        return
    for what, count in sorted(done.counts.items()):
        typer.echo(f"{what}: {count}")
    left = sum(count for what, count in done.counts.items()
               if what.endswith(("not openable", "left")))
    typer.echo("done: everything is sealed with the current secret" if not left else
               f"done, but {left} stored value(s) could not be opened with the configured "
               "secrets: keep the previous secret listed")
