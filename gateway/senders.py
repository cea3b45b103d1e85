"""The transports outgoing mail leaves by, behind one small `Sender` protocol so the outbox does
not care whether it talks to an SMTP relay or writes a local maildir, and tests can inject a
recorder. Every failure is classified as temporary (retry later) or permanent (give up), and the
error text never carries the relay's reply text, which usually repeats the recipient address.
"""

from __future__ import annotations

import hashlib
import mailbox
import os
import re
import smtplib
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from gateway import logs
from gateway.config import Settings
from gateway.errors import DeliveryError, PermanentDeliveryError, TemporaryDeliveryError

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class Sender(Protocol):
    """Delivers one mail or raises Temporary-/PermanentDeliveryError."""

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        ...


class SmtpTemporaryError(TemporaryDeliveryError):
    """A 4xx reply or a network failure; `smtp_code` is None for network failures."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class SmtpPermanentError(PermanentDeliveryError):
    """A 5xx reply: the relay will not take this mail."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


def classify_reply(code: int, reply: bytes | str | None, what: str) -> DeliveryError:
    """The error for an SMTP reply: 5xx permanent, anything else (4xx, odd codes) temporary.
    The message keeps the code and the enhanced status code (e.g. 5.1.1), never the free text."""
    raw = reply.encode("utf-8", "replace") if isinstance(reply, str) else (reply or b"")
    match = _ENHANCED_STATUS.match(raw)
    status = f" {match.group(1).decode()}" if match else ""
    message = f"{what}: SMTP {code}{status}"
    if 500 <= code < 600:
        return SmtpPermanentError(message, code)
    return SmtpTemporaryError(message, code)


@dataclass
class SmtpSender:
    """Delivers through an SMTP relay (smtplib), optionally with STARTTLS and AUTH."""

    host: str
    port: int
    timeout: float = 30.0
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    local_hostname: str | None = None

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        try:
            refused = self._transact(envelope_from, envelope_to, raw)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            raise _worst(exc.recipients) from None
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is the relay's configuration, not this mail's fault: keep the
            # mail and retry after someone fixes it, rather than failing every mail at once.
            raise SmtpTemporaryError(f"login refused: SMTP {exc.smtp_code}", exc.smtp_code) \
                from None
        except smtplib.SMTPResponseException as exc:  # sender refused, DATA refused, 421 …
            raise classify_reply(exc.smtp_code, exc.smtp_error, "relay refused the mail") \
                from None
        except smtplib.SMTPNotSupportedError:
            raise SmtpTemporaryError("relay does not offer STARTTLS or AUTH") from None
        except UnicodeError:  # a non-ASCII envelope address: only SMTPUTF8 could carry it
            raise SmtpPermanentError("address needs SMTPUTF8") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, TLS, disconnect
            raise SmtpTemporaryError(f"relay unreachable ({type(exc).__name__})") from None
        if refused:
            logs.event("outbox.partly-refused", refused=len(refused), accepted=len(envelope_to)
                       - len(refused), msg=_digest(message_id))

    def _transact(self, envelope_from: str, envelope_to: list[str],
                  raw: bytes) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout,
                          local_hostname=self.local_hostname) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            return smtp.sendmail(envelope_from, envelope_to, raw)


def _worst(recipients: dict[str, tuple[int, bytes]]) -> DeliveryError:
    """All recipients refused: permanent if any refusal was permanent, else temporary."""
    errors = [classify_reply(code, reply, "recipient refused") for code, reply in
              recipients.values()]
    permanent = [e for e in errors if isinstance(e, PermanentDeliveryError)]
    return permanent[0] if permanent else errors[0]


@dataclass
class MaildirSender:
    """Writes each mail into a maildir (`data_dir/outgoing`) for local runs and inspection.

    Idempotent per Message-ID: the file name is derived from it and created with an atomic
    link, so a re-send after a crash finds the first copy instead of writing a second one."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        self.maildir = mailbox.Maildir(self.root, create=True)

    def key(self, message_id: str) -> str:
        return _digest(message_id)

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        key = self.key(message_id)
        try:
            if self._has(key):
                return
            self._deliver(key, raw)
        except OSError as exc:
            raise TemporaryDeliveryError(f"maildir write failed ({type(exc).__name__})") from None

    def _has(self, key: str) -> bool:
        for sub in ("new", "cur"):
            folder = self.root / sub
            if (folder / key).exists() or any(folder.glob(f"{key}:*")):
                return True
        return False

    def _deliver(self, key: str, raw: bytes) -> None:
        """Maildir delivery: write and fsync in tmp/, then link into new/ (atomic, no overwrite)."""
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp", prefix=f"{key}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, self.root / "new" / key)
            except FileExistsError:
                return  # another worker delivered the same Message-ID first
            _fsync_dir(self.root / "new")
        finally:
            Path(tmp).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class SentMail:
    envelope_from: str
    envelope_to: list[str]
    raw: bytes
    message_id: str


@dataclass
class RecordingSender:
    """Keeps every mail in `sent`, for unit tests. Errors queued in `failures` are raised by
    the next sends, one each, before anything is recorded."""

    sent: list[SentMail] = field(default_factory=list)
    failures: list[DeliveryError] = field(default_factory=list)

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(SentMail(envelope_from, list(envelope_to), raw, message_id))


def make_sender(settings: Settings) -> Sender:
    """The transport named by `outgoing.transport`."""
    out = settings.outgoing
    if out.transport == "smtp":
        return SmtpSender(
            host=out.host,
            port=out.port,
            timeout=out.timeout_seconds,
            starttls=out.starttls,
            username=out.username,
            password=out.password() if out.username else None,
            local_hostname=settings.service.domain,
        )
    if out.transport == "exchange":
        from gateway.ews import ExchangeSender
        from gateway.intake.exchange import exchange_settings

        return ExchangeSender.from_settings(exchange_settings(settings))
    if out.transport == "graph":
        from gateway.graph import GraphSender
        from gateway.intake.graph import graph_settings

        return GraphSender.from_settings(graph_settings(settings))
    return MaildirSender(settings.data_dir / "outgoing")


def _digest(message_id: str) -> str:
    """A stable, log-safe id of a Message-ID (also the maildir file name)."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]
