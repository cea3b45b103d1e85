"""guard stage: which mails must never get an automatic answer (RFC 3834), and a Message-ID
seen before is one article; the verdict on parsed mails, then through the running service."""

from __future__ import annotations

import pytest

from gateway.app import App
from gateway.config import Settings
from gateway.errors import Stop
from gateway.mail.model import Address, ParsedMail
from gateway.pipeline import guard, record
from gateway.pipeline.guard import auto_reply_verdict
from storage.engine import Database
from tests.fakes.smtp import Sink
from tests.helpers import (
    articles,
    make_mail,
    open_ticket_row,
    parsed_mail,
    send,
    stage_context,
    tickets,
    wait_for,
)


def mail(
    headers: dict[str, str] | None = None,
    sender: str = "erika@example.net",
    message_id: str = "<abc@example.net>",
) -> ParsedMail:
    return ParsedMail(
        message_id=message_id,
        message_id_generated=False,
        from_=Address("Erika", sender),
        to=[Address("", "servicedesk@example.org")],
        cc=[],
        reply_to=[],
        subject="Hallo",
        date=None,
        in_reply_to=[],
        references=[],
        thread_index=None,
        thread_topic=None,
        headers={k.lower(): [v] for k, v in (headers or {}).items()},
        text="Hallo",
        html=None,
        attachments=[],
    )


def verdict(m: ParsedMail, envelope_from: str | None = "erika@example.net",
            sent_by_us: bool = False) -> str | None:
    return auto_reply_verdict(
        m,
        envelope_from=envelope_from,
        sent_by_us=sent_by_us,
        service_address="servicedesk@example.org",
    )


def test_ordinary_mail_may_be_answered() -> None:
    assert verdict(mail()) is None
    assert verdict(mail({"Auto-Submitted": "no"})) is None
    assert verdict(mail({"Precedence": "first-class"})) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "auto-generated; owner-email=x@y"}, "Auto-Submitted: auto-generated"),
        ({"X-Auto-Response-Suppress": "All"}, "X-Auto-Response-Suppress present"),
        ({"Precedence": "bulk"}, "Precedence: bulk"),
        ({"Precedence": "Junk"}, "Precedence: junk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"Precedence": "auto_reply"}, "Precedence: auto_reply"),
        ({"List-Id": "<it.lists.example.net>"}, "mailing list (list-id)"),
        ({"List-Unsubscribe": "<mailto:x@y>"}, "mailing list (list-unsubscribe)"),
        ({"X-Autoreply": "yes"}, "x-autoreply present"),
        ({"X-Autorespond": "yes"}, "x-autorespond present"),
        ({"Return-Path": "<>"}, "empty Return-Path (bounce)"),
        (
            {"Content-Type": "multipart/report; report-type=delivery-status"},
            "delivery or read report",
        ),
    ],
)
def test_automatic_mail_is_not_answered(headers: dict[str, str], expected: str) -> None:
    assert verdict(mail(headers)) == expected


def test_empty_envelope_sender_is_a_bounce_but_unknown_envelope_is_not() -> None:
    assert verdict(mail(), envelope_from="") == "empty envelope sender (bounce)"
    assert verdict(mail(), envelope_from=None) is None  # file import: no envelope known


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@example.net".lower(),
        "postmaster@example.net",
        "noreply@example.net",
        "no-reply@example.net",
    ],
)
def test_robot_senders(sender: str) -> None:
    assert verdict(mail(sender=sender)) == "robot sender address"


def test_own_mail_coming_back_is_a_loop() -> None:
    assert verdict(mail(sender="servicedesk@example.org")) == "mail from our own address (loop)"
    colleague = mail(sender="anna.schmidt@example.org", message_id="<1234@example.org>")
    assert verdict(colleague) is None  # same domain as the service is not a loop
    assert verdict(colleague, sent_by_us=True) == "our own Message-ID came back (loop)"


def test_suppress_header_alone_does_not_make_an_agents_answer_automatic() -> None:
    """X-Auto-Response-Suppress asks not to be auto-answered; on an agent's real reply it must
    not stop the relay. Any header that says the mail *is* automatic still counts."""
    agent = "anna.schmidt@example.org"
    suppress = mail({"X-Auto-Response-Suppress": "All"}, sender=agent)
    assert auto_reply_verdict(suppress, envelope_from=agent, sent_by_us=False,
                              service_address="servicedesk@example.org", from_agent=True) is None
    both = mail({"X-Auto-Response-Suppress": "All", "Auto-Submitted": "auto-replied"},
                sender=agent)
    assert auto_reply_verdict(both, envelope_from=agent, sent_by_us=False,
                              service_address="servicedesk@example.org",
                              from_agent=True) == "Auto-Submitted: auto-replied"


def test_run_stops_a_mail_whose_message_id_is_stored_already(
    db: Database, settings: Settings
) -> None:
    mail = parsed_mail()
    with stage_context(db, settings, mail) as ctx:
        guard.run(ctx)
        record.run(ctx)  # the first copy is stored
    again = parsed_mail(message_id=mail.message_id)
    with stage_context(db, settings, again) as ctx, pytest.raises(Stop, match="duplicate"):
        guard.run(ctx)


def test_run_marks_our_own_message_id_coming_back_and_lets_ordinary_mail_pass(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, parsed_mail(message_id="<ack-1@example.org>")) as ctx:
        ticket = open_ticket_row(ctx)
        ctx.store.add_message_refs(ticket, ["<ack-1@example.org>"], "out")
        guard.run(ctx)
        assert ctx.automatic_reason == "our own Message-ID came back (loop)"
        assert [d.what for d in ctx.decisions] == ["automatic"]
    with stage_context(db, settings) as ctx:
        guard.run(ctx)
        assert ctx.automatic_reason is None and ctx.decisions == []


# --- through the running service (moved from test_end_to_end.py) ----------------------------


def test_automatic_mail_and_bounces_are_recorded_but_not_answered(service: App, sink: Sink) -> None:
    send(
        service.settings,
        make_mail(subject="Abwesenheitsnotiz: Drucker", headers={"Auto-Submitted": "auto-replied"}),
    )
    bounce = make_mail(
        sender="MAILER-DAEMON@example.net",
        subject="Undelivered Mail",
        body="This is the mail system at host example.net.",
    )
    send(service.settings, bounce, mail_from="")
    probe = make_mail(subject="Echte Anfrage")
    send(service.settings, probe)
    wait_for(lambda: sink.messages)
    wait_for(lambda: len([a for a in articles(service) if a.direction == "in"]) == 3)
    assert len(tickets(service)) == 3
    assert [m["In-Reply-To"] for m in sink.parsed()] == [probe["Message-ID"]]


def test_same_message_id_twice_is_one_article(service: App, sink: Sink) -> None:
    msg = make_mail()
    send(service.settings, msg)
    send(service.settings, msg)
    wait_for(lambda: sink.messages)
    with service.db.session() as session:
        from storage.models import InboxItem

        wait_for(lambda: session.query(InboxItem).filter_by(state="done").count() == 2)
    assert len([a for a in articles(service) if a.direction == "in"]) == 1
