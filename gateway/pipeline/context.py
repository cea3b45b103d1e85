"""The typed state of one mail in the pipeline, instead of a dict of string keys, so every
stage's inputs and outputs are visible and checkable.

PREPARE works on `Preparing` (the raw mail and the settings, nothing else) and ends in a
`PreparedMail`; the worker's transaction runs STAGES over a `Context`: the `Services` it works
with (the same for every mail of a batch), the `PreparedMail` as PREPARE left it, and what the
stages decide for this mail."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import Stop
from gateway.mail.model import ParsedMail
from gateway.pipeline.scope import SenderRole

if TYPE_CHECKING:
    from gateway.agents.commands import CommandBlock, CommandError
    from gateway.config import Settings
    from gateway.lifecycle.clocks import Lifecycle
    from gateway.outgoing.letters import Letters
    from gateway.redaction import Analysis, Redactor
    from gateway.routing.ruleset import RouteDecision, Ruleset
    from storage.blobs import Blobs
    from storage.models import Article, InboxItem, Ticket
    from storage.tickets import TicketStore

__all__ = [
    "Context",
    "Decision",
    "IncomingMail",
    "MailAnalysis",
    "PreparedMail",
    "Preparing",
    "SenderRole",
    "Services",
    "Stop",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """Something a stage decided, kept for the audit trail and for `rules test`. Stages never
    read these back: what steers a later stage is a typed field of the Context."""

    stage: str
    what: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MailAnalysis:
    """Personal data found in a mail's subject, body variants and attachment names (before its
    ticket is known); the redact stage replaces it with the ticket's placeholders."""

    subject: Analysis
    bodies: dict[str, Analysis]  # by body variant, see PreparedMail.texts
    filenames: list[Analysis]
    # the text extracted from each attachment (None: no text), in the order of the attachments
    attachment_texts: list[Analysis | None] = field(default_factory=list)


# --- PREPARE --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingMail:
    """What PREPARE needs of an inbox row, as plain data: sent to the prepare process instead
    of the ORM row (building one there cost ~0.6 ms a mail)."""

    id: int
    source: str
    raw: bytes | None
    received_at: datetime

    @classmethod
    def of(cls, item: InboxItem) -> IncomingMail:
        return cls(id=item.id, source=item.source, raw=item.raw, received_at=item.received_at)


@dataclass(slots=True)
class Preparing:
    """The state PREPARE's stages work on: the raw mail, the settings and the search for
    personal data (no database, no blobs, no templates: PREPARE may run anywhere)."""

    incoming: IncomingMail
    settings: Settings
    redactor: Redactor | None = None  # None: redaction switched off
    mail: ParsedMail | None = None
    # The body in its variants: "full" (as received), "reply" (quoted history and signature
    # stripped), "relay" (an agent's reply without #commands); the quotes stage picks one.
    texts: dict[str, str] = field(default_factory=dict)
    commands: CommandBlock | None = None  # parsed from an agent address's reply
    inseparable: str | None = None  # why an agent's reply cannot be told from what it quotes
    analysis: MailAnalysis | None = None
    decisions: list[Decision] = field(default_factory=list)
    language: str | None = None  # of subject and full text, found for the rules
    stage: str = ""  # the stage running now

    def decide(self, stage: str, what: str, **detail: Any) -> None:
        self.decisions.append(Decision(stage, what, detail))


@dataclass(slots=True)
class PreparedMail:
    """What PREPARE made of one inbox row, handed to the worker's transaction (from the prepare
    process: pickled on the way). `mail` is None when PREPARE stopped or failed at `stage`."""

    inbox_id: int
    mail: ParsedMail | None = None
    texts: dict[str, str] = field(default_factory=dict)
    commands: CommandBlock | None = None
    inseparable: str | None = None
    analysis: MailAnalysis | None = None
    decisions: list[Decision] = field(default_factory=list)
    route: RouteDecision | None = None  # what the rules decide, should the mail open a ticket
    language: str | None = None  # of subject and full text (found with `route`)
    ruleset: Ruleset | None = None  # the rules that decided (not sent back by the process)
    stage: str = ""
    stop_reason: str | None = None  # a stage ended the run on purpose (Stop)
    error: str | None = None  # "Type: message" of an unexpected failure: quarantine
    fault: str | None = None  # a temporary fault of the environment (pipeline.faults): wait


# --- STAGES ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Services:
    """What the worker's transaction works with besides the mail."""

    settings: Settings
    store: TicketStore
    blobs: Blobs
    letters: Letters  # every outgoing mail: templates, caps, outbox
    ruleset: Ruleset | None = None  # the routing rules in force for this mail
    pseudonym_key: bytes = b""  # HMAC key for the ticket's placeholder numbering
    proof_key: bytes = b""  # HMAC key of agents' proof tokens
    # keys of former server secrets (a rotation): they only look up, never make
    previous_pseudonym_keys: tuple[bytes, ...] = ()
    previous_proof_keys: tuple[bytes, ...] = ()
    lifecycle: Lifecycle | None = None  # SLA policies and calendars; None: no clocks run


@dataclass(slots=True)
class Context:
    """One mail in the worker's transaction: its services, its row, what PREPARE made of it
    (`prepared`; `mail`, `texts`, `commands` and `analysis` read from there) and what the
    stages decide."""

    services: Services
    inbox: InboxItem
    prepared: PreparedMail
    now: datetime
    ticket: Ticket | None = None
    ticket_is_new: bool = False
    linked_ticket: Ticket | None = None  # the older ticket a new one was split from
    reopened: bool = False  # this mail reopened its resolved or closed ticket (thread)
    figures_before: tuple[Any, ...] | None = None  # the found ticket's figures (tally)
    sender_role: SenderRole = SenderRole.REQUESTER
    automatic_reason: str | None = None  # why this mail must not be answered automatically
    article: Article | None = None
    route: RouteDecision | None = None  # the rules' decision for a new ticket
    redactions: dict[str, int] = field(default_factory=dict)  # replaced values per entity
    pseudonyms: dict[str, int] | None = None  # the ticket's keyed-hash → number map, updated
    body_variant: str = "full"  # which of `texts` is stored, chosen by the quotes stage
    command_errors: list[CommandError] = field(default_factory=list)
    status_changed: str | None = None  # the status an agent's #command set (commands)
    internal: bool = False  # an agent's #intern: stored as a note, not relayed
    held_reasons: list[str] = field(default_factory=list)  # why an agent's reply is held
    notify_agents: list[tuple[str, str]] = field(default_factory=list)  # (agent, reason)
    originals_asked: list[int] = field(default_factory=list)  # article numbers (#original)
    language: str = "de"
    decisions: list[Decision] = field(default_factory=list)
    stage: str = ""  # the stage running now, recorded when a mail is quarantined
    stop_reason: str | None = None

    def decide(self, stage: str, what: str, **detail: Any) -> None:
        self.decisions.append(Decision(stage, what, detail))

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> TicketStore:
        return self.services.store

    @property
    def blobs(self) -> Blobs:
        return self.services.blobs

    @property
    def letters(self) -> Letters:
        return self.services.letters

    @property
    def ruleset(self) -> Ruleset | None:
        return self.services.ruleset

    @property
    def pseudonym_key(self) -> bytes:
        return self.services.pseudonym_key

    @property
    def proof_key(self) -> bytes:
        return self.services.proof_key

    @property
    def proof_keys(self) -> list[bytes]:
        """The keys a proof token may be made with: the current one first, then former ones."""
        return [self.services.proof_key, *self.services.previous_proof_keys]

    @property
    def mail(self) -> ParsedMail | None:
        """The mail; the quotes and redact stages change its text, subject and attachment
        names into what is stored."""
        return self.prepared.mail

    @property
    def texts(self) -> dict[str, str]:
        return self.prepared.texts

    @property
    def commands(self) -> CommandBlock | None:
        return self.prepared.commands

    @property
    def analysis(self) -> MailAnalysis | None:
        return self.prepared.analysis
