"""The facts about one mail that routing rules may look at: a plain value built from the parsed
mail (by PREPARE and by `rules test`), read by the conditions and the evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.mail.model import ParsedMail


@dataclass(frozen=True, slots=True)
class MailFacts:
    """What rules may look at; built by the route stage (and by `rules test`)."""

    from_addr: str
    from_name: str  # carried for completeness; no condition matches on it
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    body: str
    headers: Mapping[str, Sequence[str]]  # lower-case names → values
    attachments: tuple[tuple[str, str], ...]  # (filename, content_type)
    language: str  # "de" | "en"
    sender_is_agent: bool
    received_at: datetime  # aware; a naive value is taken as UTC

    @classmethod
    def from_parsed(cls, mail: ParsedMail, *, language: str, sender_is_agent: bool,
                    received_at: datetime, body: str | None = None) -> MailFacts:
        """Facts from a parsed mail; `body` overrides `mail.text` (e.g. quotes stripped)."""
        return cls(
            from_addr=mail.from_.email,
            from_name=mail.from_.name,
            to=tuple(a.email for a in mail.to if a.email),
            cc=tuple(a.email for a in mail.cc if a.email),
            subject=mail.subject,
            body=mail.text if body is None else body,
            headers=mail.headers,
            attachments=tuple((a.filename, a.content_type) for a in mail.attachments),
            language=language,
            sender_is_agent=sender_is_agent,
            received_at=received_at,
        )
