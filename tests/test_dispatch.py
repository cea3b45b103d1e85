"""Nobody's ticket (issue 11, defect 5): a new ticket that no rule gives an owner or a team goes
to the dispatchers (`routing.dispatchers`, members of `routing.default_team`) as the usual agent
notification, so it cannot wait unseen; tickets with an owner or team do not bother them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.models import OutboxItem, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import ROOT, make_mail, running, send, wait_for

ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"
REQUESTER = "erika.muster@example.net"
UNMATCHED = "Frage zum Kantinenplan"  # matches no rule of the example rules: queue allgemein


def mails_to(sink: Sink, address: str) -> list[EmailMessage]:
    return [
        m for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True) if address in rcpts
    ]


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        routing={"dispatchers": [ANNA]},
    )
    app = App.build(settings)
    with running(app):
        yield app


def test_mail_no_rule_matches_notifies_the_dispatcher(service: App, sink: Sink) -> None:
    send(service.settings, make_mail(subject=UNMATCHED, body="Guten Tag,\nwo finde ich ihn?\n"))
    [notification] = wait_for(lambda: mails_to(sink, ANNA))
    assert notification["Subject"].startswith("[LDS-1] Neues Ticket")
    assert "pd.LDS-1." in notification["Message-ID"]  # the agent's proof: a reply acts on it
    assert wait_for(lambda: mails_to(sink, REQUESTER))  # the acknowledgement as before
    time.sleep(0.3)  # nothing else is on its way
    assert mails_to(sink, BEN) == []
    with service.db.session() as session:
        ticket = session.scalars(select(Ticket)).one()
        assert (ticket.queue, ticket.owner) == ("allgemein", None)


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[App]:
    settings = make_settings(routing={"dispatchers": [ANNA], "default_team": "fachverfahren"})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def notified(app: App, subject: str) -> list[str]:
    """Process one mail; the agents its ticket's notifications went to."""
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key=f"k-{time.monotonic_ns()}",
            raw=make_mail(subject=subject).as_bytes(), envelope_from=REQUESTER)])
    app.worker.drain()
    with app.db.session() as session:
        rows = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "agent-notify").order_by(OutboxItem.id)
        )
        ticket = session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
        assert ticket is not None
        return [row.envelope_to[0] for row in rows if row.ticket_id == ticket.id]


def test_queue_without_team_goes_to_dispatchers_and_default_team(app: App) -> None:
    # `haustechnik` sets queue `haus` and no team: dispatcher Anna plus team fachverfahren (Ben)
    assert notified(app, "Heizung im Raum 3 kalt") == [ANNA, BEN]
    assert notified(app, UNMATCHED) == [ANNA, BEN]


def test_owned_ticket_notifies_only_its_owner(app: App) -> None:
    # `it-stoerung` assigns the team it round robin: Anna owns it, the dispatchers hear nothing
    assert notified(app, "VPN Störung") == [ANNA]
    assert notified(app, "VPN Störung") == [BEN]


@pytest.mark.parametrize(
    ("routing", "error"),
    [
        ({"dispatchers": ["pförtner@example.org"]}, "routing.dispatchers.0"),
        ({"default_team": "kantine"}, "routing.default_team: unknown team 'kantine'"),
    ],
)
def test_dispatchers_must_be_agents_and_the_team_known(
    make_settings: Callable[..., Settings], routing: dict[str, object], error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        make_settings(routing=routing)


def test_example_config_names_a_dispatcher() -> None:
    settings = load_settings(ROOT / "config.example.yaml")
    assert settings.dispatchers()
    assert Path(settings.rules_dir).is_dir()
