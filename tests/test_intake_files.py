"""`postdesk import`: .eml, .mbox, maildir and folders of them become inbox rows, byte-exact,
idempotently, with one clear error line per bad file and nothing else lost."""

from __future__ import annotations

import mailbox
import os
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.intake.files import ImportReport, import_paths
from storage.engine import Database
from storage.spool import list_inbox
from tests.helpers import CORPUS, needs_corpus


def mail(n: int, body: bytes = b"Der Drucker druckt nicht.\n", nl: bytes = b"\n") -> bytes:
    """A small, distinct mail; `nl` picks LF or CRLF line ends."""
    lines = [
        b"From: Erika Muster <erika.muster@example.net>",
        b"To: servicedesk@example.org",
        b"Subject: Anfrage %d \xc3\xbcber Drucker" % n,  # raw 8-bit UTF-8 on purpose
        b"Message-ID: <m%d@example.net>" % n,
        b"",
    ]
    return nl.join(lines) + nl + body.replace(b"\n", nl)


def stored(db: Database) -> list[bytes]:
    with db.session() as session:
        return sorted(row.raw or b"" for row in list_inbox(session, limit=100_000))


def test_eml_is_stored_byte_exact_and_only_once(db: Database, tmp_path: Path) -> None:
    raw = mail(1, nl=b"\r\n")
    path = tmp_path / "anfrage.eml"
    path.write_bytes(raw)

    first = import_paths(db, [path])
    second = import_paths(db, [str(path)])

    assert first == ImportReport(added=1, already_present=0, errors=[])
    assert second == ImportReport(added=0, already_present=1, errors=[])
    assert stored(db) == [raw]
    with db.session() as session:
        (row,) = list_inbox(session)
    assert (row.source, row.state, row.size) == ("import", "queued", len(raw))


def test_mbox_messages_lose_separator_and_from_quoting(db: Database, tmp_path: Path) -> None:
    originals = [
        mail(1, body=b"From here on nothing works.\nBye\n"),
        mail(2, body=b">From a quoted line\n>>From deeper\n"),
        mail(3),
    ]
    path = tmp_path / "export.mbox"
    box = mailbox.mbox(path)
    for raw in originals[::2]:  # the stdlib writes mboxo: "From " -> ">From "
        box.add(raw)
    box.flush()
    box.close()
    content = path.read_bytes()
    assert b"\n>From here on" in content
    # the second message as an mboxrd writer stores it: one more ">" on quoted From lines
    quoted = re.sub(rb"^(>*From )", rb">\1", originals[1], flags=re.MULTILINE)
    assert b"\n>>From a quoted line\n>>>From deeper\n" in quoted
    path.write_bytes(content + b"From MAILER-DAEMON Thu Jan  1 00:00:00 2024\n" + quoted + b"\n")

    report = import_paths(db, [path])

    assert report == ImportReport(added=3, already_present=0, errors=[])
    assert stored(db) == sorted(originals)


def test_crlf_mbox_keeps_messages_exact(db: Database, tmp_path: Path) -> None:
    one, two = mail(1, nl=b"\r\n"), mail(2, nl=b"\r\n")
    path = tmp_path / "windows.mbox"
    sep = b"From someone@example.net Mon Jan  1 00:00:00 2024\r\n"
    path.write_bytes(sep + one + b"\r\n" + sep + two + b"\r\n")

    assert import_paths(db, [path]).added == 2
    assert stored(db) == sorted([one, two])


def test_maildir_with_subfolder(db: Database, tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root)
    box.add(mail(1))
    seen = mailbox.MaildirMessage(mail(2))
    seen.set_subdir("cur")
    seen.add_flag("S")
    box.add(seen)
    box.add_folder("Sent").add(mail(3))

    report = import_paths(db, [root])

    assert report == ImportReport(added=3, already_present=0, errors=[])
    assert stored(db) == sorted([mail(1), mail(2), mail(3)])
    assert import_paths(db, [root]) == ImportReport(added=0, already_present=3, errors=[])


def test_directory_mixing_kinds(db: Database, tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(mail(1))
    sub = tmp_path / "archiv" / "2023"
    sub.mkdir(parents=True)
    box = mailbox.mbox(sub / "posteingang.mbox")
    box.add(mail(2))
    box.add(mail(3))
    box.close()
    mailbox.Maildir(sub / "maildir").add(mail(4))
    (sub / "Inbox").write_bytes(b"From x@example.net Mon Jan  1 00:00:00 2024\n" + mail(5))
    (tmp_path / "README.txt").write_text("not mail: skipped by name\n")
    (tmp_path / "LICENSE").write_text("Permission is hereby granted\n")
    (tmp_path / "junk.eml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "outlook.msg").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))

    report = import_paths(db, [tmp_path])

    assert report.added == 5
    assert report.already_present == 0
    assert sorted(report.errors) == [
        f"{tmp_path / 'junk.eml'}: not a mail (binary data)",
        f"{tmp_path / 'outlook.msg'}: Outlook .msg files are not supported "
        "(no permissively licensed reader); save the mail as .eml instead",
    ]
    assert stored(db) == sorted(mail(n) for n in range(1, 6))


def test_bad_paths_are_reported_and_the_rest_imported(db: Database, tmp_path: Path) -> None:
    good = tmp_path / "good.eml"
    good.write_bytes(mail(1))
    junk = tmp_path / "image.bin"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100))
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    prose = tmp_path / "notes.eml"
    prose.write_bytes(b"Just some words\nwithout any header line\n")
    not_mbox = tmp_path / "fake.mbox"
    not_mbox.write_bytes(b"\x00\x01binary")
    missing = tmp_path / "nowhere" / "gone.eml"

    report = import_paths(db, [junk, missing, empty, good, prose, not_mbox])

    assert report.added == 1
    assert report.errors == [
        f"{junk}: not a mail (binary data)",
        f"{missing}: no such file or directory",
        f"{empty}: empty, no mail in it",
        f"{prose}: not a mail (no header lines)",
        f"{not_mbox}: not an mbox file (it does not start with a 'From ' line)",
    ]
    assert stored(db) == [mail(1)]


def test_special_files_in_a_tree_are_never_opened(db: Database, tmp_path: Path) -> None:
    (tmp_path / "ok.eml").write_bytes(mail(1))
    os.mkfifo(tmp_path / "pipe")  # suffix-less: would be sniffed, and reading it would block
    os.mkfifo(tmp_path / "pipe.eml")
    (tmp_path / "gone.mbox").symlink_to(tmp_path / "nowhere.mbox")
    reports: list[ImportReport] = []
    worker = threading.Thread(
        target=lambda: reports.append(import_paths(db, [tmp_path])), daemon=True
    )
    worker.start()
    worker.join(timeout=10)

    assert not worker.is_alive(), "import blocked on a FIFO"
    assert reports[0].added == 1
    assert reports[0].errors == [
        f"{tmp_path / 'gone.mbox'}: not a regular file (broken link, FIFO or device)",
        f"{tmp_path / 'pipe.eml'}: not a regular file (broken link, FIFO or device)",
    ]


def test_bad_message_inside_mbox_is_named_by_position(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "mixed.mbox"
    box = mailbox.mbox(path)
    box.add(mail(1))
    box.add(b"\x00\x01\x02 Geheimer Inhalt\n\nbody\n")
    box.add(mail(3))
    box.close()

    report = import_paths(db, [path])

    assert report.added == 2
    assert report.errors == [f"{path}: message 2: not a mail (binary data)"]
    assert "Geheim" not in report.errors[0]


def test_same_mail_in_several_files_and_batches_is_stored_once(
    db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "big.mbox"
    box = mailbox.mbox(path)
    for n in range(10):
        box.add(mail(n))
    box.add(mail(4))  # a copy inside the same file
    box.close()
    (tmp_path / "copy.eml").write_bytes(mail(7))

    report = import_paths(db, [path, tmp_path / "copy.eml"], batch_size=3)

    assert report == ImportReport(added=10, already_present=2, errors=[])
    assert stored(db) == sorted(mail(n) for n in range(10))


def _poison(db: Database, condition: str) -> None:
    """A real database failure: a SQLite trigger that refuses some inserts."""
    with db.engine.begin() as conn:
        conn.execute(text(
            "CREATE TRIGGER poison BEFORE INSERT ON inbox "
            f"WHEN {condition} BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
        ))


def test_failed_batch_is_retried_one_by_one(db: Database, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("the failure is injected with a SQLite trigger")
    _poison(db, "instr(NEW.raw, CAST('Anfrage 2 ' AS BLOB)) > 0")
    path = tmp_path / "five.mbox"
    box = mailbox.mbox(path)
    for n in range(1, 6):
        box.add(mail(n))
    box.close()

    report = import_paths(db, [path], batch_size=4)

    assert report.added == 4
    assert report.errors == [
        f"{path}: message 2: not stored (IntegrityError: refused by test trigger)"
    ]
    assert stored(db) == sorted(mail(n) for n in (1, 3, 4, 5))


def test_database_refusing_everything_stops_the_import(db: Database, tmp_path: Path) -> None:
    if not db.is_sqlite:
        pytest.skip("the failure is injected with a SQLite trigger")
    _poison(db, "1")
    first, second = tmp_path / "1.eml", tmp_path / "2.eml"
    first.write_bytes(mail(1))
    second.write_bytes(mail(2))

    report = import_paths(db, [first, second], batch_size=1)

    assert report.added == 0
    assert report.errors == [
        f"{first}: not stored (IntegrityError: refused by test trigger)",
        f"import stopped after {first}: the database stores nothing; "
        "messages from there on were not imported (importing again is safe)",
    ]


@needs_corpus
def test_whole_shared_corpus_is_imported(db: Database) -> None:
    messages = CORPUS / "messages"
    files = [
        p for p in messages.rglob("*")
        if p.is_file() and p.name not in ("LICENSE", "README", "README.md")
    ]
    assert files, "corpus missing"

    report = import_paths(db, [messages])

    assert report == ImportReport(added=len(files), already_present=0, errors=[])
    assert len(stored(db)) == len(files)
    assert sorted(p.read_bytes() for p in files) == stored(db)
