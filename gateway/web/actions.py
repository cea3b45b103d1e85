"""The two things a requester can do on the status page.

- `resolve`: "Mein Anliegen hat sich erledigt" sets the ticket to resolved the way an agent's
  `#erledigt` does (gateway.pipeline.actions: status event; the SLA clocks stop), records a
  `requester-resolved` event and queues the usual `requester-solved` mail through the outbox,
  all in one transaction.
- `message_mail`: "Nachricht ergänzen" becomes an RFC 5322 mail from the requester to the
  central address, with the ticket's reference in the subject; the caller stores it through
  the intake (gateway.intake.webform), so the pipeline threads, redacts and records it exactly
  like a mail that came by SMTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from gateway import logs
from gateway.config import Settings
from gateway.lifecycle import clocks, tally
from gateway.lifecycle.clocks import Lifecycle
from gateway.outgoing.letters import STATUS_TEMPLATES, Letters, Renderer
from gateway.pipeline import actions
from gateway.web.page import OPEN_STATUSES
from storage.models import Ticket
from storage.tickets import TicketStore

ACTOR = "requester:web"
"""Who the audit events name: the requester, through the status page (no address)."""
MAX_MESSAGE_CHARS = 10_000


def resolve(
    settings: Settings, store: TicketStore, ticket: Ticket, *, renderer: Renderer,
    lifecycle: Lifecycle | None, status_key: bytes, now: datetime,
) -> bool:
    """Resolve the ticket and queue the status mail; False when it was no longer open."""
    if ticket.status not in OPEN_STATUSES:
        return False
    before = tally.snapshot(ticket)
    actions.set_status(store, ticket, "resolved", actor=ACTOR, now=now)
    store.add_event(ticket, actor=ACTOR, kind="requester-resolved", now=now, via="web")
    if lifecycle is not None:
        clocks.refresh(lifecycle, ticket, now)
    tally.keep(store.session, lifecycle, ticket, before)
    letters = Letters(settings, renderer, store, status_key=status_key)
    letters.requester_mail(ticket, template=STATUS_TEMPLATES["resolved"], now=now,
                           automatic=True)
    logs.event("web.resolved", ticket=ticket.ref)
    return True


def message_mail(settings: Settings, ticket: Ticket, text: str, *, now: datetime) -> bytes:
    """The requester's message as the mail they might have written: From the requester, To the
    central address, `[REF]` in the subject, plain UTF-8 text."""
    mail = EmailMessage()
    mail["From"] = ticket.requester
    mail["To"] = settings.service.address
    subject = ticket.subject.strip()
    mail["Subject"] = f"[{ticket.ref}] {subject}" if subject else f"[{ticket.ref}]"
    mail["Date"] = format_datetime(now)
    host = urlsplit(settings.web.public_url).hostname if settings.web else None
    mail["Message-ID"] = make_msgid("web", domain=host or "status.invalid")
    mail["X-Postdesk-Via"] = "status-page"
    mail.set_content(clean_text(text))
    return mail.as_bytes(policy=SMTP)


def clean_text(text: str) -> str:
    """The text as typed, with line ends made plain and control characters taken out."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:MAX_MESSAGE_CHARS]
    kept = "".join(c for c in text if c in "\n\t" or c.isprintable())
    return kept.strip() + "\n"


Waker = Callable[[], None]
