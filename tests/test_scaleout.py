"""Several `postdesk serve` processes on one PostgreSQL database (issue 14, defects 3 and 4):
a reply sent to another instance right after its original's 250 never opens a ticket of its
own and lands behind its original; a mail delivered to two instances at the same moment
becomes one ticket with one acknowledgement."""

from __future__ import annotations

import smtplib
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.outgoing.views import RECEIVED
from storage.models import Article, InboxItem, OutboxItem, Ticket, article_order
from tests.helpers import make_mail
from tests.scaleout import cluster, migrated, settle

pytestmark = pytest.mark.slow

INSTANCES = 3
CONVERSATIONS = 36  # each: a new mail and REPLIES replies, every one to the next instance
REPLIES = 2
CLIENTS = 6  # conversations sent at the same time
SAME_MAILS = 300  # delivered to DUPLICATE_INSTANCES instances at once
DUPLICATE_INSTANCES = 2


def _pg_only(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several instances share one PostgreSQL database")


def _send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.send_message(message)  # returns after the 250: the inbox row is committed


def _conversation(number: int) -> list[EmailMessage]:
    sender = f"person{number}@example.net"
    first = make_mail(sender=sender, subject=f"Drucker defekt {number}",
                      body=f"Der Drucker {number} druckt nicht.\n")
    mails, ids = [first], [first["Message-ID"]]
    for reply in range(1, REPLIES + 1):
        follow = make_mail(sender=sender, subject=f"Re: Drucker defekt {number}",
                           body=f"Nachtrag {reply} zu {number}.\n",
                           headers={"In-Reply-To": ids[-1], "References": " ".join(ids)})
        mails.append(follow)
        ids.append(follow["Message-ID"])
    return mails


def test_replies_sent_to_other_instances_never_overtake_their_original(
    db_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    _pg_only(db_url)
    db = migrated(db_url)
    conversations = [_conversation(n) for n in range(CONVERSATIONS)]
    with cluster(INSTANCES, make_settings, tmp_path) as instances:
        failures: list[BaseException] = []

        def client(first: int) -> None:
            try:
                for number in range(first, CONVERSATIONS, CLIENTS):
                    for position, mail in enumerate(conversations[number]):
                        # each mail of a conversation to the next instance, after the 250
                        _send(instances[(number + position) % INSTANCES].port, mail)
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        settle(db, CONVERSATIONS * (1 + REPLIES))
    try:
        with db.reading() as session:
            quarantined = session.scalars(
                select(InboxItem.reason).where(InboxItem.state != "done")).all()
            tickets = session.scalars(select(Ticket)).all()
            rows = session.execute(
                select(Ticket.subject, Article.message_id)
                .join(Article, Article.ticket_id == Ticket.id)
                .where(Article.direction == "in")
                .order_by(Ticket.id, *article_order())
            ).all()
            acks = session.execute(
                select(OutboxItem.ticket_id, OutboxItem.kind).where(OutboxItem.kind == RECEIVED)
            ).all()
    finally:
        db.dispose()
    assert not quarantined, quarantined
    # no reply opened a ticket of its own; ticket numbers are unique
    assert len(tickets) == CONVERSATIONS, sorted(t.subject for t in tickets)
    assert len({t.number for t in tickets}) == CONVERSATIONS
    articles: dict[str, list[str]] = defaultdict(list)
    for subject, message_id in rows:
        articles[subject].append(message_id)
    for number, mails in enumerate(conversations):
        # every mail of the conversation on its ticket, in the order it was sent
        assert articles[f"Drucker defekt {number}"] == [m["Message-ID"] for m in mails]
    # one acknowledgement per ticket, none for a reply
    assert sorted(Counter(ticket for ticket, _ in acks).values()) == [1] * CONVERSATIONS


def test_a_mail_delivered_to_two_instances_at_once_is_one_ticket(
    db_url: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    _pg_only(db_url)
    db = migrated(db_url)
    mails = [
        make_mail(sender=f"twice{n}@example.net", subject=f"Drucker defekt {n}",
                  body=f"Zweimal zugestellt {n}.\n")
        for n in range(SAME_MAILS)
    ]
    with cluster(DUPLICATE_INSTANCES, make_settings, tmp_path) as instances:
        together = threading.Barrier(DUPLICATE_INSTANCES)
        failures: list[BaseException] = []

        def client(instance: int) -> None:
            try:
                with smtplib.SMTP("127.0.0.1", instances[instance].port, timeout=30) as smtp:
                    for mail in mails:
                        together.wait(timeout=60)  # the same mail to every instance at once
                        smtp.send_message(mail)
            except BaseException as exc:  # reported below
                failures.append(exc)
                together.abort()

        threads = [threading.Thread(target=client, args=(n,))
                   for n in range(DUPLICATE_INSTANCES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures
        settle(db, SAME_MAILS * DUPLICATE_INSTANCES)
    try:
        with db.reading() as session:
            states = Counter(session.scalars(select(InboxItem.state)).all())
            duplicates = session.scalars(
                select(InboxItem.id).where(InboxItem.reason.startswith("duplicate"))).all()
            stored = Counter(session.scalars(
                select(Article.message_id).where(Article.direction == "in")).all())
            tickets = session.scalars(select(Ticket.number)).all()
            acks = session.scalars(
                select(OutboxItem.ticket_id).where(OutboxItem.kind == RECEIVED)).all()
    finally:
        db.dispose()
    assert states == {"done": SAME_MAILS * DUPLICATE_INSTANCES}  # none quarantined
    assert len(duplicates) == SAME_MAILS * (DUPLICATE_INSTANCES - 1)
    assert sorted(stored) == sorted(m["Message-ID"] for m in mails)
    assert set(stored.values()) == {1}
    assert len(tickets) == len(set(tickets)) == SAME_MAILS
    assert len(acks) == len(set(acks)) == SAME_MAILS
