"""compose(): 7-bit clean bytes with ASCII-only, folded headers; threading headers; RFC 3834
marks only on automatic mail; Outlook Thread-Index; MIME structure and attachments."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.charset import QP, Charset
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest

from gateway.errors import PermanentDeliveryError
from gateway.mail import compose as compose_module
from gateway.mail import threadindex
from gateway.mail.compose import MAX_REFERENCES, Letterhead, compose
from gateway.mail.model import Address, MailAttachment
from tests.helpers import OUTLOOK_REPLY

NOW = datetime(2024, 7, 1, 8, 5, tzinfo=UTC)
REQUEST_ID = "<CAF=abc123+x@mail.example.net>"
SERVICEDESK = Letterhead("servicedesk@example.org", "Servicedesk", "example.org")


def build(**overrides: Any) -> bytes:
    head = Letterhead("servicedesk@example.org",
                      "IT-Servicedesk Landesamt für Bürgerdienste und Straßenverkehr",
                      "example.org")
    args: dict[str, Any] = {
        "to": [Address("Jürgen Müller-Lüdenscheidt, Referat Öffentlichkeitsarbeit",
                       "juergen.mueller@example.net")],
        "cc": [],
        "subject": "[LDS-1042] Eingangsbestätigung: Drucker im 3. OG defekt – Überprüfung "
                   "der Druckerwarteschlange für Gebäude Süd erforderlich",
        "text": "Guten Tag,\nvielen Dank für Ihre Nachricht.\nMit freundlichen Grüßen\n",
        "html": "<p>Guten Tag,</p><p>vielen Dank für Ihre Nachricht.</p>",
        "in_reply_to": REQUEST_ID,
        "references": ["<first@example.net>", REQUEST_ID],
        "thread_index": None,
        "automatic": True,
        "now": NOW,
    }
    args.update(overrides)
    return compose(head, **args).raw


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_headers_are_pure_ascii_folded_and_decode_back() -> None:
    raw = build()
    assert raw.isascii()  # headers and bodies: no SMTPUTF8, no 8BITMIME needed
    lines = raw.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)  # CRLF only
    assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
    assert all(len(line) <= 998 for line in lines)
    msg = parse(raw)
    assert msg["Subject"] == (
        "[LDS-1042] Eingangsbestätigung: Drucker im 3. OG defekt – Überprüfung "
        "der Druckerwarteschlange für Gebäude Süd erforderlich")
    # Decoded as RFC 2047 says (whitespace between adjacent encoded words is dropped); the
    # stdlib's address parser keeps that whitespace, so it is not the judge for display names.
    assert rfc2047(msg, "From") == (
        "IT-Servicedesk Landesamt für Bürgerdienste und Straßenverkehr <servicedesk@example.org>")
    assert rfc2047(msg, "To") == (
        "Jürgen Müller-Lüdenscheidt, Referat Öffentlichkeitsarbeit <juergen.mueller@example.net>")
    assert msg["From"].addresses[0].addr_spec == "servicedesk@example.org"
    assert b"[LDS-1042]" in header_block(raw)  # the reference stays readable, not encoded


def rfc2047(msg: EmailMessage, name: str) -> str:
    raw_value = next(v for k, v in msg.raw_items() if k == name)
    return str(make_header(decode_header(raw_value)))


def test_message_id_date_and_threading_headers() -> None:
    mail = compose(SERVICEDESK, to=[Address("", "a@example.net")], cc=[],
                   subject="[LDS-1] Test", text="x", html=None, in_reply_to=REQUEST_ID,
                   references=["<first@example.net>", REQUEST_ID], thread_index=None,
                   automatic=False, now=NOW)
    msg = parse(mail.raw)
    assert msg["Message-ID"] == mail.message_id and mail.message_id.endswith("@example.org>")
    assert msg["Date"] == "Mon, 01 Jul 2024 08:05:00 +0000"
    assert msg["In-Reply-To"] == REQUEST_ID
    assert msg["References"].split() == ["<first@example.net>", REQUEST_ID]
    assert b"=?" not in header_block(mail.raw)  # ids are never turned into encoded words
    assert msg.get_content_type() == "text/plain"


def test_every_mail_gets_a_new_message_id() -> None:
    assert parse(build())["Message-ID"] != parse(build())["Message-ID"]


def test_long_references_are_capped_keeping_first_and_newest() -> None:
    ids = [f"<{'x' * 60}.{n}@lists.example.net>" for n in range(40)]
    raw = build(references=ids, in_reply_to=ids[-1])
    refs = parse(raw)["References"].split()
    assert len(refs) == MAX_REFERENCES
    assert refs[0] == ids[0] and refs[1:] == ids[-(MAX_REFERENCES - 1):]
    assert all(len(line) <= 998 for line in header_block(raw).split(b"\r\n"))


def test_malformed_or_injected_ids_are_dropped() -> None:
    raw = build(in_reply_to="<a@b>\r\nBcc: victim@example.org",
                references=["no-brackets@example.net", "<ok@example.net>", "<ünicode@example.net>",
                            "<a b@example.net>"])
    msg = parse(raw)
    assert msg["In-Reply-To"] is None and msg["Bcc"] is None
    assert msg["References"] == "<ok@example.net>"
    assert b"victim" not in raw


def test_auto_submitted_only_on_automatic_mail() -> None:
    automatic = parse(build(automatic=True))
    assert automatic["Auto-Submitted"] == "auto-replied"
    assert automatic["X-Auto-Response-Suppress"] == "All"
    personal = parse(build(automatic=False))
    assert personal["Auto-Submitted"] is None and personal["X-Auto-Response-Suppress"] is None


def test_thread_index_is_a_child_of_a_real_outlook_value() -> None:
    parent = threadindex.decode(OUTLOOK_REPLY)
    assert parent is not None
    child = threadindex.child_index(parent, NOW)
    msg = parse(build(thread_index=child, thread_topic="Drucker im 3. OG defekt"))
    sent = threadindex.decode(msg["Thread-Index"])
    assert sent == child and sent[:27] == parent
    assert threadindex.conversation_key(sent) == threadindex.conversation_key(parent)
    assert msg["Thread-Topic"] == "Drucker im 3. OG defekt"


def test_html_makes_multipart_alternative_with_quoted_printable_parts() -> None:
    msg = parse(build())
    assert msg.get_content_type() == "multipart/alternative"
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain["Content-Transfer-Encoding"] == "quoted-printable"
    assert "Mit freundlichen Grüßen" in plain.get_content()
    assert "vielen Dank" in html.get_content()


def test_attachments_with_non_ascii_names() -> None:
    pdf = b"%PDF-1.4\n\xff\xfe binary"
    raw = build(attachments=[MailAttachment("Übersicht Räume.pdf", "application/pdf", pdf),
                             MailAttachment("weird", "nonsense", b"x")])
    assert raw.isascii()
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["Übersicht Räume.pdf", "weird"]
    assert parts[0].get_content() == pdf
    assert parts[1].get_content_type() == "application/octet-stream"


def test_international_domain_is_written_as_punycode() -> None:
    msg = parse(build(to=[Address("Bürgeramt", "post@bürgeramt.example")]))
    assert msg["To"].addresses[0].domain == "xn--brgeramt-65a.example"


def test_non_ascii_local_part_cannot_be_sent_without_smtputf8() -> None:
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8") as info:
        build(to=[Address("", "jürgen@example.net")])
    assert "jürgen" not in str(info.value)


def test_line_break_in_subject_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        build(subject="Hallo\r\nBcc: x@example.org")


def test_display_name_line_breaks_are_flattened() -> None:
    msg = parse(build(to=[Address("Erika\r\nBcc: victim@example.org", "erika@example.net")]))
    assert msg["Bcc"] is None
    assert msg["To"].addresses[0].addr_spec == "erika@example.net"


def test_subject_text_comes_back_exactly_and_only_needed_words_are_encoded() -> None:
    subjects = [
        "AW: WG: [LDS-7] Rechnung 12345/2024  über 1.234,56 € –\tbitte prüfen",
        "Straße Straße Straße Straße Straße Straße Straße Straße Straße Straße Straße",
        "x" * 120 + " kurz",  # a word too long for one line
        "=?utf-8?q?kein_encoded_word?= bleibt Text",  # what a requester typed stays literal
        "Grüße 😀 aus Köln\u00a0(geschützt)",  # emoji and a no-break space
    ]
    for subject in subjects:
        raw = build(subject=subject)
        assert raw.isascii()
        assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
        assert parse(raw)["Subject"] == subject
    assert b"Subject: AW: WG: [LDS-7] Rechnung 12345/2024 " in header_block(
        build(subject=subjects[0]))


def test_display_names_with_specials_are_quoted_or_encoded() -> None:
    names = ['Schmidt, "Anna" \\ IT', "x =?utf-8?q?evil?= y", "A" * 90, "Ärger 名前"]
    raw = build(to=[Address(name, f"user{n}@example.net") for n, name in enumerate(names)])
    assert all(len(line) <= 78 for line in header_block(raw).split(b"\r\n"))
    msg = parse(raw)
    assert [a.addr_spec for a in msg["To"].addresses] == [
        f"user{n}@example.net" for n in range(len(names))]
    decoded = rfc2047(msg, "To")  # encoded words decoded; the quoted string stays quoted
    assert all(name in decoded for name in names[1:])
    assert msg["To"].addresses[0].display_name == 'Schmidt, "Anna" \\ IT'


def test_given_message_id_and_reply_to_are_used() -> None:
    mail = compose(SERVICEDESK, to=[Address("", "anna@example.org")], cc=[],
                   subject="[LDS-1] Neu", text="x", html=None, in_reply_to=None, references=[],
                   thread_index=None, automatic=True, now=NOW, message_id="<fixed.1@example.org>",
                   reply_to=Address("Servicedesk", "servicedesk+t0k@example.org"))
    msg = parse(mail.raw)
    assert mail.message_id == msg["Message-ID"] == "<fixed.1@example.org>"
    assert msg["Reply-To"].addresses[0].addr_spec == "servicedesk+t0k@example.org"
    with pytest.raises(ValueError, match="message_id"):
        build(message_id="not-an-id")


# Texts that exercise quoted-printable's corners: escapes, soft breaks next to an escape,
# whitespace at line ends, every kind of line end, and characters str.splitlines() splits at.
TRICKY_TEXTS = [
    "",
    "Grüße =?utf-8?q?x?= 100 % sicher\n",
    "a" * 74 + "=\n" + "b" * 75 + "ä\n" + "c" * 76 + " \n" + "d" * 73 + "\t\n" + "e" * 200,
    "Zeile mit Leerzeichen am Ende \nund Tab\t\r\nund CR\rund nichts ",
    "\x0b\x0c\x1c\x85\u2028 Steuerzeichen\x00 und 😀 " * 9,
    "=" * 80 + "\n" + " " * 80 + "\n",
]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_quoted_printable_is_exactly_the_stdlib_encoding(text: str) -> None:
    stdlib = Charset("utf-8")
    stdlib.body_encoding = QP
    assert compose_module.quoted_printable(text) == stdlib.body_encode(text)


@pytest.mark.parametrize("html", [None, "<p>Grüße</p>\n" + "x" * 90])
@pytest.mark.parametrize("text", TRICKY_TEXTS[1:])
def test_mail_without_attachments_is_written_byte_for_byte_as_the_stdlib_writes_it(
    text: str, html: str | None
) -> None:
    body = compose_module._text_part("plain", text)
    if html is not None:
        body = compose_module._multipart(
            "alternative", [body, compose_module._text_part("html", html)])
    headers = [("Subject", "=?utf-8?q?Gr=C3=BC=C3=9Fe?=\n x"), ("MIME-Version", "1.0")]
    ours = compose_module._serialise(
        compose_module._Part([*headers, *body.headers], body.payload, body.boundary))
    stdlib = compose_module._message(body, headers).as_bytes(policy=compose_module._PREFOLDED)
    assert ours == stdlib
