"""Agents can still do the job on a redacted ticket (issue 15, part 4), over real SMTP both
ways: `#original` in a proven agent's reply mails them the unredacted original (once, to their
configured address, audited); from a forged agent address it does nothing; with
`redaction.agent_view: original` the owner's notification carries the original text and the
attachment, while no mail to the requester or a Cc'd party ever does, and an agent of another
team gets nothing. The stored ticket stays redacted throughout."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from gateway.agents import proof as agentproof
from gateway.app import App
from gateway.config import Settings
from storage.models import Article, Attachment, Event, InboxItem, OutboxItem, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import running, send
from tests.helpers import wait_for as wait_at_most

REQUESTER = "erika.muster@example.net"
COLLEAGUE = "jonas.keller@example.net"  # copied in by the requester: a party to the ticket
ANNA = "anna.schmidt@example.org"  # team it: owner of the ticket (least_open, listed first)
BEN = "ben.mueller@example.org"  # team it too, not the owner
CARLA = "carla.nowak@example.org"  # team fachverfahren only: another team
FORGER = "mallory@evil.example"

NAME = "Swetlana Kowalczyk"
BIRTH_DATE = "14.07.1991"
BODY = (
    "Guten Tag,\n\n"
    f"bitte richten Sie für unsere neue Kollegin {NAME} (geb. {BIRTH_DATE})\n"
    "einen Zugang zum Fachverfahren ein. Sie beginnt am Montag.\n\n"
    "Viele Grüße\nErika Muster\n"
)
SCAN = b"\x89PNG\r\n\x1a\n" + b"ID-CARD-SCAN-4711;" * 40  # what an agent needs, as it came
SCAN_NAME = "Ausweis.png"
SUBJECT = "Zugang für neue Mitarbeiterin"  # rules/40-themen.yaml: it-anforderung, team it

AGENTS = [
    {"email": ANNA, "name": "Anna Schmidt", "teams": ["it"]},
    {"email": BEN, "name": "Ben Müller", "teams": ["it"]},
    {"email": CARLA, "name": "Carla Nowak", "teams": ["fachverfahren"]},
]


def start(make_settings: Callable[..., Settings], sink: Sink,
          limits: dict[str, Any] | None = None, **redaction: Any) -> App:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        agents=AGENTS,
        redaction=redaction,
        limits=limits or {},
    )
    return App.build(settings)


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    """agent_view left at its default: redacted."""
    with running(start(make_settings, sink)) as app:
        yield app


@pytest.fixture
def originals_service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    """The queue of the test's tickets shows its agents originals; others stay redacted."""
    app = start(make_settings, sink, agent_view={"it-anforderung": "original"})
    with running(app):
        yield app


# --- helpers ----------------------------------------------------------------------------------


def wait_for(condition: Callable[[], Any]) -> Any:
    """tests.helpers.wait_for with room for a machine paused by a measurement next door (a
    passing test never waits it out)."""
    return wait_at_most(condition, timeout=240)



def mails_to(sink: Sink, address: str) -> list[tuple[list[str], EmailMessage]]:
    return [(rcpts, m) for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True)
            if address in rcpts]


def everything_said(message: EmailMessage) -> str:
    """All a mail shows: headers, every text part decoded, attachment names."""
    parts = [str(value) for value in message.values()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
        if part.get_filename():
            parts.append(part.get_filename() or "")
    return "\n".join(parts)


def plain(message: EmailMessage) -> str:
    """The text part, with the line breaks it had before SMTP."""
    return str(message.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def attachment_bytes(message: EmailMessage) -> list[tuple[str, bytes]]:
    return [(part.get_filename() or "", part.get_payload(decode=True))
            for part in message.iter_attachments()]


def settled(app: App) -> bool:
    """Every mail received is processed and every mail made is delivered."""
    with app.db.session() as session:
        inbox = set(session.scalars(select(InboxItem.state)))
        outbox = set(session.scalars(select(OutboxItem.state)))
    return inbox <= {"done"} and outbox <= {"sent"}


def events(app: App, kind: str) -> list[Event]:
    with app.db.session() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def request_mail(cc: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Erika Muster <{REQUESTER}>"
    msg["To"] = "servicedesk@example.org"
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = SUBJECT
    msg["Message-ID"] = make_msgid(domain="example.net")
    msg.set_content(BODY)
    msg.add_attachment(SCAN, maintype="image", subtype="png", filename=SCAN_NAME)
    return msg


def open_ticket(app: App, sink: Sink, cc: str | None = None) -> EmailMessage:
    """The requester's mail opens LDS-1 (queue it-anforderung, owner Anna); returns Anna's
    notification once everything it caused is delivered."""
    send(app.settings, request_mail(cc))
    notification = wait_for(lambda: next(iter(mails_to(sink, ANNA)), None))[1]
    wait_for(lambda: mails_to(sink, REQUESTER) and settled(app))
    return notification


def reply(notification: EmailMessage, body: str, *, sender: str = ANNA,
          to: str | None = None, proof: bool = True, reply_to: str | None = None
          ) -> tuple[EmailMessage, list[str]]:
    """An answer to `notification` as a mail client sends it; without `proof` a forged one:
    the agent's From, no token anywhere."""
    msg = EmailMessage()
    msg["From"] = sender
    recipient = to or (notification["Reply-To"].addresses[0].addr_spec if proof
                       else "servicedesk@example.org")
    msg["To"] = recipient
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = f"AW: {notification['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    if proof:
        msg["In-Reply-To"] = notification["Message-ID"]
        msg["References"] = notification["Message-ID"]
    msg.set_content(body)
    return msg, [recipient]


def stored_text(app: App) -> str:
    """Everything the ticket keeps for the long term: subject, bodies, attachment names."""
    with app.db.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        bodies = list(session.scalars(select(Article.body)))
        names = list(session.scalars(select(Attachment.filename)))
    return "\n".join([ticket.subject, *bodies, *names])


# --- #original --------------------------------------------------------------------------------


def test_original_from_a_verified_agent_returns_the_original_once_and_is_audited(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    shown = everything_said(notification)
    assert BIRTH_DATE not in shown and NAME not in shown  # the redacted view
    assert "#original 1" in shown  # how to get the original
    assert not attachment_bytes(notification)
    before = len(sink.messages)

    # From in capitals and a Reply-To elsewhere: the answer still goes to the configured address
    msg, rcpt = reply(notification, "#original\n", sender="Anna Schmidt <ANNA.SCHMIDT@EXAMPLE.ORG>",
                      reply_to=FORGER)
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: len(sink.messages) > before and settled(service))

    new = list(zip(sink.messages[before:], sink.parsed()[before:], strict=True))
    assert len(new) == 1  # the original, once; nothing to the requester, nothing else
    (_, rcpts, _), answer = new[0]
    assert rcpts == [ANNA]
    assert answer["To"].addresses[0].addr_spec == ANNA
    assert "Original von Artikel 1" in answer["Subject"]
    text = plain(answer)
    assert f"{NAME} (geb. {BIRTH_DATE})" in text
    assert "Erika Muster <erika.muster@example.net>" in text
    assert attachment_bytes(answer) == [(SCAN_NAME, SCAN)]
    assert answer["In-Reply-To"] == msg["Message-ID"]

    [viewed] = events(service, "original-viewed")
    assert viewed.actor == ANNA
    assert viewed.detail == {"article": 1, "way": "command", "attachments": 1}
    assert not events(service, "original-refused")
    assert BIRTH_DATE not in stored_text(service) and NAME not in stored_text(service)
    assert FORGER not in str(sink.messages)


def test_original_of_an_article_whose_original_is_gone_says_so(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    with service.db.session() as session:  # what the retention job leaves after its days
        session.query(InboxItem).update({InboxItem.raw: None})
    before = len(sink.messages)
    msg, rcpt = reply(notification, "#original 1\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: len(sink.messages) > before and settled(service))
    [(rcpts, answer)] = mails_to(sink, ANNA)[1:]
    assert rcpts == [ANNA]
    assert "Original von Artikel 1 nicht mehr vorhanden" in answer["Subject"]
    assert "14 Tage" in plain(answer)
    assert not attachment_bytes(answer)
    [refused] = events(service, "original-refused")
    assert refused.detail == {"reason": "gone", "article": 1} and refused.actor == ANNA
    assert not events(service, "original-viewed")


def test_original_of_an_article_the_ticket_does_not_have_is_a_command_error(
    service: App, sink: Sink
) -> None:
    notification = open_ticket(service, sink)
    before = len(sink.messages)
    msg, rcpt = reply(notification, "#erledigt\n#original 7\n")
    send(service.settings, msg, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: len(sink.messages) > before and settled(service))
    [(_, answer)] = mails_to(sink, ANNA)[1:]
    assert "Befehle fehlerhaft" in answer["Subject"]
    assert "LDS-1 has no article 7" in plain(answer)
    with service.db.session() as session:
        assert session.scalars(select(Ticket.status)).one() == "new"  # all or nothing
    assert not events(service, "original-viewed")


def test_originals_asked_for_are_capped_per_ticket(
    make_settings: Callable[..., Settings], sink: Sink
) -> None:
    app = start(make_settings, sink, limits={"original": {"per_ticket": 1, "per_recipient": 5}})
    with running(app):
        notification = open_ticket(app, sink)
        def answered() -> int:
            return len(events(app, "original-viewed")) + len(events(app, "original-refused"))

        for _ in range(2):
            wanted = answered() + 1
            msg, rcpt = reply(notification, "#original\n")
            send(app.settings, msg, mail_from=ANNA, rcpt=rcpt)
            wait_for(functools.partial(lambda n: answered() == n and settled(app), wanted))
    answers = [m for _, m in mails_to(sink, ANNA) if "Original von" in m["Subject"]]
    assert len(answers) == 1
    assert len(events(app, "original-viewed")) == 1
    [refused] = events(app, "original-refused")
    assert refused.detail == {"reason": "rate-limited", "article": 1}
    [limited] = events(app, "rate-limited")
    assert limited.detail["limit"] == "original-per-ticket"


def test_original_from_a_forged_agent_address_does_nothing(service: App, sink: Sink) -> None:
    notification = open_ticket(service, sink)
    before = len(sink.messages)
    # the agent's From, the ticket in the subject, but no token: and a Reply-To to catch it
    msg, rcpt = reply(notification, "#original 1\n", proof=False, reply_to=FORGER)
    send(service.settings, msg, mail_from=FORGER, rcpt=rcpt)
    wait_for(lambda: len(events(service, "original-refused")) == 1)
    wait_for(lambda: settled(service))
    assert len(sink.messages) == before  # no mail at all: not to the forger, not to Anna
    [refused] = events(service, "original-refused")
    assert refused.actor == ANNA  # the address the forger used, no content
    assert refused.detail == {"reason": "unverified", "article": 1}
    assert not events(service, "original-viewed")


def test_original_from_an_agent_of_another_team_gets_nothing(service: App, sink: Sink) -> None:
    """Carla (team fachverfahren) holds a valid token for the ticket — as from an old
    notification — but is not in charge of it: no original, only the usual mail saying who has
    the ticket now."""
    open_ticket(service, sink)
    token = agentproof.token(service.keys.proof, CARLA, "LDS-1")
    address = agentproof.reply_address("servicedesk@example.org", token, "LDS-1")
    msg = EmailMessage()
    msg["From"] = f"Carla Nowak <{CARLA}>"
    msg["To"] = address
    msg["Subject"] = f"AW: [LDS-1] {SUBJECT}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("#original 1\n")
    send(service.settings, msg, mail_from=CARLA, rcpt=[address])
    wait_for(lambda: events(service, "original-refused") and settled(service))
    for _, mail in mails_to(sink, CARLA):
        assert "Original" not in mail["Subject"]
        assert BIRTH_DATE not in everything_said(mail) and NAME not in everything_said(mail)
        assert not attachment_bytes(mail)
    [refused] = events(service, "original-refused")
    assert refused.actor == CARLA and refused.detail["reason"] == "agent-not-in-charge"
    assert not events(service, "original-viewed")


# --- redaction.agent_view: original -----------------------------------------------------------


def test_agent_view_original_gives_the_owner_the_original_and_never_the_requester(
    originals_service: App, sink: Sink
) -> None:
    app = originals_service
    notification = open_ticket(app, sink, cc=f"Jonas Keller <{COLLEAGUE}>")
    text = plain(notification)
    assert f"{NAME} (geb. {BIRTH_DATE})" in text
    assert "Erika Muster <erika.muster@example.net>" in text
    assert attachment_bytes(notification) == [(SCAN_NAME, SCAN)]
    [viewed] = events(app, "original-viewed")
    assert viewed.actor == ANNA
    assert viewed.detail == {"article": 1, "way": "notification", "attachments": 1}

    # Anna answers from Outlook, quoting the whole notification below her text
    quoted = "\n".join(f"> {line}" for line in text.splitlines())
    answer, rcpt = reply(notification, "Der Zugang ist eingerichtet, Kennwort kommt per Post.\n"
                         "\nViele Grüße\nAnna Schmidt\n\n" + quoted)
    send(app.settings, answer, mail_from=ANNA, rcpt=rcpt)
    wait_for(lambda: [m for _, m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None])
    wait_for(lambda: settled(app))

    to_parties = {m["Message-ID"]: m for _, m in [*mails_to(sink, REQUESTER),
                                                   *mails_to(sink, COLLEAGUE)]}
    assert len(to_parties) == 2  # the acknowledgement, and the relayed answer (to both)
    assert len(mails_to(sink, COLLEAGUE)) == 1
    for mail in to_parties.values():
        said = everything_said(mail)
        assert BIRTH_DATE not in said and NAME not in said
        assert not attachment_bytes(mail) and b"ID-CARD-SCAN" not in mail.as_bytes()
    relayed = next(m for m in to_parties.values() if m["Auto-Submitted"] is None)
    assert "Der Zugang ist eingerichtet" in plain(relayed)
    for agent in (BEN, CARLA):  # another member of the team, an agent of another team
        assert not mails_to(sink, agent)
    assert BIRTH_DATE not in stored_text(app) and NAME not in stored_text(app)
    assert len(events(app, "original-viewed")) == 1


def test_agent_view_original_names_attachments_over_the_cap_without_attaching_them(
    make_settings: Callable[..., Settings], sink: Sink
) -> None:
    app = start(make_settings, sink, agent_view="original", agent_view_max_bytes=100)
    with running(app):
        notification = open_ticket(app, sink)
    text = plain(notification)
    assert BIRTH_DATE in text
    assert "Anhänge, zu groß zum Beifügen:\n  - Ausweis.png (1 KB)" in text
    assert not attachment_bytes(notification)
    [viewed] = events(app, "original-viewed")
    assert viewed.detail == {"article": 1, "way": "notification", "attachments": 0}


def test_agent_view_of_another_queue_stays_redacted(
    make_settings: Callable[..., Settings], sink: Sink
) -> None:
    app = start(make_settings, sink, agent_view={"personal": "original"})
    with running(app):
        notification = open_ticket(app, sink)
    assert BIRTH_DATE not in everything_said(notification)
    assert not attachment_bytes(notification)
    assert not events(app, "original-viewed")
