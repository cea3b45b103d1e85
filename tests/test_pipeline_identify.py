"""identify stage: a mail acts as an agent only with proof (a valid proof token for this agent
and ticket, or trusted Authentication-Results) and only while the agent is in charge of the
ticket; everything else from an agent address is kept as a note. The stage function on a
Context over a real database. (Over real SMTP both ways: test_agents.py,
test_agents_reassigned.py.)"""

from __future__ import annotations

from sqlalchemy import select

from gateway.agents import proof as agentproof
from gateway.config import Settings
from gateway.mail.model import Address, ParsedMail
from gateway.pipeline import identify
from gateway.pipeline import scope as agentscope
from gateway.pipeline.context import Context
from storage.engine import Database
from storage.models import Event, Ticket
from tests.helpers import open_ticket_row, parsed_mail, stage_context

KEY = b"k" * 32
ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"


def from_agent(agent: str, token_for: tuple[str, str] | None = None) -> ParsedMail:
    """An agent's reply; with `token_for` (agent, ticket ref), addressed to the plus-address of
    that agent's notification, as a mail client answers it."""
    to = "servicedesk@example.org"
    if token_for is not None:
        owner, ref = token_for
        to = agentproof.reply_address(to, agentproof.token(KEY, owner, ref), ref)
    return parsed_mail(from_=Address("", agent), to=[Address("", to)], subject="AW: Drucker")


def ticket_of(ctx: Context, owner: str | None = ANNA) -> Ticket:
    ctx.ticket = open_ticket_row(ctx, owner=owner, status="open")
    return ctx.ticket


def test_a_sender_who_is_no_agent_is_the_requester(db: Database, settings: Settings) -> None:
    with stage_context(db, settings, proof_key=KEY) as ctx:
        ticket_of(ctx)
        identify.run(ctx)
        assert ctx.sender_role == "requester" and ctx.decisions == []


def test_the_owners_reply_with_her_token_acts_as_agent(db: Database, settings: Settings) -> None:
    with stage_context(db, settings, from_agent(ANNA, (ANNA, "LDS-1")), proof_key=KEY) as ctx:
        ticket_of(ctx)
        identify.run(ctx)
        assert ctx.sender_role == "agent"
        assert [(d.what, d.detail["via"]) for d in ctx.decisions] == [("agent", "recipient")]


def test_the_token_names_the_ticket_when_subject_and_headers_lost_it(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, from_agent(ANNA, (ANNA, "LDS-1")), proof_key=KEY) as ctx:
        ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        assert ctx.ticket is None
        identify.run(ctx)
        assert ctx.ticket is ticket and ctx.sender_role == "agent"


def test_agent_mail_without_proof_or_with_anothers_token_is_unverified(
    db: Database, settings: Settings
) -> None:
    for mail in (from_agent(ANNA), from_agent(BEN, (ANNA, "LDS-1"))):
        with stage_context(db, settings, mail, proof_key=KEY) as ctx:
            ctx.ticket = ctx.store.by_ref("LDS-1") or ticket_of(ctx)
            identify.run(ctx)
            assert ctx.sender_role == "agent-unverified"
            assert [d.what for d in ctx.decisions] == ["agent-unverified"]


def test_an_agent_writing_in_without_a_ticket_is_a_requester(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, from_agent(BEN), proof_key=KEY) as ctx:
        identify.run(ctx)
        assert ctx.sender_role == "requester" and ctx.ticket is None


def test_a_former_owners_valid_token_acts_on_nothing_and_leaves_an_event(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, from_agent(BEN, (BEN, "LDS-1")), proof_key=KEY) as ctx:
        ticket_of(ctx, owner=ANNA)  # reassigned from Ben to Anna since his notification
        identify.run(ctx)
        assert ctx.sender_role == agentscope.NOT_IN_CHARGE
        [event] = ctx.store.session.scalars(select(Event).where(Event.kind == "not-in-charge"))
        assert event.actor == BEN and event.detail["owner"] == ANNA


def test_an_agents_automatic_mail_is_never_verified(db: Database, settings: Settings) -> None:
    mail = from_agent(ANNA, (ANNA, "LDS-1"))
    with stage_context(db, settings, mail, proof_key=KEY,
                       automatic_reason="Auto-Submitted: auto-replied") as ctx:
        ticket_of(ctx)
        identify.run(ctx)
        assert ctx.sender_role == "agent-unverified" and ctx.decisions == []
