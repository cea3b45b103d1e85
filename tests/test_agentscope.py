"""Who is in charge of a ticket (gateway.pipeline.scope), on a real database: the owner, the
dispatchers on any ticket, the team's members while nobody owns it, and nobody else."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.config import Settings
from gateway.pipeline import scope as agentscope
from storage.engine import Database
from storage.models import utcnow
from storage.tickets import TicketStore

ANNA = "anna.schmidt@example.org"  # teams it (lead)
BEN = "ben.mueller@example.org"  # teams it, fachverfahren
CARL = "carl.gruen@example.org"  # dispatcher, no team


@pytest.fixture
def scoped(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        agents=[
            {"email": ANNA, "name": "Anna Schmidt", "teams": ["it"]},
            {"email": BEN, "name": "Ben Müller", "teams": ["it", "fachverfahren"]},
            {"email": CARL, "name": "Carl Grün"},
        ],
        routing={"dispatchers": [CARL]},
    )


@pytest.mark.parametrize(
    ("owner", "team", "in_charge"),
    [
        (ANNA, "it", {ANNA, CARL}),  # a team member who is not the owner is not in charge
        (BEN, None, {BEN, CARL}),
        (None, "it", {ANNA, BEN, CARL}),  # nobody owns it: the whole team
        (None, "fachverfahren", {BEN, CARL}),
        (None, None, {CARL}),  # nobody's and no team: the dispatchers only
    ],
)
def test_in_charge(
    scoped: Settings, db: Database, owner: str | None, team: str | None, in_charge: set[str]
) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="VPN", requester="erika@example.net",
                                     language="de", conversation=None, now=utcnow(), owner=owner)
        store.add_event(ticket, actor="rules", kind="routed", now=utcnow(), team=team)
        found = {a for a in (ANNA, BEN, CARL) if agentscope.in_charge(scoped, store, ticket, a)}
        assert found == in_charge
        assert agentscope.in_charge(scoped, store, ticket, ANNA.upper()) is (ANNA in in_charge)
        holder = agentscope.holder(scoped, store, ticket)
        expected_name = {ANNA: "Anna Schmidt", BEN: "Ben Müller", None: None}[owner]
        assert holder == {"owner_name": expected_name, "team": None if owner else team}


def test_a_ticket_routed_before_teams_were_recorded_has_no_team(
    scoped: Settings, db: Database
) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="VPN", requester="erika@example.net",
                                     language="de", conversation=None, now=utcnow())
        assert store.team(ticket) is None  # no routed event at all
        store.add_event(ticket, actor="rules", kind="routed", now=utcnow(), decision="…")
        assert store.team(ticket) is None
        assert not agentscope.in_charge(scoped, store, ticket, ANNA)
        assert agentscope.in_charge(scoped, store, ticket, CARL)
