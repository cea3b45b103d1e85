"""Agents work tickets from their own mail client, over real SMTP both ways: verified replies
are relayed from the central address and their #commands applied; forged or foreign proof acts
on nothing; no mail to a requester ever carries an agent's token or address."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from gateway.app import App
from gateway.config import Settings
from storage.models import Article, Event, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, running, send, wait_for

REQUESTER = "erika.muster@example.net"
ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"
TOKEN = re.compile(rb"pd\.LDS-\d+\.[a-z2-7]{20}|\+LDS-\d+\.[a-z2-7]{20}", re.I)


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    settings = make_settings(
        outgoing={
            "transport": "smtp",
            "host": "127.0.0.1",
            "port": sink.port,
            "interval_seconds": 0.1,
        },
        worker={"interval_seconds": 0.05},
    )
    app = App.build(settings)
    with running(app):
        yield app


def mails_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [
        m for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True) if address in rcpts
    ]


def ticket(app: App) -> Ticket:
    with app.db.session() as session:
        return session.query(Ticket).one()


def articles(app: App) -> list[Article]:
    with app.db.session() as session:
        return list(session.query(Article).order_by(Article.id))


def events(app: App, kind: str) -> list[Event]:
    with app.db.session() as session:
        return list(session.query(Event).filter_by(kind=kind).order_by(Event.id))


def open_ticket(app: App, sink: Sink) -> EmailMessage:
    """A requester's incident; returns the notification Anna (owner by round robin) got, once
    the requester's acknowledgement has arrived too (the outbox sends them in any order)."""
    send(app.settings, make_mail(subject="VPN Störung seit heute",
                                 body="Guten Tag,\ndas VPN bricht ständig ab.\n"))
    wait_for(lambda: mails_to(sink, REQUESTER))
    return wait_for(lambda: next(iter(mails_to(sink, ANNA)), None))


def reply(
    notification: EmailMessage, body: str, *, sender: str = ANNA, proof: bool = True
) -> tuple[EmailMessage, list[str]]:
    """The agent's reply as Outlook sends it; without `proof`, a forged one with no token."""
    msg = EmailMessage()
    msg["From"] = f"Anna Schmidt <{sender}>" if sender == ANNA else sender
    to = (
        str(notification["Reply-To"].addresses[0].addr_spec) if proof else "servicedesk@example.org"
    )
    msg["To"] = to
    msg["Subject"] = f"AW: {notification['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    if proof:
        msg["In-Reply-To"] = notification["Message-ID"]
        msg["References"] = notification["Message-ID"]
    msg.set_content(body)
    return msg, [to]


OUTLOOK_QUOTE = """
Viele Grüße
Anna Schmidt
IT-Servicedesk, Raum 1.12

Von: IT-Servicedesk <servicedesk@example.org>
Gesendet: Montag, 23. November 2026 10:02
An: Anna Schmidt <anna.schmidt@example.org>
Betreff: [LDS-1] Neues Ticket: VPN Störung seit heute

das VPN bricht ständig ab.
"""


def test_verified_reply_is_relayed_from_the_central_address_and_closes_the_ticket(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    assert notification["Reply-To"].addresses[0].addr_spec.startswith("servicedesk+LDS-1.")
    msg, rcpt = reply(
        notification,
        "#erledigt\n\nDas VPN-Profil wurde neu verteilt. Bitte "
        "starten Sie den Rechner neu.\n" + OUTLOOK_QUOTE,
    )
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: ticket(service).status == "resolved")
    relay = wait_for(
        lambda: next((m for m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None), None)
    )
    text = relay.get_body(("plain",)).get_content()
    assert "Das VPN-Profil wurde neu verteilt." in text and "#erledigt" not in text
    assert "Von: IT-Servicedesk" not in text and "Raum 1.12" not in text
    assert relay["From"].addresses[0].addr_spec == "servicedesk@example.org"
    assert "Anna Schmidt" in relay["From"].addresses[0].display_name
    assert "[LDS-1]" in relay["Subject"]
    assert relay["In-Reply-To"]  # threads in the requester's client
    stored = [a for a in articles(service) if a.kind == "agent"]
    assert len(stored) == 1 and stored[0].body.startswith("Das VPN-Profil wurde neu verteilt.")
    [status] = events(service, "status")[-1:]
    assert (status.actor, status.detail["new"]) == (ANNA, "resolved")


def test_forged_from_or_foreign_token_acts_on_nothing(service: App, sink: Sink) -> None:
    notification = open_ticket(service, sink)
    before = len(mails_to(sink, REQUESTER))
    forged, rcpt = reply(notification, "#erledigt\n\nErledigt.\n", proof=False)
    send(service.settings, forged, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: len(mails_to(sink, ANNA)) >= 2)  # the "how to reply" mail
    foreign, rcpt = reply(notification, "#erledigt\n\nErledigt.\n", sender=BEN)
    send(service.settings, foreign, mail_from=BEN, rcpt=rcpt)  # Anna's token, Ben's From
    wait_for(lambda: len([a for a in articles(service) if a.kind == "note"]) == 2)
    assert ticket(service).status == "new"
    assert len(mails_to(sink, REQUESTER)) == before  # nothing relayed
    help_mail = mails_to(sink, ANNA)[-1]
    assert "Nicht gesendet, nur als Notiz gespeichert" in str(help_mail["Subject"])


def test_invalid_command_applies_nothing_and_tells_the_agent_the_line(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    before = len(mails_to(sink, REQUESTER))
    msg, rcpt = reply(notification, "#erledigt\n#priorität sehr hoch\n\nIst erledigt.\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    error = wait_for(lambda: mails_to(sink, ANNA)[1] if len(mails_to(sink, ANNA)) > 1 else None)
    body = error.get_body(("plain",)).get_content()
    assert "#priorität sehr hoch" in body and "2" in body
    assert (ticket(service).status, ticket(service).priority) == ("new", "normal")
    assert len(mails_to(sink, REQUESTER)) == before


def test_internal_note_is_stored_not_relayed(service: App, sink: Sink) -> None:
    notification = open_ticket(service, sink)
    before = len(mails_to(sink, REQUESTER))
    msg, rcpt = reply(notification, "#intern\n\nRouter im Keller prüfen.\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: any(a.kind == "note" for a in articles(service)))
    note = next(a for a in articles(service) if a.kind == "note")
    assert note.body.strip() == "Router im Keller prüfen."
    assert len(mails_to(sink, REQUESTER)) == before


def test_requester_answer_to_pending_reopens_and_notifies_the_owner(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    msg, rcpt = reply(notification, "#warten\n\nWelche Fehlermeldung sehen Sie?\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: ticket(service).status == "pending")
    question = wait_for(
        lambda: next((m for m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None), None)
    )
    answer = make_mail(
        subject=f"AW: {question['Subject']}",
        body="Fehler 809.\n",
        headers={"In-Reply-To": question["Message-ID"], "References": question["Message-ID"]},
    )
    send(service.settings, answer)
    wait_for(lambda: ticket(service).status == "open")
    wait_for(lambda: len(mails_to(sink, ANNA)) >= 2)
    assert "Neue Antwort" in mails_to(sink, ANNA)[-1]["Subject"]


def test_no_mail_to_a_requester_carries_a_token_or_an_agent_address(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    msg, rcpt = reply(notification, "#warten\n\nBitte Rückruf unter 0351 123456.\n" + OUTLOOK_QUOTE)
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: len(mails_to(sink, REQUESTER)) >= 2)
    for _, rcpts, raw in sink.messages:
        if REQUESTER in rcpts:
            assert not TOKEN.search(raw), "a proof token reached the requester"
            assert b"anna.schmidt" not in raw.lower() and b"ben.mueller" not in raw.lower()
