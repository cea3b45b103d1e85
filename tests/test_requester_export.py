"""`postdesk requester export` (DSGVO Art. 15) on tickets made by the running service from real
SMTP mail: two requesters, one address inside the other (`karl.berg@…` in `ute.karl.berg@…`);
the ZIP holds all of one requester's tickets with byte-identical attachments and their own
originals, and nothing of the other's (the ZIP is scanned for her address, name, subject and
attachment bytes), also where she copied him in on her ticket. The export is audited without
the address; an existing file is kept unless --force."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.cli import main
from storage.models import Event, InboxItem, OutboxItem, Participant
from tests.helpers import make_mail, send, tickets, wait_for, write_config

KARL, KARL_NAME = "karl.berg@buerger.example", "Karl Berg"
UTE, UTE_NAME = "ute.karl.berg@buerger.example", "Ute Zschocke"  # KARL is a substring of UTE
UTE_SUBJECT = "Widerspruch Bescheid Grundsteuer"
KARL_FILES = {"scan.bin": os.urandom(3000), "foto.bin": os.urandom(1500)}
UTE_FILE = os.urandom(2500)

Run = Callable[..., tuple[int, str, str]]


def mail(sender: str, subject: str, files: dict[str, bytes], cc: str | None = None
         ) -> EmailMessage:
    msg = make_mail(sender=sender, subject=subject,
                    body="Guten Tag,\nanbei die Unterlagen.\nMit freundlichen Grüßen\n",
                    headers={"Cc": cc} if cc else None)
    for name, data in files.items():
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg


def settled(app: App, count: int) -> bool:
    with app.db.session() as session:
        inbox = list(session.scalars(select(InboxItem.state)))
        outbox = set(session.scalars(select(OutboxItem.state)))
    return len(inbox) == count and set(inbox) <= {"done"} and outbox <= {"sent"}


def deliver(app: App, *messages: EmailMessage) -> None:
    for message in messages:
        send(app.settings, message)
    wait_for(lambda: settled(app, len(messages)), timeout=240)


@pytest.fixture
def run(tmp_path: Path, service: App, capsys: pytest.CaptureFixture[str]) -> Run:
    config = write_config(tmp_path / "config.yaml", service.settings)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def archive(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as opened:
        return {name: opened.read(name) for name in opened.namelist()}


def exported(files: dict[str, bytes]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files["auskunft.json"])
    return data


def assert_nothing_of_ute(files: dict[str, bytes]) -> None:
    for name, content in files.items():
        for needle in (UTE.encode(), UTE_NAME.encode(), b"Zschocke", UTE_FILE[:64]):
            assert needle not in content, (name, needle[:20])
        assert b"ute.karl" not in content.lower(), name


def test_the_zip_holds_all_of_one_requesters_tickets_and_nothing_of_the_other(
    service: App, run: Run, tmp_path: Path
) -> None:
    deliver(
        service,
        mail(f"{KARL_NAME} <{KARL}>", "Antrag Wohngeld", {"scan.bin": KARL_FILES["scan.bin"]}),
        mail(f"{UTE_NAME} <{UTE}>", UTE_SUBJECT, {"bescheid.bin": UTE_FILE}),
        mail(f"{KARL_NAME} <{KARL.upper()}>", "Nachreichung", {"foto.bin": KARL_FILES["foto.bin"]}),
    )
    refs = {t.requester: t.ref for t in tickets(service)}
    karls = sorted(t.ref for t in tickets(service) if t.requester == KARL)
    assert len(karls) == 2 and refs[UTE] not in karls

    out = tmp_path / "auskunft.zip"
    code, said, err = run("requester", "export", f"{KARL_NAME} <Karl.Berg@Buerger.Example>",
                          "-o", str(out))
    assert code == 0, err
    assert "2 ticket(s)" in said and "2 attachment(s)" in said and "2 original(s)" in said
    assert KARL not in err
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    files = archive(out)

    data = exported(files)
    assert data["address"] == KARL
    assert sorted(t["ref"] for t in data["tickets"]) == karls
    assert {t["role"] for t in data["tickets"]} == {"requester"}
    stored = {f"{a['filename']}": files[a["file"]] for t in data["tickets"]
              for article in t["articles"] for a in article.get("attachments", [])}
    assert stored == KARL_FILES  # byte-identical, decrypted
    originals = [name for name in files if "/originale/" in name]
    assert len(originals) == 2 and all(b"Antrag Wohngeld" in files[n]
                                       or b"Nachreichung" in files[n] for n in originals)
    for ticket in data["tickets"]:
        assert ticket["events"] and ticket["participants"]
        assert any(a["kind"] == "requester" and a["content"] == "stored"
                   for a in ticket["articles"])
    readme = files["README.txt"].decode()
    assert "Art. 15 DSGVO" in readme and "geschwärzt" in readme and "English" in readme
    assert refs[UTE] not in files["auskunft.json"].decode()
    assert UTE_SUBJECT.encode() not in b"".join(files.values())
    assert_nothing_of_ute(files)

    # audited on each ticket, by the CLI user, with a keyed hash and counts: no address
    with service.db.session() as session:
        audit = list(session.scalars(select(Event).where(Event.kind == "requester-exported")))
        assert len(audit) == 2 and {e.actor.split(":")[0] for e in audit} == {"cli"}
        assert {e.detail["tickets"] for e in audit} == {2}
        assert len({e.detail["subject"] for e in audit}) == 1
        assert all("berg" not in json.dumps(e.detail).lower() for e in audit)


def test_a_ticket_where_the_person_is_only_copied_in_shows_their_part_only(
    service: App, run: Run, tmp_path: Path
) -> None:
    named = mail(f"{UTE_NAME} <{UTE}>", "Frage", {})
    named.replace_header("To", f"servicedesk@example.org, {KARL_NAME} <{KARL}>")
    send(service.settings, mail(f"{UTE_NAME} <{UTE}>", UTE_SUBJECT, {"bescheid.bin": UTE_FILE},
                                cc=f"{KARL_NAME} <{KARL}>"))
    send(service.settings, named, rcpt=["servicedesk@example.org"])  # he got it from her
    wait_for(lambda: settled(service, 2), timeout=240)
    with service.db.session() as session:
        assert session.scalar(select(Participant.role).where(Participant.email == KARL)) == "cc"
    out = tmp_path / "karl.zip"
    code, _, err = run("requester", "export", KARL, "-o", str(out))
    assert code == 0, err
    files = archive(out)
    ticket, mentioned = exported(files)["tickets"]
    assert ticket["role"] == "cc" and mentioned["role"] == "mentioned"
    assert {a["content"] for a in mentioned["articles"]} == {"withheld"}
    assert "events" not in ticket and "participants" not in ticket
    articles = ticket["articles"]  # her mail, and the acknowledgement she (and he) got
    assert {a["content"] for a in articles} == {"withheld"}
    assert articles[0]["kind"] == "requester" and articles[0]["attachments"] == 1
    assert not {"body", "from", "to", "subject"} & {key for a in articles for key in a}
    assert not [name for name in files if "/anhaenge/" in name or "/originale/" in name]
    files.pop("auskunft.json")  # holds her ticket's subject (Karl got that mail), nothing else
    assert_nothing_of_ute(files)
    text = json.dumps([ticket, mentioned]).replace(UTE_SUBJECT, "")
    assert_nothing_of_ute({"json": text.encode()})


def test_an_existing_file_is_kept_unless_forced_and_errors_are_one_line(
    service: App, run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "auskunft.zip"
    out.write_bytes(b"keep me")
    code, _, err = run("requester", "export", KARL, "-o", str(out))
    assert code == 1 and "--force" in err and out.read_bytes() == b"keep me"
    code, _, err = run("requester", "export", "kein adresse", "-o", str(tmp_path / "x.zip"))
    assert code == 1 and "not an e-mail address" in err and "kein" not in err
    code, _, err = run("requester", "export", KARL, "-o", str(tmp_path / "no" / "x.zip"))
    assert code == 1 and "folder does not exist" in err
    assert not list(tmp_path.glob(".export-*"))

    # nothing stored: still an answer (an empty export), audited without a ticket
    code, said, err = run("requester", "export", KARL, "-o", str(out), "--force")
    assert code == 0, err
    assert "0 ticket(s)" in said
    assert exported(archive(out))["tickets"] == []
    with service.db.session() as session:
        [event] = session.scalars(select(Event).where(Event.kind == "requester-exported"))
        assert event.ticket_id is None and event.detail["tickets"] == 0
