"""`postdesk rules check` and `rules test`: validate the routing rules, and dry-run them on
mails without storing anything."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli import command_settings, echo_json
from gateway.errors import PostdeskError, RuleError, RulesetInvalid
from gateway.lifecycle.policy import load_policies
from gateway.mail import language
from gateway.pipeline.parse import parse_mail
from gateway.routing import active as routing
from gateway.routing.ruleset import MailFacts

app = typer.Typer(no_args_is_help=True, help="Check routing rules and dry-run them on mails.")


@app.command("check")
def rules_check(
    directory: Annotated[
        Path | None, typer.Argument(help="Rules folder (default: rules_dir)")
    ] = None,
) -> None:
    """Validate every rule file and the queue policies (rules/lifecycle/queues.yaml: SLA,
    auto-close, deletion periods); list every error as file:line: message."""
    settings = command_settings()
    errors: list[RuleError] = []
    try:
        ruleset = routing.load(settings, directory)
    except RulesetInvalid as exc:
        errors.extend(exc.errors)
    try:
        policies = load_policies(settings)
    except RulesetInvalid as exc:
        errors.extend(exc.errors)
    if errors:
        for error in errors:
            typer.echo(str(error), err=True)
        typer.echo(f"{len(errors)} error(s); the rules were not accepted", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"ok: {len(ruleset.rules)} rules in {len(ruleset.files)} files, version {ruleset.version}"
    )
    typer.echo(f"ok: queue policies for {len(policies.file.queues)} queue(s) and the defaults"
               f" ({policies.source})")


def _mail_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.rglob("*.eml")) if path.is_dir() else [path])
    return files


@app.command("test")
def rules_test(
    mails: Annotated[list[Path], typer.Argument(help=".eml files or folders of them")],
    rules: Annotated[Path | None, typer.Option("--rules", help="Rules folder to try")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Show which rules match each mail and what they decide; stores nothing."""
    settings = command_settings()
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
        echo_json(results)
    if failed:
        raise typer.Exit(1)
