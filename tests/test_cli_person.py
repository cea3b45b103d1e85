"""The CLI as a person at a terminal meets it: lists that say when they are cut or empty,
filters that refuse unknown values, German status words, local times, events and attachments
on `tickets show`, quiet logs, and notes that are redacted like every stored mail."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.config import Settings
from storage.engine import Database
from storage.models import Article, Event, Ticket
from storage.tickets import TicketStore
from tests.helpers import make_mail

Run = Callable[..., tuple[int, str, str]]
NOON_UTC = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def write_config(path: Path, settings: Settings, **overrides: Any) -> Path:
    data = settings.model_dump(mode="json")
    data.update(overrides)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def config(tmp_path: Path, settings: Settings) -> Path:
    """Logging at INFO, as in the shipped example config: the CLI must quiet it itself."""
    return write_config(tmp_path / "config.yaml", settings, log_level="INFO")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], config: Path) -> Run:
    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert invoke("init")[0] == 0
    return invoke


def add_tickets(db: Database, count: int, **fields: Any) -> None:
    """`count` tickets straight into the database (the pipeline is not what is tested here)."""
    with db.session() as session:
        store = TicketStore(session)
        for number in range(count):
            store.create_ticket(
                prefix="LDS",
                subject=fields.get("subject", f"Anliegen {number}"),
                requester="erika.muster@example.net",
                language="de",
                conversation=None,
                now=fields.get("now", NOON_UTC + timedelta(minutes=number)),
                queue=fields.get("queue"),
                owner=fields.get("owner"),
            )


def import_mail(run: Run, tmp_path: Path, mail: Any, name: str = "one.eml") -> None:
    (tmp_path / name).write_bytes(mail.as_bytes())
    code, out, _ = run("import", str(tmp_path / name))
    assert code == 0 and "1 processed" in out, out


# --- defect 7: lists that stop silently, empty results, unknown filter values -------------------


def test_list_is_cut_at_the_limit_with_a_footer_and_never_silently(
    run: Run, db: Database
) -> None:
    add_tickets(db, 503)
    code, out, _ = run("tickets", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("REF")
    assert len(lines) == 1 + 50 + 1 and lines[1].startswith("LDS-503 ")
    assert lines[-1] == "453 more — use --limit/--all"

    code, out, _ = run("tickets", "list", "--all")
    assert len(out.splitlines()) == 1 + 503 and "more —" not in out  # no cap at 500
    code, out, _ = run("tickets", "list", "--limit", "503")
    assert len(out.splitlines()) == 1 + 503 and "more —" not in out

    code, out, err = run("tickets", "list", "--json", "--limit", "3")
    assert [row["ref"] for row in json.loads(out)] == ["LDS-503", "LDS-502", "LDS-501"]
    assert err == "500 more — use --limit/--all\n"  # stdout stays one JSON document


def test_an_empty_result_says_so_and_json_stays_an_empty_list(run: Run, db: Database) -> None:
    code, out, _ = run("tickets", "list")
    assert (code, out) == (0, "no tickets yet\n")
    add_tickets(db, 1)
    code, out, _ = run("tickets", "list", "--status", "closed")
    assert (code, out) == (0, "no tickets match these filters\n")
    code, out, _ = run("tickets", "list", "--status", "closed", "--json")
    assert (code, json.loads(out)) == (0, [])
    out = run("inbox", "list", "--state", "quarantined")[1]
    assert out == "no quarantined mails in the inbox\n"
    assert run("outbox", "list")[1] == "no mails in the outbox\n"


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (("tickets", "list", "--status", "offn"), "new, open, pending, resolved, closed"),
        (("tickets", "status", "LDS-1", "done"), "new, open, pending, resolved, closed"),
        (("inbox", "list", "--state", "foo"), "queued, processing, done, quarantined"),
        (("outbox", "list", "--state", "foo"), "queued, sending, sent, failed"),
    ],
)
def test_unknown_filter_values_are_one_line_errors_naming_the_allowed_ones(
    run: Run, db: Database, args: tuple[str, ...], allowed: str
) -> None:
    add_tickets(db, 1)
    code, out, err = run(*args)
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert err.startswith("postdesk: error: unknown ") and allowed in err


def test_german_status_words_as_in_the_mail_commands(run: Run, db: Database) -> None:
    add_tickets(db, 2)
    assert run("tickets", "status", "LDS-1", "wartet")[1] == "LDS-1 is pending\n"
    assert run("tickets", "status", "LDS-2", "Erledigt")[1] == "LDS-2 is resolved\n"
    out = run("tickets", "list", "--status", "warten", "--json")[1]
    assert [row["ref"] for row in json.loads(out)] == ["LDS-1"]
    out = run("tickets", "list", "--status", "erledigt", "--json")[1]
    assert [row["ref"] for row in json.loads(out)] == ["LDS-2"]
    assert json.loads(run("tickets", "list", "--status", "offen", "--json")[1]) == []


def test_owner_and_search_filters(run: Run, db: Database, tmp_path: Path) -> None:
    add_tickets(db, 1, subject="VPN bricht ab", owner="anna.schmidt@example.org")
    add_tickets(db, 1, subject="Frage")
    import_mail(run, tmp_path, make_mail(subject="Bitte prüfen",
                                         body="Seit heute Druckerausfall im 3. OG; 100% sicher.\n"))

    def refs(*args: str) -> list[str]:
        code, out, _ = run("tickets", "list", "--json", *args)
        assert code == 0
        return [row["ref"] for row in json.loads(out)]

    assert refs("--owner", "Anna.Schmidt@example.org") == ["LDS-1"]
    unassigned = refs("--owner", "none")  # LDS-3's owner depends on the rules and the hour
    assert "LDS-2" in unassigned and "LDS-1" not in unassigned
    assert refs("--search", "vpn") == ["LDS-1"]  # subject, any case
    assert refs("--search", "DRUCKER") == ["LDS-3"]  # inside a word of the stored body
    assert refs("--search", "100%") == ["LDS-3"] and refs("--search", "0%s") == []  # literal %
    assert refs("--search", "drucker", "--owner", "nobody@example.org") == []


def test_times_are_shown_in_the_configured_zone_to_the_minute(
    tmp_path: Path, settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    service = {**settings.service.model_dump(mode="json"), "timezone": "America/New_York"}
    config = write_config(tmp_path / "ny.yaml", settings, service=service)
    add_tickets(db, 1, now=datetime(2026, 1, 15, 12, 0, 42, tzinfo=UTC))
    assert main(["--config", str(config), "tickets", "list"]) == 0
    out = capsys.readouterr().out
    assert "2026-01-15 07:00  Anliegen 0" in out and ":42" not in out


# --- tickets show: events and attachments; tickets attachment ------------------------------------


def test_show_lists_events_and_numbered_attachments_and_one_can_be_written_out(
    run: Run, db: Database, tmp_path: Path
) -> None:
    mail = make_mail(subject="Monitor flackert")
    mail.add_attachment(b"%PDF-1.4 one", maintype="application", subtype="pdf",
                        filename="Fehlerbild.pdf")
    mail.add_attachment(b"\x89PNG two", maintype="image", subtype="png", filename="foto.png")
    import_mail(run, tmp_path, mail)
    assert run("tickets", "assign", "LDS-1", "ben.mueller@example.org")[0] == 0

    code, out, _ = run("tickets", "show", "LDS-1")
    assert code == 0
    assert "[attachment 1] Fehlerbild.pdf (application/pdf, 12 B)" in out
    assert "[attachment 2] foto.png (image/png, 8 B)" in out
    events = out.split("--- events\n", 1)[1]
    assert " created " in events and " routed " in events
    assert "assigned" in events and "new=ben.mueller@example.org" in events

    target = tmp_path / "out.png"
    code, out, _ = run("tickets", "attachment", "LDS-1", "2", "-o", str(target))
    assert code == 0 and target.read_bytes() == b"\x89PNG two"
    code, out, _ = run("tickets", "attachment", "LDS-1", "1")  # stdout is captured, not a tty
    assert code == 0 and out == "%PDF-1.4 one"
    code, _, err = run("tickets", "attachment", "LDS-1", "3", "-o", str(target))
    assert code == 1 and "has 2 attachment(s), no 3" in err

    detail = json.loads(run("tickets", "show", "LDS-1", "--json")[1])
    exported = [e for e in detail["events"] if e["kind"] == "attachment-exported"]
    assert [e["detail"]["attachment"] for e in exported] == [2, 1]
    assert all(e["actor"].startswith("cli:") and "filename" not in e["detail"] for e in exported)


def test_outbox_list_shows_ticket_and_recipient(run: Run, tmp_path: Path) -> None:
    import_mail(run, tmp_path, make_mail())
    code, out, _ = run("outbox", "list", "--state", "queued")
    line = next(x for x in out.splitlines() if "requester-received" in x)
    assert code == 0 and " LDS-1 " in line and "erika.muster@example.net" in line


# --- version, quiet logs, not-configured mailboxes ------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"postdesk {version('postdesk')}\n"


def test_commands_log_info_only_with_verbose(run: Run, config: Path, tmp_path: Path) -> None:
    import_mail(run, tmp_path, make_mail())
    code, out, err = run("tickets", "assign", "LDS-1", "ben.mueller@example.org")
    assert (code, out, err) == (0, "LDS-1 assigned to ben.mueller@example.org\n", "")
    code, _, err = run("-v", "tickets", "assign", "LDS-1", "anna.schmidt@example.org")
    assert code == 0 and " INFO mail.queued ticket=LDS-1" in err


@pytest.mark.parametrize("section", ["exchange", "graph"])
def test_mailbox_check_without_its_section_says_not_configured_once(
    run: Run, section: str
) -> None:
    code, out, err = run(section, "check")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"postdesk: error: {section}: not configured (add a")


# --- defect 10: CLI notes are redacted like agent notes -----------------------------------------


def test_a_cli_note_is_redacted_with_the_tickets_placeholders(
    run: Run, db: Database, tmp_path: Path
) -> None:
    body = "Guten Tag,\nmein Drucker ist kaputt.\n\nViele Grüße\nErika Musterfrau\n"
    import_mail(run, tmp_path, make_mail(sender="Erika Musterfrau <e.m@example.net>", body=body))
    note = "Rückruf von Frau Erika Musterfrau, geb. 12.03.1980, Tel. 030 12345678."
    code, out, _ = run("tickets", "note", "LDS-1", "--text", note)
    assert (code, out) == (0, "note added to LDS-1\n")

    with db.reading() as session:
        bodies = [a.body for a in session.query(Article).order_by(Article.id)]
        ticket = session.query(Ticket).one()
        note_event = session.query(Event).filter_by(kind="note").one()
        stored = repr((bodies, ticket.pseudonyms, note_event.detail))
    for personal in ("Musterfrau", "12.03.1980", "12345678"):
        assert personal not in stored
    requester_body, note_body = bodies[0], bodies[-1]
    assert "[NAME-1]" in requester_body and "[NAME-1]" in note_body  # the same person
    assert "[GEBURTSDATUM]" in note_body
    assert note_event.detail.get("PERSON", 0) >= 1
