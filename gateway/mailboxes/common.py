"""What the EWS and the Graph client have in common, so that the intake poller and the senders
treat both alike: the item reference, the stable inbox key of a mailbox item, and how their
errors (gateway.errors: MailboxError and subclasses, one-line diagnoses for an admin, never
server text, which may quote addresses or subjects) become delivery errors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses
from typing import Protocol

from gateway.config import ExchangeSettings, GraphSettings, Settings
from gateway.errors import (
    ConfigError,
    DeliveryError,
    MailboxError,
    MailboxRequestError,
    PermanentDeliveryError,
    TemporaryDeliveryError,
)


def exchange_settings(settings: Settings) -> ExchangeSettings:
    """The `exchange:` section, which both the EWS intake and the EWS sender need."""
    if settings.exchange is None:
        raise ConfigError("exchange: not configured (add an `exchange:` section)")
    return settings.exchange


def graph_settings(settings: Settings) -> GraphSettings:
    """The `graph:` section, which both the Graph intake and the Graph sender need."""
    if settings.graph is None:
        raise ConfigError("graph: not configured (add a `graph:` section)")
    return settings.graph


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One item in the watched folder. Its id changes when the item is moved (EWS and Graph)."""

    id: str
    changekey: str | None = None


class MailboxClient(Protocol):
    """The calls the intake poller needs; `ews.EwsClient` and `graph.GraphClient` provide them."""

    source: str  # the inbox row's source: "exchange" or "graph"
    mailbox: str

    def find_new(self, limit: int) -> list[ItemRef]:
        """Up to `limit` items still to take in, oldest first."""
        ...

    def fetch_mime(self, ref: ItemRef) -> bytes:
        """The item's raw MIME bytes."""
        ...

    def finish(self, ref: ItemRef) -> None:
        """Move the item to the processed folder, or mark it read."""
        ...


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of `postdesk exchange|graph check`: ok or not, and one line to print."""

    ok: bool
    message: str


_ANGLE_ID = re.compile(rb"<[^<>\s]+>")


def message_id(raw: bytes) -> str | None:
    """The Message-ID header (the first `<…>` token, or the whole value), or None."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    value = headers.get("Message-ID")
    if value is None:
        return None
    text = re.sub(r"\s+", "", str(value))
    match = _ANGLE_ID.search(text.encode("utf-8", "surrogateescape"))
    if match:
        return match.group(0).decode("utf-8", "surrogateescape")
    return text or None


def source_key(mailbox: str, raw: bytes) -> str:
    """The inbox key of a mailbox item: it must survive the item being moved or re-fetched.

    Exchange and Graph item ids change when an item is moved, so they cannot be the key: a
    crash after the inbox commit but before the move would otherwise store the item again.
    The Internet Message-ID (with the mailbox, so two watched mailboxes stay apart) does
    survive; Exchange stamps one on every message it transports. Only a message without one
    falls back to a hash of its MIME bytes, which is stable as long as Exchange returns the
    same bytes (for mail received over SMTP it does; for items created in Outlook it may not).
    Two mails that share a Message-ID are one article anyway (the guard stage drops the second),
    so keying on it loses nothing the pipeline would have kept."""
    mid = message_id(raw)
    if mid:
        digest = hashlib.sha256(f"{mailbox.lower()}\n{mid}".encode("utf-8", "surrogateescape"))
        return f"mid:{digest.hexdigest()}"
    digest = hashlib.sha256(mailbox.lower().encode() + b"\n" + raw)
    return f"sha:{digest.hexdigest()}"


def delivery_error(exc: MailboxError, what: str) -> DeliveryError:
    """Classify a failed send like the SMTP sender does: a refused request is permanent; an
    unreachable or overloaded server is temporary, and so is a refused login or a missing
    permission, which is the mailbox's configuration rather than this mail's fault (the mail
    waits for the fix instead of failing with every other mail at once)."""
    if isinstance(exc, MailboxRequestError):
        return PermanentDeliveryError(f"{what}: {exc}")
    return TemporaryDeliveryError(f"{what}: {exc}")


class MimeSender(Protocol):
    def send_mime(self, raw: bytes) -> None: ...


@dataclass
class MailboxSender:
    """Sends outgoing mail through the mailbox (EWS or Graph) as MIME as it is, so Message-ID,
    In-Reply-To and References survive; the server sends to the header recipients, so envelope
    recipients missing there are added as Bcc. Failures are classified like the SMTP sender's."""

    client: MimeSender
    label: str  # "Exchange" or "Graph", for error messages

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        try:
            self.client.send_mime(with_envelope_bcc(raw, envelope_to))
        except MailboxError as exc:
            raise delivery_error(exc, f"{self.label} did not send the mail") from None
        except Exception as exc:
            raise TemporaryDeliveryError(
                f"{self.label} send failed ({type(exc).__name__})"
            ) from None


def with_envelope_bcc(raw: bytes, envelope_to: list[str]) -> bytes:
    """The MIME to hand to Exchange or Graph, which send to the header recipients only: any
    envelope recipient missing from To/Cc/Bcc is added in a Bcc header (which they strip)."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in headers.get_all(name) or []]
    present = {address.lower() for _, address in getaddresses(fields)}
    missing = [a for a in envelope_to if a.lower() not in present]
    if not missing:
        return raw
    newline = b"\r\n" if raw.split(b"\n", 1)[0].endswith(b"\r") else b"\n"
    return b"Bcc: " + ", ".join(missing).encode("utf-8") + newline + raw
