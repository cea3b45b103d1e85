"""What a requester's status page shows, read from the database: the ticket found by a checked
token, and its public view — reference, stored (redacted) subject, status in plain words, when
it came in, the expected answer, and the public conversation.

The public conversation is the requester's own articles (from the ticket's requester address,
never a Cc'd party's mail) and the agents' replies that were relayed to them (kind `agent`;
held or internal ones are notes), as stored. Never shown: notes, system articles, any address
(an agent appears by display name, as in the mail they got; a configured agent address left in
a stored text is replaced by the central address), tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.outgoing import statuslink
from gateway.web import words
from storage.models import Article, Ticket, article_order
from storage.tickets import TicketStore

OPEN_STATUSES = ("new", "open", "pending")
"""Statuses in which the requester may mark the request settled."""
WRITABLE_STATUSES = (*OPEN_STATUSES, "resolved")
"""Statuses in which the requester may add a message (closed is final: write a new mail)."""


@dataclass(frozen=True, slots=True)
class Entry:
    who: str
    mine: bool
    when: str
    when_iso: str
    lines: list[str]


@dataclass(frozen=True, slots=True)
class StatusView:
    ref: str
    subject: str
    status: str
    status_words: str
    received: str
    received_iso: str
    expected_label: str | None
    expected: str | None
    entries: list[Entry]
    language: str
    can_resolve: bool  # new, open, pending
    can_write: bool  # also resolved: a message reopens it, as a mail would


def find_ticket(session: Session, key: bytes, token: str) -> Ticket | None:
    """The ticket a token opens, or None (not a token, no such ticket, wrong MAC): the caller
    answers all three with the same 404."""
    ref = statuslink.ref_of(token)
    if ref is None:
        return None
    ticket = TicketStore(session).by_ref(ref)
    if ticket is None:
        statuslink.verify(key, token, "")  # the same work as a real check
        return None
    return ticket if statuslink.verify(key, token, ticket.requester) else None


def public_articles(session: Session, ticket: Ticket) -> list[Article]:
    """The requester's own articles and the relayed agent replies, in arrival order."""
    rows = session.scalars(
        select(Article)
        .where(Article.ticket_id == ticket.id, Article.kind.in_(("requester", "agent")))
        .order_by(*article_order())
    )
    requester = ticket.requester.strip().lower()
    return [a for a in rows
            if a.kind == "agent" or (a.from_addr or "").strip().lower() == requester]


def build(session: Session, settings: Settings, ticket: Ticket, now: datetime) -> StatusView:
    lang = words.language(ticket.language)
    zone = settings.service.timezone
    texts = words.TEXTS[lang]
    label, expected = _expected(ticket, lang, zone, now, texts)
    return StatusView(
        ref=ticket.ref,
        subject=ticket.subject or texts["no_subject"],
        status=ticket.status,
        status_words=words.status(ticket.status, lang),
        received=words.moment(ticket.created_at, lang, zone),
        received_iso=ticket.created_at.isoformat(),
        expected_label=label,
        expected=expected,
        entries=[_entry(settings, a, lang, zone, texts) for a in public_articles(session, ticket)
                 if a.body.strip()],
        language=lang,
        can_resolve=ticket.status in OPEN_STATUSES,
        can_write=ticket.status in WRITABLE_STATUSES,
    )


def _expected(ticket: Ticket, lang: str, zone: str, now: datetime,
              texts: dict[str, str]) -> tuple[str | None, str | None]:
    """The next answer's due moment (first response or next update clock), else the
    solution's; nothing while pending, resolved or closed."""
    if ticket.status not in ("new", "open"):
        return None, None
    answer = ticket.first_response_due_at or ticket.update_due_at
    if answer is not None:
        return texts["expected"], words.due(answer, lang, zone, now)
    if ticket.solution_due_at is not None:
        return texts["expected_solution"], words.due(ticket.solution_due_at, lang, zone, now)
    return texts["expected"], None


def _entry(settings: Settings, article: Article, lang: str, zone: str,
           texts: dict[str, str]) -> Entry:
    mine = article.kind != "agent"
    if mine:
        who = texts["you"]
    else:
        agent = settings.agent(article.from_addr)
        service = settings.service.name
        who = f"{agent.name} ({service})" if agent and agent.name else service
    return Entry(who=who, mine=mine, when=words.moment(article.created_at, lang, zone),
                 when_iso=article.created_at.isoformat(),
                 lines=_scrub(settings, article.body).rstrip().splitlines())


def _scrub(settings: Settings, text: str) -> str:
    """Configured agents' addresses in a stored text become the central address."""
    for agent in settings.agents:
        if agent.email in text.lower():
            text = _replace_folded(text, agent.email, settings.service.address)
    return text


def _replace_folded(text: str, needle: str, replacement: str) -> str:
    lower = text.lower()
    out, start = [], 0
    while (found := lower.find(needle, start)) >= 0:
        out.append(text[start:found])
        out.append(replacement)
        start = found + len(needle)
    out.append(text[start:])
    return "".join(out)
