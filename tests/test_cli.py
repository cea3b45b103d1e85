"""The CLI contract: each command, exit codes 0/1/2 with one-line errors, the --json shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from tests.helpers import make_mail, write_config

TICKET_KEYS = {
    "ref",
    "subject",
    "status",
    "queue",
    "owner",
    "priority",
    "requester",
    "created_at",
    "updated_at",
    "tags",
    "sla",  # SLA due moments and outcomes (issue 16)
}
ARTICLE_KEYS = {
    "kind",
    "direction",
    "from",
    "to",
    "subject",
    "body",
    "message_id",
    "created_at",
    "attachments",
}


@pytest.fixture
def config(tmp_path: Path, settings: Settings) -> Path:
    return write_config(tmp_path / "config.yaml", settings)


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_import_list_show(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, config, "init")[0] == 0
    mail = make_mail(subject="Monitor flackert")
    mail.add_attachment(
        b"%PDF-1.4 test", maintype="application", subtype="pdf", filename="Fehlerbild.pdf"
    )
    (tmp_path / "one.eml").write_bytes(mail.as_bytes())
    code, out, _ = run(capsys, config, "import", str(tmp_path / "one.eml"))
    assert code == 0 and "imported 1 new" in out and "1 processed" in out

    code, out, _ = run(capsys, config, "tickets", "list", "--json")
    [summary] = json.loads(out)
    assert code == 0 and set(summary) == TICKET_KEYS and summary["ref"] == "LDS-1"

    code, out, _ = run(capsys, config, "tickets", "show", "lds-1", "--json")
    detail = json.loads(out)
    assert set(detail) == TICKET_KEYS | {"articles", "events"}
    first = detail["articles"][0]
    assert set(first) == ARTICLE_KEYS
    assert (first["kind"], first["direction"]) == ("requester", "in")
    assert first["message_id"] == mail["Message-ID"]
    [attachment] = first["attachments"]
    assert attachment["filename"] == "Fehlerbild.pdf" and attachment["size"] == 13
    assert [a["kind"] for a in detail["articles"]] == ["requester", "system"]  # + acknowledgement

    code, out, _ = run(capsys, config, "tickets", "show", "LDS-1")
    assert code == 0 and "Monitor flackert" in out and "Fehlerbild.pdf" in out
    code, out, _ = run(capsys, config, "tickets", "list", "--status", "closed")
    assert code == 0 and out == "no tickets match these filters\n"


def test_inbox_outbox_and_status(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.eml").write_bytes(make_mail().as_bytes())
    run(capsys, config, "import", str(tmp_path / "a.eml"))
    code, out, _ = run(capsys, config, "inbox", "list")
    assert code == 0 and " done " in out
    code, out, _ = run(capsys, config, "outbox", "list", "--state", "queued")
    assert code == 0 and "requester-received" in out
    code, out, _ = run(capsys, config, "status")
    assert code == 0 and "done 1" in out and "queued 2" in out  # acknowledgement + agent


def test_user_errors_exit_1_with_one_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, config, "init")
    code, out, err = run(capsys, config, "tickets", "show", "LDS-999")
    assert (code, out, err) == (1, "", "postdesk: error: no ticket LDS-999\n")
    code, _, err = run(capsys, config, "inbox", "retry", "42")
    assert code == 1 and err.count("\n") == 1 and "not quarantined" in err

    broken = tmp_path / "broken.yaml"
    broken.write_text("smtp:\n  port: nine\n")
    code = main(["--config", str(broken), "status"])
    _, err = capsys.readouterr()
    assert code == 1 and "smtp.port" in err and "Traceback" not in err
    code = main(["--config", str(tmp_path / "missing.yaml"), "status"])
    _, err = capsys.readouterr()
    assert code == 1 and "config file not found" in err


def test_usage_errors_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "tickets", "frobnicate"]) == 2
    assert main(["--config", str(config), "inbox", "retry", "not-a-number"]) == 2
    capsys.readouterr()


def test_admin_actions_are_audited_and_assignment_notifies_the_agent(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.eml").write_bytes(make_mail(subject="Frage zur Rechnung").as_bytes())
    run(capsys, config, "import", str(tmp_path / "a.eml"))
    assert run(capsys, config, "tickets", "assign", "LDS-1", "ben.mueller@example.org")[0] == 0
    assert run(capsys, config, "tickets", "status", "LDS-1", "pending")[0] == 0
    assert run(capsys, config, "tickets", "note", "LDS-1", "--text", "Rückruf vereinbart")[0] == 0
    code, out, _ = run(capsys, config, "tickets", "show", "LDS-1", "--json")
    detail = json.loads(out)
    assert (detail["owner"], detail["status"]) == ("ben.mueller@example.org", "pending")
    assert detail["articles"][-1]["kind"] == "note"
    assert detail["articles"][-1]["body"] == "Rückruf vereinbart"
    code, out, _ = run(capsys, config, "outbox", "list")
    assert "agent-notify" in out

    code, _, err = run(capsys, config, "tickets", "assign", "LDS-1", "nobody@example.org")
    assert code == 1 and "is not an agent" in err
    code, _, err = run(capsys, config, "tickets", "status", "LDS-1", "done")
    assert code == 1 and "unknown status" in err


def test_read_commands_on_a_database_not_set_up_say_so_in_one_line(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    for command in (["status"], ["tickets", "list"], ["inbox", "list"]):
        code, out, err = run(capsys, config, *command)
        assert (code, out) == (1, "")
        assert err == "postdesk: error: the database is not set up: run `postdesk init` first\n"


def test_listings_do_not_decrypt_mail_so_a_changed_secret_still_lists(
    capsys: pytest.CaptureFixture[str],
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POSTDESK_SECRET_KEY", "a" * 40)
    assert run(capsys, config, "init")[0] == 0
    (tmp_path / "a.eml").write_bytes(make_mail(subject="Drucker").as_bytes())
    assert run(capsys, config, "import", "--no-process", str(tmp_path / "a.eml"))[0] == 0
    monkeypatch.setenv("POSTDESK_SECRET_KEY", "b" * 40)  # a rotation the rows were not made for
    code, out, err = run(capsys, config, "inbox", "list")
    assert (code, err) == (0, "") and "queued" in out
    assert run(capsys, config, "status")[0] == 0
