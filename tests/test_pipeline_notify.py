"""notify stage: a Context over real database rows gets exactly one well-formed OUTBOX row (or
none, for automatic mail, agents, and over the hourly rate limit)."""

from __future__ import annotations

import base64
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.mail import threadindex
from gateway.mail.model import Address, ParsedMail
from gateway.outgoing.letters import Letters
from gateway.outgoing.render import Renderer
from gateway.pipeline import notify
from gateway.pipeline.context import Context, Decision, PreparedMail, SenderRole, Services
from storage.blobs import BlobStore
from storage.engine import Database
from storage.models import (
    Article,
    AutoReplyLog,
    Event,
    InboxItem,
    MessageRef,
    OutboxItem,
    utcnow,
)
from storage.tickets import TicketStore
from tests.helpers import OUTLOOK_REPLY

REQUEST_ID = "<request-1@mail.example.net>"
EARLIER_ID = "<earlier@mail.example.net>"
REQUESTER = "erika.muster@example.net"


def parsed_mail(**overrides: Any) -> ParsedMail:
    values: dict[str, Any] = {
        "message_id": REQUEST_ID,
        "message_id_generated": False,
        "from_": Address("Erika Muster", REQUESTER),
        "to": [Address("", "servicedesk@example.org")],
        "cc": [],
        "reply_to": [Address("", "attacker@evil.example")],
        "subject": "Drucker im 3. OG defekt",
        "date": None,
        "in_reply_to": [],
        "references": [EARLIER_ID],
        "thread_index": None,
        "thread_topic": None,
        "headers": {},
        "text": "Der Drucker druckt nicht.",
        "html": None,
        "attachments": [],
    }
    values.update(overrides)
    return ParsedMail(**values)


@pytest.fixture
def run_notify(db: Database, settings: Settings, tmp_path: Path) -> Callable[..., Context]:
    """Run the stage in one transaction over a fresh ticket, like the worker does."""
    counter = iter(range(1, 1000))

    def go(mail: ParsedMail | None = None, renderer: Renderer | None = None,
           ticket_status: str = "new", existing: bool = False, linked: bool = False,
           now: datetime | None = None, **fields: Any) -> Context:
        now = now or utcnow()
        with db.session() as session:
            store = TicketStore(session)
            inbox = InboxItem(source="smtp", source_key=f"k{next(counter)}", raw=b"x",
                              received_at=now)
            session.add(inbox)
            session.flush()
            key = threadindex.conversation_key(threadindex.new_index(now, uuid.uuid4()))
            ticket = store.create_ticket(prefix="LDS", subject="Drucker im 3. OG defekt",
                                         requester=REQUESTER, language="de", conversation=key,
                                         now=now)
            ticket.status = ticket_status
            services = Services(settings=settings, store=store,
                                blobs=BlobStore(tmp_path / "blobs"),
                                letters=Letters(settings,
                                                renderer or Renderer(settings.templates_dir, "de"),
                                                store))
            prepared = PreparedMail(inbox_id=inbox.id, mail=mail or parsed_mail())
            ctx = Context(services=services, inbox=inbox, prepared=prepared, now=now,
                          ticket=ticket, ticket_is_new=not existing,
                          **{"language": "de", **fields})
            if linked:
                ctx.linked_ticket = store.create_ticket(
                    prefix="LDS", subject="Geheimes Altthema", requester="someone@example.net",
                    language="de", conversation=None, now=now)
            notify.run(ctx)
        return ctx

    return go


@contextmanager
def rows(db: Database) -> Iterator[Any]:
    with db.session() as session:
        yield session


def outbox(db: Database) -> list[OutboxItem]:
    with rows(db) as session:
        items = list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))
        for item in items:
            session.expunge(item)
        return items


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_new_ticket_gets_exactly_one_acknowledgement(db: Database,
                                                     run_notify: Callable[..., Context]) -> None:
    ctx = run_notify()
    assert ctx.ticket is not None
    [item] = outbox(db)
    assert item.kind == "requester-received" and item.state == "queued"
    assert item.envelope_from == "servicedesk@example.org" and item.envelope_to == [REQUESTER]
    assert item.ticket_id == ctx.ticket.id and item.next_attempt_at == ctx.now
    msg = parse(item.raw)
    assert msg["Message-ID"] == item.message_id
    assert msg["Subject"] == "[LDS-1] Eingangsbestätigung: Drucker im 3. OG defekt"
    assert msg["From"].addresses[0].addr_spec == "servicedesk@example.org"
    assert msg["From"].addresses[0].display_name == "IT-Servicedesk"
    assert [a.addr_spec for a in msg["To"].addresses] == [REQUESTER]  # never the Reply-To
    assert b"attacker" not in item.raw
    assert msg["In-Reply-To"] == REQUEST_ID
    assert msg["References"].split() == [EARLIER_ID, REQUEST_ID]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/alternative"
    index = threadindex.decode(msg["Thread-Index"])
    assert index is not None and threadindex.conversation_key(index) == ctx.ticket.conversation
    assert len(index) == 27  # a child of the ticket's conversation header
    assert [d.what for d in ctx.decisions] == ["queued"]

    with rows(db) as session:
        [ref] = session.scalars(select(MessageRef).where(MessageRef.direction == "out")).all()
        assert ref.message_id == item.message_id and ref.ticket_id == ctx.ticket.id
        [article] = session.scalars(select(Article)).all()
        assert (article.kind, article.direction, article.message_id) == (
            "system", "out", item.message_id)
        assert article.to_addrs == [REQUESTER] and "[LDS-1]" in article.body
        assert article.subject == msg["Subject"]
        assert session.scalar(select(AutoReplyLog.recipient)) == REQUESTER


def test_thread_index_continues_the_requesters_outlook_conversation(
    db: Database, run_notify: Callable[..., Context]
) -> None:
    parent = threadindex.decode(OUTLOOK_REPLY)
    assert parent is not None
    run_notify(mail=parsed_mail(thread_index=parent, thread_topic="Drucker im 3. OG defekt"))
    msg = parse(outbox(db)[0].raw)
    sent = base64.b64decode(msg["Thread-Index"])
    assert sent.startswith(parent) and len(sent) == len(parent) + 5
    assert msg["Thread-Topic"] == "Drucker im 3. OG defekt"


def test_truncated_thread_index_falls_back_to_the_ticket_conversation(
    db: Database, run_notify: Callable[..., Context]
) -> None:
    parent = threadindex.decode(OUTLOOK_REPLY)
    assert parent is not None
    ctx = run_notify(mail=parsed_mail(thread_index=parent[:25]))
    sent = threadindex.decode(parse(outbox(db)[0].raw)["Thread-Index"])
    assert ctx.ticket is not None and sent is not None
    assert threadindex.conversation_key(sent) == ctx.ticket.conversation


def test_generated_message_id_is_not_referenced(db: Database,
                                                run_notify: Callable[..., Context]) -> None:
    run_notify(mail=parsed_mail(message_id="<generated@example.org>", message_id_generated=True,
                                references=[]))
    msg = parse(outbox(db)[0].raw)
    assert msg["In-Reply-To"] is None and msg["References"] is None


def test_english_requester_gets_english_mail(db: Database,
                                             run_notify: Callable[..., Context]) -> None:
    run_notify(language="en")
    [item] = outbox(db)
    msg = parse(item.raw)
    assert msg["Subject"] == "[LDS-1] Confirmation of receipt: Drucker im 3. OG defekt"
    body = msg.get_body(("plain",))
    assert body is not None and "Kind regards" in body.get_content()


def test_no_mail_for_automatic_messages_and_only_help_for_unverified_agents(
        db: Database, run_notify: Callable[..., Context]) -> None:
    run_notify(automatic_reason="Auto-Submitted: auto-replied")
    assert outbox(db) == []
    run_notify(sender_role="agent-unverified")  # no acknowledgement; the "how to reply" mail
    assert [item.kind for item in outbox(db)] == ["agent-unverified"]


def test_no_mail_for_replies_that_change_nothing(db: Database,
                                                 run_notify: Callable[..., Context]) -> None:
    ctx = run_notify(existing=True, ticket_status="open",
                     decisions=[Decision("thread", "threaded", {"ref": "LDS-1"})])
    assert [d.what for d in ctx.decisions] == ["threaded"] and outbox(db) == []


def test_reopened_ticket_gets_the_reopened_notice(db: Database,
                                                  run_notify: Callable[..., Context]) -> None:
    run_notify(existing=True, ticket_status="open", reopened=True)  # set by the thread stage
    [item] = outbox(db)
    assert item.kind == "requester-reopened"
    assert parse(item.raw)["Subject"] == (
        "[LDS-1] Vorgang wieder aufgenommen: Drucker im 3. OG defekt")


def test_stages_steer_by_typed_fields_not_by_the_audit_trail(
        db: Database, run_notify: Callable[..., Context]) -> None:
    """A "reopened" entry in the decisions is for the audit trail: only `ctx.reopened` (set by
    the thread stage) calls for the notice; an agent's status command reaches the requester
    through `ctx.status_changed` (set by the commands stage)."""
    run_notify(existing=True, ticket_status="open",
               decisions=[Decision("thread", "reopened", {"ref": "LDS-1"})])
    assert outbox(db) == []
    run_notify(existing=True, ticket_status="resolved", sender_role=SenderRole.AGENT,
               status_changed="resolved", mail=parsed_mail(
                   from_=Address("Anna Schmidt", "anna.schmidt@example.org"), text=""))
    assert [item.kind for item in outbox(db)] == ["requester-solved"]


def test_new_linked_ticket_mentions_only_the_old_reference(
    db: Database, run_notify: Callable[..., Context]
) -> None:
    run_notify(linked=True)
    [item] = outbox(db)
    assert item.kind == "requester-new-linked"
    msg = parse(item.raw)
    assert msg["Subject"] == "[LDS-1] Neuer Vorgang zu LDS-2: Drucker im 3. OG defekt"
    body = msg.get_body(("plain",))
    assert body is not None and "LDS-2" in body.get_content()
    assert "Altthema" not in body.get_content() and b"Altthema" not in item.raw  # nothing of it


def test_rate_limit_per_recipient_and_rolling_hour(db: Database, settings: Settings,
                                                   run_notify: Callable[..., Context]) -> None:
    limit = settings.guard.max_auto_replies_per_hour
    now = utcnow()
    with rows(db) as session:
        session.add(AutoReplyLog(recipient=REQUESTER,
                                 created_at=now - timedelta(minutes=61)))  # outside the window
        for minutes in range(limit - 1):
            session.add(AutoReplyLog(recipient=REQUESTER,
                                     created_at=now - timedelta(minutes=minutes + 1)))
        session.add(AutoReplyLog(recipient="someone.else@example.net", created_at=now))
    run_notify(now=now)  # the limit-th reply in the hour: still sent
    assert len(outbox(db)) == 1
    ctx = run_notify(now=now + timedelta(seconds=1))
    assert len(outbox(db)) == 1
    assert [d.what for d in ctx.decisions] == ["rate-limited"]
    with rows(db) as session:
        [event] = session.scalars(select(Event).where(Event.kind == "auto-reply-suppressed"))
        assert event.detail == {"reason": "rate-limited", "template": "requester-received"}
        assert ctx.ticket is not None and event.ticket_id == ctx.ticket.id
    run_notify(now=now + timedelta(minutes=61), mail=parsed_mail(
        from_=Address("Max", "max@example.net")))
    assert len(outbox(db)) == 2  # other recipients are not affected


def test_broken_template_keeps_the_ticket_and_quarantines_the_mail_with_file_and_line(
    db: Database, settings: Settings, tmp_path: Path, run_notify: Callable[..., Context]
) -> None:
    """Defect 4 (issue 11): a template that fails at run time used to drop the acknowledgement
    (one INFO line); now the mail is an outbox row in quarantine, never delivered, whose reason
    names the template, file and line but no mail data."""
    broken = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, broken)
    (broken / "de" / "requester-received.txt.j2").write_text(
        "Guten Tag,\n{{ nicht_da }}\n", encoding="utf-8")
    ctx = run_notify(renderer=Renderer(broken, "de"))
    [item] = outbox(db)
    assert item.state == "quarantined" and item.kind == "requester-received"
    assert item.raw == b"" and item.envelope_to == [REQUESTER]
    assert item.last_error is not None
    assert "'requester-received' (de/requester-received.txt.j2:2)" in item.last_error
    assert "nicht_da" in item.last_error
    assert "erika" not in item.last_error.lower() and "Drucker" not in item.last_error
    assert [d.what for d in ctx.decisions] == ["quarantined"]
    with rows(db) as session:
        [event] = session.scalars(select(Event).where(Event.kind == "mail-quarantined"))
        assert event.detail == {"mail": "requester-received", "reason": item.last_error}
        # nothing was sent, so nothing counts against the requester's hourly limit
        counted = select(func.count()).select_from(AutoReplyLog).where(
            AutoReplyLog.recipient == REQUESTER,
            AutoReplyLog.created_at >= ctx.now - timedelta(hours=1))
        assert session.scalar(counted) == 0


def test_sender_without_usable_address_or_our_own_is_not_answered(
    db: Database, run_notify: Callable[..., Context]
) -> None:
    first = run_notify(mail=parsed_mail(from_=Address("kaputt", "")))
    second = run_notify(mail=parsed_mail(from_=Address("", "servicedesk@example.org")))
    assert outbox(db) == []
    assert [d.what for d in first.decisions + second.decisions] == ["not-answered"] * 2


def test_international_addresses(db: Database, run_notify: Callable[..., Context]) -> None:
    run_notify(mail=parsed_mail(from_=Address("Bürgeramt", "post@bürgeramt.example"),
                                thread_topic="Drucker\r\n im 3. OG"))
    [item] = outbox(db)
    assert item.envelope_to == ["post@xn--brgeramt-65a.example"]  # SMTP without SMTPUTF8
    assert parse(item.raw)["Thread-Topic"] == "Drucker im 3. OG"
    ctx = run_notify(mail=parsed_mail(from_=Address("", "jürgen@example.net")))
    assert len(outbox(db)) == 1
    assert [d.what for d in ctx.decisions] == ["cannot-compose"]
    with rows(db) as session:
        [event] = session.scalars(select(Event).where(Event.kind == "auto-reply-suppressed"))
        assert event.detail["error"] == "PermanentDeliveryError"
        assert "jürgen" not in str(event.detail)
