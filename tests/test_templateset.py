"""Templates are checked like rules (issue 11, defect 4): `templates check` reports every error
as file:line, `init` and `serve` refuse a broken set, a running service keeps the last good set
when an edit is broken, and a mail that still cannot be rendered is quarantined in the outbox
(shown by `status` and `outbox list`) instead of being dropped."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.errors import TemplatesInvalid
from gateway.outgoing.templateset import ActiveTemplates, check
from tests.helpers import ROOT, make_mail, write_config

VIEW = {"ref": "LDS-1", "subject": "s", "status": "new", "queue": None, "priority": "normal",
        "service_name": "SD", "service_address": "sd@example.org", "language": "de",
        "automatic": True, "created_at": "2026-01-01T10:00:00+00:00",
        "received_at": "2026-01-01T10:00:00+00:00", "linked_ref": None, "requester_name": ""}


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    return folder


@pytest.fixture
def config(tmp_path: Path, make_settings: Callable[..., Settings], templates: Path) -> Path:
    settings = make_settings(templates_dir=str(templates))
    return write_config(tmp_path / "config.yaml", settings)


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(root: Path, relative: str, text: str | bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_shipped_templates_pass_the_check(
    config: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, config, "templates", "check")
    files = len(list(templates.rglob("*.j2")))
    assert code == 0 and out.startswith(f"ok: {files} template files, version ")


BROKEN = [
    pytest.param(  # the case: a Jinja syntax error in a shipped German template
        "de/requester-received.txt.j2",
        "{% extends \"_layout.txt.j2\" %}\n{% block body %}\nHallo {{ ref }\n{% endblock %}\n",
        "de/requester-received.txt.j2:3: syntax error: unexpected '}'", id="syntax"),
    pytest.param(  # a site override that uses a value no mail provides
        "site/de/requester-received.txt.j2", "Hallo,\n{{ kunde }}\n",
        "site/de/requester-received.txt.j2:2: 'kunde' is undefined", id="site-undefined"),
    pytest.param(  # a queue override, rendered although it is not the default layer
        "queues/it/en/agent-notify.txt.j2", "Hi {{ agent_name }}\n{{ agnet_name }}\n",
        "queues/it/en/agent-notify.txt.j2:2: 'agnet_name' is undefined", id="queue-override"),
    pytest.param(  # an optional value used unguarded fails with the empty sample view
        "en/agent-notify.txt.j2", "Owner:\n{{ owner.split('@')[0] }}\n",
        "en/agent-notify.txt.j2:2: 'None' has no attribute 'split'", id="optional-unguarded"),
    pytest.param(  # a site layout: every mail extends it; reported once, at its own line
        "site/_layout.txt.j2", "{% block body %}{% endblock %}\n\n{{ service_nam }}\n",
        "site/_layout.txt.j2:3: 'service_nam' is undefined", id="layout"),
    pytest.param(
        "de/requester-waiting.subject.j2", b"Vorgang \xfc {{ ref }}\n",
        "de/requester-waiting.subject.j2:1: not valid UTF-8", id="encoding"),
    pytest.param(
        "fr/requester-received.txt.j2.bak/x.txt.j2", "x",
        "fr/requester-received.txt.j2.bak/x.txt.j2: not in a language folder", id="stray"),
]


@pytest.mark.parametrize(("relative", "text", "expected"), BROKEN)
def test_check_reports_each_error_as_file_line_and_exits_1(
    config: Path, templates: Path, relative: str, text: str | bytes, expected: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(templates, relative, text)
    code, out, err = run(capsys, config, "templates", "check")
    lines = err.splitlines()
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"{templates}/{expected}" in lines[0]
    assert lines[-1] == f"{len(lines) - 1} error(s); the templates were not accepted"
    assert len(lines) == 2  # one error, reported once (not once per mail that extends it)


def test_a_mail_the_site_lacks_comes_from_the_shipped_templates(
    config: Path, tmp_path: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A site's copy made before an upgrade lacks the mails the upgrade added: serve and
    `templates check` use the shipped ones (and say so) instead of refusing to start."""
    (templates / "de" / "requester-waiting.txt.j2").unlink()
    write(templates, "de/requester-received.txt.j2", "Eigener Text {{ ref }}\n")
    code, out, err = run(capsys, config, "templates", "check")
    assert code == 0 and err == ""
    assert "shipped: de/requester-waiting.txt.j2" in out
    renderer = check(Settings.model_validate({"templates_dir": str(templates)}))
    assert "de/requester-waiting.txt.j2" in renderer.sources.borrowed
    assert renderer.sources.files["de/requester-received.txt.j2"].startswith("Eigener Text")


def test_check_lists_every_error_and_a_missing_mail(
    config: Path, tmp_path: Path, templates: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = tmp_path / "candidate"
    shutil.copytree(templates, other)
    (other / "de" / "requester-waiting.txt.j2").unlink()
    write(other, "en/requester-solved.txt.j2", "{% if %}")
    shipped_without_it = tmp_path / "shipped"
    shutil.copytree(templates, shipped_without_it)
    (shipped_without_it / "de" / "requester-waiting.txt.j2").unlink()
    monkeypatch.setattr("gateway.packaged.templates_dir", lambda: shipped_without_it)
    code, _, err = run(capsys, config, "templates", "check", str(other))
    assert code == 1
    assert f"{other}/de/requester-waiting.txt.j2: missing: postdesk sends this mail" in err
    assert f"{other}/en/requester-solved.txt.j2:1: syntax error" in err
    assert err.splitlines()[-1] == "2 error(s); the templates were not accepted"
    assert run(capsys, config, "templates", "check")[0] == 0  # the configured folder is fine


def test_init_fails_on_a_broken_template(
    config: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 4: `init` used to succeed with a broken template."""
    write(templates, "de/requester-received.txt.j2", "Hallo {{ ref }\n")
    code, _, err = run(capsys, config, "init")
    assert code == 1 and "Traceback" not in err
    assert f"{templates}/de/requester-received.txt.j2:1: syntax error" in err


def test_serve_refuses_to_start_on_a_broken_template(
    config: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 4: `serve` used to start; the requester then silently got no acknowledgement."""
    assert run(capsys, config, "init")[0] == 0
    write(templates, "de/requester-received.txt.j2", "Hallo {{ ref }\n")
    code, _, err = run(capsys, config, "serve")
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        f"postdesk: error: {templates}/de/requester-received.txt.j2:1: syntax error: "
        "unexpected '}'"
    ]


def test_a_broken_edit_is_refused_once_and_the_last_good_templates_keep_rendering(
    make_settings: Callable[..., Settings], templates: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(templates_dir=str(templates))
    active = ActiveTemplates(settings, check_seconds=0)
    good = active.current().render("requester-received", "de", VIEW)
    caplog.set_level(logging.INFO, logger="postdesk")
    write(templates, "de/requester-received.subject.j2", "Eingang {{ ref }\n")
    for _ in range(3):
        assert active.current().render("requester-received", "de", VIEW) == good
    refused = [r.getMessage() for r in caplog.records if "templates.refused" in r.getMessage()]
    assert len(refused) == 1
    assert f"{templates}/de/requester-received.subject.j2:1: syntax error" in refused[0]
    write(templates, "de/requester-received.subject.j2", "Eingang [{{ ref }}]\n")
    assert active.current().render("requester-received", "de", VIEW).subject == "Eingang [LDS-1]"
    reloaded = [r.getMessage() for r in caplog.records if "templates.reloaded" in r.getMessage()]
    assert reloaded == [f"templates.reloaded version={active.value.version} files="
                        f"{len(active.value.sources.files)}"]


def test_a_missing_folder_is_one_error(make_settings: Callable[..., Settings],
                                       tmp_path: Path) -> None:
    with pytest.raises(TemplatesInvalid) as info:
        check(make_settings(), tmp_path / "nowhere")
    assert str(info.value) == f"{tmp_path / 'nowhere'}: templates directory not found"


def test_a_mail_that_cannot_be_rendered_is_quarantined_and_shown(
    config: Path, tmp_path: Path, templates: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 4: a template failing at run time used to lose the mail (here: `tickets assign`
    failed and the assignment was not made); now the notification waits in quarantine, with
    the template and file:line as its reason, and `status` says so."""
    mail = tmp_path / "mail.eml"
    mail.write_bytes(bytes(make_mail(subject="Monitor flackert")))
    assert run(capsys, config, "init")[0] == 0
    assert run(capsys, config, "import", str(mail))[0] == 0
    write(templates, "de/agent-notify.txt.j2", "Hallo {{ agent_name }},\n{{ nicht_da }}\n")
    code, out, _ = run(capsys, config, "tickets", "assign", "LDS-1", "anna.schmidt@example.org")
    assert code == 0 and out == "LDS-1 assigned to anna.schmidt@example.org\n"
    code, out, _ = run(capsys, config, "outbox", "list")
    [line] = [line for line in out.splitlines() if "agent-notify" in line]
    assert "quarantined" in line
    assert "template 'agent-notify' (de/agent-notify.txt.j2:2): 'nicht_da' is undefined" in line
    code, out, _ = run(capsys, config, "outbox", "list", "--state", "quarantined")
    assert len(out.splitlines()) == 1
    code, out, _ = run(capsys, config, "status")
    assert "quarantined 1" in out.splitlines()[1]  # the outbox line
    assert (f"templates: INVALID (1 errors; serve keeps the last good ones): {templates}/"
            "de/agent-notify.txt.j2:2: 'nicht_da' is undefined") in out
