"""The typed state one mail carries through the pipeline, instead of a dict of string keys,
so every stage's inputs and outputs are visible and checkable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import Stop

if TYPE_CHECKING:
    from gateway.agents.commands import CommandBlock, CommandError
    from gateway.config import Settings
    from gateway.outgoing.render import Renderer
    from gateway.redaction import Analysis, Redactor
    from gateway.routing.ruleset import RouteDecision, Ruleset
    from storage.blobs import BlobStore
    from storage.models import Article, InboxItem, Ticket
    from storage.tickets import TicketStore

__all__ = [
    "Address",
    "Context",
    "Decision",
    "MailAnalysis",
    "MailAttachment",
    "ParsedMail",
    "Stop",
]


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # display name, decoded ("" if none)
    email: str  # lower-cased addr-spec ("" if unparseable)


@dataclass(frozen=True, slots=True)
class MailAttachment:
    filename: str  # safe: no path parts, no control characters, never empty
    content_type: str
    data: bytes


@dataclass(slots=True)
class ParsedMail:
    """Everything later stages need from a mail, decoded once by the parse stage."""

    message_id: str  # "<id@host>"; generated if the mail had none
    message_id_generated: bool
    from_: Address
    to: list[Address]
    cc: list[Address]
    reply_to: list[Address]
    subject: str  # encoded words decoded, whitespace folded
    date: datetime | None
    in_reply_to: list[str]
    references: list[str]
    thread_index: bytes | None  # Outlook Thread-Index, base64-decoded
    thread_topic: str | None
    headers: dict[str, list[str]]  # lower-case name → decoded values, in order
    text: str  # plain-text body (HTML converted when there is no text part)
    html: str | None
    attachments: list[MailAttachment]
    defects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


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
    renderer: Renderer
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
