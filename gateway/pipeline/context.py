"""The typed state one mail carries through the pipeline, instead of a dict of string keys,
so every stage's inputs and outputs are visible and checkable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import Stop
from gateway.mail.model import ParsedMail

if TYPE_CHECKING:
    from gateway.agents.commands import CommandBlock, CommandError
    from gateway.config import Settings
    from gateway.outgoing.letters import Letters
    from gateway.redaction import Analysis, Redactor
    from gateway.routing.ruleset import RouteDecision, Ruleset
    from storage.blobs import BlobStore
    from storage.models import Article, InboxItem, Ticket
    from storage.tickets import TicketStore

__all__ = ["Context", "Decision", "MailAnalysis", "Stop"]


@dataclass(frozen=True, slots=True)
class Decision:
    """Something a stage decided, kept for the audit trail and for `rules test`."""

    stage: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MailAnalysis:
    """Personal data found in a mail's subject, body variants and attachment names (before its
    ticket is known); the redact stage replaces it with the ticket's placeholders."""

    subject: Analysis
    bodies: dict[str, Analysis]  # by body variant, see Context.texts
    filenames: list[Analysis]


@dataclass(slots=True)
class Context:
    inbox: InboxItem
    settings: Settings
    store: TicketStore
    blobs: BlobStore
    letters: Letters  # every outgoing mail: templates, caps, outbox
    now: datetime
    mail: ParsedMail | None = None
    ticket: Ticket | None = None
    ticket_is_new: bool = False
    linked_ticket: Ticket | None = None  # the older ticket a new one was split from
    sender_role: str = "requester"  # requester | agent | agent-unverified | agent-not-in-charge
    automatic_reason: str | None = None  # why this mail must not be answered automatically
    article: Article | None = None
    ruleset: Ruleset | None = None  # the routing rules in force for this mail
    route: RouteDecision | None = None  # what they decided for a new ticket
    prepared_route: RouteDecision | None = None  # their decision, made in PREPARE (see route)
    redactor: Redactor | None = None  # None: redaction switched off
    pseudonym_key: bytes = b""  # HMAC key for the ticket's placeholder numbering
    analysis: MailAnalysis | None = None
    redactions: dict[str, int] = field(default_factory=dict)  # replaced values per entity
    pseudonyms: dict[str, int] | None = None  # the ticket's keyed-hash → number map, updated
    proof_key: bytes = b""  # HMAC key of agents' proof tokens
    # The body in its variants, made before the transaction: "full" (as received), "reply"
    # (quoted history and signature stripped), "relay" (an agent's reply without #commands).
    texts: dict[str, str] = field(default_factory=dict)
    body_variant: str = "full"  # which one is stored, chosen by the quotes stage
    commands: CommandBlock | None = None  # parsed from an agent address's reply
    command_errors: list[CommandError] = field(default_factory=list)
    internal: bool = False  # an agent's #intern: stored as a note, not relayed
    held_reasons: list[str] = field(default_factory=list)  # why an agent's reply is held
    notify_agents: list[tuple[str, str]] = field(default_factory=list)  # (agent, reason)
    language: str = "de"
    decisions: list[Decision] = field(default_factory=list)
    stage: str = ""  # the stage running now, recorded when a mail is quarantined
    stop_reason: str | None = None

    def decide(self, stage: str, what: str, **detail: Any) -> None:
        self.decisions.append(Decision(stage, what, detail))
