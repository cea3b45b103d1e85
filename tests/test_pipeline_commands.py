"""commands stage: the #commands of a verified agent's reply are carried out all together or,
if any line is wrong, not at all; a reply that would pass agent mail on to the requester is
held as a note. The stage function on a Context over a real database. (Over real SMTP both
ways: test_agents.py; the command language itself: test_agentcommands.py.)"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select

from gateway.agents import commands as agentcommands
from gateway.config import Settings
from gateway.mail.model import Address
from gateway.pipeline import commands
from gateway.pipeline.context import Context
from storage.engine import Database
from storage.models import Event
from tests.helpers import open_ticket_row, parsed_mail, stage_context

ANNA = "anna.schmidt@example.org"
BEN = "ben.mueller@example.org"


def agent_reply(
    db: Database, settings: Settings, text: str, **fields: Any
) -> AbstractContextManager[Context]:
    """A Context as PREPARE and the earlier stages leave an owner's verified reply: its
    #commands parsed, the text to relay without them, the ticket found."""
    block = agentcommands.parse_commands(text)
    mail = parsed_mail(from_=Address("Anna Schmidt", ANNA), subject="AW: [LDS-1] Drucker",
                       text=text)
    fields = {"sender_role": "agent", "commands": block,
              "texts": {"full": text, "reply": text, "relay": block.remaining_text}, **fields}
    return stage_context(db, settings, mail, **fields)


def events(ctx: Context, kind: str) -> list[Event]:
    ctx.store.session.flush()
    return list(ctx.store.session.scalars(select(Event).where(Event.kind == kind)))


def test_a_valid_block_is_carried_out_and_recorded(db: Database, settings: Settings) -> None:
    text = "#erledigt\n#prio hoch\n#tag drucker\n\nDer Toner ist getauscht.\n"
    with agent_reply(db, settings, text) as ctx:
        ticket = ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        commands.run(ctx)
        assert (ticket.status, ticket.priority, ticket.tags) == ("resolved", "high", ["drucker"])
        assert ctx.command_errors == [] and not ctx.internal
        [decision] = ctx.decisions
        assert decision.what == "applied" and decision.detail["kinds"] == [
            "status", "priority", "tag"
        ]
        assert [e.actor for e in events(ctx, "priority")] == [ANNA]


def test_one_wrong_line_carries_out_nothing(db: Database, settings: Settings) -> None:
    with agent_reply(db, settings, "#erledigt\n#priorität sehr hoch\n\nErledigt.\n") as ctx:
        ticket = ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        commands.run(ctx)
        assert (ticket.status, ticket.priority) == ("open", "normal")
        assert [e.line_no for e in ctx.command_errors] == [2]
        assert [d.what for d in ctx.decisions] == ["rejected"]
        [event] = events(ctx, "commands-rejected")
        assert event.detail["lines"] == [2]


def test_assigning_another_agent_makes_them_owner_and_tells_them(
    db: Database, settings: Settings
) -> None:
    with agent_reply(db, settings, "#zuweisen Ben Müller\n\nÜbernimmst du?\n") as ctx:
        ticket = ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        commands.run(ctx)
        assert ticket.owner == BEN and ctx.notify_agents == [(BEN, "assigned")]
        [event] = events(ctx, "assigned")
        assert (event.detail["old"], event.detail["new"]) == (ANNA, BEN)


def test_intern_makes_a_note(db: Database, settings: Settings) -> None:
    with agent_reply(db, settings, "#intern\n\nRouter im Keller prüfen.\n") as ctx:
        ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        commands.run(ctx)
        assert ctx.internal and ctx.held_reasons == []


def test_a_reply_that_would_pass_on_an_agent_address_is_held(
    db: Database, settings: Settings
) -> None:
    text = "#erledigt\n\nFragen Sie gern auch ben.mueller@example.org direkt.\n"
    with agent_reply(db, settings, text) as ctx:
        ticket = ctx.ticket = open_ticket_row(ctx, owner=ANNA, status="open")
        commands.run(ctx)
        assert ticket.status == "open" and ctx.internal and ctx.held_reasons
        assert [d.what for d in ctx.decisions] == ["held"]
        assert len(events(ctx, "reply-held")) == 1


def test_nothing_happens_for_anyone_but_a_verified_agent(db: Database, settings: Settings) -> None:
    for role in ("requester", "agent-unverified", "agent-not-in-charge"):
        with agent_reply(db, settings, "#erledigt\n\nErledigt.\n", sender_role=role) as ctx:
            ticket = ctx.ticket = ctx.store.by_ref("LDS-1") or open_ticket_row(ctx, owner=ANNA)
            commands.run(ctx)
            assert ticket.status != "resolved" and ctx.decisions == []
