"""Who gets a ticket's unredacted originals, and the audit trail of every disclosure.

The stored ticket is redacted, yet an agent who must set up an account for "[NAME-1] (geb.
[GEBURTSDATUM])" needs the name and the date. Two ways give them, both only to agents in charge
of the ticket (gateway.pipeline.scope: its owner; while nobody owns it, its team; the
dispatchers), at the address the config gives for them:

- `notification`: where the ticket's queue has `redaction.agent_view: original`, the agent
  notifications about a mail show its original text and carry its attachments (up to
  `redaction.agent_view_max_bytes`);
- `command`: a proven agent's `#original [N]` in a reply to a notification gets article N's
  original (default: the requester's newest mail) while the encrypted original is kept
  (`redaction.raw_retention_days`), else an answer saying it is gone.

Every disclosure is an `original-viewed` event (actor: the agent; article number, way,
attachments sent); `postdesk tickets original` writes the same with way `cli`. A request that
gets nothing — a forged or unproven sender, an agent no longer in charge, an original that is
gone, a cap reached — is an `original-refused` event with the reason. Neither the events nor
the log lines carry any of the mail's content or addresses."""

from __future__ import annotations

import logging
from datetime import datetime

from gateway import logs
from gateway.agents.commands import Command, CommandError
from gateway.errors import ParseError
from gateway.mail import original as originals
from gateway.mail.model import MailAttachment
from gateway.pipeline import scope
from gateway.pipeline.context import Context
from gateway.pipeline.parse import parse_mail
from storage.models import Ticket
from storage.sealing import SealError
from storage.tickets import NumberedArticle, TicketStore

VIEWED = "original-viewed"
REFUSED = "original-refused"


def record(
    store: TicketStore, ticket: Ticket, *, actor: str, article: int, way: str, now: datetime,
    attachments: int = 0,
) -> None:
    """Audit one disclosure of article `article`'s original to `actor` by `way`
    (notification | command | cli)."""
    store.add_event(ticket, actor=actor, kind=VIEWED, now=now, article=article, way=way,
                    attachments=attachments)
    logs.event("original.disclosed", ticket=ticket.ref, article=article, way=way)


def refuse(ctx: Context, actor: str, reason: str, article: int | None = None) -> None:
    """Audit a request for an original that gets nothing, and why."""
    assert ctx.ticket is not None
    ctx.decide("disclosure", "refused", reason=reason)
    ctx.store.add_event(ctx.ticket, actor=actor, kind=REFUSED, now=ctx.now, reason=reason,
                        article=article)
    logs.event("original.refused", logging.WARNING if reason == "unverified" else logging.INFO,
               ticket=ctx.ticket.ref, reason=reason, article=article)


def asked(ctx: Context) -> list[int | None]:
    """The articles the mail's command block asks the original of (None: the default one);
    parsed for every agent address, proven or not. Empty: it asks for none."""
    if ctx.commands is None:
        return []
    return [int(c.value) if c.value is not None else None
            for c in ctx.commands.commands if c.kind == "original"]


def refuse_all(ctx: Context, actor: str, reason: str) -> None:
    """Audit every original the mail asked for as refused (it acts on nothing)."""
    for article in asked(ctx):
        refuse(ctx, actor, reason, article)


# --- the #original command ------------------------------------------------------------------


def resolve(
    ctx: Context, commands: list[Command]
) -> tuple[list[int], list[CommandError]]:
    """The article numbers the `#original` commands ask for (none given: the requester's
    newest mail), and an error for each number the ticket has no article for."""
    assert ctx.ticket is not None
    wanted = [c for c in commands if c.kind == "original"]
    if not wanted:
        return [], []
    articles = ctx.store.numbered_articles(ctx.ticket)
    numbers: list[int] = []
    errors = []
    for command in wanted:
        if command.value is None:
            numbers.append(_default_article(articles))
        elif 1 <= int(command.value) <= len(articles):
            numbers.append(int(command.value))
        else:
            message = (f"{ctx.ticket.ref} has no article {command.value} "
                       f"(it has {len(articles)})")
            errors.append(CommandError(command.line_no, command.line, message, "unknown-article"))
    return list(dict.fromkeys(numbers)), errors


def _default_article(articles: list[NumberedArticle]) -> int:
    """The requester's newest mail, else the ticket's first article."""
    mails = [a for a in articles if a.kind == "requester" and a.direction == "in"]
    return mails[-1].number if mails else 1


def answer(ctx: Context, agent: str, in_reply_to: str | None) -> None:
    """Mail each original the proven agent asked for (ctx.originals_asked) to their
    configured address, or say it is gone; audit what went out."""
    assert ctx.ticket is not None
    ticket = ctx.ticket
    member = ctx.settings.agent(agent)
    if member is None:  # identify proved an agent; anything else is a bug, not a disclosure
        return
    if not scope.in_charge(ctx.settings, ctx.store, ticket, member.email):
        for number in ctx.originals_asked:
            refuse(ctx, member.email, scope.NOT_IN_CHARGE, number)
        return
    articles = {a.number: a for a in ctx.store.numbered_articles(ticket)}
    for number in ctx.originals_asked:
        found = _stored_original(ctx, articles.get(number), number)
        posted = ctx.letters.original_copy(ticket, member.email, article=number,
                                           original=found, now=ctx.now,
                                           in_reply_to=in_reply_to)
        if found is None:
            refuse(ctx, member.email, "gone", number)
        elif posted.outcome == "queued":
            record(ctx.store, ticket, actor=member.email, article=number, way="command",
                   now=ctx.now, attachments=len(found.attachments))
            ctx.decide("disclosure", "original", article=number, way="command")
        else:
            refuse(ctx, member.email, posted.outcome, number)


def _stored_original(
    ctx: Context, article: NumberedArticle | None, number: int
) -> originals.Original | None:
    """Article `number`'s original from its encrypted inbox row, None if it has none (any
    more): purged after raw_retention_days, or never a mail (a note, a mail postdesk sent)."""
    if article is None or article.inbox_id is None:
        return None
    ticket_ref = ctx.ticket.ref if ctx.ticket is not None else None
    try:
        raw = ctx.store.original_raw(article.inbox_id)
    except SealError:  # another key: what `tickets original` reports, here a mail saying gone
        logs.event("original.unreadable", logging.WARNING, ticket=ticket_ref, article=number)
        return None
    if raw is None:
        return None
    try:
        mail = parse_mail(bytes(raw), domain=ctx.settings.service.domain)
    except ParseError:  # it was parsed once to become the article; never the agent's mail's end
        logs.event("original.unreadable", logging.WARNING, ticket=ticket_ref, article=number)
        return None
    return originals.of_mail(mail, article=number,
                             max_bytes=ctx.settings.redaction.agent_view_max_bytes)


# --- notifications ----------------------------------------------------------------------------


def for_notification(ctx: Context, recipient: str, article: int) -> originals.Original | None:
    """The original of this mail for a notification to `recipient`, if the ticket's queue
    shows agents originals and `recipient` is a configured agent in charge of the ticket;
    else None (the notification shows the stored, redacted text)."""
    ticket, mail = ctx.ticket, ctx.mail
    assert ticket is not None and mail is not None
    if ctx.settings.redaction.agent_view_for(ticket.queue) != "original":
        return None
    member = ctx.settings.agent(recipient)
    if member is None or not scope.in_charge(ctx.settings, ctx.store, ticket, member.email):
        return None
    analysis = ctx.analysis
    text = ctx.texts.get(ctx.body_variant, ctx.texts.get("full", mail.text))
    subject = analysis.subject.text if analysis is not None else mail.subject
    attachments: list[MailAttachment] = list(mail.attachments)
    if analysis is not None:  # the redact stage renamed them: their names as they came
        attachments = [
            MailAttachment(found.text, a.content_type, a.data)
            for a, found in zip(mail.attachments, analysis.filenames, strict=True)
        ]
    return originals.of_mail(mail, article=article, text=text, subject=subject,
                             attachments=attachments,
                             max_bytes=ctx.settings.redaction.agent_view_max_bytes)


def article_number(ctx: Context) -> int | None:
    """This mail's article number on its ticket (1 for a new ticket: no query)."""
    if ctx.ticket is None or ctx.article is None:
        return None
    if ctx.ticket_is_new:
        return 1
    for article in ctx.store.numbered_articles(ctx.ticket):
        if article.id == ctx.article.id:
            return article.number
    return None
