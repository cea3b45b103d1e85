"""The new text of a reply: hand-written client formats plus every shared corpus reply body."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mail import replytext
from gateway.mail.replytext import new_text
from tests.helpers import CORPUS

REPLIES = CORPUS / "reply-bodies"
needs_corpus = pytest.mark.skipif(not REPLIES.is_dir(), reason="shared corpus not beside repo")

OUTLOOK_DE = """\
Guten Tag Frau Muster,

das Passwort wurde zurückgesetzt. Bitte melden Sie sich mit dem Einmalkennwort an:
  - Benutzername: emuster
  - Kennwort: kommt per SMS

Mit freundlichen Grüßen
Anna Schmidt

Landesamt für Digitalisierung
Referat 12 – IT-Servicedesk
Tel. +49 30 1234-567

-----Ursprüngliche Nachricht-----
Von: Erika Muster <erika.muster@example.net>
Gesendet: Mittwoch, 12. März 2025 10:15
An: IT-Servicedesk <servicedesk@example.org>
Betreff: [LDS-42] Passwort vergessen

Hallo,
ich habe mein Passwort vergessen.
Erika Muster
"""
OUTLOOK_DE_NEW = """\
Guten Tag Frau Muster,

das Passwort wurde zurückgesetzt. Bitte melden Sie sich mit dem Einmalkennwort an:
  - Benutzername: emuster
  - Kennwort: kommt per SMS"""


def test_german_outlook_reply_keeps_only_the_new_text() -> None:
    assert new_text(OUTLOOK_DE) == OUTLOOK_DE_NEW
    assert new_text(OUTLOOK_DE.replace("\n", "\r\n")) == OUTLOOK_DE_NEW


def test_new_outlook_with_separator_line_and_english_headers() -> None:
    body = (
        "Der Drucker im 2. OG ist wieder erreichbar.\n\nViele Grüße\nBen\n\n"
        "________________________________\nFrom: Erika Muster <erika.muster@example.net>\n"
        "Sent: Wednesday, March 12, 2025 10:15 AM\nTo: IT-Servicedesk "
        "<servicedesk@example.org>\nSubject: Drucker\n\nDer Drucker geht nicht.\n"
    )
    assert new_text(body) == "Der Drucker im 2. OG ist wieder erreichbar."


@pytest.mark.parametrize(
    "header",
    [
        "Am 12.03.2025 um 10:15 schrieb Erika Muster <erika.muster@example.net>:",
        "Am 12.03.2025 um 10:15 schrieb Erika Muster:",  # Thunderbird: no address
        "Am Mi., 12. März 2025 um 10:15 Uhr schrieb Erika Muster <\nerika.muster@example.net>:",
        "On Wed, Mar 12, 2025 at 10:15 AM Erika Muster <erika.muster@example.net> wrote:",
        "On 12 Mar 2025, at 10:15, Erika Muster <erika.muster@example.net> wrote:",
        "Le mer. 12 mars 2025 à 10:15, Erika Muster <erika.muster@example.net> a écrit :",
    ],
)
def test_attribution_lines(header: str) -> None:
    body = f"Das Konto ist entsperrt.\n\n{header}\n> Mein Konto ist gesperrt.\n>\n> Erika\n"
    assert new_text(body) == "Das Konto ist entsperrt."


def test_gmx_style_header_block() -> None:
    body = (
        "Vielen Dank, jetzt klappt es.\n\n\nGesendet: Mittwoch, 12. März 2025 um 10:15 Uhr\n"
        'Von: "IT-Servicedesk" <servicedesk@example.org>\nAn: erika.muster@example.net\n'
        "Betreff: [LDS-42] Ihre Anfrage\n\nGuten Tag, ...\n"
    )
    assert new_text(body) == "Vielen Dank, jetzt klappt es."


def test_device_lines_and_leftover_separators_are_dropped() -> None:
    body = (
        "Danke, passt.\n\nVon meinem iPhone gesendet\n\n-----Original Message-----\n"
        "From: IT-Servicedesk\nSent: Wednesday\nTo: Erika\nSubject: Re: Drucker\n\nalt\n"
    )
    assert new_text(body) == "Danke, passt."


@pytest.mark.parametrize(
    "text",
    [
        "Thanks, that fixed it.\nBut the scanner on floor 2 still fails.",
        "Grüße an Ihr Team, Sie waren schnell.\nEine Frage noch: geht auch VPN?",
        "Vielen Dank!\n\nIch habe noch eine Frage: Wie lange gilt das Kennwort?",
        "Bitte:\n- Rechner neu starten\n- Anmelden\n- Melden, ob es geht",
    ],
)
def test_signature_removal_never_eats_text(text: str) -> None:
    body = f"{text}\n\nAm 12.03.2025 um 10:15 schrieb Erika Muster <e@example.net>:\n> alt\n"
    assert new_text(body) == text


@pytest.mark.parametrize(
    "closing", ["Mit freundlichen Grüßen", "Freundliche Grüße", "MfG", "Viele Grüße, Anna", "LG"]
)
def test_closing_and_signature_below_it_are_removed(closing: str) -> None:
    body = f"Ist erledigt.\n\n{closing}\nAnna Schmidt\nReferat 12\nTel. 030 1234-567\n"
    assert new_text(body) == "Ist erledigt."


def test_a_closing_alone_is_kept() -> None:
    assert new_text("Mit freundlichen Grüßen\nAnna Schmidt\n") == (
        "Mit freundlichen Grüßen\nAnna Schmidt"
    )
    assert new_text("Ok\n-- \n") == "Ok"
    assert new_text("-- \nAnna Schmidt\n") == "--\nAnna Schmidt"


def test_inline_answers_are_kept_with_their_quotes() -> None:
    body = (
        "Am 12.03.2025 um 10:15 schrieb Erika Muster <e@example.net>:\n> Geht VPN wieder?\n\n"
        "Ja, seit 11 Uhr.\n\n> Und das Laufwerk H:?\n\nNoch nicht, ich melde mich.\n\n"
        "> Gruß Erika\n\n-- \nAnna Schmidt\n"
    )
    assert new_text(body) == body.split("\n\n> Gruß")[0]


def test_a_forwarded_message_is_content() -> None:
    body = (
        "Siehe unten, das kam vom Hersteller.\n\n-------- Weitergeleitete Nachricht --------\n"
        "Betreff: Lizenz\nDatum: Wed, 12 Mar 2025 10:15:00 +0100\nVon: Hersteller "
        "<support@vendor.example>\nAn: Anna <anna.schmidt@example.org>\n\nIhre Lizenz läuft ab.\n"
    )
    assert new_text(body) == body.rstrip("\n")


@pytest.mark.parametrize(
    "history",
    [
        "Von: IT-Servicedesk <servicedesk@example.org>\nGesendet: Mittwoch, 12. März 2025 10:15"
        "\nAn: Anna Schmidt <anna.schmidt@example.org>\nBetreff: [LDS-42] Neues Ticket\n\n"
        "Neues Ticket in der Queue it.\n",
        "________________________________\nVon: IT-Servicedesk <servicedesk@example.org>\n"
        "Gesendet: Mittwoch, 12. März 2025 10:15\nAn: Anna Schmidt\nBetreff: [LDS-42]\n\nText\n",
        "Am 12.03.2025 um 10:15 schrieb IT-Servicedesk <servicedesk@example.org>:\n> Text\n",
    ],
)
def test_nothing_above_the_history_gives_empty_text(history: str) -> None:
    # e.g. an agent who typed only #commands: the notification must not be relayed
    assert new_text("\n\n" + history) == ""


def test_library_false_positives_do_not_drop_text() -> None:
    body = "A: ja, bitte\nA: und zwar morgen\nDanke"  # two "A:" lines: Italian "To:" header
    assert new_text(body) == body
    faq = "Hallo Anna,\n\nF: Wie lange dauert es?\nA: Zwei Tage.\nA: Oder drei.\n\nViele Grüße"
    assert new_text(faq) == faq.removesuffix("\n\nViele Grüße")


@pytest.mark.parametrize(
    "history",
    [
        "Erika Muster wrote:\n> alt",  # short attribution, no date
        "-------- Original-Nachricht --------\nBetreff: Test\nVon: Erika <e@example.net>\n"
        "An: Servicedesk <servicedesk@example.org>\nDatum: 12.03.2025 10:15\n\nalt",
        "---- On Wed, 12 Mar 2025 10:15:00 +0100 e@example.net wrote ----\n\nalt",  # Zoho
    ],
)
def test_more_history_starts(history: str) -> None:
    assert new_text(f"Erledigt.\n\n{history}\n") == "Erledigt."


def test_language_hint_adds_a_language_without_risking_text() -> None:
    body = (
        "Hej Peter,\n\nTak for din mail. Det lyder godt.\n\nMed venlig hilsen\nAnders\n\n"
        "Den 24. nov. 2025 kl. 10.00 skrev Peter <peter@example.com>:\n> Hej\n"
    )
    expected = "Hej Peter,\n\nTak for din mail. Det lyder godt."
    assert new_text(body, language_hint="da") == expected
    assert new_text(body, language_hint="xx") == expected


def test_empty_body() -> None:
    assert new_text("") == ""
    assert new_text(" \r\n\t\n") == ""


def test_library_failure_returns_the_whole_body(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self, **_: object) -> None:
            raise RuntimeError("library bug")

    monkeypatch.setattr(replytext, "EmailMessage", Broken)
    assert new_text(OUTLOOK_DE) == OUTLOOK_DE.rstrip("\n")


# --- the shared corpus ----------------------------------------------------------------------


def _corpus() -> list[Path]:
    return sorted(REPLIES.rglob("*.txt")) if REPLIES.is_dir() else []


# Bodies that start with a quote header: nothing new stands above it, so "" is right.
STARTS_WITH_HISTORY = {
    "mail-parser-reply/multiline_on.txt",
    "mail-parser-reply/email_pl_1_1.txt",
    "mail-parser-reply/email_pl_1_2.txt",
    "mail-parser-reply/email_pl_1_3.txt",
}


@needs_corpus
def test_every_corpus_body_gives_a_prefix_of_itself() -> None:
    files = _corpus()
    assert len(files) > 120
    empty = set()
    for path in files:
        body = path.read_text(encoding="utf-8", errors="replace")
        result = new_text(body)
        name = path.relative_to(REPLIES).as_posix()
        if not result:
            empty.add(name)
            continue
        lines = [line.rstrip() for line in body.replace("\r\n", "\n").split("\n")]
        start = next(i for i, line in enumerate(lines) if line)
        got = result.split("\n")
        assert lines[start : start + len(got)] == got, name
    assert empty == STARTS_WITH_HISTORY


def _common() -> str:
    """The Latin first paragraph most crisp fixtures put above their history."""
    return (REPLIES / "crisp" / "email_german.txt").read_text().split("\n\n")[0].strip()


def _up_to(name: str, marker: str) -> str:
    lines = (REPLIES / name).read_text().split("\n")
    end = next(i for i, line in enumerate(lines) if marker in line)
    return "\n".join(line.rstrip() for line in lines[: end + 1])


@needs_corpus
@pytest.mark.parametrize(
    "name",
    [
        "crisp/email_german.txt",  # Am … schrieb "…:
        "crisp/email_german_2.txt",  # Von/Gesendet/An/Betreff
        "crisp/email_german_3.txt",  # Gesendet von Outlook für Android
        "crisp/email_german_outlook.txt",  # -----Ursprüngliche Nachricht-----
        "crisp/email_norwegian_gmail.txt",  # attribution wrapped before ">:"
        "crisp/email_portuguese.txt",  # attribution wrapped over two lines
        "crisp/email_10.txt",  # French Outlook "De : …"
        "crisp/email_23.txt",  # "2017-11-24 16:32 GMT+01:00 Name <a@b>:"
    ],
)
def test_corpus_bodies_with_the_common_paragraph(name: str) -> None:
    assert new_text((REPLIES / name).read_text()) == _common()


@needs_corpus
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("crisp/email_1.txt", lambda: _up_to("crisp/email_1.txt", "Java HTTP API")),
        ("crisp/email_thread.txt", lambda: "This is new email reply in thread from bellow."),
        ("crisp/email_zoho.txt", lambda: _up_to("crisp/email_zoho.txt", "running a test?")),
        ("crisp/email_5.txt", lambda: _up_to("crisp/email_5.txt", "for a while.")),
        ("crisp/email_tricky_18_inline_reply.txt",
         lambda: _up_to("crisp/email_tricky_18_inline_reply.txt", "Option C is not")),
        ("crisp/email_tricky_17_forward_header.txt",
         lambda: _up_to("crisp/email_tricky_17_forward_header.txt", "forwarded content")),
        ("mail-parser-reply/email_3_1.txt",
         lambda: "First reply.\n\nThis is fairly common; nothing too hard here!"),
        ("mail-parser-reply/begins_with_signature.txt",
         lambda: _up_to("mail-parser-reply/begins_with_signature.txt", "hope you can join")),
    ],
)  # fmt: skip
def test_corpus_bodies_with_their_new_text(name: str, expected: object) -> None:
    assert callable(expected)
    assert new_text((REPLIES / name).read_text()) == expected()


def test_quotes_inside_an_unquoted_outlook_history_are_no_inline_answer() -> None:
    """Issue 12, defect 1: Outlook leaves the original unquoted below its header block; `> `
    lines inside that original (a notification quoting the requester) and the unquoted lines
    after them are the original's own text, not an answer written between quotes."""
    body = (
        "Das VPN-Profil wurde neu verteilt.\n\nViele Grüße\nAnna Schmidt\n\n"
        "-----Ursprüngliche Nachricht-----\nVon: IT-Servicedesk <servicedesk@example.org>\n"
        "Gesendet: Montag, 23. November 2026 10:02\nAn: Anna Schmidt <anna@example.org>\n"
        "Betreff: [LDS-1] Neues Ticket: VPN\n\nTicket:       LDS-1\nZuständig:    anna@example.org"
        "\n\nNachricht:\n> Guten Tag,\n> das VPN bricht ständig ab.\n\n"
        "Antworten Sie einfach auf diese Mail.\n  #zuweisen NAME|me\n"
    )
    assert new_text(body) == "Das VPN-Profil wurde neu verteilt."
