"""Attachments through the real pipeline: encrypted at rest under a keyed address (both blob
stores), their text read (PDF, DOCX, ODT, HTML, plain), redacted with the ticket's
placeholders, shown by `tickets show` and found by `tickets list --search`; files that cannot be
read are flagged, images only kept encrypted; the readers' caps; reading in the prepare
process."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader, PdfWriter
from sqlalchemy import select

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.mail import attachtext
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline.context import IncomingMail
from gateway.pipeline.prepare import ProcessPreparer, prepare
from storage import spool
from storage.models import Attachment, Blob, utcnow
from storage.sealing import MARKER
from tests.helpers import make_mail, write_config

NAME, BIRTH = "Mareike Sommerfeld", "14.07.1988"
PDF_LINES = ["Krankmeldung Arbeitsunfaehigkeitsbescheinigung",
             f"fuer Frau {NAME} (geb. {BIRTH})", "arbeitsunfaehig bis 30.11.2025"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def pdf(lines: list[str]) -> bytes:
    """A one-page PDF with `lines` in Helvetica, written by hand (ASCII text)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({line}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return out


@functools.cache  # pypdf draws a random file id: the same bytes for every mail of a test
def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(PDF_LINES))))
    writer.encrypt("nur-fuer-die-personalstelle")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def word(paragraphs: list[str]) -> bytes:
    return _word(tuple(paragraphs))


@functools.cache  # python-docx stamps each zip member with the time: the same bytes per test run
def _word(paragraphs: tuple[str, ...]) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def odt(paragraphs: list[str]) -> bytes:
    """A minimal OpenDocument text (mimetype + content.xml), as LibreOffice's would read."""
    ns = 'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" ' \
         'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    body = "".join(f"<text:p>{p}</text:p>" for p in paragraphs)
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
           f"<office:body><office:text>{body}</office:text></office:body>"
           "</office:document-content>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", xml)
    return out.getvalue()


DOCX_TEXT = [f"Lebenslauf von {NAME}", f"Geburtsdatum: {BIRTH}",
             "Ausbildung: Verwaltungsfachwirtin"]


def mail_with_attachments() -> bytes:
    msg = make_mail(
        sender="Jens Wagner <jens.wagner@example.net>",
        subject="Unterlagen",
        body=f"Guten Tag,\nanbei die Unterlagen zu Frau {NAME}.\nViele Grüße\n",
    )
    msg.add_attachment(pdf(PDF_LINES), maintype="application", subtype="pdf",
                       filename="krankmeldung.pdf")
    msg.add_attachment(word(DOCX_TEXT), maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                       filename="lebenslauf.docx")
    msg.add_attachment(encrypted_pdf(), maintype="application", subtype="pdf",
                       filename="geschuetzt.pdf")
    msg.add_attachment(b"PK\x03\x04 this is no zip at all", maintype="application",
                       subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                       filename="kaputt.docx")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="ausweis.png")
    return msg.as_bytes()


@pytest.fixture(params=["filesystem", "database"])
def app(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> Iterator[App]:
    application = App.build(make_settings(blobs={"store": request.param}),
                            sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def deliver(app: App, raw: bytes, key: str = "1") -> None:
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key=key, raw=raw, envelope_from="jens.wagner@example.net")])
    [outcome] = app.worker.drain()
    assert outcome.state == "done"


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    code = main(["--config", str(config), *args])
    return code, capsys.readouterr().out


def stored_blobs(app: App) -> dict[str, bytes]:
    """Every stored attachment blob as it lies on disk or in the database, by address."""
    if app.settings.blobs.store == "database":
        with app.db.reading() as session:
            return {row.sha256: bytes(row.data) for row in session.scalars(select(Blob))}
    root = app.settings.data_dir / "blobs"
    return {path.name: path.read_bytes() for path in root.glob("??/??/*")}


def test_attachments_are_sealed_read_redacted_shown_and_found(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = write_config(tmp_path / "config.yaml", app.settings)
    caplog.set_level(logging.DEBUG)
    deliver(app, mail_with_attachments())
    logged = caplog.text + capsys.readouterr().err
    assert logged and "Sommerfeld" not in logged and BIRTH not in logged
    assert "Krankmeldung" not in logged and "Verwaltungsfachwirtin" not in logged

    # at rest: sealed, under an address that is not the sha256 of the content
    blobs = stored_blobs(app)
    assert len(blobs) == 5
    with app.db.reading() as session:
        rows = list(session.scalars(select(Attachment).order_by(Attachment.id)))
        addresses = [row.address for row in rows]
        contents = [hashlib.sha256(app.blobs.get(a)).hexdigest() for a in addresses]
        assert [row.sha256 for row in rows] == contents
    assert set(addresses) == set(blobs) and not set(contents) & set(blobs)
    for stored in blobs.values():
        assert stored.startswith(MARKER)
        for clear in (b"Sommerfeld", BIRTH.encode(), b"Krankmeldung", b"Lebenslauf", b"%PDF",
                      b"\x89PNG", b"word/document.xml"):
            assert clear not in stored

    code, out = run(capsys, config, "tickets", "show", "LDS-1", "--json")
    assert code == 0
    article = json.loads(out)["articles"][0]
    states = {a["filename"]: a["text_state"] for a in article["attachments"]}
    assert states == {"krankmeldung.pdf": "extracted", "lebenslauf.docx": "extracted",
                      "geschuetzt.pdf": "unreadable", "kaputt.docx": "unreadable",
                      "ausweis.png": "none"}
    texts = {a["filename"]: a["text"] for a in article["attachments"]}
    assert "Frau [NAME-1] (geb. [GEBURTSDATUM])" in texts["krankmeldung.pdf"]
    assert "Krankmeldung" in texts["krankmeldung.pdf"]
    assert "arbeitsunfaehig bis 30.11.2025" in texts["krankmeldung.pdf"]  # not a birth date
    assert "Lebenslauf von [NAME-1]" in texts["lebenslauf.docx"]
    assert BIRTH not in texts["lebenslauf.docx"]
    assert "Verwaltungsfachwirtin" in texts["lebenslauf.docx"]
    assert "Frau [NAME-1]" in article["body"]  # the same person, the same placeholder
    assert texts["geschuetzt.pdf"] is None and texts["ausweis.png"] is None
    everything = json.dumps(article, ensure_ascii=False)
    assert "Sommerfeld" not in everything and BIRTH not in everything

    code, out = run(capsys, config, "tickets", "show", "LDS-1")
    assert code == 0
    assert "    | fuer Frau [NAME-1] (geb. [GEBURTSDATUM])" in out
    assert "geschuetzt.pdf (application/pdf" in out and "text: unreadable" in out

    code, out = run(capsys, config, "tickets", "list", "--search", "verwaltungsfachwirtin")
    assert code == 0 and "LDS-1" in out  # a word only in the DOCX
    code, out = run(capsys, config, "tickets", "list", "--search", "Sommerfeld")
    assert code == 0 and "LDS-1" not in out

    exported = tmp_path / "out.pdf"
    code, _ = run(capsys, config, "tickets", "attachment", "LDS-1", "1", "-o", str(exported))
    assert code == 0 and exported.read_bytes() == pdf(PDF_LINES)  # byte-exact, opened

    if app.settings.database.url.startswith("sqlite"):
        database = Path(app.settings.database.url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*")
                       if p.is_file())
        assert b"Sommerfeld" not in raw and BIRTH.encode() not in raw


def test_the_same_file_twice_is_stored_once(app: App) -> None:
    deliver(app, mail_with_attachments(), "1")
    deliver(app, mail_with_attachments(), "2")
    assert len(stored_blobs(app)) == 5


def test_without_extraction_attachments_are_still_sealed(
    make_settings: Callable[..., Settings],
) -> None:
    app = App.build(make_settings(attachment_text={"enabled": False}), sender=RecordingSender())
    app.init_database()
    try:
        deliver(app, mail_with_attachments())
        with app.db.reading() as session:
            assert {row.text_state for row in session.scalars(select(Attachment))} == {"none"}
        assert all(v.startswith(MARKER) for v in stored_blobs(app).values())
    finally:
        app.db.dispose()


# --- the readers --------------------------------------------------------------------------


def test_each_format_is_read() -> None:
    assert attachtext.extract("a.pdf", "application/pdf", pdf(PDF_LINES))[1] == "\n".join(PDF_LINES)
    state, text = attachtext.extract("cv.docx", "application/octet-stream", word(DOCX_TEXT))
    assert state == "extracted" and text is not None and DOCX_TEXT[1] in text
    state, text = attachtext.extract("brief.odt", "application/vnd.oasis.opendocument.text",
                                     odt(["Sehr geehrte Frau Sommerfeld,", "anbei der Bescheid."]))
    assert (state, text) == ("extracted", "Sehr geehrte Frau Sommerfeld,\nanbei der Bescheid.")
    assert attachtext.extract("x.html", "text/html", b"<p>Hallo <b>Welt</b></p>") == (
        "extracted", "Hallo Welt\n")
    assert attachtext.extract("x.txt", "text/plain", "Grüße\r\n".encode()) == (
        "extracted", "Grüße\n")
    assert attachtext.extract("x.txt", "text/plain", "Grüße".encode("cp1252"))[1] == "Grüße"
    for name, kind in (("bild.png", "image/png"), ("tabelle.xlsx", "application/vnd.ms-excel"),
                       ("scan", "application/octet-stream")):
        assert attachtext.extract(name, kind, PNG) == ("none", None)


def test_the_caps_flag_huge_and_hostile_files_unreadable() -> None:
    small = attachtext.Limits(max_bytes=1000)
    assert attachtext.extract("a.pdf", "application/pdf", pdf(PDF_LINES) + b" " * 1000,
                              small) == ("unreadable", None)
    bomb = io.BytesIO()  # 60 MB of zeros, a few KB packed
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 60_000_000)
    assert attachtext.extract("b.docx", "application/octet-stream", bomb.getvalue()) == (
        "unreadable", None)
    laughs = io.BytesIO()
    with zipfile.ZipFile(laughs, "w") as archive:
        archive.writestr("content.xml", '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">'
                         '<!ENTITY b "&a;&a;&a;&a;">]><d>&b;</d>')
    assert attachtext.extract("c.odt", "application/vnd.oasis.opendocument.text",
                                          laughs.getvalue()) == ("unreadable", None)
    long = attachtext.extract("d.txt", "text/plain", b"Zeile\n" * 100_000,
                              attachtext.Limits(max_chars=1000))
    assert long[0] == "extracted" and long[1] is not None and len(long[1]) < 1100
    assert "characters of the file not kept" in long[1]


def test_broken_files_never_raise() -> None:
    good = [pdf(PDF_LINES), word(DOCX_TEXT), odt(["Text"])]
    names = ["a.pdf", "b.docx", "c.odt"]
    for name, data in zip(names, good, strict=True):
        for cut in range(0, len(data), max(1, len(data) // 40)):
            state, _ = attachtext.extract(name, "application/octet-stream", data[:cut])
            assert state in attachtext.STATES
        mangled = bytearray(data)
        for position in range(40, len(mangled), 97):
            mangled[position] ^= 0x5A
        assert attachtext.extract(name, "", bytes(mangled))[0] in attachtext.STATES
    assert attachtext.extract("r.pdf", "application/pdf", os.urandom(20_000)) == (
        "unreadable", None)


def test_pdf_pages_past_the_cap_are_not_read() -> None:
    writer = PdfWriter()
    for _ in range(5):
        writer.add_page(PdfReader(io.BytesIO(pdf(PDF_LINES))).pages[0])
    out = io.BytesIO()
    writer.write(out)
    state, text = attachtext.extract("x.pdf", "application/pdf", out.getvalue(),
                                     attachtext.Limits(max_pages=2))
    assert state == "extracted" and text is not None
    assert text.count("Krankmeldung") == 2 and "3 more pages not read" in text


def test_the_prepare_process_reads_the_attachments(settings: Settings) -> None:
    preparer = ProcessPreparer(settings)
    try:
        preparer.submit(IncomingMail(id=1, source="smtp", raw=mail_with_attachments(),
                                     received_at=utcnow()))
        prepared = preparer.take()
    finally:
        preparer.close()
    assert prepared.error is None and prepared.mail is not None
    states = [a.text_state for a in prepared.mail.attachments]
    assert states == ["extracted", "extracted", "unreadable", "unreadable", "none"]
    assert prepared.analysis is not None
    found = prepared.analysis.attachment_texts[0]
    assert found is not None and {f.entity for f in found.findings} >= {"DATE_OF_BIRTH"}


def test_a_reader_stuck_inside_one_call_is_stopped_by_the_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the main thread (as in the prepare process) the interval timer ends a reader that
    never returns by itself; the file is unreadable and the timer is left as it was."""
    calls = []

    def stuck(data: bytes, limits: attachtext.Limits, deadline: float) -> str:
        for _ in range(3000):  # 30 s at most, should the timer not fire: fails, never hangs
            calls.append(1)
            time.sleep(0.01)
        return "never"

    monkeypatch.setitem(attachtext._READERS, "text", stuck)
    result = attachtext.extract("a.txt", "text/plain", b"x", attachtext.Limits(seconds=0.3))
    assert result == ("unreadable", None) and len(calls) < 3000
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


def test_a_pdf_locked_only_against_printing_and_copying_is_read() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(PDF_LINES))))
    writer.encrypt(user_password="", owner_password="nur-die-personalstelle")
    out = io.BytesIO()
    writer.write(out)
    assert PdfReader(io.BytesIO(out.getvalue())).is_encrypted
    assert attachtext.extract("a.pdf", "application/pdf", out.getvalue()) == (
        "extracted", "\n".join(PDF_LINES))


def test_a_mail_whose_files_use_up_the_time_has_the_rest_flagged_not_failed(
    make_settings: Callable[..., Settings],
) -> None:
    """All files of a mail get half the prepare time limit: past it, text formats are flagged
    unreadable without being read, and the mail itself is prepared."""
    settings = make_settings(worker={"prepare_timeout_seconds": 1e-6},
                             redaction={"enabled": False})
    prepared = prepare(IncomingMail(id=1, source="smtp", raw=mail_with_attachments(),
                                    received_at=utcnow()), settings, None)
    assert prepared.error is None and prepared.mail is not None
    assert [a.text_state for a in prepared.mail.attachments] == [
        "unreadable", "unreadable", "unreadable", "unreadable", "none"]
