"""route stage: the admins' rules decide queue, owner or team, priority, tags and the
acknowledgement template of a new ticket, a team rule picks its agent (round robin or least
open), and follow-ups keep the routing of their ticket. The stage functions on a Context over a
real database, then mails through the worker (moved from test_routing.py)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline import route
from gateway.pipeline.context import Context
from gateway.routing import active
from gateway.routing.ruleset import RouteDecision, Ruleset
from storage import spool
from storage.engine import Database
from storage.models import Event, InboxItem, Ticket
from tests.helpers import (
    make_mail,
    open_ticket_row,
    parsed_mail,
    stage_context,
    tickets,
)

# Within the example rules' service hours (Mo-Fr 7-18, Europe/Berlin): a Wednesday, 10:00. The
# rule `ausserhalb-dienstzeit` would otherwise tag every mail these tests send in the evening.
OFFICE_HOURS = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def decide_in_prepare(ctx: Context, ruleset: Ruleset) -> None:
    """What PREPARE does before the transaction: the rules' decision, with the rules it used."""
    assert ctx.mail is not None
    ctx.prepared.route = route.decide(ctx.mail, ctx.settings, ctx.inbox.received_at, ruleset)
    ctx.services = dataclasses.replace(ctx.services, ruleset=ruleset)


VPN = parsed_mail(subject="VPN Störung seit heute", text="Das VPN bricht ständig ab.\n")


def test_decide_evaluates_the_rules_before_the_transaction(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, VPN, now=OFFICE_HOURS) as ctx:
        decide_in_prepare(ctx, active.load(settings))
        assert ctx.prepared.route is not None and ctx.prepared.route.queue == "it-stoerung"
        assert ctx.route is None and ctx.decisions == []  # nothing decided for a ticket yet


def test_run_routes_a_new_ticket_and_picks_the_teams_agent_in_turn(
    db: Database, settings: Settings
) -> None:
    owners = []
    for _ in range(3):
        with stage_context(db, settings, VPN, now=OFFICE_HOURS) as ctx:
            decide_in_prepare(ctx, active.load(settings))
            route.run(ctx)
            assert ctx.route is not None and ctx.route.queue == "it-stoerung"
            owners.append(ctx.route.owner)
            [decision] = ctx.decisions
            assert (decision.stage, decision.what) == ("route", "routed")
            assert decision.detail["rules"] == ["it-stoerung"]
    assert owners[0] != owners[1] and owners[0] == owners[2]
    assert set(owners) == {"anna.schmidt@example.org", "ben.mueller@example.org"}


def test_run_keeps_a_follow_up_on_its_tickets_routing(db: Database, settings: Settings) -> None:
    with stage_context(db, settings, VPN, now=OFFICE_HOURS) as ctx:
        ctx.ticket = open_ticket_row(ctx, queue="haus")
        decide_in_prepare(ctx, active.load(settings))
        route.run(ctx)
        assert ctx.route is None and ctx.decisions == [] and ctx.ticket.queue == "haus"


def test_run_without_rules_routes_nothing_but_detects_the_language(
    db: Database, settings: Settings
) -> None:
    english = parsed_mail(subject="Printer on the third floor is broken",
                          text="Hello,\nthe printer does not print any more. Could you please "
                               "have a look at it?\nKind regards\n")
    with stage_context(db, settings, english, now=OFFICE_HOURS) as ctx:
        route.run(ctx)
        assert ctx.route is None and ctx.language == "en"


def test_run_takes_the_language_prepare_found_for_the_full_text_only(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, VPN, now=OFFICE_HOURS) as ctx:
        ctx.prepared.language = "en"  # found by PREPARE on the same text: not detected again
        route.run(ctx)
        assert ctx.language == "en"
    with stage_context(db, settings, VPN, now=OFFICE_HOURS) as ctx:
        ctx.prepared.language, ctx.body_variant = "en", "reply"  # the text stored is another
        route.run(ctx)
        assert ctx.language == "de"


def test_pick_agent_of_a_team_without_members_is_nobody(db: Database, settings: Settings) -> None:
    decision = RouteDecision(queue="x", team="fachverfahren", assign="least_open")
    nobody = settings.model_copy(update={"agents": []})
    with stage_context(db, settings) as ctx:
        assert route.pick_agent(decision, nobody, ctx.store) is None
        assert route.pick_agent(decision, settings, ctx.store) == "ben.mueller@example.org"


# --- mails through the worker (moved from test_routing.py) ------------------------------------


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def deliver(app: App, *mails: bytes) -> list[Ticket]:
    """Queue the mails as received in office hours, then let the worker process them."""
    with app.db.session() as session:
        ids = spool.add_inbox_items(
            session,
            [
                spool.NewInboxItem(
                    source="smtp",
                    source_key=f"k{index}-{time.monotonic_ns()}",
                    raw=raw,
                    envelope_from="x@example.net",
                )
                for index, raw in enumerate(mails)
            ],
        )
        session.execute(
            update(InboxItem).where(InboxItem.id.in_(ids)).values(received_at=OFFICE_HOURS)
        )
    app.worker.drain()
    return tickets(app)


def test_incident_goes_to_it_and_round_robin_cycles_through_the_team(app: App) -> None:
    mails = [make_mail(subject=f"VPN Störung Nr. {n}").as_bytes() for n in range(4)]
    routed = deliver(app, *mails)
    assert [t.queue for t in routed] == ["it-stoerung"] * 4
    assert [t.owner for t in routed] == ["anna.schmidt@example.org", "ben.mueller@example.org"] * 2
    with app.db.session() as session:
        event = session.scalars(select(Event).where(Event.kind == "routed")).first()
        assert event is not None and event.actor == "rules"
        assert event.detail["decision"].startswith("rule 'it-stoerung' → queue it-stoerung")


def test_least_open_picks_the_agent_with_fewest_open_tickets(app: App) -> None:
    with app.db.session() as session:  # Anna already has two open tickets, Ben one
        for number, owner in enumerate(
            ["anna.schmidt@example.org"] * 2 + ["ben.mueller@example.org"], start=900
        ):
            session.add(
                Ticket(
                    number=number,
                    ref=f"LDS-{number}",
                    subject="x",
                    status="open",
                    requester="r@example.net",
                    owner=owner,
                    tags=[],
                )
            )
    [*_, request] = deliver(app, make_mail(subject="Antrag auf Zugang zum Laufwerk").as_bytes())
    assert (request.queue, request.owner) == ("it-anforderung", "ben.mueller@example.org")


def test_sick_note_is_confidential_and_second_address_routes_to_buerger(app: App) -> None:
    sick = make_mail(subject="Krankmeldung", body="Anbei meine AU-Bescheinigung.")
    citizen = make_mail(to="buergerservice@example.org", subject="Frage zum Wohngeld")
    outage = make_mail(subject="Totalausfall: Server down, Störung im Rathaus")
    first, second, third = deliver(app, sick.as_bytes(), citizen.as_bytes(), outage.as_bytes())
    assert (first.queue, first.priority, first.tags) == ("personal", "normal", ["vertraulich"])
    assert second.queue == "buerger"
    assert (third.queue, third.priority) == ("it-stoerung", "high")


def test_unmatched_mail_goes_to_the_default_queue_without_owner(app: App) -> None:
    [ticket] = deliver(
        app, make_mail(subject="Frage", body="Wie lange haben Sie geöffnet?").as_bytes()
    )
    assert (ticket.queue, ticket.owner) == ("allgemein", None)


def test_follow_ups_keep_the_routing_of_their_ticket(app: App) -> None:
    first = make_mail(subject="Heizung im Raum 204 kalt")
    deliver(app, first.as_bytes())
    reply = make_mail(subject="Re: [LDS-1] Heizung im Raum 204 kalt", body="Störung besteht")
    [ticket] = deliver(app, reply.as_bytes())
    assert ticket.queue == "haus"


def test_template_action_chooses_or_suppresses_the_acknowledgement(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-stumm.yaml").write_text(
        "- name: newsletter-stumm\n"
        "  when: {subject: {contains: [Newsletter]}}\n"
        "  then: {queue: info, template: none}\n"
        "- name: wiedereroeffnet\n"
        "  when: {subject: {contains: [Wieder]}}\n"
        "  then: {queue: info, template: requester-reopened}\n"
    )
    app = App.build(make_settings(rules_dir=str(rules)), sender=RecordingSender())
    app.init_database()
    deliver(app, make_mail(subject="Newsletter November").as_bytes(),
            make_mail(subject="Wieder da: Frage").as_bytes())
    with app.db.session() as session:
        from storage.models import OutboxItem

        kinds = [item.kind for item in session.query(OutboxItem).order_by(OutboxItem.id)]
    assert kinds == ["requester-reopened"]
    app.db.dispose()
