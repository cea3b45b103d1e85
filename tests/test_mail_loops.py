"""Mail loops and floods, over real SMTP both ways (issue 12, defect 2): an agent's out-of-office
reply is kept as a note, never relayed; two auto-responders answering each other through the
service stop after a number of mails the `limits:` config implies; forty forged agent mails
give at most the configured number of warnings; relays over a cap are held on the ticket."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from storage.models import Article, Event, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, running, send, wait_for, write_config

REQUESTER = "erika.muster@example.net"
ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"
UNVERIFIED = "Nicht gesendet, nur als Notiz gespeichert"  # agent-unverified subject (de)
LIMITS = {
    "window_seconds": 3600,
    "requester": {"per_ticket": 3, "per_recipient": 4},
    "notification": {"per_ticket": 3, "per_recipient": 10},
    "warning": {"per_ticket": 2, "per_recipient": 3},
}


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        limits=LIMITS,
    )
    app = App.build(settings)
    with running(app):
        yield app


def received(sink: Sink, start: int = 0) -> list[tuple[list[str], EmailMessage]]:
    """(recipients, parsed mail) of what the sink got from `start` on, from one snapshot."""
    return [
        (rcpts, message_from_bytes(raw, policy=policy.default))
        for _, rcpts, raw in list(sink.messages)[start:]
    ]


def mails_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [mail for rcpts, mail in received(sink) if address in rcpts]


def relays(sink: Sink) -> list[EmailMessage]:
    """Mails to the requester written by a person (a relay has no Auto-Submitted)."""
    return [m for m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None]


def rows(app: App, model: Any) -> list[Any]:
    with app.db.session() as session:
        return list(session.query(model).order_by(model.id))


def events(app: App, kind: str) -> list[Event]:
    return [e for e in rows(app, Event) if e.kind == kind]


def open_ticket(app: App, sink: Sink, subject: str) -> EmailMessage:
    """A requester's incident; returns the owner's notification once it has arrived."""
    start = len(sink.messages)
    send(app.settings, make_mail(subject=subject, body="Guten Tag,\ndas VPN bricht ab.\n"))
    return wait_for(lambda: next(
        (mail for rcpts, mail in received(sink, start)
         if {ANNA, BEN} & set(rcpts) and subject in str(mail["Subject"])), None))


def answer(notification: EmailMessage, subject: str, body: str) -> EmailMessage:
    """What the notified agent's client sends back to the token Reply-To (no Auto-Submitted)."""
    msg = EmailMessage()
    msg["From"] = notification["To"]
    msg["To"] = notification["Reply-To"] or notification["From"]
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["In-Reply-To"] = notification["Message-ID"]
    msg["References"] = notification["Message-ID"]
    msg.set_content(body)
    return msg


def deliver(settings: Settings, msg: EmailMessage) -> None:
    sender = msg["From"].addresses[0].addr_spec
    rcpt = [a.addr_spec for a in msg["To"].addresses]
    send(settings, msg, mail_from=sender, rcpt=rcpt)


def test_agent_out_of_office_without_headers_is_kept_as_a_note(service: App, sink: Sink) -> None:
    notification = open_ticket(service, sink, "VPN Störung seit heute")
    wait_for(lambda: mails_to(sink, REQUESTER))  # the acknowledgement
    before = len(sink.messages)
    by_subject = answer(notification, f"Automatische Antwort: {notification['Subject']}",
                        "Vielen Dank für Ihre Nachricht. Bitte wenden Sie sich an den "
                        "Servicedesk.\n")
    deliver(service.settings, by_subject)
    by_text = answer(notification, f"AW: {notification['Subject']}",  # and commands in it
                     "#erledigt\n\nVielen Dank für Ihre Nachricht.\nIch bin bis einschließlich "
                     "14.12. nicht im Büro. Ihre Nachricht wird nicht weitergeleitet.\n")
    deliver(service.settings, by_text)
    kept = wait_for(lambda: len(events(service, "agent-auto-reply-kept")) == 2
                    and events(service, "agent-auto-reply-kept"))
    assert [e.detail["reason"] for e in kept] == ["out-of-office subject", "out-of-office text"]
    notes = [a for a in rows(service, Article) if a.kind == "note"]
    assert len(notes) == 2 and "nicht im Büro" in notes[1].body
    assert rows(service, Ticket)[0].status == "new"  # #erledigt was not carried out
    time.sleep(1.0)  # the outbox sends every 0.1 s: anything queued would have gone
    assert len(sink.messages) == before  # nothing relayed, nobody warned


class Bots:
    """An agent's auto-reply bot and a requester's auto-responder: each answers every mail the
    sink receives for it with a mail back to the service over SMTP, without any header that
    says it is automatic (the worst case)."""

    def __init__(self, sink: Sink, settings: Settings, agent_subject: str, agent_text: str):
        self.sink, self.settings = sink, settings
        self.agent_subject, self.agent_text = agent_subject, agent_text
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Bots:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        seen = 0
        while not self.stop.is_set():
            for rcpts, mail in received(self.sink, seen):
                seen += 1
                if ANNA in rcpts or BEN in rcpts:
                    reply = answer(mail, self.agent_subject + str(mail["Subject"]),
                                   self.agent_text)
                elif REQUESTER in rcpts:
                    reply = make_mail(
                        subject=f"Automatische Antwort: {mail['Subject']}",
                        body="Ich bin im Urlaub und lese keine Mails.\n",
                        headers={"In-Reply-To": mail["Message-ID"],
                                 "References": mail["Message-ID"]},
                    )
                else:
                    continue
                try:
                    deliver(self.settings, reply)
                except smtplib.SMTPException:
                    continue  # refused: that ends this branch of the loop
                self.sent += 1
            time.sleep(0.05)


def run_storm(service: App, sink: Sink, agent_subject: str, agent_text: str,
              quiet_seconds: float = 4.0, minute: float = 60.0) -> tuple[int, int]:
    """Start a ticket, let both bots answer everything for up to a minute or until nothing
    has moved for `quiet_seconds` since the first mail came out; (mails the service sent,
    mails the bots sent)."""
    with Bots(sink, service.settings, agent_subject, agent_text) as bots:
        send(service.settings, make_mail(subject="VPN Störung seit heute",
                                         body="Guten Tag,\ndas VPN bricht ab.\n"))
        began = last_change = time.monotonic()
        counts = (0, 0)
        while time.monotonic() - began < minute:
            time.sleep(0.2)
            now = (len(sink.messages), bots.sent)
            if now != counts:
                counts, last_change = now, time.monotonic()
            elif counts[0] and time.monotonic() - last_change > quiet_seconds:
                break
        return len(sink.messages), bots.sent


def test_out_of_office_storm_ends_at_once(service: App, sink: Sink) -> None:
    """Before: the agent's out-of-office was relayed, the requester's auto-responder answered,
    the agent was notified again … 146 round trips in 75 s."""
    sent, answered = run_storm(service, sink, "Abwesenheitsnotiz: ",
                               "Ich bin bis 14.12. nicht im Büro.\n")
    # acknowledgement and notification; the auto-responder's answer to the acknowledgement
    # notifies the owner once more; every out-of-office is kept as a note
    assert sent == 3 and answered == 3
    assert not relays(sink)
    assert len(events(service, "agent-auto-reply-kept")) == 2


def test_loop_of_two_bots_that_read_like_people_is_bounded_by_the_limits(
    service: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An agent-side bot whose answers look like a person's (nothing to recognise) against a
    requester's auto-responder: only the caps stop it."""
    sent, answered = run_storm(service, sink, "AW: ", "Danke, ist angekommen.\n")
    limits = service.settings.limits
    # the acknowledgement, at most the capped relays and notifications — and each answered once
    bound = 1 + limits.requester.per_ticket + limits.notification.per_ticket
    assert sent <= bound and answered <= sent
    assert len(relays(sink)) == limits.requester.per_ticket
    held = events(service, "rate-limited")
    assert held and {e.detail["limit"] for e in held} <= {
        "requester-per-ticket", "notification-per-ticket"
    }
    config = write_config(tmp_path / "config.yaml", service.settings)
    assert main(["--config", str(config), "status"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rate limited"))
    assert line.startswith("rate limited: 1 ticket in the last hour")


def test_forty_forged_agent_mails_give_at_most_the_configured_warnings(
    service: App, sink: Sink
) -> None:
    open_ticket(service, sink, "VPN Störung seit heute")
    open_ticket(service, sink, "Drucker im 3. OG defekt")
    for number in range(40):
        forged = make_mail(sender=f"Anna Schmidt <{ANNA}>",
                           subject=f"AW: [LDS-{1 + number % 2}] erledigt",
                           body=f"#erledigt\n\nErledigt ({number}).\n")
        send(service.settings, forged, mail_from=ANNA)
    wait_for(lambda: len([a for a in rows(service, Article) if a.kind == "note"]) == 40,
             timeout=120)
    time.sleep(1.0)  # the outbox sends every 0.1 s
    warnings = [m for m in mails_to(sink, ANNA) if UNVERIFIED in str(m["Subject"])]
    assert len(warnings) == service.settings.limits.warning.per_recipient
    held = events(service, "rate-limited")
    assert len(held) == 40 - len(warnings)
    assert {e.detail["limit"] for e in held} == {"warning-per-ticket", "warning-per-recipient"}
    assert all(t.status == "new" for t in rows(service, Ticket))


def test_relays_over_a_cap_are_held_stored_and_shown_in_status(
    service: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = open_ticket(service, sink, "VPN Störung seit heute")
    second = open_ticket(service, sink, "Drucker im 3. OG defekt")
    replies = [(first, n) for n in range(1, 5)] + [(second, n) for n in range(5, 7)]
    for notification, number in replies:  # 4 on the first ticket (cap 3), 2 on the second
        deliver(service.settings, answer(notification, f"AW: {notification['Subject']}",
                                         f"Antwort {number}: bitte den Rechner neu starten.\n"))
        wait_for(lambda n=number: any(f"Antwort {n}:" in a.body for a in rows(service, Article)))
    time.sleep(1.0)  # the outbox sends every 0.1 s
    sent = [m.get_body(("plain",)).get_content() for m in relays(sink)]
    assert [n for n in range(1, 7) if any(f"Antwort {n}:" in t for t in sent)] == [1, 2, 3, 5]
    stored = {a.body.split(":")[0]: a.kind for a in rows(service, Article)
              if a.body.startswith("Antwort")}
    assert stored == {"Antwort 1": "agent", "Antwort 2": "agent", "Antwort 3": "agent",
                      "Antwort 4": "note", "Antwort 5": "agent", "Antwort 6": "note"}
    held = events(service, "rate-limited")
    assert [e.detail["limit"] for e in held] == ["requester-per-ticket",
                                                 "requester-per-recipient"]
    assert all(e.detail["mail"] == "requester-agent-reply" for e in held)
    config = write_config(tmp_path / "config.yaml", service.settings)
    assert main(["--config", str(config), "status"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("rate limited"))
    assert line == ("rate limited: 2 tickets in the last hour, 2 mails held "
                    "(requester-per-ticket 1, requester-per-recipient 1), latest LDS-2")


def test_the_rate_log_is_forgotten_after_the_window(settings: Settings) -> None:
    """The caps' log holds recipient addresses: the hourly retention job drops rows no cap
    counts any more (older than the window, and than the acknowledgements' hour)."""
    from datetime import timedelta

    from gateway.jobs import tasks as jobs
    from storage.autoreplies import AutoReplies
    from storage.models import AutoReplyLog, utcnow

    app = App.build(settings)
    app.init_database()
    now = utcnow()
    window = timedelta(seconds=settings.limits.window_seconds)
    with app.db.session() as session:
        log = AutoReplies(session)
        for at in (now - window - timedelta(minutes=1), now - timedelta(minutes=5)):
            assert log.log_within(f"requester:{REQUESTER}", at, since=at - window,
                                  limit=10) is not None
    jobs.purge_originals(app)
    with app.db.session() as session:
        assert [row.created_at for row in session.query(AutoReplyLog)] == [
            now - timedelta(minutes=5)
        ]
    app.db.dispose()
