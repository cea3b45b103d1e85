"""Replace personal data (names, birth dates, phone numbers, IBANs, …) in subject, body,
attachment names and the text read from attachments with the ticket's placeholders before
anything is written for the long term.

Two steps: `prepare` finds the data (Presidio, the slow part) from the parsed mail alone, in
PREPARE before the write transaction; `run` numbers the placeholders through the ticket's keyed
pseudonyms (`[NAME-1]` stays one person across the ticket's articles) inside it, honouring the
queue's choice of entities."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from gateway.pipeline.context import Context, MailAnalysis, Preparing
from gateway.redaction import (
    Analysis,
    KeyedPseudonyms,
    apply_analysis,
    detect_language,
    part_of,
)

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.redaction import Redactor
    from storage.models import Ticket


def prepare(state: Preparing) -> None:
    redactor, mail, settings = state.redactor, state.mail, state.settings
    if redactor is None or mail is None:
        return
    language = detect_language(f"{mail.subject}\n{mail.text}", settings.service.language)
    names = [a.name for a in (mail.from_, *mail.to, *mail.cc, *mail.reply_to) if a.name]
    entities = settings.redaction.all_entities()

    limit = settings.redaction.max_analysis_chars

    def find(text: str) -> Analysis:
        searched, notice = within(text, limit)
        found = redactor.prepare(searched, language=language, known_names=names,
                                 entities=entities)
        return dataclasses.replace(found, text=found.text + notice) if notice else found

    texts = state.texts or {"full": mail.text}
    by_text: dict[str, Analysis] = {}  # the variants are often equal or parts of each other:
    for text in sorted(set(texts.values()), key=len, reverse=True):  # analyse each once
        whole = next((done for done in by_text.values() if text in done.text), None)
        by_text[text] = (whole and part_of(whole, text)) or find(text)
    bodies = {variant: by_text[text] for variant, text in texts.items()}
    state.analysis = MailAnalysis(
        subject=find(mail.subject),
        bodies=bodies,
        filenames=[find(a.filename) for a in mail.attachments],
        attachment_texts=[None if a.text is None else find(a.text) for a in mail.attachments],
    )


def within(text: str, limit: int) -> tuple[str, str]:
    """`text` cut at the last line break before `limit` characters, and the notice that takes
    the place of the rest (appended after the search): what is not searched for personal data
    is not stored (redacting more is safe, less is not; the encrypted original keeps it for
    redaction.raw_retention_days)."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind("\n", limit // 2, limit)
    cut = limit if cut < 0 else cut + 1
    notice = (f"\n[... {len(text) - cut} characters not kept: over "
              "redaction.max_analysis_chars, see the original mail ...]\n")
    return text[:cut], notice


def run(ctx: Context) -> None:
    if ctx.analysis is None or ctx.mail is None:  # no analysis: redaction is switched off
        return
    mail, analysis = ctx.mail, ctx.analysis
    state = dict(ctx.ticket.pseudonyms or {}) if ctx.ticket is not None else {}
    pseudonyms = KeyedPseudonyms(ctx.pseudonym_key, state,
                                 ctx.services.previous_pseudonym_keys)
    queue = ctx.ticket.queue if ctx.ticket is not None else (ctx.route.queue if ctx.route else None)
    entities = ctx.settings.redaction.entities_for(queue)
    counts: dict[str, int] = {}

    def apply(found: Analysis) -> str:
        result = apply_analysis(found, pseudonyms=pseudonyms, entities=entities)
        for entity, count in result.counts.items():
            counts[entity] = counts.get(entity, 0) + count
        return result.text

    mail.subject = apply(analysis.subject)
    body = analysis.bodies.get(ctx.body_variant) or analysis.bodies["full"]
    mail.text = apply(body)
    mail.html = None  # only the redacted text is kept
    texts = analysis.attachment_texts or [None] * len(mail.attachments)
    mail.attachments = [
        dataclasses.replace(attachment, filename=apply(found),
                            text=None if text is None else apply(text))
        for attachment, found, text in zip(mail.attachments, analysis.filenames, texts,
                                           strict=True)
    ]
    ctx.redactions = counts
    ctx.pseudonyms = pseudonyms.state
    if counts:
        ctx.decide("redact", "redacted", **counts)


def redact_note(
    settings: Settings, redactor: Redactor | None, pseudonym_key: bytes, ticket: Ticket, text: str,
    previous_keys: tuple[bytes, ...] = (),
) -> tuple[str, dict[str, int]]:
    """A note typed at the CLI, redacted as an agent's note mail is: the same analysis, the
    queue's entities and the ticket's placeholders (`[NAME-1]` in a note is the `[NAME-1]` of
    its mails). Updates `ticket.pseudonyms`; returns the text to store and counts per entity."""
    if redactor is None:  # redaction is switched off
        return text, {}
    language = detect_language(text, settings.service.language)
    found = redactor.prepare(text, language=language, entities=settings.redaction.all_entities())
    pseudonyms = KeyedPseudonyms(pseudonym_key, dict(ticket.pseudonyms or {}), previous_keys)
    result = apply_analysis(
        found, pseudonyms=pseudonyms, entities=settings.redaction.entities_for(ticket.queue)
    )
    if pseudonyms.state != ticket.pseudonyms:
        ticket.pseudonyms = pseudonyms.state  # keyed hashes and numbers, never names
    return result.text, dict(result.counts)
