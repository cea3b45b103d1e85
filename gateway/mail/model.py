"""The mail model: what the parse stage makes of a mail's bytes, and what routing, redaction and
outgoing mail read. Plain data, no behaviour beyond a header lookup, so every layer may use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Address", "MailAttachment", "ParsedMail"]


@dataclass(frozen=True, slots=True)
class Address:
    name: str  # display name, decoded ("" if none)
    email: str  # lower-cased addr-spec ("" if unparseable)


@dataclass(frozen=True, slots=True)
class MailAttachment:
    filename: str  # safe: no path parts, no control characters, never empty
    content_type: str
    data: bytes
    # Text read from the file in PREPARE (gateway.mail.attachtext), redacted by the redact
    # stage like the body: "extracted" | "unreadable" | "none" (no text format, or no text).
    text: str | None = None
    text_state: str = "none"


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
