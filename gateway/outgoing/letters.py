"""Every mail postdesk writes goes through here, in one order: count it against its cap
(gateway.outgoing.limits; a mail over it is not rendered at all), render the template (a broken
one is quarantined, never dropped, and counts nowhere), compose it from the letterhead
(gateway.mail.compose), put it into the outbox and index its Message-ID under the ticket, so a
reply to it finds its ticket.

Rules kept here: a notification's Message-ID and Reply-To carry the agent's proof token, and
such ids never appear in mail to a requester; mail to a requester goes from the central address,
with an agent's display name only; an acknowledgement goes to the From address (never Reply-To)
and is kept on the ticket as a system article. An unredacted original (gateway.mail.original)
goes only into mail to a configured agent, at the address the config gives for them; no mail
to a requester or a Cc'd party has a way to carry one.

`Letters` works inside one transaction (the worker makes one per mail, with the templates in
force then); the pipeline imports nothing else of gateway.outgoing."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from gateway import logs
from gateway.agents import proof as agentproof
from gateway.config import Settings
from gateway.errors import DeliveryError, TemplateError
from gateway.mail import threadindex
from gateway.mail.compose import ComposedMail, Letterhead, ascii_address, compose
from gateway.mail.model import Address, MailAttachment
from gateway.mail.original import Original
from gateway.outgoing import limits, statuslink
from gateway.outgoing.render import RenderedMail, Renderer
from gateway.outgoing.templateset import ActiveTemplates
from gateway.outgoing.views import (
    DIGEST,
    NEW_LINKED,
    NOTIFICATION,
    ORIGINAL,
    PENDING_REMINDER,
    RECEIVED,
    REOPENED,
    SLA_ESCALATION,
    SLA_REMINDER,
    STATUS_TEMPLATES,
    acknowledgement_view,
    agent_view,
    digest_view,
    notification_view,
    original_view,
    requester_mail_view,
    sla_view,
)
from storage.autoreplies import AutoReplies
from storage.models import Ticket
from storage.outbox import Outbox
from storage.tickets import TicketStore

# The pipeline's one door into gateway.outgoing: what it names is re-exported here.
__all__ = ["DIGEST", "NEW_LINKED", "ORIGINAL", "PENDING_REMINDER", "RECEIVED", "REOPENED",
           "SLA_ESCALATION", "SLA_REMINDER", "STATUS_TEMPLATES",
           "ActiveTemplates", "Letterhead", "Letters", "Posted", "Renderer", "letterhead"]

Outcome = Literal["queued", "quarantined", "rate-limited", "cannot-compose"]


def letterhead(settings: Settings) -> Letterhead:
    """The service's letterhead from the config (built once per process)."""
    service = settings.service
    return Letterhead(address=service.address, name=service.name, domain=service.domain,
                      language=service.language)


@dataclass(frozen=True, slots=True)
class Posted:
    """What became of one letter."""

    template: str
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None  # cannot-compose: the error's class …
    detail: str | None = None  # … and its message (no address in it)

    @property
    def made(self) -> bool:
        """Queued, or kept in quarantine; False when a cap or the address stopped it."""
        return self.outcome in ("queued", "quarantined")


@dataclass(frozen=True, slots=True)
class _Envelope:
    """Who a letter goes to and how it threads; the same for every kind of letter."""

    to: list[Address]
    cc: list[Address]
    in_reply_to: str | None
    references: list[str]
    thread_index: bytes | None
    automatic: bool
    thread_topic: str | None = None
    message_id: str | None = None
    reply_to: Address | None = None
    on_behalf_of: str | None = None
    attachments: Sequence[MailAttachment] = ()

    @property
    def recipients(self) -> list[str]:
        return [a.email for a in (*self.to, *self.cc)]


class Letters:
    """Renders, counts, composes and queues the mail of one transaction."""

    def __init__(
        self,
        settings: Settings,
        templates: Renderer,
        store: TicketStore,
        *,
        proof_key: bytes = b"",
        head: Letterhead | None = None,
        status_key: bytes = b"",
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.store = store
        self.proof_key = proof_key
        self.status_key = status_key  # requesters' status-page links (outgoing.statuslink)
        self.head = head or letterhead(settings)
        self.outbox = Outbox(store.session)
        self.log = AutoReplies(store.session)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write the outbox rows and Message-ID refs queued in the block with one statement
        each when it ends (see storage.outbox.Outbox.deferred)."""
        with self.store.deferred(), self.outbox.deferred():
            yield

    def agent_mails(self, ticket: Ticket) -> list[bytes]:
        """The mails sent to agents about the ticket, newest first (what a reply may quote)."""
        return self.outbox.agent_mails(ticket.id)

    # --- the kinds of letter ------------------------------------------------------------

    def acknowledgement(
        self,
        ticket: Ticket,
        template: str,
        recipient: Address,
        *,
        language: str,
        received_at: datetime,
        linked_ref: str | None,
        in_reply_to: str | None,
        references: Sequence[str],
        parent_index: bytes | None,
        thread_topic: str | None,
        now: datetime,
    ) -> Posted:
        """Tell a requester their mail arrived (received, reopened, new-linked or a rule's own
        template); kept on the ticket as a system article. Rate-limited per address."""
        view = acknowledgement_view(self.settings, ticket, language, received_at=received_at,
                                    linked_ref=linked_ref, requester_name=recipient.name,
                                    status_url=self._status_url(ticket, [recipient.email]))
        envelope = _Envelope(
            to=[recipient], cc=[], in_reply_to=in_reply_to,
            references=[*references, *([in_reply_to] if in_reply_to else [])],
            thread_index=_child_index(ticket, now, parent_index, start=True),
            automatic=True, thread_topic=thread_topic or ticket.subject,
        )
        return self._post(
            ticket, template, language, view, envelope, now=now, article=True,
            count=lambda: limits.acknowledgement(self.settings, self.log, recipient.email, now),
        )

    def agent_notification(
        self,
        ticket: Ticket,
        agent: str,
        *,
        reason: str,
        text: str,
        now: datetime,
        attachments: Sequence[str] = (),
        article: int | None = None,
        original: Original | None = None,
    ) -> Posted:
        """Tell an agent about a ticket; the mail carries the agent's proof token in its
        Message-ID and in a plus-addressed Reply-To, so a reply to it proves it comes from
        this agent. With `original` (the queue's agents see originals), it shows the original
        text and carries its attachments. Capped by `limits.notification`."""
        language = self._agent_language(agent)
        if original is not None:
            _only_to_an_agent(self.settings, agent)
        view = notification_view(self.settings, ticket, agent, language, reason=reason,
                                 text=text, attachments=attachments, article=article,
                                 original=original)
        head = self.head
        token = agentproof.token(self.proof_key, agent, ticket.ref)
        envelope = _Envelope(
            to=[self._agent_address(agent)], cc=[], in_reply_to=None, references=[],
            thread_index=_child_index(ticket, now), automatic=True,
            message_id=agentproof.notification_message_id(
                self.proof_key, agent, ticket.ref, head.domain, secrets.token_hex(8)),
            reply_to=Address(head.name, agentproof.reply_address(head.address, token,
                                                                   ticket.ref)),
            attachments=original.attachments if original is not None else (),
        )
        return self._post(ticket, NOTIFICATION, language, view, envelope, now=now,
                          count=self._cap("notification", ticket, [agent], NOTIFICATION, now))

    def agent_reply(
        self,
        ticket: Ticket,
        agent: str,
        template: str,
        *,
        now: datetime,
        in_reply_to: str | None,
        **extra: Any,
    ) -> Posted:
        """A short automatic answer to an agent's mail (unverified, commands rejected, reply
        held, not in charge); capped by `limits.warning`."""
        language = self._agent_language(agent)
        view = agent_view(self.settings, ticket, agent, language, **extra)
        envelope = _Envelope(
            to=[self._agent_address(agent)], cc=[], in_reply_to=in_reply_to,
            references=[in_reply_to] if in_reply_to else [], thread_index=None, automatic=True,
        )
        return self._post(ticket, template, language, view, envelope, now=now,
                          count=self._cap("warning", ticket, [agent], template, now))

    def sla_notice(
        self, ticket: Ticket, agent: str, template: str, *, clock: str, due_at: datetime,
        now: datetime,
    ) -> Posted:
        """An SLA reminder or escalation (views.SLA_NOTICES) to an agent. Not capped: the job
        sends each at most once per clock run (storage.sla.claim)."""
        language = self._agent_language(agent)
        owner = self.settings.agent(ticket.owner) if ticket.owner else None
        view = sla_view(self.settings, ticket, agent, language, clock=clock, due_at=due_at,
                        owner_name=owner.name if owner else ticket.owner)
        envelope = _Envelope(
            to=[self._agent_address(agent)], cc=[], in_reply_to=None, references=[],
            thread_index=None, automatic=True,
        )
        return self._post(ticket, template, language, view, envelope, now=now,
                          count=lambda: [])

    def digest(
        self, agent: str, *, day: datetime, sections: dict[str, dict[str, Any]],
        teams: list[str], now: datetime,
    ) -> Posted:
        """The morning digest (views.DIGEST) to an agent at their configured address. About no
        single ticket: the outbox row has none and no Message-ID is indexed under one. Not
        capped: the job sends one per person and day (storage.digests.claim)."""
        language = self._agent_language(agent)
        view = digest_view(self.settings, agent, language, day=day, sections=sections,
                           teams=teams)
        to = [self._agent_address(agent)]
        try:
            rendered = self.templates.render(DIGEST, language, view)
        except TemplateError as error:
            reason = str(error)[:500]
            self.outbox.queue(
                ticket_id=None, kind=DIGEST,
                message_id=f"<unsent.{uuid.uuid4().hex}@postdesk.invalid>",
                envelope_from=self.head.address, envelope_to=[a.email for a in to], raw=b"",
                now=now, quarantined=reason)
            logs.event("mail.quarantined", logging.WARNING, template=DIGEST)
            return Posted(DIGEST, "quarantined")
        envelope = _Envelope(to=to, cc=[], in_reply_to=None, references=[],
                             thread_index=None, automatic=True)
        try:
            composed = self._compose(rendered, envelope, now)
            envelope_to = [ascii_address(email) for email in envelope.recipients]
        except DeliveryError as exc:
            logs.event("mail.cannot-compose", logging.WARNING, template=DIGEST,
                       error=type(exc).__name__)
            return Posted(DIGEST, "cannot-compose", error=type(exc).__name__, detail=str(exc))
        self.outbox.queue(ticket_id=None, kind=DIGEST, message_id=composed.message_id,
                          envelope_from=self.head.address, envelope_to=envelope_to,
                          raw=composed.raw, now=now)
        logs.event("mail.queued", template=DIGEST)
        return Posted(DIGEST, "queued", composed.message_id)

    def original_copy(
        self,
        ticket: Ticket,
        agent: str,
        *,
        article: int,
        original: Original | None,
        now: datetime,
        in_reply_to: str | None,
    ) -> Posted:
        """The answer to an agent's `#original`: article `article`'s original with its
        attachments (None: why there is none), to the agent's configured address whatever the
        asking mail's From or Reply-To said. Capped by `limits.original`."""
        _only_to_an_agent(self.settings, agent)
        language = self._agent_language(agent)
        view = original_view(self.settings, ticket, agent, language, article=article,
                             original=original)
        envelope = _Envelope(
            to=[self._agent_address(agent)], cc=[], in_reply_to=in_reply_to,
            references=[in_reply_to] if in_reply_to else [], thread_index=None, automatic=True,
            attachments=original.attachments if original is not None else (),
        )
        return self._post(ticket, ORIGINAL, language, view, envelope, now=now,
                          count=self._cap("original", ticket, [agent], ORIGINAL, now))

    def requester_mail(
        self,
        ticket: Ticket,
        *,
        template: str,
        now: datetime,
        automatic: bool,
        agent_name: str | None = None,
        text: str | None = None,
        status_note: str | None = None,
        attachments: Iterable[MailAttachment] = (),
    ) -> Posted:
        """A relayed agent reply (`automatic=False`) or a status mail to the requester and the
        Cc'd parties, from the central address; an agent appears by display name only.
        Capped by `limits.requester`."""
        language = ticket.language or self.head.language
        parties = self.store.participants(ticket)
        cc = [Address("", email) for email, role in sorted(parties.items()) if role == "cc"]
        status_url = self._status_url(ticket, [ticket.requester, *(a.email for a in cc)])
        view = requester_mail_view(self.settings, ticket, language, automatic=automatic,
                                   agent_name=agent_name, text=text, status_note=status_note,
                                   status_url=status_url)
        # only ids the requester has seen, never an agent notification's (it carries a token)
        seen = agentproof.scrub_references(self.store.message_ids(ticket))
        envelope = _Envelope(
            to=[Address("", ticket.requester)], cc=cc,
            in_reply_to=seen[-1] if seen else None, references=seen[-10:],
            thread_index=_child_index(ticket, now), automatic=automatic,
            thread_topic=ticket.subject, on_behalf_of=agent_name,
            attachments=list(attachments),
        )
        return self._post(ticket, template, language, view, envelope, now=now,
                          count=self._cap("requester", ticket, envelope.recipients, template,
                                          now))

    # --- the one way a letter is made -----------------------------------------------------

    def _post(
        self,
        ticket: Ticket,
        template: str,
        language: str,
        view: dict[str, Any],
        envelope: _Envelope,
        *,
        now: datetime,
        count: Callable[[], list[int] | None],
        article: bool = False,
    ) -> Posted:
        # Counted first: a mail over a cap (a dispatcher's notifications in a burst) costs
        # no rendering.
        logged = count()
        if logged is None:
            return Posted(template, "rate-limited")
        try:
            rendered = self.templates.render(template, language, view, queue=ticket.queue)
        except TemplateError as error:
            limits.take_back(self.log, logged)  # not sent: it counts nowhere
            self.quarantine(ticket, error, kind=template, envelope_to=envelope.recipients,
                            now=now)
            return Posted(template, "quarantined")
        try:
            composed = self._compose(rendered, envelope, now)
            envelope_to = [ascii_address(email) for email in envelope.recipients]
        except DeliveryError as exc:  # an address no mail can go to: it counts nowhere
            limits.take_back(self.log, logged)
            logs.event("mail.cannot-compose", logging.WARNING, ticket=ticket.ref,
                       template=template, error=type(exc).__name__)
            return Posted(template, "cannot-compose", error=type(exc).__name__, detail=str(exc))
        self.outbox.queue(
            ticket_id=ticket.id, kind=template, message_id=composed.message_id,
            envelope_from=self.head.address, envelope_to=envelope_to, raw=composed.raw, now=now,
        )
        self.store.add_message_refs(ticket, [composed.message_id], "out")
        if article:
            self.store.insert_article(
                ticket, kind="system", direction="out", from_addr=self.head.address,
                to_addrs=[a.email for a in envelope.to], cc_addrs=[a.email for a in envelope.cc],
                subject=rendered.subject, body=rendered.text, message_id=composed.message_id,
                created_at=now,
            )
        logs.event("mail.queued", ticket=ticket.ref, template=template)
        return Posted(template, "queued", composed.message_id)

    def _compose(self, rendered: RenderedMail, envelope: _Envelope, now: datetime) -> ComposedMail:
        return compose(
            self.head,
            to=envelope.to,
            cc=envelope.cc,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            in_reply_to=envelope.in_reply_to,
            references=envelope.references,
            thread_index=envelope.thread_index,
            automatic=envelope.automatic,
            attachments=envelope.attachments,
            now=now,
            thread_topic=envelope.thread_topic,
            message_id=envelope.message_id,
            reply_to=envelope.reply_to,
            on_behalf_of=envelope.on_behalf_of,
        )

    def quarantine(
        self,
        ticket: Ticket,
        error: TemplateError,
        *,
        kind: str,
        envelope_to: list[str],
        now: datetime,
    ) -> None:
        """A mail that cannot be rendered (a broken template) is not dropped: it is recorded as
        a quarantined outbox row (never delivered) with the reason — template name and
        file:line, no mail data — shown by `postdesk status` and `outbox list`, and on the
        ticket's trail."""
        reason = str(error)[:500]
        self.outbox.queue(
            ticket_id=ticket.id,
            kind=kind,
            message_id=f"<unsent.{uuid.uuid4().hex}@postdesk.invalid>",  # unique, never sent
            envelope_from=self.head.address,
            envelope_to=envelope_to,
            raw=b"",
            now=now,
            quarantined=reason,
        )
        self.store.add_event(ticket, actor="system", kind="mail-quarantined", now=now, mail=kind,
                             reason=reason)
        where = f"{error.file}:{error.line}" if error.line is not None else error.file
        logs.event("mail.quarantined", logging.WARNING, ticket=ticket.ref, template=kind,
                   at=where)

    # --- helpers --------------------------------------------------------------------------

    def _cap(self, kind: limits.Kind, ticket: Ticket, recipients: list[str], template: str,
             now: datetime) -> Callable[[], list[int] | None]:
        return lambda: limits.admit(self.settings, self.log, self.store, ticket, kind,
                                    recipients, mail=template, now=now)

    def _status_url(self, ticket: Ticket, recipients: list[str]) -> str | None:
        """The status-page link, when `web:` is configured and the requester is the mail's
        only recipient (the link is the key to the page)."""
        return statuslink.for_mail(self.settings, self.status_key, ticket.ref,
                                   ticket.requester, recipients)

    def _agent_language(self, email: str) -> str:
        agent = self.settings.agent(email)
        return (agent.language if agent and agent.language else None) or self.head.language

    def _agent_address(self, email: str) -> Address:
        """The agent's address as configured (never one a mail gave)."""
        member = self.settings.agent(email)
        return Address(member.name, member.email) if member else Address("", email)


def _only_to_an_agent(settings: Settings, recipient: str) -> None:
    """An original goes to configured agents only: anything else is a bug, never a mail."""
    if settings.agent(recipient) is None:
        raise ValueError("an unredacted original may only be mailed to a configured agent")


def _child_index(
    ticket: Ticket, now: datetime, parent: bytes | None = None, start: bool = False
) -> bytes | None:
    """A Thread-Index under `parent` (the requester's own, if it is usable), else under the
    ticket's conversation; with `start`, a new conversation when the ticket has none."""
    if parent is not None:
        try:
            return threadindex.child_index(parent, now)
        except ValueError:
            pass  # truncated or absurd index: fall back to the ticket's own conversation
    header = threadindex.header_from_key(ticket.conversation or "")
    if header is None:
        if not start:
            return None
        header = threadindex.new_index(now, uuid.uuid4())
    return threadindex.child_index(header, now)
