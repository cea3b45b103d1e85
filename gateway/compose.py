"""Build outgoing mail as bytes that every relay accepts: all headers pure ASCII (RFC 2047
encoded words for umlauts, no SMTPUTF8 needed; relays of public administrations reject raw UTF-8
headers), bodies quoted-printable (7-bit clean), lines folded, threading headers set so the mail
lands in the requester's conversation, and a Message-ID fixed here so a re-send is the same mail.

Message-ID, In-Reply-To, References and Thread-Index are written verbatim (pre-folded by us):
the stdlib folder would otherwise turn a long Message-ID list into encoded words, which breaks
threading in every client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING

from gateway import threadindex
from gateway.errors import PermanentDeliveryError

if TYPE_CHECKING:  # a runtime import would cycle: gateway.pipeline imports notify → compose
    from gateway.pipeline.context import Address, MailAttachment

MAX_REFERENCES = 10  # keep the first id and the newest ones (RFC 5322 3.6.4 allows trimming)
MAX_MESSAGE_ID_LENGTH = 250
MAX_LINE = 78

# Header lines at most 78 characters; our verbatim headers are not refolded behind our back.
POLICY = policy.SMTP.clone(utf8=False, max_line_length=MAX_LINE, refold_source="none")

_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")


@dataclass(frozen=True, slots=True)
class ComposedMail:
    message_id: str  # "<id@domain>"
    raw: bytes  # CRLF line ends, 7-bit, ready for SMTP DATA


def new_message_id(domain: str) -> str:
    """A fresh `<uuid@domain>`; the guard recognises our own mail by the domain."""
    return f"<{uuid.uuid4().hex}@{_ascii_domain(domain)}>"


def compose(
    *,
    sender_address: str,
    sender_name: str,
    domain: str,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    text: str,
    html: str | None,
    in_reply_to: str | None,
    references: Sequence[str],
    thread_index: bytes | None,
    automatic: bool,
    attachments: Sequence[MailAttachment] = (),
    now: datetime,
    thread_topic: str | None = None,
) -> ComposedMail:
    """One outgoing mail as bytes plus its Message-ID.

    Raises PermanentDeliveryError when a recipient address cannot be written without SMTPUTF8
    (a non-ASCII local part), and ValueError for a CR/LF in the subject."""
    if any(ch in subject for ch in "\r\n"):
        raise ValueError("subject contains a line break")
    if not to:
        raise ValueError("a mail needs at least one recipient")
    message_id = new_message_id(domain)
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _header_address(sender_name, sender_address)
    msg["To"] = [_header_address(a.name, a.email) for a in to]
    if cc:
        msg["Cc"] = [_header_address(a.name, a.email) for a in cc]
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    msg.set_raw("Message-ID", message_id)
    _set_threading(msg, in_reply_to, references, thread_index, thread_topic or subject)
    if automatic:
        msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: never answer this automatically
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange/Outlook: no out-of-office replies
    _set_body(msg, text, html, attachments)
    return ComposedMail(message_id=message_id, raw=msg.as_bytes(policy=POLICY))


def _set_threading(
    msg: EmailMessage,
    in_reply_to: str | None,
    references: Sequence[str],
    thread_index: bytes | None,
    topic: str,
) -> None:
    parent = _valid_ids([in_reply_to] if in_reply_to else [])
    if parent:
        msg.set_raw("In-Reply-To", parent[0])
    refs = cap_references(_valid_ids(references))
    if refs:
        msg.set_raw("References", _fold_ids(refs))
    if thread_index is not None:
        msg.set_raw("Thread-Index", threadindex.encode(thread_index))
    msg["Thread-Topic"] = " ".join(topic.split())  # a requester's topic may hold line breaks


def _set_body(
    msg: EmailMessage, text: str, html: str | None, attachments: Sequence[MailAttachment]
) -> None:
    msg.set_content(_crlf_free(text), subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(_crlf_free(html), subtype="html", charset="utf-8",
                            cte="quoted-printable")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        if not maintype or not subtype or maintype in ("multipart", "message"):
            # containers cannot be sent base64-encoded (RFC 2046); ship them as opaque bytes
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                           filename=attachment.filename)


def cap_references(ids: Sequence[str]) -> list[str]:
    """At most MAX_REFERENCES ids: the thread's first plus the newest ones, duplicates dropped."""
    unique = list(dict.fromkeys(ids))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1):]]


def _valid_ids(ids: Sequence[str]) -> list[str]:
    """Only well-formed, ASCII `<left@right>` ids of sane length; anything else is dropped."""
    return [
        i.strip() for i in ids
        if i and len(i.strip()) <= MAX_MESSAGE_ID_LENGTH and _MESSAGE_ID.fullmatch(i.strip())
    ]


def _fold_ids(ids: Sequence[str]) -> str:
    """Space-separated ids, folded so no line passes 78 characters where an id allows it."""
    lines: list[str] = []
    current = ""
    budget = MAX_LINE - len("References: ")
    for message_id in ids:
        if current and len(current) + 1 + len(message_id) > budget:
            lines.append(current)
            current, budget = message_id, MAX_LINE - 1
        else:
            current = f"{current} {message_id}" if current else message_id
    lines.append(current)
    return "\n ".join(lines)


def ascii_address(email: str) -> str:
    """`email` as it can travel without SMTPUTF8: the domain in IDNA form. Raises
    PermanentDeliveryError for a non-ASCII local part or a malformed address (no address in the
    message)."""
    local, _, domain = email.rpartition("@")
    if not local or not domain or any(ch.isspace() or ch in "<>" for ch in email):
        raise PermanentDeliveryError("recipient address is not a valid addr-spec")
    if not local.isascii():
        raise PermanentDeliveryError("address needs SMTPUTF8 (non-ASCII local part)")
    return f"{local}@{_ascii_domain(domain)}"


def _header_address(display_name: str, email: str) -> HeaderAddress:
    local, _, domain = ascii_address(email).rpartition("@")
    name = " ".join(display_name.split())  # no line breaks or control whitespace in a header
    return HeaderAddress(display_name=name, username=local, domain=domain)


def _ascii_domain(domain: str) -> str:
    """An internationalised domain in its ASCII (IDNA) form; raises for an invalid one."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise PermanentDeliveryError("domain cannot be written in ASCII") from exc


def _crlf_free(text: str) -> str:
    """Normalise line ends to LF; the serialiser writes CRLF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
