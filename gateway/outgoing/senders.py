"""The transports outgoing mail leaves by, behind one small `Sender` protocol so the outbox does
not care whether it talks to an SMTP relay or writes a local maildir, and tests can inject a
recorder. Every failure is classified as temporary (retry later) or permanent (give up), and the
error text never carries the relay's reply text, which usually repeats the recipient address.
"""

from __future__ import annotations

import contextlib
import hashlib
import mailbox
import os
import re
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway import logs
from gateway.config import Settings
from gateway.errors import (
    DeliveryError,
    PermanentDeliveryError,
    SmtpPermanentError,
    SmtpTemporaryError,
    TemporaryDeliveryError,
)
from storage import private

_ENHANCED_STATUS = re.compile(rb"^\s*([245]\.\d{1,3}\.\d{1,3})\b")


class Sender(Protocol):
    """Delivers one mail or raises Temporary-/PermanentDeliveryError."""

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        ...


@runtime_checkable
class Flushable(Protocol):
    """A sender whose sends are durable only after `flush()` (the maildir syncs its folder once
    per batch). The outbox flushes before it records any success, and retries them if the
    flush fails."""

    def flush(self) -> None:
        ...


@runtime_checkable
class Closable(Protocol):
    """A sender that holds a connection between mails (the SMTP relay's): the outbox closes it
    when it goes idle, so a quiet service holds no connection the relay would time out."""

    def close(self) -> None:
        ...


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
    """Delivers through an SMTP relay (smtplib), optionally with STARTTLS and AUTH, reusing one
    connection for the mails of a busy spell: a new connection per mail (TCP, EHLO, STARTTLS,
    AUTH) cost more than the mail itself on a loaded relay. One thread at a time (the outbox)."""

    host: str
    port: int
    timeout: float = 30.0
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    local_hostname: str | None = None
    _smtp: smtplib.SMTP | None = field(default=None, init=False, repr=False)

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        try:
            refused = self._transact(envelope_from, envelope_to, raw)
        except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            raise _worst(exc.recipients) from None
        except smtplib.SMTPAuthenticationError as exc:
            # A wrong password is the relay's configuration, not this mail's fault: keep the
            # mail and retry after someone fixes it, rather than failing every mail at once.
            self.close()
            raise SmtpTemporaryError(f"login refused: SMTP {exc.smtp_code}", exc.smtp_code) \
                from None
        except smtplib.SMTPResponseException as exc:  # sender refused, DATA refused, 421 …
            raise classify_reply(exc.smtp_code, exc.smtp_error, "relay refused the mail") \
                from None
        except smtplib.SMTPNotSupportedError:
            self.close()
            raise SmtpTemporaryError("relay does not offer STARTTLS or AUTH") from None
        except UnicodeError:  # a non-ASCII envelope address: only SMTPUTF8 could carry it
            raise SmtpPermanentError("address needs SMTPUTF8") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, TLS, disconnect
            self.close()
            raise SmtpTemporaryError(f"relay unreachable ({type(exc).__name__})") from None
        if refused:
            logs.event("outbox.partly-refused", refused=len(refused), accepted=len(envelope_to)
                       - len(refused), msg=_digest(message_id))

    def _transact(self, envelope_from: str, envelope_to: list[str],
                  raw: bytes) -> dict[str, tuple[int, bytes]]:
        """One mail over the open connection; if the relay closed it meanwhile (an idle
        timeout, a limit of mails per connection: 421), once more over a new one."""
        if self._smtp is not None:
            try:
                return self._smtp.sendmail(envelope_from, envelope_to, raw)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                reason = type(exc).__name__
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code != 421:
                    self._reset()
                    raise
                reason = "421"
            self.close()
            logs.event("outbox.reconnect", reason=reason)
        self._smtp = self._connect()
        try:
            return self._smtp.sendmail(envelope_from, envelope_to, raw)
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:  # the relay closes this connection
                self.close()
            else:
                self._reset()
            raise

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout,
                            local_hostname=self.local_hostname)
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            _quietly_close(smtp)
            raise
        return smtp

    def _reset(self) -> None:
        """After a refused mail the connection stays usable once RSET went through (smtplib
        sends it on a refusal); if it did not, the next mail opens a new one."""
        if self._smtp is not None and self._smtp.sock is None:
            self._smtp = None

    def close(self) -> None:
        """QUIT and drop the connection, if there is one (never raises)."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            _quietly_close(smtp)


def _quietly_close(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    smtp.close()


def _worst(recipients: dict[str, tuple[int, bytes]]) -> DeliveryError:
    """All recipients refused: permanent if any refusal was permanent, else temporary."""
    errors = [classify_reply(code, reply, "recipient refused") for code, reply in
              recipients.values()]
    permanent = [e for e in errors if isinstance(e, PermanentDeliveryError)]
    return permanent[0] if permanent else errors[0]


_SETTLED_NS = 2_000_000_000
"""How old a folder's mtime must be before its listing may be cached: a change within the same
timestamp tick (a clock tick; 1 s on ext3, 2 s on FAT) leaves the mtime where it was."""


@dataclass
class MaildirSender:
    """Writes each mail into a maildir (`data_dir/outgoing`) for local runs and inspection.

    Idempotent per Message-ID: the file name is derived from it and created with an atomic
    link, so a re-send after a crash finds the first copy instead of writing a second one, also
    after a reader moved it to `cur/<key>:2,S`. Each file is fsynced before it is linked; the
    folder entries become durable at `flush()`, which the outbox calls once per batch before it
    records the batch's successes."""

    root: Path
    _cur_listing: tuple[int, frozenset[str]] | None = field(default=None, init=False, repr=False)
    _unsynced: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        private.make_dirs(self.root.parent)
        mailbox.Maildir(self.root, create=True)  # creates it, tmp/, new/ and cur/ with 0700
        self._tmp, self._new, self._cur = (str(self.root / sub) for sub in ("tmp", "new", "cur"))

    def key(self, message_id: str) -> str:
        return _digest(message_id)

    def send(self, envelope_from: str, envelope_to: list[str], raw: bytes, message_id: str) -> None:
        key = self.key(message_id)
        try:
            if key in self._cur_keys():
                self._mark_unsynced(self._cur)  # its move may not be on disk yet either
                return
            self._deliver(key, raw)
        except OSError as exc:
            raise TemporaryDeliveryError(f"maildir write failed ({type(exc).__name__})") from None

    def flush(self) -> None:
        """Make the folder entries of every mail sent since the last flush durable (one fsync
        per folder, not one per mail); a send counts as done only after this returned."""
        with self._lock:  # a send that marks a folder during the fsync keeps it marked
            try:
                for folder in sorted(self._unsynced):
                    _fsync_dir(folder)
            except OSError as exc:
                raise TemporaryDeliveryError(
                    f"maildir sync failed ({type(exc).__name__})") from None
            self._unsynced.clear()

    def _mark_unsynced(self, folder: str) -> None:
        with self._lock:
            self._unsynced.add(folder)

    def _cur_keys(self) -> frozenset[str]:
        """Keys of the mails a reader moved to cur/ (`<key>:2,S`). The listing is kept while
        cur/'s mtime stays the same, so a send costs one stat instead of a directory listing;
        a listing taken while the mtime was still too recent to trust is not kept."""
        mtime = os.stat(self._cur).st_mtime_ns
        cached = self._cur_listing
        if cached is not None and cached[0] == mtime:
            return cached[1]
        keys = frozenset(name.partition(":")[0] for name in os.listdir(self._cur))
        settled = time.time_ns() - mtime >= _SETTLED_NS
        self._cur_listing = (mtime, keys) if settled else None
        return keys

    def _deliver(self, key: str, raw: bytes) -> None:
        """Maildir delivery: write and fsync in tmp/, then link into new/ (atomic, never
        overwrites: if new/<key> exists, that first copy stays)."""
        tmp = os.path.join(self._tmp, f"{key}.{os.getpid()}.{time.time_ns()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                _write_all(fd, raw)
                os.fsync(fd)
            finally:
                os.close(fd)
            with contextlib.suppress(FileExistsError):  # a re-send, or another instance's copy
                os.link(tmp, os.path.join(self._new, key))
            self._mark_unsynced(self._new)  # an existing entry may not be durable yet either
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a signal, a full disk quota): loop until done."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: str) -> None:
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
        from gateway.mailboxes.common import exchange_settings
        from gateway.mailboxes.ews import ExchangeSender

        return ExchangeSender.from_settings(exchange_settings(settings))
    if out.transport == "graph":
        from gateway.mailboxes.common import graph_settings
        from gateway.mailboxes.graph import GraphSender

        return GraphSender.from_settings(graph_settings(settings))
    return MaildirSender(settings.data_dir / "outgoing")


def _digest(message_id: str) -> str:
    """A stable, log-safe id of a Message-ID (also the maildir file name)."""
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:32]
