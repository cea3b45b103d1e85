"""An agent answers a real notification the way real mail clients write replies (Outlook top-
posted with its unquoted header block, Thunderbird, Gmail and Apple Mail with `> ` quoting, in
German and English, with HTML parts where the client sends them), over real SMTP both ways.
What reaches the requester is the agent's answer and nothing of the notification: no fact
lines, no command help, no agent address, no proof token; what cannot be separated is held."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from inscriptis import get_text

from gateway.app import App
from gateway.config import Settings
from storage.models import Article, Event
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, running, send, wait_for

REQUESTER = "erika.muster@example.net"
ANNA = "anna.schmidt@example.org"
AGENTS = (ANNA, "ben.mueller@example.org")
TOKEN = re.compile(rb"pd\.LDS-\d+\.[a-z2-7]{20}|\+LDS-\d+\.[a-z2-7]{20}", re.I)
ANSWER = {
    "de": "Guten Tag Frau Muster,\n\ndas VPN-Profil wurde neu verteilt. Bitte starten Sie den "
    "Rechner neu.\nBei Fragen erreichen Sie mich unter anna.schmidt@example.org.",
    "en": "Dear Ms Muster,\n\nthe VPN profile has been redeployed. Please restart your "
    "computer.\nIf anything is unclear, write to anna.schmidt@example.org.",
}
SIGNATURE = {
    "de": "Mit freundlichen Grüßen\nAnna Schmidt\nIT-Servicedesk, Raum 1.12\n"
    "Tel. 0351 123-4567 | anna.schmidt@example.org",
    "en": "Kind regards\nAnna Schmidt\nIT service desk, room 1.12\n"
    "Phone 0351 123-4567 | anna.schmidt@example.org",
}


@pytest.fixture(params=["de", "en"])
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink, language: str) -> Iterator[App]:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        agents=[
            {"email": ANNA, "name": "Anna Schmidt", "teams": ["it"], "language": language},
            {"email": AGENTS[1], "name": "Ben Müller", "teams": ["it"]},
        ],
    )
    app = App.build(settings)
    with running(app):
        yield app


def mails_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [
        m for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True) if address in rcpts
    ]


def open_ticket(app: App, sink: Sink) -> EmailMessage:
    send(app.settings, make_mail(subject="VPN Störung seit heute",
                                 body="Guten Tag,\ndas VPN bricht ständig ab.\n"))
    wait_for(lambda: mails_to(sink, REQUESTER))
    return wait_for(lambda: next(iter(mails_to(sink, ANNA)), None))


def parts(notification: EmailMessage) -> tuple[str, str]:
    text = notification.get_body(("plain",)).get_content()
    html = notification.get_body(("html",)).get_content()
    return text.replace("\r\n", "\n"), html


def html_body(html: str) -> str:
    match = re.search(r"<body[^>]*>(.*)</body>", html, re.S)
    return match.group(1) if match else html


def paragraphs(text: str) -> str:
    return "".join(f"<p>{block.replace(chr(10), '<br>')}</p>" for block in text.split("\n\n"))


def quoted(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.rstrip("\n").split("\n"))


# --- how each client writes its reply -------------------------------------------------------


def outlook(notification: EmailMessage, lang: str, *, reply_to_line: bool, html_mode: bool
            ) -> tuple[str, str | None]:
    """Top-posted; the header block and the original stay unquoted. In HTML mode Outlook
    writes the text part from the HTML, so the quoted original is the HTML as text."""
    text, html = parts(notification)
    subject, reply_to = str(notification["Subject"]), str(notification["Reply-To"])
    if lang == "de":
        head = ["-----Ursprüngliche Nachricht-----",
                "Von: IT-Servicedesk <servicedesk@example.org> ",
                "Gesendet: Montag, 23. November 2026 10:02", f"An: Anna Schmidt <{ANNA}>"]
        head += [f"Antwort an: {reply_to}"] if reply_to_line else []
        head += [f"Betreff: {subject}"]
    else:
        head = ["-----Original Message-----", "From: IT-Servicedesk <servicedesk@example.org> ",
                "Sent: Monday, November 23, 2026 10:02 AM", f"To: Anna Schmidt <{ANNA}>"]
        head += [f"Reply-To: {reply_to}"] if reply_to_line else []
        head += [f"Subject: {subject}"]
    original = get_text(html) if html_mode else text
    plain = f"{ANSWER[lang]}\n\n{SIGNATURE[lang]}\n\n" + "\n".join(head) + f"\n\n{original}"
    if not html_mode:
        return plain, None
    header_html = "<br>".join(
        f"<b>{line.split(':', 1)[0]}:</b>{line.split(':', 1)[1]}" for line in head[1:]
    )
    body = (f"<div>{paragraphs(ANSWER[lang])}{paragraphs(SIGNATURE[lang])}</div>"
            f'<div id="divRplyFwdMsg"><hr>{header_html}</div><div>{html_body(html)}</div>')
    return plain, f"<html><body>{body}</body></html>"


def thunderbird(notification: EmailMessage, lang: str, *, bottom: bool = False
                ) -> tuple[str, str | None]:
    text, _ = parts(notification)
    head = ("Am 23.11.26 um 10:02 schrieb IT-Servicedesk:" if lang == "de"
            else "On 11/23/26 10:02 AM, IT-Servicedesk wrote:")
    signature = "-- \n" + SIGNATURE[lang].split("\n", 1)[1]
    if bottom:
        return f"{head}\n{quoted(text)}\n\n{ANSWER[lang]}\n\n{signature}\n", None
    return f"{ANSWER[lang]}\n\n{signature}\n\n{head}\n{quoted(text)}\n", None


def gmail(notification: EmailMessage, lang: str) -> tuple[str, str | None]:
    text, html = parts(notification)
    head = ("Am Mo., 23. Nov. 2026 um 10:02 Uhr schrieb IT-Servicedesk <\nservicedesk@example.org>:"
            if lang == "de" else
            "On Mon, Nov 23, 2026 at 10:02 AM IT-Servicedesk <servicedesk@example.org>\nwrote:")
    plain = f"{ANSWER[lang]}\n\n{SIGNATURE[lang]}\n\n{head}\n\n{quoted(text)}\n"
    rich = (f'<div dir="ltr">{paragraphs(ANSWER[lang])}{paragraphs(SIGNATURE[lang])}</div><br>'
            f'<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{head}<br></div>'
            f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px '
            f'solid rgb(204,204,204);padding-left:1ex">{html_body(html)}</blockquote></div>')
    return plain, f"<html><body>{rich}</body></html>"


def apple_mail(notification: EmailMessage, lang: str) -> tuple[str, str | None]:
    text, html = parts(notification)
    head = ("Am 23.11.2026 um 10:02 schrieb IT-Servicedesk <servicedesk@example.org>:"
            if lang == "de" else
            "On 23. Nov 2026, at 10:02, IT-Servicedesk <servicedesk@example.org> wrote:")
    plain = f"{ANSWER[lang]}\n\n{SIGNATURE[lang]}\n\n{quoted(head + chr(10) + chr(10) + text)}\n"
    rich = (f"<div>{paragraphs(ANSWER[lang])}{paragraphs(SIGNATURE[lang])}</div><div><br>"
            f'<blockquote type="cite"><div>{head}</div><br>{html_body(html)}</blockquote></div>')
    return plain, f'<html><body style="overflow-wrap: break-word;">{rich}</body></html>'


CLIENTS: dict[str, Callable[[EmailMessage, str], tuple[str, str | None]]] = {
    "outlook-plain": lambda n, lang: outlook(n, lang, reply_to_line=False, html_mode=False),
    "outlook-plain-reply-to": lambda n, lang: outlook(n, lang, reply_to_line=True,
                                                      html_mode=False),
    "outlook-html": lambda n, lang: outlook(n, lang, reply_to_line=False, html_mode=True),
    "outlook-html-reply-to": lambda n, lang: outlook(n, lang, reply_to_line=True,
                                                     html_mode=True),
    "thunderbird": thunderbird,
    "thunderbird-bottom": lambda n, lang: thunderbird(n, lang, bottom=True),
    "gmail": gmail,
    "apple-mail": apple_mail,
}


def reply(notification: EmailMessage, plain: str, html: str | None,
          commands: str = "") -> tuple[EmailMessage, list[str]]:
    msg = EmailMessage()
    msg["From"] = f"Anna Schmidt <{ANNA}>"
    to = str(notification["Reply-To"].addresses[0].addr_spec)
    msg["To"] = to
    msg["Subject"] = f"AW: {notification['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["In-Reply-To"] = notification["Message-ID"]
    msg["References"] = notification["Message-ID"]
    msg.set_content(commands + plain)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg, [to]


# --- what the requester may see --------------------------------------------------------------


def words(text: str) -> str:
    return " " + " ".join(re.sub(r"[\W_]+", " ", text.lower()).split()) + " "


def notification_lines(notification: EmailMessage) -> list[str]:
    """The notification's own lines (not the requester's quoted text, not the closing that
    every mail of the service carries), as normalised words."""
    text, _ = parts(notification)
    own = []
    for line in text.split("\n"):
        if line.startswith(">") or line.strip() in ("Mit freundlichen Grüßen", "Kind regards",
                                                    "IT-Servicedesk", "servicedesk@example.org"):
            continue
        if len(words(line).split()) >= 2:
            own.append(words(line))
    return own


def assert_clean(sink: Sink, notification: EmailMessage) -> None:
    """Every requester-bound mail: no token, no agent address, nothing of the notification
    (but for lines the requester's own acknowledgement has too, such as the subject line)."""
    acknowledgement = mails_to(sink, REQUESTER)[0]
    assert acknowledgement["Auto-Submitted"] == "auto-replied"
    known = words(acknowledgement.get_body(("plain",)).get_content())
    lines = [line for line in notification_lines(notification) if line not in known]
    assert len(lines) > 10, "the notification has lines of its own"
    for (_, rcpts, raw), parsed in zip(sink.messages, sink.parsed(), strict=True):
        if REQUESTER not in rcpts:
            continue
        assert not TOKEN.search(raw), "a proof token reached the requester"
        assert not any(agent.encode() in raw.lower() for agent in AGENTS), "an agent address"
        assert b"##-" not in raw
        for kind in ("plain", "html"):
            part = parsed.get_body((kind,))
            content = part.get_content() if part is not None else ""
            seen = words(get_text(content) if kind == "html" else content)
            leaked = [line for line in lines if line in seen]
            assert not leaked, f"notification lines in the requester's {kind} part: {leaked}"


def relays(sink: Sink) -> list[EmailMessage]:
    return [m for m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None]


@pytest.mark.parametrize("client", list(CLIENTS))
def test_client_reply_relays_only_the_agent_answer(
    service: App, sink: Sink, language: str, client: str
) -> None:
    notification = open_ticket(service, sink)
    plain, html = CLIENTS[client](notification, language)
    msg, rcpt = reply(notification, plain, html)
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    relay = wait_for(lambda: next(iter(relays(sink)), None))
    text = relay.get_body(("plain",)).get_content()
    first, second = ANSWER[language].split("\n\n")[1].split("\n")
    assert ANSWER[language].split("\n")[0] in text and first in text
    # the agent's own address, in her text or signature, is replaced by the central address
    assert second.replace(ANNA, "servicedesk@example.org") in text
    assert "Raum 1.12" not in text and "room 1.12" not in text
    assert_clean(sink, notification)


def articles(app: App) -> list[Article]:
    with app.db.session() as session:
        return list(session.query(Article).order_by(Article.id))


def events(app: App, kind: str) -> list[Event]:
    with app.db.session() as session:
        return list(session.query(Event).filter_by(kind=kind).order_by(Event.id))


@pytest.mark.parametrize("language", ["de"], indirect=True)
def test_inline_answer_inside_the_quoted_notification_is_held(
    service: App, sink: Sink, language: str
) -> None:
    """Text written between the quoted lines of the notification cannot be told apart from it
    safely: nothing goes to the requester, the text is an internal note, the agent is told."""
    notification = open_ticket(service, sink)
    text, _ = parts(notification)
    lines = quoted(text).split("\n")
    at = next(i for i, line in enumerate(lines) if "Zuständig" in line)
    lines.insert(at + 1, "Das übernehme ich, Rückruf heute.")
    plain = "Am 23.11.26 um 10:02 schrieb IT-Servicedesk:\n" + "\n".join(lines) + "\n"
    msg, rcpt = reply(notification, plain, None, commands="#erledigt\n\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    held = wait_for(lambda: mails_to(sink, ANNA)[1] if len(mails_to(sink, ANNA)) > 1 else None)
    assert "nicht gesendet" in str(held["Subject"]).lower()
    body = held.get_body(("plain",)).get_content()
    assert "LDS-1" in body and "oberhalb" in body
    [event] = events(service, "reply-held")
    assert event.actor == ANNA and event.detail["reasons"]
    notes = [a for a in articles(service) if a.kind == "note"]
    assert len(notes) == 1
    assert relays(sink) == []
    assert_clean(sink, notification)
    with service.db.session() as session:
        from storage.models import Ticket

        assert session.query(Ticket).one().status == "new"  # commands of a held reply: none


@pytest.mark.parametrize("language", ["en"], indirect=True)
def test_pasted_command_help_or_token_is_held(service: App, sink: Sink, language: str) -> None:
    """Whatever escapes the cut, the final scan stops it: here the agent pasted part of the
    notification (its command help and the reply address) into her own text."""
    notification = open_ticket(service, sink)
    text, _ = parts(notification)
    help_line = next(line for line in text.split("\n") if "#assign" in line)
    pasted = f"Try this:\n{help_line}\nor write to {notification['Reply-To']}\n"
    msg, rcpt = reply(notification, pasted, None)
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: events(service, "reply-held"))
    held = wait_for(lambda: mails_to(sink, ANNA)[1] if len(mails_to(sink, ANNA)) > 1 else None)
    assert "not sent" in str(held["Subject"]).lower()
    assert set(events(service, "reply-held")[0].detail["reasons"]) >= {"help", "token"}
    assert relays(sink) == []
    assert_clean(sink, notification)
