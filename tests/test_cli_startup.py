"""The CLI starts fast because heavy libraries are imported only by the commands that use
them. Timing belongs in bench/startup.py; this test guards the cause: which modules a plain
`import gateway.cli` (what every command pays) brings in, and what each command group's
module (imported only when one of its commands runs) adds."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import typer

from gateway.cli import COMMANDS, DeferredCommand, cli

HEAVY = ("presidio_analyzer", "spacy", "exchangelib", "msal", "aiosmtpd", "httpx", "apscheduler")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_importing_the_cli_brings_in_no_heavy_library() -> None:
    loaded = _modules_after("import gateway.cli")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
    assert "sqlalchemy" not in loaded  # --help and usage errors need no database


def test_the_pipeline_context_does_not_import_the_stages() -> None:
    """`tickets assign` builds an agent mail from the pipeline's Context type only."""
    loaded = _modules_after("import gateway.pipeline.context")
    assert not {name for name in loaded if name.split(".")[0] in HEAVY}
    assert "gateway.pipeline.redact" not in loaded


def test_postdesk_help_imports_no_command_module() -> None:
    """`postdesk --help` lists every command from gateway.cli.COMMANDS alone."""
    loaded = _modules_after(
        "import contextlib, io\nfrom gateway.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    assert main(['--help']) == 0"
    )
    assert not {name for name in loaded if name.startswith("gateway.cli.")}
    assert "sqlalchemy" not in loaded


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # the ticket commands do not pay for templates (assign) or Presidio (note) up front
        ("gateway.cli.tickets", ("jinja2", "presidio_analyzer", "gateway.app")),
        ("gateway.cli.queues", ("jinja2", "presidio_analyzer", "gateway.app")),
        ("gateway.cli.report", ("jinja2", "presidio_analyzer", "gateway.app")),
        ("gateway.cli.rules", ("jinja2", "presidio_analyzer", "gateway.app")),
        ("gateway.cli.requester", ("jinja2", "presidio_analyzer", "gateway.app")),
        ("gateway.cli.audit", ("jinja2", "presidio_analyzer", "gateway.app")),
        # the clients load only once the mailbox is known to be configured
        ("gateway.cli.mailboxes", ("exchangelib", "msal", "httpx", "sqlalchemy")),
    ],
)
def test_a_command_group_loads_only_what_its_commands_need(
    module: str, absent: tuple[str, ...]
) -> None:
    loaded = _modules_after(f"import {module}")
    assert not {name for name in absent if name in loaded}
    assert not {name for name in loaded if name.split(".")[0] in ("spacy", "aiosmtpd")}


def test_the_help_listed_for_each_command_is_its_own() -> None:
    """COMMANDS repeats each command's first help paragraph (for `postdesk --help`)."""
    group = typer.main.get_group(cli)
    for name, _, text in COMMANDS:
        standin = group.commands[name]
        assert isinstance(standin, DeferredCommand)
        real = standin.load()
        assert real.help is not None
        assert inspect.cleandoc(real.help).split("\n\n")[0] == text, name
