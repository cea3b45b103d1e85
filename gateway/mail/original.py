"""The unredacted copy of one mail as an agent may be shown it (redaction.agent_view: original,
or `#original`): its sender, subject, date, text and attachments, the attachments capped in
size so a disclosure never turns into a mail no server takes. Plain data: the pipeline builds
it, gateway.outgoing.letters mails it and nothing stores it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.mail.model import MailAttachment, ParsedMail

__all__ = ["Original", "of_mail"]


@dataclass(frozen=True, slots=True)
class Original:
    """One mail as it arrived. `attachments` go with the mail that shows it; `omitted` are
    (file name, size) of those over the size cap, named but not attached."""

    article: int  # its number on the ticket, as `tickets show` counts (from 1)
    sender: str  # "Name <address>" as the mail gave it
    subject: str
    date: datetime | None
    text: str
    attachments: tuple[MailAttachment, ...] = ()
    omitted: tuple[tuple[str, int], ...] = ()

    def view(self) -> dict[str, Any]:
        """What templates see of it (plain values, no bytes)."""
        return {
            "article": self.article,
            "sender": self.sender,
            "subject": self.subject,
            "date": self.date,
            "text": self.text,
            "attachments": [
                {"filename": a.filename, "size": len(a.data)} for a in self.attachments
            ],
            "omitted": [{"filename": name, "size": size} for name, size in self.omitted],
        }


def of_mail(
    mail: ParsedMail,
    *,
    article: int,
    max_bytes: int,
    text: str | None = None,
    subject: str | None = None,
    attachments: Iterable[MailAttachment] | None = None,
) -> Original:
    """The original of `mail` (`text`, `subject`, `attachments` instead of the mail's own when
    the mail was changed already: the pipeline redacts in place). Attachments are taken in
    order while their sizes add up to at most `max_bytes`; the rest are only named."""
    sender = mail.from_
    shown = f"{sender.name} <{sender.email}>" if sender.name else sender.email
    taken: list[MailAttachment] = []
    omitted: list[tuple[str, int]] = []
    room = max_bytes
    for attachment in mail.attachments if attachments is None else attachments:
        size = len(attachment.data)
        if size <= room:
            taken.append(attachment)
            room -= size
        else:
            omitted.append((attachment.filename, size))
    return Original(
        article=article,
        sender=shown,
        subject=mail.subject if subject is None else subject,
        date=mail.date,
        text=mail.text if text is None else text,
        attachments=tuple(taken),
        omitted=tuple(omitted),
    )
