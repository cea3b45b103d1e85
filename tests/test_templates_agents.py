"""The shipped templates for agents working tickets by mail (notifications, unverified mail,
command errors) and for what requesters get from that work (relayed replies, status mails):
both languages, the documented view contract, escaping, and the automatic-mail note."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jinja2
import pytest
from inscriptis import get_text
from jinja2 import meta

from gateway.agents.reply import DELIMITER
from gateway.errors import TemplateError
from gateway.outgoing.render import RenderedMail, Renderer
from tests.helpers import ROOT

SHIPPED = ROOT / "templates"
LANGUAGES = ("de", "en")
AUTOMATIC_NOTE = {
    "de": "Diese Nachricht wurde automatisch erstellt.",
    "en": "This message was generated automatically.",
}
AGENT_TEXT = (
    "Guten Tag,\n\n"
    "der Drucker im 3. OG zeigt „Papierstau“, obwohl kein Papier klemmt.\n"
    "  Fehlercode: <script>alert('x')</script> & E-42\n\n"
    "Grüße aus Köln"
)
BASE: dict[str, Any] = {
    "ref": "LDS-42",
    "subject": "Drucker im 3. OG: Störung bei Übergröße",
    "status": "open",
    "queue": "IT-Support",
    "priority": "high",
    "service_name": "IT-Servicedesk Landesamt",
    "service_address": "servicedesk@example.org",
    "automatic": True,
}
VIEWS: dict[str, dict[str, Any]] = {
    "agent-notify": {
        "status": "new", "queue": None, "agent_name": "Jürgen Weiß", "reason": "new",
        "owner": None, "requester": "erika.mueller@example.org", "text": AGENT_TEXT,
        "attachments": ["Foto Störung.jpg", "a&b <1>.pdf"], "marker": "LDS-42/0a1b2c3d",
        "article": None, "original": None,
    },
    "agent-original": {
        "agent_name": "Jürgen Weiß", "marker": "LDS-42/0a1b2c3d", "article": 3,
        "retention_days": 14,
        "original": {
            "article": 3, "sender": "Erika Müller <erika.mueller@example.org>",
            "subject": "Konto für Frau Müller", "date": datetime(2026, 3, 2, 8, 15, tzinfo=UTC),
            "text": AGENT_TEXT,
            "attachments": [{"filename": "Ausweis <Kopie>.pdf", "size": 2048}],
            "omitted": [{"filename": "scan.tif", "size": 31_457_280}],
        },
    },
    "agent-unverified": {"agent_name": "Jürgen Weiß", "marker": "LDS-42/0a1b2c3d"},
    "agent-reply-held": {
        "agent_name": "Jürgen Weiß", "marker": "LDS-42/0a1b2c3d",
        "reasons": ["notification", "token", "agent-address", "help", "marker", "inline",
                    "above-and-below"],
    },
    "agent-not-in-charge": {
        "agent_name": "Jürgen Weiß", "marker": "LDS-42/0a1b2c3d", "owner_name": "Ben Müller",
        "team": "it",
    },
    "agent-command-error": {
        "agent_name": "Jürgen Weiß", "marker": "LDS-42/0a1b2c3d",
        "errors": [
            {"line_no": 2, "line": "#priorität sehr hoch", "message": "unknown priority"},
            {"line_no": 3, "line": "#zuweisen <Max>", "message": "unknown agent"},
        ],
    },
    "requester-agent-reply": {
        "automatic": False, "agent_name": "Jürgen Weiß", "text": AGENT_TEXT,
        "status_note": None, "reopen_days": 14,
    },
    "requester-solved": {"status": "resolved", "reopen_days": 14},
    "requester-waiting": {"status": "pending"},
    "requester-assigned": {"agent_name": "Jürgen Weiß"},
}
NAMES = tuple(VIEWS)
REQUESTER_NAMES = tuple(name for name in NAMES if name.startswith("requester-"))
AGENT_NAMES = tuple(name for name in NAMES if name.startswith("agent-"))


def view(name: str, **changes: Any) -> dict[str, Any]:
    return {**BASE, **VIEWS[name], **changes}


def render(name: str, language: str, **changes: Any) -> RenderedMail:
    return Renderer(SHIPPED, "de").render(name, language, view(name, **changes))


def html_of(mail: RenderedMail) -> str:
    assert mail.html is not None
    return mail.html


# --- every template ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_every_template_has_subject_text_and_html(name: str, language: str) -> None:
    for part in ("subject", "txt", "html"):
        assert (SHIPPED / language / f"{name}.{part}.j2").is_file()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_renders_with_reference_in_a_one_line_subject(name: str, language: str) -> None:
    mail = render(name, language)
    assert mail.subject.startswith("[LDS-42] ")
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert "IT-Servicedesk Landesamt" in mail.text
    if name != "requester-agent-reply":  # a relayed reply carries the reference only in its subject
        assert "LDS-42" in mail.text
    html = html_of(mail)
    assert f'<html lang="{language}">' in html and "LDS-42" in html
    assert "IT-Servicedesk Landesamt" in html
    for line in mail.text.splitlines():
        assert len(line) <= 80, line


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_empty_ticket_subject_gets_a_placeholder(name: str, language: str) -> None:
    placeholder = "(ohne Betreff)" if language == "de" else "(no subject)"
    assert render(name, language, subject="").subject.endswith(placeholder)


@pytest.mark.parametrize("automatic", [True, False])
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NAMES)
def test_automatic_note_appears_exactly_for_automatic_mail(
    name: str, language: str, automatic: bool
) -> None:
    mail = render(name, language, automatic=automatic)
    note = AUTOMATIC_NOTE[language]
    assert (note in mail.text) is automatic
    assert (note in html_of(mail)) is automatic
    assert ("\n-- \n" in mail.text) is automatic  # no dangling signature separator


@pytest.mark.parametrize("name", ["requester-agent-reply", "agent-notify"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_text_is_escaped_in_html(name: str, language: str) -> None:
    html = html_of(render(name, language))
    assert "<script>" not in html
    assert "Fehlercode: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; E-42" in html
    assert "„Papierstau“" in html and "Grüße aus Köln" in html
    assert "Guten Tag,\n<br>\n\n<br>\nder Drucker" in html  # line breaks and blank lines kept


@pytest.mark.parametrize("name", REQUESTER_NAMES)
def test_requester_templates_never_reference_agent_addresses(name: str) -> None:
    """Mail to requesters may show an agent's display name, never an address or ticket owner."""
    env = jinja2.Environment()
    for language in LANGUAGES:
        for part in ("subject", "txt", "html"):
            source = (SHIPPED / language / f"{name}.{part}.j2").read_text(encoding="utf-8")
            used = meta.find_undeclared_variables(env.parse(source))
            assert not used & {"owner", "requester", "agent_address", "agent_email"}, used


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", AGENT_NAMES)
def test_agent_mail_is_framed_by_delimiter_and_end_marker(name: str, language: str) -> None:
    """Whatever a client does to the quote, these two lines show where the mail an agent
    answers begins and ends (gateway.agents.reply); the end marker is the very last line."""
    mail = render(name, language)
    assert mail.text.startswith(DELIMITER + "\n")
    assert mail.text.rstrip("\n").split("\n")[-1].endswith(" LDS-42/0a1b2c3d -##")
    shown = [line.strip() for line in get_text(html_of(mail)).split("\n") if line.strip()]
    assert shown[0] == DELIMITER and shown[-1].endswith(" LDS-42/0a1b2c3d -##")


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_reply_held_names_every_finding(language: str) -> None:
    mail = render("agent-reply-held", language)
    subject = "Antwort nicht gesendet" if language == "de" else "Reply not sent"
    assert mail.subject.startswith(f"[LDS-42] {subject}")
    for text in (mail.text, html_of(mail)):
        for reason in VIEWS["agent-reply-held"]["reasons"]:
            assert f"- {reason}\n" not in text and f"<li>{reason}</li>" not in text  # all named
        assert ("oberhalb" if language == "de" else "above") in text


NOT_IN_CHARGE = {
    ("de", "Ben Müller", "it"): ("Ticket liegt jetzt bei Ben Müller:", "Ben Müller zugewiesen"),
    ("de", None, "it"): ("Ticket liegt jetzt bei Team it:", "beim Team it"),
    ("de", None, None): ("Ticket liegt jetzt bei der Ticketverteilung:", "Ticketverteilung"),
    ("en", "Ben Müller", "it"): ("the ticket is now with Ben Müller:", "assigned to Ben Müller"),
    ("en", None, "it"): ("the ticket is now with team it:", "with team it"),
    ("en", None, None): ("the ticket is now with the dispatchers:", "the dispatchers will"),
}


@pytest.mark.parametrize(("language", "owner_name", "team"), list(NOT_IN_CHARGE))
def test_agent_not_in_charge_says_who_has_the_ticket_now(
    language: str, owner_name: str | None, team: str | None
) -> None:
    """A former owner's reply is kept as a note: the mail back names the new owner, else the
    team, else the dispatchers, and says that nothing reached the requester."""
    mail = render("agent-not-in-charge", language, owner_name=owner_name, team=team)
    in_subject, in_text = NOT_IN_CHARGE[language, owner_name, team]
    assert in_subject in mail.subject
    kept = "interne Notiz" if language == "de" else "internal note"
    not_sent = "NICHT an die anfragende" if language == "de" else "NOT sent to the requester"
    for text in (mail.text, get_text(html_of(mail))):
        assert in_text in text and kept in text
    assert not_sent in mail.text


# --- agent-notify -----------------------------------------------------------------------------

NOTIFY_SUBJECTS = {
    ("de", "new"): "[LDS-42] Neues Ticket (hoch): Drucker im 3. OG: Störung bei Übergröße",
    ("de", "assigned"): "[LDS-42] Ihnen zugewiesen: Drucker im 3. OG: Störung bei Übergröße",
    ("de", "requester-replied"): "[LDS-42] Neue Antwort: Drucker im 3. OG: Störung bei Übergröße",
    ("de", "reopened"): "[LDS-42] Wieder geöffnet: Drucker im 3. OG: Störung bei Übergröße",
    ("en", "new"): "[LDS-42] New ticket (high): Drucker im 3. OG: Störung bei Übergröße",
    ("en", "assigned"): "[LDS-42] Assigned to you: Drucker im 3. OG: Störung bei Übergröße",
    ("en", "requester-replied"): "[LDS-42] New reply: Drucker im 3. OG: Störung bei Übergröße",
    ("en", "reopened"): "[LDS-42] Reopened: Drucker im 3. OG: Störung bei Übergröße",
}


@pytest.mark.parametrize(("language", "reason"), list(NOTIFY_SUBJECTS))
def test_agent_notify_subject_names_the_reason(language: str, reason: str) -> None:
    mail = render("agent-notify", language, reason=reason)
    assert mail.subject == NOTIFY_SUBJECTS[language, reason]


def test_agent_notify_german_facts_text_and_command_help() -> None:
    mail = render("agent-notify", "de")
    assert mail.text.startswith(
        f"{DELIMITER}\n\nGuten Tag Jürgen Weiß,\n\nfür Sie bzw. Ihr Team ist ein neues"
    )
    for fact in ("Ticket:       LDS-42", "Queue:        (keine)", "Priorität:    hoch",
                 "Status:       neu", "Zuständig:    (noch niemand)",
                 "Anfrage von:  erika.mueller@example.org"):
        assert fact in mail.text
    quoted = "\n".join(f"> {line}" if line else "> " for line in AGENT_TEXT.splitlines())
    assert quoted in mail.text  # the requester's text, every line quoted, nothing changed
    assert "Anhänge:\n  - Foto Störung.jpg\n  - a&b <1>.pdf\n" in mail.text
    assert "Ihre Antwort geht von\nservicedesk@example.org an die anfragende Person" in mail.text
    assert "Antwortadresse unverändert" in mail.text
    for command in ("#erledigt", "#warten", "#offen", "#zuweisen NAME|me", "#übernehmen",
                    "#priorität niedrig|normal|hoch|dringend", "#queue NAME", "#tag TAG",
                    "#intern", "#original [N]"):
        assert command in mail.text and command in html_of(mail)
    assert "a&amp;b &lt;1&gt;.pdf" in html_of(mail)


def test_agent_notify_english_facts_and_command_help() -> None:
    mail = render("agent-notify", "en", reason="assigned", status="pending", priority="urgent",
                  queue="IT-Support", owner="juergen.weiss@example.org")
    assert "Hello Jürgen Weiß,\n\nTicket LDS-42 has been assigned to you." in mail.text
    for fact in ("Queue:      IT-Support", "Priority:   urgent",
                 "Status:     waiting for the requester", "Owner:      juergen.weiss@example.org",
                 "Requester:  erika.mueller@example.org"):
        assert fact in mail.text
    for command in ("#close", "#pending", "#open", "#assign NAME|me", "#take",
                    "#priority low|normal|high|urgent", "#queue NAME", "#tag TAG", "#note",
                    "#original [N]"):
        assert command in mail.text and command in html_of(mail)
    assert "keep the reply\naddress as it is" in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_notify_without_text_name_or_attachments(language: str) -> None:
    mail = render("agent-notify", language, text="", attachments=[], agent_name=None,
                  reason="reopened")
    greeting = "Guten Tag,\n" if language == "de" else "Hello,\n"
    empty = "(Die Nachricht enthält keinen Text.)" if language == "de" else "contains no text"
    assert mail.text.startswith(f"{DELIMITER}\n\n{greeting}")
    assert empty in mail.text and empty in html_of(mail)
    assert "Anhänge" not in mail.text and "Attachments" not in mail.text
    assert "None" not in mail.text and "None" not in html_of(mail)


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_notify_names_the_article_for_the_original_command(language: str) -> None:
    mail = render("agent-notify", language, article=4)
    assert "#original 4" in mail.text and "#original 4" in html_of(mail)
    assert "#original 4" not in render("agent-notify", language).text  # no number, no hint


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_notify_with_the_original_shows_it_instead_of_the_stored_text(
    language: str,
) -> None:
    """redaction.agent_view: original — the agent reads the mail as it came, quoted, with its
    sender, and the attachments sent along or named as too large; not the redacted text."""
    original = {**VIEWS["agent-original"]["original"], "text": "Konto für Erika Müller,\n"
                "geb. 12.03.1985.\n", "article": 4}
    mail = render("agent-notify", language, article=4, text="Konto für [NAME-1]",
                  original=original)
    assert "> Konto für Erika Müller,\n> geb. 12.03.1985.\n" in mail.text
    assert "[NAME-1]" not in mail.text and "[NAME-1]" not in html_of(mail)
    assert "Erika Müller &lt;erika.mueller@example.org&gt;" in html_of(mail)
    assert "geb. 12.03.1985." in html_of(mail)
    for text in (mail.text, html_of(mail)):
        assert "Ausweis" in text and "(2 KB)" in text and "scan.tif (30720 KB)" in text
    assert ("UNGESCHWÄRZTES ORIGINAL (Artikel 4)" if language == "de"
            else "UNREDACTED ORIGINAL (article 4)") in mail.text
    assert "#original 4" not in mail.text  # the hint is for the redacted view only


def test_agent_notify_unknown_reason_is_an_error() -> None:
    with pytest.raises(TemplateError, match="agent-notify"):
        render("agent-notify", "de", reason="forwarded")


# --- agent-original ---------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_original_shows_the_mail_escaped_and_warns(language: str) -> None:
    mail = render("agent-original", language)
    assert mail.subject.startswith("[LDS-42] Original von Artikel 3 (vertraulich)"
                                   if language == "de"
                                   else "[LDS-42] Original of article 3 (confidential)")
    quoted = "\n".join(f"> {line}" if line else "> " for line in AGENT_TEXT.splitlines())
    assert quoted in mail.text
    html = html_of(mail)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Ausweis &lt;Kopie&gt;.pdf (2 KB)" in html
    assert "Erika Müller <erika.mueller@example.org>" in mail.text
    warning = "nicht\nweiterleiten" if language == "de" else "do not forward it"
    assert warning in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_original_gone_says_so_and_how_long_originals_are_kept(language: str) -> None:
    mail = render("agent-original", language, original=None, retention_days=30)
    assert mail.subject.startswith("[LDS-42] Original von Artikel 3 nicht mehr vorhanden"
                                   if language == "de"
                                   else "[LDS-42] Original of article 3 no longer available")
    for text in (mail.text.replace("\n", " "), get_text(html_of(mail)).replace("\n", " ")):
        assert ("30 Tage" if language == "de" else "30 days") in text
    assert "Erika" not in mail.text


# --- agent-unverified and agent-command-error -------------------------------------------------


def test_agent_unverified_explains_what_happened_and_how_to_reply() -> None:
    de = render("agent-unverified", "de")
    assert de.subject.startswith("[LDS-42] Nicht gesendet, nur als Notiz gespeichert: ")
    for phrase in ("interne, ungeprüfte Notiz", "nichts an die anfragende Person gesendet",
                   "nicht ausgeführt", "Antwort auf eine Benachrichtigung",
                   "persönliche Antwortadresse", "letzte Benachrichtigung zum Ticket LDS-42",
                   "Antwortadresse unverändert"):
        assert phrase in de.text.replace("\n", " ")
    en = render("agent-unverified", "en")
    for phrase in ("internal, unverified note", "Nothing was sent to the requester",
                   "no commands (such as #close) were carried out",
                   "personal reply address", "latest notification for ticket LDS-42"):
        assert phrase in en.text.replace("\n", " ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_agent_command_error_lists_every_bad_line(language: str) -> None:
    mail = render("agent-command-error", language)
    word = "Zeile" if language == "de" else "Line"
    assert f"  {word} 2: #priorität sehr hoch\n    Problem: unknown priority\n" in mail.text
    assert f"  {word} 3: #zuweisen <Max>\n    Problem: unknown agent\n" in mail.text
    html = html_of(mail)
    assert f"{word} 3: <code>#zuweisen &lt;Max&gt;</code>" in html
    nothing = ("wurde NICHTS übernommen", "nichts wurde an die anfragende Person gesendet") \
        if language == "de" else ("NOTHING was applied", "nothing was\nsent to the requester")
    for phrase in nothing:
        assert phrase in mail.text


# --- requester-agent-reply --------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_relayed_reply_reads_as_a_normal_reply(language: str) -> None:
    mail = render("requester-agent-reply", language)
    assert mail.subject == "[LDS-42] Drucker im 3. OG: Störung bei Übergröße"
    # the agent's words first and unchanged, then only name and service as the signature
    assert mail.text == f"{AGENT_TEXT}\n\nJürgen Weiß\nIT-Servicedesk Landesamt\n"
    html = html_of(mail)
    assert "<p>Jürgen Weiß<br>\nIT-Servicedesk Landesamt</p>" in html
    assert "servicedesk@example.org" not in html and "Mit freundlichen" not in html


@pytest.mark.parametrize(("language", "phrase"), [
    ("de", "Wir betrachten Ihr Anliegen damit als erledigt.\nIst noch etwas offen, antworten "
           "Sie bitte innerhalb von 14 Tagen\nauf diese E-Mail; der Vorgang wird dann wieder "
           "aufgenommen."),
    ("en", "We now consider your request resolved.\nIf anything is still open, please reply "
           "to this email within 14 days\nand we will reopen the request."),
])
def test_relayed_reply_marked_solved_tells_how_to_reopen(language: str, phrase: str) -> None:
    mail = render("requester-agent-reply", language, status_note="solved")
    assert mail.text.startswith(AGENT_TEXT + "\n\n")
    assert phrase in mail.text
    assert phrase.replace("\n", " ") in html_of(mail)
    assert mail.text.endswith("\n\nJürgen Weiß\nIT-Servicedesk Landesamt\n")


def test_relayed_reply_reopen_period_singular_and_none() -> None:
    one_day = render("requester-agent-reply", "de", status_note="solved", reopen_days=1)
    assert "innerhalb von 1 Tag\n" in one_day.text
    assert "within 1 day\n" in render("requester-agent-reply", "en", status_note="solved",
                                      reopen_days=1).text
    no_reopen = render("requester-agent-reply", "de", status_note="solved", reopen_days=0)
    assert "als neuen Vorgang" in no_reopen.text and "innerhalb" not in no_reopen.text


@pytest.mark.parametrize(("language", "phrase"), [
    ("de", "Wir warten auf Ihre Antwort"), ("en", "We are waiting for your answer")
])
def test_relayed_reply_waiting_asks_for_an_answer(language: str, phrase: str) -> None:
    mail = render("requester-agent-reply", language, status_note="waiting")
    assert phrase in mail.text and phrase in html_of(mail)
    assert "erledigt" not in mail.text and "resolved" not in mail.text


def test_relayed_reply_needs_no_reopen_period_unless_solved() -> None:
    only = {key: value for key, value in view("requester-agent-reply").items()
            if key != "reopen_days"}
    mail = Renderer(SHIPPED, "de").render("requester-agent-reply", "de", only)
    assert mail.text.startswith(AGENT_TEXT)
    with pytest.raises(TemplateError, match="reopen_days"):
        Renderer(SHIPPED, "de").render("requester-agent-reply", "de",
                                       {**only, "status_note": "solved"})


def test_relayed_reply_unknown_status_note_is_an_error() -> None:
    with pytest.raises(TemplateError, match="status_note"):
        render("requester-agent-reply", "de", status_note="closed")


def test_relayed_reply_trailing_blank_lines_are_dropped() -> None:
    mail = render("requester-agent-reply", "en", text="Done.\n\n\n", agent_name=None)
    assert mail.text == "Done.\n\nIT-Servicedesk Landesamt\n"


# --- requester status mails -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "language", "subject", "phrases"), [
    ("requester-solved", "de", "Vorgang erledigt: ",
     ("als erledigt gekennzeichnet", "innerhalb von 14 Tagen auf diese E-Mail",
      "[LDS-42] im Betreff", "wieder auf")),
    ("requester-solved", "en", "Request resolved: ",
     ("marked it as resolved", "within 14 days", "[LDS-42] in the subject", "reopen")),
    ("requester-waiting", "de", "Rückfrage zu Ihrem Anliegen: ",
     ("benötigen wir noch Informationen von Ihnen", "antworten Sie einfach auf diese E-Mail")),
    ("requester-waiting", "en", "We need information from you: ",
     ("we need some information from you", "reply to this email")),
    ("requester-assigned", "de", "Ihr Anliegen ist in Bearbeitung: ",
     ("wird jetzt von Jürgen Weiß bearbeitet", "antworten Sie bitte einfach")),
    ("requester-assigned", "en", "Your request is being handled: ",
     ("is now being handled by Jürgen Weiß", "simply reply to this email")),
])
def test_status_mails_say_what_happened(
    name: str, language: str, subject: str, phrases: tuple[str, ...]
) -> None:
    mail = render(name, language)
    assert mail.subject == f"[LDS-42] {subject}Drucker im 3. OG: Störung bei Übergröße"
    flat_text, flat_html = mail.text.replace("\n", " "), html_of(mail).replace("\n", " ")
    for phrase in phrases:
        assert phrase in flat_text
        assert phrase.replace("[LDS-42]", "<strong>[LDS-42]</strong>") in flat_html


def test_solved_mail_without_reopen_period_announces_a_new_request() -> None:
    mail = render("requester-solved", "de", reopen_days=0)
    assert "als neuen Vorgang" in mail.text and "Tagen" not in mail.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_assigned_mail_without_agent_name(language: str) -> None:
    mail = render("requester-assigned", language, agent_name=None)
    assert "None" not in mail.text and "None" not in html_of(mail)
    assert " von " not in mail.text.split("Betreff")[0] and " by " not in mail.text


# --- the existing requester templates keep working --------------------------------------------

LEGACY_VIEW: dict[str, Any] = {  # what pipeline/notify.py passes today: no `automatic`
    "ref": "LDS-42",
    "subject": "Drucker im 3. OG defekt",
    "status": "new",
    "queue": None,
    "priority": "normal",
    "created_at": datetime(2024, 7, 1, 8, 5, tzinfo=UTC),
    "received_at": datetime(2024, 7, 1, 8, 5, tzinfo=UTC),
    "linked_ref": "LDS-40",
    "requester_name": "Erika Müller",
    "service_name": "IT-Servicedesk",
    "service_address": "servicedesk@example.org",
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["requester-received", "requester-reopened",
                                  "requester-new-linked"])
def test_existing_templates_still_render_as_automatic_mail(name: str, language: str) -> None:
    mail = Renderer(SHIPPED, "de").render(name, language, LEGACY_VIEW)
    closing = "Mit freundlichen Grüßen" if language == "de" else "Kind regards"
    note = AUTOMATIC_NOTE[language]
    assert mail.text.endswith(
        f"{closing}\nIT-Servicedesk\nservicedesk@example.org\n\n-- \n{note}\n"
    )
    assert note in html_of(mail) and 'href="mailto:servicedesk@example.org"' in html_of(mail)
