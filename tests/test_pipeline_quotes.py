"""quotes stage: PREPARE makes the body variants (full, reply without quoted history and
signature, relay without an agent's #commands) from the mail alone; the transaction stores the
one that fits the sender and the ticket. The stage functions on a Context. (Quote detection
itself: test_replytext.py; separating an agent's answer: test_agentreply.py.)"""

from __future__ import annotations

from gateway.agents.commands import CommandError
from gateway.config import Settings
from gateway.mail.model import Address
from gateway.pipeline import quotes
from storage.engine import Database
from tests.helpers import open_ticket_row, parsed_mail, run_prepare, stage_context

REPLY = (
    "Der Drucker geht wieder, danke!\n\n"
    "Am 23.11.2026 um 10:02 schrieb IT-Servicedesk <servicedesk@example.org>:\n"
    "> Ihre Anfrage ist eingegangen.\n"
    "> Ticket LDS-1\n"
)
ACK_ID = "<ack-1@example.org>"  # what a reply answers: the acknowledgement's Message-ID
WRONG_LINE = CommandError(line_no=1, line="#priorität sehr hoch", message="unknown priority")
AGENT_REPLY = "#erledigt\n\nBitte wenden Sie sich an ben.mueller@example.org.\n"


def test_prepare_makes_full_and_reply_for_a_requester(db: Database, settings: Settings) -> None:
    with stage_context(db, settings, parsed_mail(text=REPLY, in_reply_to=[ACK_ID])) as ctx:
        run_prepare(quotes.prepare, ctx)
        assert ctx.texts["full"] == REPLY and "relay" not in ctx.texts
        assert ctx.texts["reply"].strip() == "Der Drucker geht wieder, danke!"
        assert ctx.commands is None


def test_a_mail_that_cannot_thread_gets_no_reply_variant(
    db: Database, settings: Settings
) -> None:
    # Nothing could thread it (thread._find): a new ticket, which keeps the full text.
    with stage_context(db, settings, parsed_mail(text=REPLY)) as ctx:
        run_prepare(quotes.prepare, ctx)
        assert ctx.texts == {"full": REPLY}
        quotes.run(ctx)
        assert ctx.body_variant == "full"
    for threading in ({"subject": "AW: [LDS-7] Drucker"}, {"references": [ACK_ID]},
                      {"thread_index": b"\x01" * 22}):
        with stage_context(db, settings, parsed_mail(text=REPLY, **threading)) as ctx:
            run_prepare(quotes.prepare, ctx)
            assert ctx.texts["reply"].strip() == "Der Drucker geht wieder, danke!", threading


def test_prepare_parses_an_agents_commands_and_hides_agent_addresses_in_the_relay(
    db: Database, settings: Settings
) -> None:
    mail = parsed_mail(from_=Address("Anna Schmidt", "anna.schmidt@example.org"),
                       text=AGENT_REPLY)
    with stage_context(db, settings, mail) as ctx:
        run_prepare(quotes.prepare, ctx)
        assert ctx.commands is not None
        assert [c.kind for c in ctx.commands.commands] == ["status"]
        assert "#erledigt" not in ctx.texts["relay"]
        assert "ben.mueller" not in ctx.texts["relay"]
        assert "servicedesk@example.org" in ctx.texts["relay"]


def test_a_new_ticket_keeps_the_full_text_a_reply_loses_the_quote(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, parsed_mail(text=REPLY, in_reply_to=[ACK_ID])) as ctx:
        run_prepare(quotes.prepare, ctx)
        quotes.run(ctx)  # no ticket yet: the forwarded history may be the request itself
        assert ctx.body_variant == "full" and ctx.mail is not None and ctx.mail.text == REPLY
        assert ctx.decisions == []
    with stage_context(db, settings, parsed_mail(text=REPLY, in_reply_to=[ACK_ID])) as ctx:
        ctx.ticket = open_ticket_row(ctx)
        run_prepare(quotes.prepare, ctx)
        quotes.run(ctx)
        assert ctx.body_variant == "reply" and ctx.mail is not None
        assert ctx.mail.text.strip() == "Der Drucker geht wieder, danke!"
        assert [(d.what, d.detail["variant"]) for d in ctx.decisions] == [("stripped", "reply")]


def test_a_reply_with_nothing_new_is_stored_whole(db: Database, settings: Settings) -> None:
    quoted_only = (
        "Am 23.11.2026 um 10:02 schrieb IT-Servicedesk <servicedesk@example.org>:\n"
        "> Ihre Anfrage ist eingegangen.\n"
    )
    with stage_context(db, settings, parsed_mail(text=quoted_only, in_reply_to=[ACK_ID])) as ctx:
        ctx.ticket = open_ticket_row(ctx)
        run_prepare(quotes.prepare, ctx)
        assert ctx.texts["reply"] == ""
        quotes.run(ctx)
        assert ctx.body_variant == "full"


def test_an_agent_is_relayed_without_commands_unless_they_were_wrong(
    db: Database, settings: Settings
) -> None:
    mail = parsed_mail(from_=Address("Anna Schmidt", "anna.schmidt@example.org"),
                       text=AGENT_REPLY)
    for role, errors, variant in (("agent", False, "relay"), ("agent", True, "reply"),
                                  ("agent-unverified", False, "reply")):
        with stage_context(db, settings, mail, sender_role=role) as ctx:
            ctx.ticket = ctx.store.by_ref("LDS-1") or open_ticket_row(ctx)
            run_prepare(quotes.prepare, ctx)
            if errors:
                ctx.command_errors = [WRONG_LINE]
            quotes.run(ctx)
            assert ctx.body_variant == variant, role

