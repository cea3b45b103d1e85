"""A proof token acts only while its agent is in charge of the ticket (issue 12, 6), over real
SMTP both ways: after a reassignment (by #command or `postdesk tickets assign`) the former
owner's reply, with the token of their old notification, is kept as a note, nothing reaches
the requester, no command is carried out, the ticket gets an event and the former owner a
mail saying who has the ticket now; the new owner's reply works. Team members act on their
team's unowned tickets, dispatchers on any."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


def start(make_settings: Callable[..., Settings], sink: Sink, **overrides: Any) -> App:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        **overrides,
    )
    return App.build(settings)


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    with running(start(make_settings, sink)) as app:
        yield app


def mails_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [
        m for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True) if address in rcpts
    ]


def relayed(sink: Sink) -> list[EmailMessage]:
    """Mail to the requester written by an agent (not an automatic acknowledgement)."""
    return [m for m in mails_to(sink, REQUESTER) if m["Auto-Submitted"] is None]


def ticket(app: App) -> Ticket:
    with app.db.session() as session:
        return session.query(Ticket).one()


def articles(app: App, kind: str) -> list[Article]:
    with app.db.session() as session:
        return list(session.query(Article).filter_by(kind=kind).order_by(Article.id))


def events(app: App, kind: str) -> list[Event]:
    with app.db.session() as session:
        return list(session.query(Event).filter_by(kind=kind).order_by(Event.id))


def open_ticket(app: App, sink: Sink, subject: str = "VPN Störung seit heute") -> None:
    send(app.settings, make_mail(subject=subject, body="Guten Tag,\ndas VPN bricht ab.\n"))
    wait_for(lambda: mails_to(sink, REQUESTER))


def notification(sink: Sink, agent: str, number: int = 0) -> EmailMessage:
    """The agent's `number`-th notification (0: the first)."""
    return wait_for(lambda: next(iter(
        [m for m in mails_to(sink, agent) if "pd.LDS-" in m["Message-ID"]][number:]), None))


def answer(app: App, note: EmailMessage, agent: str, body: str) -> None:
    """The agent's reply to a notification, as a mail client sends it (token Reply-To)."""
    msg = EmailMessage()
    msg["From"] = agent
    msg["To"] = note["Reply-To"].addresses[0].addr_spec
    msg["Subject"] = f"AW: {note['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["In-Reply-To"] = note["Message-ID"]
    msg["References"] = note["Message-ID"]
    msg.set_content(body)
    send(app.settings, msg, mail_from=agent, rcpt=[str(msg["To"])])


def assert_kept_as_note_and_told(app: App, sink: Sink, agent: str, now_with: str) -> None:
    """The former owner's `#erledigt` reply: a note, an event, a mail back, nothing else."""
    told = wait_for(lambda: [m for m in mails_to(sink, agent) if "pd.LDS-" not in m["Message-ID"]])
    assert now_with in str(told[-1]["Subject"])
    assert ticket(app).status != "resolved"  # the command was not carried out
    [note] = [a for a in articles(app, "note") if "VPN-Profil" in a.body]
    assert note.from_addr == agent and "#erledigt" in note.body  # kept as written
    [event] = events(app, "not-in-charge")
    assert event.actor == agent and event.detail["owner"] == ticket(app).owner
    assert relayed(sink) == []  # nothing of it reached the requester


def test_owner_reassigns_by_command_and_the_old_token_acts_on_nothing(
    service: App, sink: Sink
) -> None:
    open_ticket(service, sink)
    assert ticket(service).owner == ANNA  # round robin, first in the team
    old = notification(sink, ANNA)
    answer(service, old, ANNA, "#zuweisen Ben\n#intern\n\nÜbergabe: Router prüfen.\n")
    wait_for(lambda: ticket(service).owner == BEN)
    new = notification(sink, BEN)
    assert "Ihnen zugewiesen" in new["Subject"]
    before = len(sink.messages)

    answer(service, old, ANNA, "#erledigt\n\nDas VPN-Profil wurde neu verteilt.\n")
    assert_kept_as_note_and_told(service, sink, ANNA, "Ticket liegt jetzt bei Ben Müller")
    back = mails_to(sink, ANNA)[-1]
    text = back.get_body(("plain",)).get_content()
    assert "nur als interne Notiz" in text and "Ben Müller zugewiesen" in text
    assert back["Auto-Submitted"] == "auto-replied"
    assert [rcpts for _, rcpts, _ in sink.messages[before:]] == [[ANNA]]  # no one else

    answer(service, new, BEN, "#erledigt\n\nBitte starten Sie den Rechner neu.\n")
    reply = wait_for(lambda: next(iter(relayed(sink)), None))
    assert "Bitte starten Sie den Rechner neu." in reply.get_body(("plain",)).get_content()
    assert "VPN-Profil" not in reply.get_body(("plain",)).get_content()
    assert ticket(service).status == "resolved"


def test_assigned_by_cli_the_old_owner_is_told_in_their_language(
    make_settings: Callable[..., Settings], sink: Sink, tmp_path: Path
) -> None:
    app = start(make_settings, sink, agents=[
        {"email": ANNA, "name": "Anna Schmidt", "teams": ["it"], "language": "en"},
        {"email": BEN, "name": "Ben Müller", "teams": ["it", "fachverfahren"]},
    ])
    config = write_config(tmp_path / "config.yaml", app.settings)
    with running(app):
        open_ticket(app, sink)
        old = notification(sink, ANNA)
        assert main(["--config", str(config), "tickets", "assign", "LDS-1", BEN]) == 0
        new = notification(sink, BEN)
        answer(app, old, ANNA, "#erledigt\n\nDas VPN-Profil wurde neu verteilt.\n")
        assert_kept_as_note_and_told(app, sink, ANNA, "the ticket is now with Ben Müller")
        text = mails_to(sink, ANNA)[-1].get_body(("plain",)).get_content()
        assert "NOT sent to the requester" in text and "assigned to Ben Müller" in text

        answer(app, new, BEN, "#warten\n\nWelche Fehlermeldung sehen Sie?\n")
        wait_for(lambda: ticket(app).status == "pending")
        wait_for(lambda: len(relayed(sink)) == 1)


def test_team_members_act_on_an_unowned_team_ticket_until_one_takes_it(
    service: App, sink: Sink, tmp_path: Path
) -> None:
    config = str(write_config(tmp_path / "config.yaml", service.settings))
    open_ticket(service, sink)  # the rules give it team it, and Anna by round robin
    for_anna = notification(sink, ANNA)
    assert main(["--config", config, "tickets", "assign", "LDS-1", BEN]) == 0
    for_ben = notification(sink, BEN)
    assert main(["--config", config, "tickets", "assign", "LDS-1", "none"]) == 0
    # nobody owns it: it is team it's again, and any member may act, the former owner too
    answer(service, for_anna, ANNA, "#übernehmen\n#intern\n\nIch mache weiter.\n")
    wait_for(lambda: ticket(service).owner == ANNA)
    answer(service, for_ben, BEN, "#erledigt\n\nDas VPN-Profil wurde neu verteilt.\n")
    assert_kept_as_note_and_told(service, sink, BEN, "Ticket liegt jetzt bei Anna Schmidt")


def test_a_dispatcher_acts_on_any_ticket(
    make_settings: Callable[..., Settings], sink: Sink
) -> None:
    app = start(make_settings, sink, routing={"dispatchers": [BEN]})
    with running(app):
        open_ticket(app, sink, subject="Heizung im Raum 2.14 kalt")  # no owner, no team
        for_ben = notification(sink, BEN)
        answer(app, for_ben, BEN, "#zuweisen Anna\n#intern\n\nBitte übernehmen.\n")
        wait_for(lambda: ticket(app).owner == ANNA)
        answer(app, for_ben, BEN, "#priorität hoch\n#intern\n\nDringend, Serverraum.\n")
        wait_for(lambda: ticket(app).priority == "high")
        assert events(app, "not-in-charge") == []
        answer(app, notification(sink, ANNA), ANNA, "#warten\n\nIst es jetzt wärmer?\n")
        wait_for(lambda: ticket(app).status == "pending")
        wait_for(lambda: len(relayed(sink)) == 1)


def test_mta_verified_mail_of_a_former_owner_acts_on_nothing_either(
    make_settings: Callable[..., Settings], sink: Sink, tmp_path: Path
) -> None:
    """The trusted MTA's DMARC pass proves the sender, like a token: it does not make a former
    owner the owner again."""
    app = start(make_settings, sink, agent_proof={"trusted_authserv_id": "mx.example.org"})
    config = str(write_config(tmp_path / "config.yaml", app.settings))
    with running(app):
        open_ticket(app, sink)
        assert main(["--config", config, "tickets", "assign", "LDS-1", BEN]) == 0
        fresh = make_mail(
            sender=f"Anna Schmidt <{ANNA}>", subject="[LDS-1] VPN",
            body="#erledigt\n\nDas VPN-Profil wurde neu verteilt.\n",
            headers={"Authentication-Results":
                     "mx.example.org; dmarc=pass header.from=example.org"},
        )
        send(app.settings, fresh, mail_from=ANNA)
        assert_kept_as_note_and_told(app, sink, ANNA, "Ticket liegt jetzt bei Ben Müller")
        assert events(app, "not-in-charge")[0].detail["via"] == "authentication-results"
