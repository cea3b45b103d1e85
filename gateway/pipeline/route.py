"""Decide where a new ticket goes: evaluate the admins' YAML rules (queue, owner or team
assignment, priority, tags, acknowledgement template) and pick the agent for team rules.
Follow-up mails keep the routing of their ticket.

The rules are evaluated in PREPARE (`decide`), outside the write transaction and, in serve, in the
prepare process under a CPU budget (gateway.pipeline.prepare): they need only the parsed mail, so a
rule gone wild costs that mail, never the lock. Every mail is evaluated; `run` uses the decision
only for a new ticket, and picks the team's agent, which needs the database."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from gateway.config import Settings
from gateway.mail import language
from gateway.mail.model import ParsedMail
from gateway.pipeline.context import Context
from gateway.routing.ruleset import MailFacts, RouteDecision, Ruleset
from storage.assignment import next_in_rotation, open_tickets_per_owner
from storage.tickets import TicketStore


def pick_agent(decision: RouteDecision, settings: Settings, store: TicketStore) -> str | None:
    """The owner a team rule assigns: next in the team's rotation, or the member with the
    fewest open tickets right now (ties go to the one listed first in the config)."""
    members = [agent.email for agent in settings.team_members(decision.team or "")]
    if not members:
        return None
    if decision.assign == "least_open":
        counts = open_tickets_per_owner(store.session, members)
        return min(members, key=lambda email: counts[email])
    return members[next_in_rotation(store.session, decision.team or "") % len(members)]


def mail_language(mail: ParsedMail, settings: Settings) -> str:
    """The language of the mail's subject and its text as it stands ("de" or "en")."""
    return language.detect(f"{mail.subject}\n{mail.text}", settings.service.language)


def facts(mail: ParsedMail, settings: Settings, received_at: datetime,
          lang: str | None = None) -> MailFacts:
    """What the rules see of a mail that opens a ticket: its full text (a new ticket keeps it),
    its language (`lang` if known already), and whether the sender is a configured agent (as
    `rules test` has it)."""
    return MailFacts.from_parsed(
        mail,
        language=lang or mail_language(mail, settings),
        sender_is_agent=settings.agent(mail.from_.email) is not None,
        received_at=received_at,
    )


def decide(mail: ParsedMail, settings: Settings, received_at: datetime, ruleset: Ruleset,
           on_rule: Callable[[int], None] | None = None, lang: str | None = None) -> RouteDecision:
    """PREPARE: the rules' decision for this mail, should it open a ticket."""
    return ruleset.evaluate(facts(mail, settings, received_at, lang), on_rule).decision


def run(ctx: Context) -> None:
    assert ctx.mail is not None
    mail = ctx.mail
    # PREPARE detected it on the full text; a reply stored without its quote is detected anew
    known = ctx.prepared.language if ctx.body_variant == "full" else None
    ctx.language = known or mail_language(mail, ctx.settings)
    if ctx.ticket is not None or ctx.ruleset is None:
        return
    decision = ctx.prepared.route
    if decision is None:  # the stages run without PREPARE's evaluation (a test): evaluate here
        decision = decide(mail, ctx.settings, ctx.inbox.received_at, ctx.ruleset)
    if decision.owner is None and decision.team is not None:
        decision = dataclasses.replace(
            decision, owner=pick_agent(decision, ctx.settings, ctx.store)
        )
    ctx.route = decision
    ctx.decide(
        "route",
        "routed",
        ruleset=ctx.ruleset.version,
        rules=list(decision.rules),
        decision=decision.describe(),
    )
