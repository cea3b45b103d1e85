"""`postdesk requester erase EMAIL --reason TEXT`: answer an erasure request (DSGVO Art. 17)
through gateway.lifecycle.erasure, audited (an `erased` event, an erasure request recorded
under a keyed hash of the address). `erase` is a plain command function, so it can sit in
the `requester` group of gateway.cli.requester (beside `export`) without this module's imports
weighing on that one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from gateway.cli import command_settings, echo_json


def erase(
    email: Annotated[str, typer.Argument(help="The requester's whole address (any case).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (the request, a file number); "
                                        "recorded: write no personal data in it.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be done.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Delete (or, where the queue's policy says so, pseudonymise) every ticket of EMAIL and
    take the address out of other tickets and the rate-limit log; the request is recorded."""
    from gateway.cli.retention import cli_actor, open_parts
    from gateway.lifecycle.erasure import erase as run_erasure
    from gateway.lifecycle.policy import load_policies

    settings = command_settings()
    policies = load_policies(settings)
    db, keys, blobs = open_parts(settings)
    done = run_erasure(db, blobs, policies, keys.data_subject, email, reason=reason,
                       actor=cli_actor(), now=datetime.now(UTC), dry_run=dry_run)
    counts = {kind: n for kind, n in sorted(done.counts.items()) if n}
    if as_json:
        echo_json({"dry_run": dry_run, "request": done.request_id, "deleted": done.deleted,
                   "pseudonymised": done.pseudonymised, "counts": counts})
        return
    verb = ("would delete", "would pseudonymise") if dry_run else ("deleted", "pseudonymised")
    typer.echo(f"{verb[0]} {len(done.deleted)} ticket(s): {', '.join(done.deleted) or '-'}")
    typer.echo(f"{verb[1]} {len(done.pseudonymised)} ticket(s): "
               f"{', '.join(done.pseudonymised) or '-'}")
    if counts:
        typer.echo("  " + ", ".join(f"{kind}: {n}" for kind, n in counts.items()))
    if dry_run:
        typer.echo("dry run: nothing was changed")
    else:
        typer.echo(f"erasure request {done.request_id} recorded")


