"""Outbox delivery against a real aiosmtpd server on loopback: success, 4xx back-off, 5xx
failure recorded on the ticket, connection refused, crash mid-send, maildir idempotence."""

from __future__ import annotations

import json
import mailbox
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import event, select, update

from gateway.config import Settings
from gateway.errors import (
    ConfigError,
    PermanentDeliveryError,
    SmtpPermanentError,
    SmtpTemporaryError,
    TemporaryDeliveryError,
)
from gateway.mail.compose import Letterhead, compose
from gateway.mail.model import Address
from gateway.outgoing import outbox
from gateway.outgoing.outbox import backoff, deliver_due, lease
from gateway.outgoing.senders import MaildirSender, RecordingSender, SmtpSender, make_sender
from storage import spool
from storage.engine import Database
from storage.models import Event, OutboxItem, utcnow
from storage.outbox import Outbox
from storage.tickets import TicketStore
from tests.helpers import free_port

RECIPIENT = "erika.muster@example.net"


@dataclass
class ControlledSink:
    """An SMTP server that records mails and answers the next N DATA (or RCPT) commands with
    a chosen error reply instead."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)  # the client's (host, port) per message
    mail_replies: list[str] = field(default_factory=list)
    data_replies: list[str] = field(default_factory=list)
    rcpt_replies: list[str] = field(default_factory=list)
    port: int = 0

    def fail_next(self, count: int, reply: str, at: str = "data") -> None:
        target = {"mail": self.mail_replies, "rcpt": self.rcpt_replies,
                  "data": self.data_replies}[at]
        target.extend([reply] * count)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        if self.mail_replies:
            return self.mail_replies.pop(0)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              bytes(envelope.original_content)))
        self.peers.append(session.peer)
        return "250 2.0.0 queued"

    def message_ids(self) -> list[str]:
        from email import message_from_bytes, policy

        return [str(message_from_bytes(raw, policy=policy.default)["Message-ID"])
                for _, _, raw in self.messages]


@pytest.fixture
def smtp_sink() -> Iterator[ControlledSink]:
    sink = ControlledSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, decode_data=False)
    controller.start()
    yield sink
    controller.stop()


@pytest.fixture
def smtp_settings(make_settings: Callable[..., Settings], smtp_sink: ControlledSink) -> Settings:
    return make_settings(outgoing={"transport": "smtp", "host": "127.0.0.1",
                                   "port": smtp_sink.port, "timeout_seconds": 5,
                                   "max_attempts": 3, "backoff_seconds": 60,
                                   "backoff_max_seconds": 600})


def queue_mail(db: Database, settings: Settings, subject: str = "[LDS-1] Eingangsbestätigung")\
        -> tuple[int, str, int]:
    """A ticket plus one queued outbox row; returns (outbox id, Message-ID, ticket id)."""
    now = utcnow()
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="Drucker", requester=RECIPIENT,
                                     language="de", conversation=None, now=now)
        head = Letterhead(settings.service.address, "IT-Servicedesk", settings.service.domain)
        mail = compose(head, to=[Address("Erika Muster", RECIPIENT)],
                       cc=[], subject=subject, text="Grüße\n", html=None, in_reply_to=None,
                       references=[], thread_index=None, automatic=True, now=now)
        Outbox(session).queue(ticket_id=ticket.id, kind="requester-received",
                              message_id=mail.message_id, envelope_from=settings.service.address,
                              envelope_to=[RECIPIENT], raw=mail.raw, now=now)
        item_id = session.scalars(
            select(OutboxItem.id).where(OutboxItem.message_id == mail.message_id)).one()
        return item_id, mail.message_id, ticket.id


def row(db: Database, item_id: int) -> OutboxItem:
    with db.session() as session:
        item = session.get(OutboxItem, item_id)
        assert item is not None
        session.expunge(item)
        return item


def events(db: Database, ticket_id: int, kind: str) -> list[Event]:
    with db.session() as session:
        found = list(session.scalars(select(Event).where(Event.ticket_id == ticket_id,
                                                         Event.kind == kind)))
        for event in found:
            session.expunge(event)
        return found


def expire_lease(db: Database, claimed_at: datetime) -> None:
    """Make every `sending` row look abandoned since `claimed_at` (a crashed worker)."""
    with db.session() as session:
        session.execute(update(OutboxItem).where(OutboxItem.state == "sending")
                        .values(claimed_at=claimed_at))


# The `db` fixture follows `settings`; these tests need the database of `smtp_settings`.
@pytest.fixture
def sdb(smtp_settings: Settings) -> Iterator[Database]:
    from storage.engine import open_database
    from storage.migrate import upgrade

    database = open_database(smtp_settings.database.url)
    upgrade(database)
    yield database
    database.dispose()


def test_delivered_once_with_its_message_id(sdb: Database, smtp_settings: Settings,
                                            smtp_sink: ControlledSink) -> None:
    item_id, message_id, _ = queue_mail(sdb, smtp_settings)
    sender = make_sender(smtp_settings)
    assert isinstance(sender, SmtpSender)
    report = deliver_due(sdb, sender, smtp_settings)
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    assert smtp_sink.message_ids() == [message_id]
    [(mail_from, rcpts, raw)] = smtp_sink.messages
    assert mail_from == "servicedesk@example.org" and rcpts == [RECIPIENT]
    assert raw.isascii()
    stored = row(sdb, item_id)
    assert stored.state == "sent" and stored.sent_at is not None and stored.attempts == 1
    later = deliver_due(sdb, sender, smtp_settings, now=utcnow() + timedelta(days=1))
    assert later.sent == 0 and len(smtp_sink.messages) == 1  # a sent row is never sent again


def test_451_backs_off_then_succeeds(sdb: Database, smtp_settings: Settings,
                                     smtp_sink: ControlledSink) -> None:
    item_id, message_id, _ = queue_mail(sdb, smtp_settings)
    sender = make_sender(smtp_settings)
    smtp_sink.fail_next(2, "451 4.3.0 Mail server temporarily rejected message")
    now = utcnow()
    assert deliver_due(sdb, sender, smtp_settings, now=now).retried == 1
    first = row(sdb, item_id)
    assert first.state == "queued" and first.attempts == 1
    assert first.next_attempt_at == now + timedelta(seconds=60)
    assert first.last_error == "relay refused the mail: SMTP 451 4.3.0"
    assert deliver_due(sdb, sender, smtp_settings, now=now + timedelta(seconds=30)).retried == 0

    second_try = now + timedelta(seconds=61)
    assert deliver_due(sdb, sender, smtp_settings, now=second_try).retried == 1
    assert row(sdb, item_id).next_attempt_at == second_try + timedelta(seconds=120)  # doubled

    report = deliver_due(sdb, sender, smtp_settings, now=second_try + timedelta(seconds=121))
    assert report.sent == 1 and smtp_sink.message_ids() == [message_id]
    assert row(sdb, item_id).state == "sent"


def test_550_fails_and_is_recorded_on_the_ticket(sdb: Database, smtp_settings: Settings,
                                                 smtp_sink: ControlledSink) -> None:
    item_id, _, ticket_id = queue_mail(sdb, smtp_settings)
    smtp_sink.fail_next(1, "550 5.7.1 Message rejected as spam for erika.muster@example.net")
    report = deliver_due(sdb, make_sender(smtp_settings), smtp_settings)
    assert (report.sent, report.retried, report.failed) == (0, 0, 1)
    stored = row(sdb, item_id)
    assert stored.state == "failed"
    assert stored.last_error == "relay refused the mail: SMTP 550 5.7.1"
    [event] = events(sdb, ticket_id, "delivery-failed")
    assert event.actor == "system"
    assert event.detail["error"] == "SmtpPermanentError" and event.detail["code"] == 550
    assert "@" not in json.dumps(event.detail)  # never an address on the ticket trail
    assert deliver_due(sdb, make_sender(smtp_settings), smtp_settings,
                       now=utcnow() + timedelta(days=1)).failed == 0  # failed stays failed


def test_refused_recipient_is_permanent_and_the_reply_text_is_not_kept(
    sdb: Database, smtp_settings: Settings, smtp_sink: ControlledSink
) -> None:
    item_id, _, ticket_id = queue_mail(sdb, smtp_settings)
    smtp_sink.fail_next(1, f"550 5.1.1 <{RECIPIENT}>: Recipient address rejected", at="rcpt")
    assert deliver_due(sdb, make_sender(smtp_settings), smtp_settings).failed == 1
    stored = row(sdb, item_id)
    assert stored.last_error == "recipient refused: SMTP 550 5.1.1"
    assert events(sdb, ticket_id, "delivery-failed")[0].detail["code"] == 550


def test_temporary_failures_give_up_after_max_attempts(sdb: Database, smtp_settings: Settings,
                                                       smtp_sink: ControlledSink) -> None:
    item_id, _, ticket_id = queue_mail(sdb, smtp_settings)
    smtp_sink.fail_next(3, "452 4.2.2 Mailbox full", at="rcpt")
    now = utcnow()
    results = []
    for hours in range(3):
        report = deliver_due(sdb, make_sender(smtp_settings), smtp_settings,
                             now=now + timedelta(hours=hours))
        results.append((report.retried, report.failed))
    assert results == [(1, 0), (1, 0), (0, 1)]
    assert row(sdb, item_id).state == "failed"
    assert events(sdb, ticket_id, "delivery-failed")[0].detail == {
        "outbox_id": item_id, "mail": "requester-received", "error": "SmtpTemporaryError",
        "code": 452, "attempts": 3}


def test_connection_refused_is_temporary(make_settings: Callable[..., Settings]) -> None:
    closed = free_port()  # nothing listens here
    settings = make_settings(outgoing={"transport": "smtp", "host": "127.0.0.1", "port": closed,
                                       "timeout_seconds": 2, "backoff_seconds": 10})
    from storage.engine import open_database
    from storage.migrate import upgrade

    database = open_database(settings.database.url)
    upgrade(database)
    try:
        item_id, _, _ = queue_mail(database, settings)
        with pytest.raises(SmtpTemporaryError, match="unreachable"):
            make_sender(settings).send("a@example.org", [RECIPIENT], b"x", "<x@example.org>")
        report = deliver_due(database, make_sender(settings), settings)
        assert report.retried == 1
        stored = row(database, item_id)
        assert stored.state == "queued" and stored.last_error == \
            "relay unreachable (ConnectionRefusedError)"
    finally:
        database.dispose()


def test_crash_mid_send_resends_with_the_same_message_id(
    sdb: Database, smtp_settings: Settings, smtp_sink: ControlledSink
) -> None:
    item_id, message_id, _ = queue_mail(sdb, smtp_settings)
    with sdb.session() as session:  # a worker claimed the row and died before recording
        [claimed] = spool.claim_outbox(session, utcnow(), lease(smtp_settings.outgoing), 1)
        assert claimed.state == "sending"
    assert deliver_due(sdb, make_sender(smtp_settings), smtp_settings).sent == 0  # lease runs
    crashed_at = utcnow() - lease(smtp_settings.outgoing) - timedelta(seconds=1)
    expire_lease(sdb, crashed_at)
    report = deliver_due(sdb, make_sender(smtp_settings), smtp_settings)
    assert report.sent == 1
    assert smtp_sink.message_ids() == [message_id]
    stored = row(sdb, item_id)
    assert stored.state == "sent" and stored.attempts == 2


def test_rows_interrupted_too_often_are_failed_without_sending(
    db: Database, settings: Settings
) -> None:
    item_id, _, ticket_id = queue_mail(db, settings)
    recorder = RecordingSender()
    for _ in range(settings.outgoing.max_attempts + 1):  # claimed, then a crash, again and again
        with db.session() as session:
            assert spool.claim_outbox(session, utcnow(), lease(settings.outgoing), 1)
        expire_lease(db, utcnow() - timedelta(days=1))
    assert row(db, item_id).attempts == settings.outgoing.max_attempts + 1
    report = deliver_due(db, recorder, settings)
    assert report.failed == 1 and recorder.sent == []
    assert events(db, ticket_id, "delivery-failed")[0].detail["error"] == "interrupted"


def test_a_crashing_transport_does_not_lose_the_row(db: Database, settings: Settings) -> None:
    item_id, message_id, _ = queue_mail(db, settings)

    class BrokenTransport:
        def send(self, envelope_from: str, envelope_to: list[str], raw: bytes,
                 message_id: str) -> None:
            raise RuntimeError("bug in a transport")

    assert deliver_due(db, BrokenTransport(), settings).retried == 1
    assert row(db, item_id).last_error == "RuntimeError"
    recorder = RecordingSender()
    assert deliver_due(db, recorder, settings, now=utcnow() + timedelta(hours=1)).sent == 1
    assert [m.message_id for m in recorder.sent] == [message_id]


def test_recording_sender_raises_queued_failures_first(db: Database, settings: Settings) -> None:
    queue_mail(db, settings)
    recorder = RecordingSender(failures=[TemporaryDeliveryError("try later")])
    assert deliver_due(db, recorder, settings).retried == 1 and recorder.sent == []


def test_a_batch_is_claimed_and_recorded_in_one_transaction_each(
    db: Database, settings: Settings
) -> None:
    rows = [queue_mail(db, settings, subject=f"[LDS-{n}] Eingang") for n in range(1, 4)]
    commits: list[int] = []
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    recorder = RecordingSender(failures=[PermanentDeliveryError("refused")])  # the first only
    report = deliver_due(db, recorder, settings)
    assert (report.sent, report.retried, report.failed) == (2, 0, 1)
    assert len(commits) == 2  # claim all three, then record all three outcomes
    assert [row(db, item_id).state for item_id, _, _ in rows] == ["failed", "sent", "sent"]
    assert [m.message_id for m in recorder.sent] == [message_id for _, message_id, _ in rows[1:]]
    assert len(events(db, rows[0][2], "delivery-failed")) == 1


def test_rows_waiting_in_a_slow_batch_keep_their_lease(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "FLUSH_SECONDS", 0.0)  # record after every send
    rows = [queue_mail(db, settings, subject=f"[LDS-{n}] Eingang") for n in range(1, 4)]
    last_id = rows[-1][0]
    leases: list[datetime | None] = []

    class SlowSender:
        def send(self, envelope_from: str, envelope_to: list[str], raw: bytes,
                 message_id: str) -> None:
            leases.append(row(db, last_id).claimed_at)
            time.sleep(0.01)

    assert deliver_due(db, SlowSender(), settings).sent == 3
    assert leases[0] is not None and leases[1] is not None and leases[2] is not None
    assert leases[0] < leases[1] < leases[2]  # renewed while it waited its turn
    assert all(row(db, item_id).state == "sent" for item_id, _, _ in rows)


def test_backoff_doubles_and_is_capped(settings: Settings) -> None:
    out = settings.outgoing.model_copy(update={"backoff_seconds": 30, "backoff_max_seconds": 3600})
    assert [backoff(out, n).total_seconds() for n in (1, 2, 3, 7, 8, 50)] == [
        30, 60, 120, 1920, 3600, 3600]


# --- maildir -----------------------------------------------------------------------------


def test_maildir_is_idempotent_per_message_id(tmp_path: Path) -> None:
    sender = MaildirSender(tmp_path / "outgoing")
    raw = b"Message-ID: <a@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<a@example.org>")
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<a@example.org>")
    box = mailbox.Maildir(tmp_path / "outgoing", create=False)
    assert len(box) == 1
    # a reader moved it to cur/ and flagged it seen: still recognised as delivered
    key = sender.key("<a@example.org>")
    message = box[key]
    message.set_subdir("cur")
    message.add_flag("S")
    box[key] = message
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<a@example.org>")
    sender.send("servicedesk@example.org", [RECIPIENT], raw.replace(b"<a@", b"<b@"),
                "<b@example.org>")
    assert len(mailbox.Maildir(tmp_path / "outgoing", create=False)) == 2
    assert not list((tmp_path / "outgoing" / "tmp").iterdir())


def test_outbox_to_maildir_after_crash_keeps_one_copy(db: Database, settings: Settings) -> None:
    item_id, message_id, _ = queue_mail(db, settings)
    sender = make_sender(settings)
    assert isinstance(sender, MaildirSender)
    assert deliver_due(db, sender, settings).sent == 1
    with db.session() as session:  # as if the "sent" commit had been lost in a crash
        session.execute(update(OutboxItem).values(state="sending"))
    expire_lease(db, utcnow() - timedelta(hours=2))
    assert deliver_due(db, sender, settings).sent == 1
    box = mailbox.Maildir(settings.data_dir / "outgoing", create=False)
    assert [m["Message-ID"] for m in box] == [message_id]
    assert row(db, item_id).state == "sent"


def test_maildir_finds_a_copy_moved_to_cur_without_listing_per_mail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sender = MaildirSender(tmp_path / "outgoing")
    cur = tmp_path / "outgoing" / "cur"
    raw = b"Message-ID: <a@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    listings: list[str] = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listings.append(str(path))
                        or real_listdir(path))
    settled = time.time_ns() - 60 * 10**9
    os.utime(cur, ns=(settled, settled))  # cur/ last changed a minute ago
    for n in range(50):
        sender.send("servicedesk@example.org", [RECIPIENT], raw, f"<{n}@example.org>")
    assert len(listings) == 1  # listed once, then one stat per mail
    # a reader moves a mail to cur/ and flags it seen: cur/'s mtime moves, the list is renewed
    key = sender.key("<7@example.org>")
    (tmp_path / "outgoing" / "new" / key).rename(cur / f"{key}:2,S")
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<7@example.org>")
    sender.flush()
    assert len(listings) == 2
    assert len(mailbox.Maildir(tmp_path / "outgoing", create=False)) == 50
    assert not (tmp_path / "outgoing" / "new" / key).exists()


def test_maildir_does_not_trust_a_listing_taken_within_the_mtime_granularity(
    tmp_path: Path,
) -> None:
    """A move into cur/ within the same timestamp tick as the listing leaves cur/'s mtime
    unchanged; such a recent listing is therefore never reused."""
    sender = MaildirSender(tmp_path / "outgoing")
    cur = tmp_path / "outgoing" / "cur"
    raw = b"Message-ID: <a@example.org>\r\nSubject: x\r\n\r\nbody\r\n"
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<a@example.org>")
    just_now = cur.stat().st_mtime_ns
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<b@example.org>")  # lists cur/
    key = sender.key("<a@example.org>")
    (tmp_path / "outgoing" / "new" / key).rename(cur / f"{key}:2,S")
    os.utime(cur, ns=(just_now, just_now))  # the move fell into the same tick
    sender.send("servicedesk@example.org", [RECIPIENT], raw, "<a@example.org>")
    assert sorted(p.name for p in (tmp_path / "outgoing" / "new").iterdir()) == [
        sender.key("<b@example.org>")]


def test_maildir_second_instance_keeps_the_first_copy(tmp_path: Path) -> None:
    first, second = MaildirSender(tmp_path / "outgoing"), MaildirSender(tmp_path / "outgoing")
    first.send("servicedesk@example.org", [RECIPIENT], b"Subject: first\r\n\r\n", "<a@x>")
    second.send("servicedesk@example.org", [RECIPIENT], b"Subject: second\r\n\r\n", "<a@x>")
    second.flush()
    [message] = mailbox.Maildir(tmp_path / "outgoing", create=False)
    assert message["Subject"] == "first"
    assert not list((tmp_path / "outgoing" / "tmp").iterdir())


def test_maildir_batch_syncs_its_folder_once_before_recording(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [queue_mail(db, settings, subject=f"[LDS-{n}] Eingang") for n in range(1, 4)]
    states_at_flush: list[list[str]] = []

    @dataclass
    class WatchedMaildir(MaildirSender):
        def flush(self) -> None:
            states_at_flush.append([row(db, item_id).state for item_id, _, _ in rows])
            super().flush()

    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    assert deliver_due(db, WatchedMaildir(settings.data_dir / "outgoing"), settings).sent == 3
    assert states_at_flush == [["sending"] * 3]  # durable first, recorded after
    assert [row(db, item_id).state for item_id, _, _ in rows] == ["sent"] * 3
    assert len(fsyncs) == 4  # one per mail, one for new/ (was one per mail and one per link)


def test_a_failed_maildir_sync_is_retried_not_recorded_as_sent(
    db: Database, settings: Settings
) -> None:
    item_id, message_id, _ = queue_mail(db, settings)

    @dataclass
    class SyncFailsOnce(MaildirSender):
        failed: bool = False

        def flush(self) -> None:
            if not self.failed:
                self.failed = True
                raise TemporaryDeliveryError("maildir sync failed (OSError)")
            super().flush()

    sender = SyncFailsOnce(settings.data_dir / "outgoing")
    assert deliver_due(db, sender, settings).retried == 1
    stored = row(db, item_id)
    assert stored.state == "queued" and stored.last_error == "maildir sync failed (OSError)"
    assert deliver_due(db, sender, settings, now=utcnow() + timedelta(hours=1)).sent == 1
    box = mailbox.Maildir(settings.data_dir / "outgoing", create=False)
    assert [m["Message-ID"] for m in box] == [message_id]  # the re-send found the first copy
    assert row(db, item_id).state == "sent"


# --- transport selection ------------------------------------------------------------------


def test_make_sender_reads_the_password_from_the_named_variable(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(outgoing={"transport": "smtp", "host": "relay.example.org",
                                       "port": 587, "starttls": True, "username": "desk",
                                       "password_env": "POSTDESK_TEST_RELAY_PASSWORD"})
    monkeypatch.delenv("POSTDESK_TEST_RELAY_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="POSTDESK_TEST_RELAY_PASSWORD"):
        make_sender(settings)
    monkeypatch.setenv("POSTDESK_TEST_RELAY_PASSWORD", "geheim")
    sender = make_sender(settings)
    assert isinstance(sender, SmtpSender)
    assert (sender.host, sender.port, sender.starttls, sender.username, sender.password) == (
        "relay.example.org", 587, True, "desk", "geheim")


def test_starttls_missing_on_the_relay_is_temporary(smtp_sink: ControlledSink) -> None:
    sender = SmtpSender("127.0.0.1", smtp_sink.port, timeout=5, starttls=True)
    with pytest.raises(SmtpTemporaryError, match="STARTTLS"):
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<x@y>")
    assert smtp_sink.messages == []


def test_sender_refused_is_permanent_and_421_temporary(smtp_sink: ControlledSink) -> None:
    sender = SmtpSender("127.0.0.1", smtp_sink.port, timeout=5)
    smtp_sink.fail_next(1, "553 5.7.1 <servicedesk@example.org>: Sender address rejected",
                        at="mail")
    with pytest.raises(SmtpPermanentError, match=r"SMTP 553 5\.7\.1$") as info:
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<x@y>")
    assert info.value.smtp_code == 553
    # A 421 on a connection used before may be the relay's limit per connection: the mail
    # goes once more over a new connection, and a 421 there is the answer.
    smtp_sink.fail_next(2, "421 4.7.0 Too many connections", at="mail")
    with pytest.raises(SmtpTemporaryError, match="SMTP 421"):
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<x@y>")
    assert smtp_sink.messages == []


def test_non_ascii_envelope_address_is_permanent(smtp_sink: ControlledSink) -> None:
    sender = SmtpSender("127.0.0.1", smtp_sink.port, timeout=5)
    with pytest.raises(SmtpPermanentError, match="SMTPUTF8") as info:
        sender.send("servicedesk@example.org", ["jürgen@example.net"], b"Subject: x\r\n\r\nx\r\n",
                    "<x@y>")
    assert "jürgen" not in str(info.value) and smtp_sink.messages == []


def test_one_job_run_drains_a_burst_bigger_than_a_run(db: Database, settings: Settings) -> None:
    from gateway.app import App
    from gateway.jobs import tasks as jobs

    app = App.build(settings, sender=RecordingSender())
    ids = [queue_mail(db, settings, subject=f"[LDS-{n}] Eingang")[0] for n in range(250)]
    jobs.deliver_outbox(app)  # 250 > jobs.OUTBOX_RUN: not 100 now and the rest intervals later
    assert {row(db, item_id).state for item_id in ids} == {"sent"}
    assert len(app.sender.sent) == 250  # type: ignore[attr-defined]


def test_one_relay_connection_carries_a_busy_spell(smtp_sink: ControlledSink) -> None:
    sender = SmtpSender("127.0.0.1", smtp_sink.port, timeout=5)
    for n in range(3):
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", f"<{n}@y>")
    smtp_sink.fail_next(1, "550 5.1.1 unknown", at="rcpt")  # a refusal keeps the connection
    with pytest.raises(SmtpPermanentError):
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<r@y>")
    sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<3@y>")
    assert len(smtp_sink.messages) == 4 and len(set(smtp_sink.peers)) == 1
    sender.close()
    sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<4@y>")
    assert len(set(smtp_sink.peers)) == 2
    sender.close()


def test_a_connection_the_relay_closed_is_replaced_for_the_next_mail() -> None:
    sink = ControlledSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port, decode_data=False,
                            timeout=0.3)  # the relay's idle timeout
    controller.start()
    try:
        sender = SmtpSender("127.0.0.1", sink.port, timeout=5)
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<1@y>")
        time.sleep(1.0)  # the relay hangs up on the idle connection
        sender.send("servicedesk@example.org", [RECIPIENT], b"Subject: x\r\n\r\nx\r\n", "<2@y>")
        assert len(sink.messages) == 2 and len(set(sink.peers)) == 2
        sender.close()
    finally:
        controller.stop()


@pytest.mark.parametrize("mode", ["process", "thread"])
def test_serve_sends_the_acknowledgement_once_the_worker_committed_it(
    make_settings: Callable[..., Settings], smtp_sink: ControlledSink, mode: str
) -> None:
    # The outbox interval is far longer than the test may wait: only the worker's wake-up
    # can have sent the acknowledgement (polling alone held it back up to the interval).
    from gateway.app import App
    from tests.helpers import make_mail, running, send, wait_for

    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": smtp_sink.port,
                  "interval_seconds": 120},
        worker={"mode": mode},
    )
    app = App.build(settings)
    with running(app):
        time.sleep(1.0)  # the first (start-up) drain is over
        send(settings, make_mail())
        wait_for(lambda: smtp_sink.messages, timeout=30)
        send(settings, make_mail(subject="Zweite Anfrage"))
        wait_for(lambda: len(smtp_sink.messages) == 2, timeout=30)
    assert len(set(smtp_sink.peers)) == 1  # one connection for both: the relay's was reused
