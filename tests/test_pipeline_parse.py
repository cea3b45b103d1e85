"""The parse stage: hand-written German/English mails, Outlook's winmail.dat, the shared
real-world corpus and Python's own test_email samples all become a ParsedMail (or a
PostdeskError with a reason), decoded the way a ticket needs them."""

from __future__ import annotations

import hashlib
import random
import statistics
import struct
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.errors import ParseError, PostdeskError, Stop
from gateway.mail import tnef as winmail
from gateway.mail.model import ParsedMail
from gateway.pipeline.context import IncomingMail, Preparing
from gateway.pipeline.parse import parse_mail, run
from tests.helpers import CORPUS, PY_EMAIL_DATA, eml

DOMAIN = "example.org"
MESSAGES = CORPUS / "messages"


def parse(raw: bytes) -> ParsedMail:
    return parse_mail(raw, domain=DOMAIN)


def names(mail: ParsedMail) -> list[str]:
    return [a.filename for a in mail.attachments]


# --- hand-written fixtures -------------------------------------------------------------------


def test_plain_german_mail_is_decoded() -> None:
    mail = parse(eml("plain-de.eml"))
    assert mail.message_id == "<8d2f6b1e-3c4a-4e7b-9f21-0a5c7d9e1b23@landkreis-beispiel.de>"
    assert not mail.message_id_generated
    assert (mail.from_.name, mail.from_.email) == (
        "Jürgen Müller", "juergen.mueller@landkreis-beispiel.de")
    assert [(a.name, a.email) for a in mail.to] == [("IT-Servicedesk", "servicedesk@example.org")]
    assert [(a.name, a.email) for a in mail.cc] == [
        ("Schmidt, Anna", "anna.schmidt@example.org"),
        ("Poststelle", "poststelle@landkreis-beispiel.de"),
    ]
    assert mail.reply_to == []
    assert mail.date == datetime(2024, 3, 12, 8, 13, 58, tzinfo=UTC)
    assert mail.date is not None and mail.date.tzinfo is not None
    assert "statt ä, ö, ü und ß nur noch Fragezeichen" in mail.text
    assert "alle Straßennamen" in mail.text  # soft line break joined
    assert mail.text.endswith("Jürgen Müller\nBauordnungsamt\n")
    assert mail.html is None
    assert mail.attachments == []
    assert mail.defects == []


def test_encoded_word_subject_is_decoded_and_folded() -> None:
    assert parse(eml("plain-de.eml")).subject == "Drucker im 2. OG druckt keine Umlaute mehr (äöü)"
    raw = (b"From: a@example.net\nSubject: =?iso-8859-1?q?Geb=FChren?=\n"
           b"  =?utf-8?B?YmVzY2hlaWQ=?=\n\t und\n   Widerspruch  \n\nx\n")
    assert parse(raw).subject == "Gebührenbescheid und Widerspruch"


def test_subject_split_mid_character_across_encoded_words() -> None:
    raw = b"Subject: =?utf-8?q?Stra=C3?= =?utf-8?q?=9Fe_C:\\Users?=\n\nx\n"
    assert parse(raw).subject == "Straße C:\\Users"


def test_html_only_mail_gets_text_through_inscriptis() -> None:
    mail = parse(eml("html-only.eml"))
    assert mail.html is not None and "<b>error 809</b>" in mail.html
    assert "refuses to connect – it shows error 809." in mail.text  # windows-1252 dash
    assert "* Laptop: NB-4711" in mail.text
    assert "Sarah O’Neill" in mail.text
    assert "<" not in mail.text and "margin" not in mail.text


def test_alternative_uses_plain_text_and_keeps_html() -> None:
    mail = parse(eml("alternative-de.eml"))
    assert mail.text.startswith("Hallo zusammen,\n\nbitte richten Sie für Frau Krämer")
    assert mail.html is not None and "<b>Krämer</b>" in mail.html
    assert mail.attachments == []


def test_pdf_with_rfc2231_umlaut_name_and_other_encoded_names() -> None:
    mail = parse(eml("pdf-rfc2231.eml"))
    assert "anbei der Prüfbericht" in mail.text
    assert names(mail) == [
        "Prüfbericht März 2024.pdf",  # filename*=utf-8''
        "Protokoll der Begehung am 14. März (Gebäude B).pdf",  # continuations, Latin-1
        "Prüfbericht Brandschutz.docx",  # RFC 2047 inside the quoted string (Outlook)
    ]
    pdf = mail.attachments[0]
    assert pdf.content_type == "application/pdf"
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.endswith(b"%%EOF\n")
    assert mail.attachments[2].data.startswith(b"PK\x03\x04")


def test_unsafe_attachment_names_are_made_safe_and_nothing_is_dropped() -> None:
    mail = parse(eml("unsafe-names.eml"))
    got = names(mail)
    assert got[0] == "passwd"
    assert got[1] == "y.doc"
    assert got[2] == "invoicefdp.exeX-Evil_ 1"  # RLO, CR/LF and ":" gone, .exe kept
    assert got[3].startswith("Antrag_auf_Erteilung") and got[3].endswith(".pdf")
    assert len(got[3]) <= 120
    assert got[4] == "attachment-5.png"  # inline image without any name
    assert got[5] == "attachment-6.bin"  # name "..." is no name
    assert [a.content_type for a in mail.attachments][4:] == ["image/png",
                                                             "application/x-msdownload"]
    assert mail.attachments[2].data.startswith(b"MZ")  # an .exe is stored, not dropped
    for name in got:
        assert name and "/" not in name and "\\" not in name
        assert all(ch.isprintable() for ch in name)


def test_missing_message_id_is_generated_deterministically() -> None:
    raw = eml("missing-message-id.eml")
    mail = parse(raw)
    assert mail.message_id_generated
    assert mail.message_id == f"<{hashlib.sha256(raw).hexdigest()[:32]}@{DOMAIN}>"
    assert parse(raw).message_id == mail.message_id  # a re-parse after a crash: same id
    assert parse_mail(raw, domain="other.example").message_id.endswith("@other.example>")
    assert "message-id: missing or invalid, generated" in mail.defects


@pytest.mark.parametrize("value", ["<[bogus]>", "", "<>", "no-at-sign", "<@host>", "<local@>"])
def test_bogus_message_id_is_replaced(value: str) -> None:
    raw = f"From: a@example.net\nMessage-ID: {value}\nSubject: x\n\nbody\n".encode()
    mail = parse(raw)
    assert mail.message_id_generated
    assert mail.message_id == f"<{hashlib.sha256(raw).hexdigest()[:32]}@{DOMAIN}>"


@pytest.mark.parametrize(("value", "expected"), [
    ("<abc@host.example>", "<abc@host.example>"),
    ("abc@host.example", "<abc@host.example>"),
    ("  <abc@host.example> (Exchange)", "<abc@host.example>"),
    ("<abc.def\n @host.example>", "<abc.def@host.example>"),  # folded inside the brackets
])
def test_message_id_is_normalised(value: str, expected: str) -> None:
    mail = parse(f"Message-ID: {value}\n\nx\n".encode())
    assert (mail.message_id, mail.message_id_generated) == (expected, False)


def test_in_reply_to_and_references_are_robust() -> None:
    raw = (b"From: a@example.net\n"
           b"In-Reply-To: lds-1.2@example.org\n"
           b"References: <one@example.org>,<two@example.org>\n"
           b"\t<three@\n example.org> <[bogus]> <two@example.org>\n"
           b"References: four@example.org, five@example.org\n\nx\n")
    mail = parse(raw)
    assert mail.in_reply_to == ["<lds-1.2@example.org>"]
    assert mail.references == ["<one@example.org>", "<two@example.org>", "<three@example.org>",
                               "<four@example.org>", "<five@example.org>"]


def test_outlook_reply_with_thread_index_and_no_references() -> None:
    mail = parse(eml("outlook-reply-aw.eml"))
    assert mail.subject == "AW: [LDS-1042] Störung Fachverfahren Gebührenbescheid"
    assert mail.thread_topic == "Störung Fachverfahren Gebührenbescheid"
    assert mail.thread_index is not None and len(mail.thread_index) == 27  # 22 + one reply
    assert mail.thread_index.startswith(bytes.fromhex("01d990d8baf9424ee6271f5b4b419d33"))
    assert mail.references == [] and mail.in_reply_to == []
    assert (mail.from_.name, mail.from_.email) == (
        "Schönfeld, Maria", "maria.schoenfeld@stadt-beispiel.de")
    assert "der Gebührenbescheid lässt sich jetzt wieder drucken" in mail.text
    assert "\r" not in mail.text


@pytest.mark.parametrize("value", ["", "not base64 !!", "   "])
def test_undecodable_thread_index_is_none(value: str) -> None:
    assert parse(f"Thread-Index: {value}\n\nx\n".encode()).thread_index is None
    assert parse(b"Subject: x\n\nx\n").thread_topic is None


def test_headers_are_lower_case_decoded_lists_in_order() -> None:
    mail = parse(eml("out-of-office.eml"))
    assert mail.headers["auto-submitted"] == ["auto-replied"]
    assert mail.headers["x-auto-response-suppress"] == ["All"]
    assert mail.headers["x-autoreply"] == ["yes"]
    assert mail.headers["precedence"] == ["auto_reply"]
    assert mail.headers["return-path"] == ["<>"]
    assert mail.header("Auto-Submitted") == "auto-replied"
    assert mail.in_reply_to == ["<lds-1050.1@example.org>"]
    assert mail.references == ["<lds-1050.0@example.org>", "<lds-1050.1@example.org>"]
    plain = parse(eml("plain-de.eml"))
    received = plain.headers["received"]
    assert len(received) == 2 and received[0].startswith("from mx1.landkreis-beispiel.de")
    assert "\n" not in received[0] and "\t" not in received[0]  # unfolded
    assert plain.headers["subject"] == ["Drucker im 2. OG druckt keine Umlaute mehr (äöü)"]
    assert all(key == key.lower() for key in plain.headers)


def test_attached_message_is_kept_as_eml_and_not_merged_into_body() -> None:
    mail = parse(eml("forwarded-attached.eml"))
    assert mail.text == "Ist diese Mail echt? Ich habe nicht geklickt.\n"
    assert names(mail) == ["Konto gesperrt – sofort bestätigen.eml"]
    attached = mail.attachments[0]
    assert attached.content_type == "message/rfc822"
    inner = parse(attached.data)
    assert inner.message_id == "<spam-1@bad.example>"
    assert inner.text.startswith("Bitte bestaetigen Sie Ihr Konto")


def test_raw_latin1_headers_and_body_are_repaired() -> None:
    mail = parse(eml("legacy-8bit.eml"))
    assert (mail.from_.name, mail.from_.email) == ("Jürgen Weiß", "jw@alt-system.local")
    assert mail.subject == "Anfrage wegen Gebühren"
    assert mail.text == "Keine MIME-Kopfzeilen, Text in Latin-1: Grüße\n"


def test_garbage_addresses_are_skipped() -> None:
    raw = (b"From: \"Nobody\" <>\nTo: undisclosed-recipients:;\n"
           b"Cc: not an address, =?utf-8?q?Gr=C3=BC=C3=9Fe?= <Ok@Example.NET>\n\nx\n")
    mail = parse(raw)
    assert mail.from_.email == ""
    assert mail.to == []
    assert [(a.name, a.email) for a in mail.cc] == [("Grüße", "ok@example.net")]


# --- winmail.dat -----------------------------------------------------------------------------
# Neither tnefparse's wheel nor this machine ships a sample .tnef file, so the test builds a
# minimal valid stream the way Outlook lays it out ([MS-OXTNEF] 2.1.3): the signature
# 0x223E9F78 and a 16-bit key, then attributes, each
#   level (1 = message, 2 = attachment) : u8
#   id : u16, type : u16
#   length : u32, data, checksum (sum of the data bytes mod 65536) : u16
# Message attributes: TNEF version, OEM codepage (1252), message class, body text.
# Per attachment: attAttachRendData (starts a new attachment), attAttachTitle (the 8.3
# name), attAttachData (the bytes) and attAttachment: MAPI properties holding the long
# file name (PR_ATTACH_LONG_FILENAME, UTF-16) and the MIME type (PR_ATTACH_MIME_TAG).


def _tnef_attr(level: int, attr_id: int, attr_type: int, data: bytes) -> bytes:
    head = struct.pack("<BHHI", level, attr_id, attr_type, len(data))
    return head + data + struct.pack("<H", sum(data) & 0xFFFF)


def _mapi_string(prop_id: int, text: str, *, unicode: bool) -> bytes:
    raw = (text + "\0").encode("utf-16-le" if unicode else "cp1252")
    prop_type = 0x001F if unicode else 0x001E
    return struct.pack("<HHII", prop_type, prop_id, 1, len(raw)) + raw + b"\0" * (-len(raw) % 4)


def make_tnef(body: str | None, files: list[tuple[str, str, str | None, bytes]]) -> bytes:
    """files: (8.3 title, long name, MIME type or None, data)."""
    out = struct.pack("<IH", 0x223E9F78, 0x0001)
    out += _tnef_attr(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))  # attTnefVersion
    out += _tnef_attr(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))  # attOemCodepage
    out += _tnef_attr(1, 0x8008, 0x0007, b"IPM.Microsoft Mail.Note\0")  # attMessageClass
    if body is not None:
        out += _tnef_attr(1, 0x800C, 0x0002, body.encode("cp1252"))  # attBody
    for title, long_name, mime, data in files:
        out += _tnef_attr(2, 0x9002, 0x0006, b"\xff\xff\xff\xff" + bytes(10))  # attAttachRendData
        out += _tnef_attr(2, 0x8010, 0x0001, title.encode("cp1252") + b"\0")  # attAttachTitle
        out += _tnef_attr(2, 0x800F, 0x0006, data)  # attAttachData
        props = [_mapi_string(0x3707, long_name, unicode=True)]
        if mime:
            props.append(_mapi_string(0x370E, mime, unicode=False))
        out += _tnef_attr(2, 0x9005, 0x0006, struct.pack("<I", len(props)) + b"".join(props))
    return out


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
TNEF_FILES = [
    ("PRFBER~1.PDF", "Prüfbericht März 2024.pdf", "application/pdf", PDF),
    ("Liste.csv", "Liste.csv", None, b"Raum;Geraet\n2.14;Drucker\n"),
]


def outlook_mail(tnef: bytes, *, text: str | None) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Maria Schönfeld <maria.schoenfeld@stadt-beispiel.de>"
    msg["To"] = "servicedesk@example.org"
    msg["Subject"] = "Prüfbericht"
    msg["Message-ID"] = "<tnef-1@EXCH01.stadt-beispiel.local>"
    if text is not None:
        msg.set_content(text)
    msg.add_attachment(tnef, maintype="application", subtype="ms-tnef", filename="winmail.dat")
    return msg.as_bytes()


def test_winmail_dat_is_unpacked_into_its_real_files() -> None:
    raw = outlook_mail(make_tnef("RTF-Text\r\n", TNEF_FILES), text="Anbei der Bericht.\n")
    mail = parse(raw)
    assert names(mail) == ["Prüfbericht März 2024.pdf", "Liste.csv"]
    assert [a.content_type for a in mail.attachments] == ["application/pdf", "text/csv"]
    assert mail.attachments[0].data == PDF
    assert mail.attachments[1].data == b"Raum;Geraet\n2.14;Drucker\n"
    assert mail.text == "Anbei der Bericht.\n"  # the mail's own body wins over the TNEF one
    assert mail.defects == []


def test_winmail_body_is_used_when_the_mail_has_no_other_body() -> None:
    raw = outlook_mail(make_tnef("Guten Tag,\r\nanbei der Prüfbericht.\r\n", TNEF_FILES[:1]),
                       text=None)
    mail = parse(raw)
    assert mail.text == "Guten Tag,\nanbei der Prüfbericht.\n"
    assert names(mail) == ["Prüfbericht März 2024.pdf"]


@pytest.mark.parametrize("blob", [b"not tnef at all", b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90"])
def test_broken_winmail_dat_is_kept_with_a_defect(blob: bytes) -> None:
    mail = parse(outlook_mail(blob, text="Siehe Anhang.\n"))
    assert names(mail) == ["winmail.dat"]
    assert mail.attachments[0].data == blob
    assert mail.attachments[0].content_type == "application/ms-tnef"
    assert any(d.startswith("winmail.dat") for d in mail.defects)


def test_hostile_winmail_dat_cannot_stall_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """60 bytes claiming 50 million MAPI properties kept tnefparse busy for 208 s."""
    monkeypatch.setattr(winmail, "TIMEOUT_SECONDS", 0.5)
    bomb = struct.pack("<IH", 0x223E9F78, 1)
    bomb += _tnef_attr(1, 0x9007, 0x0006, struct.pack("<II", 1252, 0))
    bomb += _tnef_attr(2, 0x9002, 0x0006, bytes(14))
    bomb += _tnef_attr(2, 0x9005, 0x0006, struct.pack("<I", 50_000_000) + bytes(8))
    start = time.monotonic()
    mail = parse(outlook_mail(bomb, text="Siehe Anhang.\n"))
    assert time.monotonic() - start < 5
    assert names(mail) == ["winmail.dat"] and mail.attachments[0].data == bomb
    assert "winmail.dat kept packed: unpacking took longer than 0.5 s" in mail.defects


# --- broken input ----------------------------------------------------------------------------


def test_too_deeply_nested_mail_raises_parse_error() -> None:
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n" % (i, i)
                      for i in range(3000))
    with pytest.raises(ParseError, match="nested too deeply"):
        parse(b"From: a@example.net\n" + nested + b"Content-Type: text/plain\n\nx\n")


def test_unreadable_mime_structure_keeps_the_body_as_text() -> None:
    raw = (b"From: a@example.net\nContent-Type: multipart/mixed; boundary*=utf\x00-8''abc\n\n"
           b"--abc\nContent-Type: text/plain\n\nhallo\n--abc--\n")
    mail = parse(raw)
    assert "hallo" in mail.text
    assert any("MIME structure unreadable" in d for d in mail.defects)


@pytest.mark.parametrize("raw", [b"", b"\n\n", b"\x00\xff\xfe", b"From:\n", b"Subject: =?"])
def test_degenerate_input_still_parses(raw: bytes) -> None:
    mail = parse(raw)
    assert mail.message_id_generated and mail.from_.email == ""


def test_mutated_mails_never_crash() -> None:
    """A seeded mutation run over the fixtures: broken bytes parse or raise a PostdeskError."""
    rng = random.Random(20240312)
    seeds = [p.read_bytes() for p in sorted((Path(__file__).parent / "mails").glob("*.eml"))]
    seeds.append(outlook_mail(make_tnef("x", TNEF_FILES), text="y"))
    snippets = [b"\n", b"=?utf-8?b?", b"?=", b"\x00", b"\xff", b"--", b"<", b"@", b"\"",
                b"filename*0*=x'';", b"Content-Type: multipart/mixed; boundary=b\n"]
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(data) + 1)
            if rng.random() < 0.5 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data[pos:pos] = rng.choice(snippets)
        try:
            mail = parse(bytes(data))
        except PostdeskError:
            continue
        assert mail.message_id.startswith("<") and "@" in mail.message_id
        assert all(a.filename and "/" not in a.filename for a in mail.attachments)


# --- the stage -------------------------------------------------------------------------------


def _context(settings: Settings, raw: bytes | None) -> Preparing:
    incoming = IncomingMail(id=7, source="smtp", raw=raw, received_at=datetime.now(UTC))
    return Preparing(incoming=incoming, settings=settings)  # PREPARE: no store, blobs, templates


def test_run_sets_ctx_mail_and_records_a_generated_id(settings: Settings) -> None:
    raw = eml("missing-message-id.eml")
    ctx = _context(settings, raw)
    run(ctx)
    assert ctx.mail is not None and ctx.mail.subject == "Beamer Raum 104 defekt"
    assert ctx.mail.message_id.endswith(f"@{settings.service.domain}>")
    assert [d.what for d in ctx.decisions][:1] == ["message-id generated"]


def test_run_stops_when_raw_is_gone(settings: Settings) -> None:
    with pytest.raises(Stop, match="raw mail no longer stored"):
        run(_context(settings, None))


# --- the real corpus -------------------------------------------------------------------------


def _corpus_files() -> list[Any]:
    if not MESSAGES.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="shared corpus not present"))]
    files = sorted(p for p in MESSAGES.rglob("*")
                   if p.is_file() and not p.name.upper().startswith(("LICENSE", "README")))
    return [pytest.param(p, id=str(p.relative_to(MESSAGES))) for p in files]


def _python_email_files() -> list[Any]:
    if not PY_EMAIL_DATA.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason="no Python test_email data"))]
    return [pytest.param(p, id=p.name) for p in sorted(PY_EMAIL_DATA.iterdir()) if p.is_file()]


@pytest.mark.parametrize("path", _corpus_files() + _python_email_files())
def test_every_real_mail_parses_or_fails_with_a_reason(path: Path) -> None:
    raw = path.read_bytes()
    try:
        mail = parse(raw)
    except PostdeskError as exc:
        assert str(exc)
        return
    assert isinstance(mail, ParsedMail)
    assert mail.message_id.startswith("<") and mail.message_id.endswith(">")
    assert "\n" not in mail.subject
    for attachment in mail.attachments:
        assert attachment.filename and "/" not in attachment.filename
    (mail.text + (mail.html or "") + mail.subject).encode("utf-8")  # no lone surrogates


def corpus(name: str) -> bytes:
    path = MESSAGES / name
    if not path.is_file():
        pytest.skip("shared corpus not present")
    return path.read_bytes()


def test_corpus_bounce_is_a_multipart_report() -> None:
    mail = parse(corpus("flanker/bounce/mailbox-full.eml"))
    content_type = mail.header("content-type") or ""
    assert content_type.startswith("multipart/report")
    assert "report-type=delivery-status" in content_type.replace('"', "")
    assert "message/delivery-status" in [a.content_type for a in mail.attachments]
    assert "Your e-mail is being returned" in mail.text
    assert mail.from_.email == "mailer-daemon@aol.com"


def test_corpus_quoted_printable_helpdesk_mail_decodes() -> None:
    mail = parse(corpus("django-helpdesk/quoted_printable.eml"))
    assert mail.subject == "Český test"
    assert mail.text == "Tohle je test českých písmen odeslaných z gmailu.\n"
    assert mail.html is not None and "českých" in mail.html


def test_corpus_subject_split_across_q_and_b_words() -> None:
    mail = parse(corpus("django-helpdesk/utf-nondecodable.eml"))
    assert mail.subject == "Fwd: Cyklozaměstnavatel - změna vyhodnocení"
    gmail_id = "<CAK0Q_=uQY=3V5iUSgEN16GLtYoJ-6oQu-vYjsgQ=jv6DwOkuLQ@mail.gmail.com>"
    assert mail.in_reply_to == [gmail_id]
    assert mail.references == [gmail_id]


def test_corpus_attachments_keep_their_real_names() -> None:
    pdf = parse(corpus("flanker/attached-pdf.eml"))
    assert names(pdf) == ["test.pdf"]
    assert pdf.attachments[0].content_type == "application/pdf"
    assert pdf.attachments[0].data.startswith(b"%PDF")
    png = parse(corpus("flanker/mailgun-pic.eml")).attachments
    assert [(a.filename, a.content_type, a.data[:4]) for a in png] == [
        ("mailgun.png", "image/png", b"\x89PNG")]
    russian = parse(corpus("flanker/russian-attachment-yahoo.eml")).attachments
    assert russian[0].filename.startswith("Картинка с очень, очень длинным")  # raw UTF-8 name
    iphone = parse(corpus("flanker/iphone.eml"))
    assert names(iphone) == ["photo.JPG"]
    assert iphone.text.startswith("Hello") and iphone.text.endswith("~Danielle")


def test_corpus_attached_message_text_stays_out_of_the_body() -> None:
    mail = parse(corpus("flanker/enclosed.eml"))
    assert mail.text == "Hello\n"
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("thanks.eml", "message/rfc822")]
    assert parse(mail.attachments[0].data).html is not None


def test_corpus_names_with_commas_and_raw_8bit_are_decoded() -> None:
    assert parse(corpus("flanker/encoded-header.eml")).from_.name == "Foo, Bar"
    assert parse(corpus("flanker/from-encoding.eml")).from_.name == "Ingo Lütkebohle"


def test_parse_is_fast_on_typical_mails() -> None:
    """Budget: the service must do >= 150 mails/s on 2 cores; parse is ~1 ms of that."""
    samples = [p.read_bytes() for p in sorted((Path(__file__).parent / "mails").glob("*.eml"))]
    if MESSAGES.is_dir():
        samples += [p.read_bytes() for p in MESSAGES.rglob("*.eml")
                    if 2_000 <= p.stat().st_size <= 20_000]
    timings = []
    for raw in samples * 3:
        start = time.perf_counter()
        parse(raw)
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.005  # measured ~1 ms; generous for slow CI machines
