"""The SMTP listener: it takes mail for the accepted addresses and answers 250 only once the raw
bytes sit in a committed inbox row, so an accepted mail survives any crash after that reply.

aiosmtpd does the protocol. This module adds what a listener facing the network needs and
aiosmtpd leaves out: recipient checks at RCPT time (no open relay, no backscatter), a recipient
cap, RFC 3463 enhanced codes, a connection cap overall and per client address, a bound on errors
and on junk commands (NOOP, RSET, ...) without a delivered mail, a free-disk floor checked at
MAIL FROM (`diskspace`), a DATA reader without a line-length limit (`smtpdata`), and total time
limits per session and per DATA transfer (aiosmtpd's own `timeout` only limits the time between
two commands, so a client trickling a byte every few seconds could otherwise hold a connection
forever). Commits go through `InboxWriter` (group commit in its own thread), so an fsync never
stalls the event loop.

`SmtpIntake` runs the listener in its own thread with its own event loop, like aiosmtpd's
`Controller`: `postdesk serve` is otherwise plain threads (worker, APScheduler), and stays so.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from gateway import logs
from gateway.config import Settings, SmtpSettings
from gateway.errors import IntakeError
from gateway.intake.diskspace import FreeSpaceFloor
from gateway.intake.inboxwriter import InboxWriter
from gateway.intake.smtpdata import read_data
from storage.engine import Database
from storage.spool import NewInboxItem, message_hash

IDENT = "postdesk ESMTP"
MAX_LINE_BYTES = 64 * 1024
OK_SENDER = "250 2.1.0 OK"
OK_RCPT = "250 2.1.5 OK"
OK_QUEUED = "250 2.0.0 OK queued as {}"
TEMPFAIL = "451 4.3.0 Requested action aborted: local error"
UNKNOWN_RCPT = "550 5.1.1 Recipient address rejected: no such mailbox here"
TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"
TOO_MANY_CONNECTIONS = "421 4.7.0 Too many connections, try again later"
TOO_MANY_CLIENT_CONNECTIONS = "421 4.7.0 Too many connections from your address, try again later"
TOO_MANY_ERRORS = "421 4.7.0 Too many errors, closing connection"
TOO_MANY_COMMANDS = "421 4.7.0 Too many commands without a mail, closing connection"
LOW_DISK = "452 4.3.1 Insufficient system storage, try again later"
SESSION_EXPIRED = "421 4.4.2 Session time limit exceeded, closing connection"
DATA_EXPIRED = "421 4.4.2 DATA time limit exceeded, closing connection"
IDLE_EXPIRED = "421 4.4.2 Idle timeout, closing connection"
SHUTTING_DOWN = "421 4.3.2 Service shutting down, try again later"

# aiosmtpd's size reply at MAIL FROM lacks the enhanced status code; same meaning, RFC 3463.
_REWRITES = {
    "552 Error: message size exceeds fixed maximum message size": TOO_BIG,
}
_CUT_REASONS = {
    SESSION_EXPIRED: "session_timeout",
    DATA_EXPIRED: "data_timeout",
    IDLE_EXPIRED: "idle_timeout",
    SHUTTING_DOWN: "shutdown",
    TOO_MANY_ERRORS: "too_many_errors",
    TOO_MANY_COMMANDS: "too_many_commands",
}
_REFUSAL_REASONS = {
    TOO_MANY_CONNECTIONS: "too_many_connections",
    TOO_MANY_CLIENT_CONNECTIONS: "too_many_client_connections",
}
# Commands that move no mail forward: a client may send a few, not an endless keep-alive.
# (Unknown commands are bounded by aiosmtpd itself: 5, then 502 and close.)
JUNK_COMMANDS = ("NOOP", "RSET", "VRFY", "EXPN", "HELP", "HELO", "EHLO")


def recipient_accepted(address: str, accepted: Collection[str]) -> bool:
    """True for an accepted address, or a plus-address `local+anything@domain` of one; any case.

    `accepted` holds lower-case addresses (the config lower-cases them)."""
    address = address.lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return False
    if address in accepted:
        return True
    return any(f"{local[:i]}@{domain}" in accepted for i, ch in enumerate(local) if ch == "+")


def smtp_source_key(raw: bytes, received: datetime) -> str:
    """The inbox key of one SMTP delivery: message hash, receive time and a random nonce.

    SMTP has no re-fetch, so unlike an Exchange item id this key cannot make a second delivery
    of the same mail idempotent, and must not try: a client re-sending after a lost 250, or an
    MTA splitting one mail into two transactions (one per recipient) within the same clock
    tick, are two deliveries with identical bytes, and each must become its own row (the guard
    stage drops duplicates by Message-ID, seeing both envelopes). The nonce makes that certain.
    What the key still does is make a retried *commit* of this one delivery idempotent
    (InboxWriter retries a failed batch item by item)."""
    return f"{message_hash(raw)}:{received:%Y%m%dT%H%M%S.%fZ}:{secrets.token_hex(8)}"


def _written_paths(settings: Settings, db: Database) -> list[Path]:
    """Where accepting and processing a mail writes: the data dir, and a SQLite file's folder."""
    paths = [settings.data_dir]
    database = db.engine.url.database if db.is_sqlite else None
    if database and database != ":memory:":
        paths.append(Path(database).parent)
    return paths


def _reverse_path(mail_from: str | None) -> str:
    """The envelope sender; the null reverse-path `<>` (bounces) is stored as ''."""
    return "" if mail_from in (None, "<>") else mail_from


class InboxHandler:
    """aiosmtpd handler: disk floor at MAIL, recipient policy at RCPT, durable storage at DATA,
    451 on any error."""

    def __init__(
        self,
        accepted: Collection[str],
        max_recipients: int,
        writer: InboxWriter,
        store_timeout: float,
        disk: FreeSpaceFloor | None = None,
    ) -> None:
        self._accepted = frozenset(a.lower() for a in accepted)
        self._max_recipients = max_recipients
        self._inbox = writer
        self._store_timeout = store_timeout
        self._disk = disk

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._disk is not None and self._disk.low():
            logs.event("smtp.deferred", logging.WARNING, reason="low_disk_space")
            return LOW_DISK
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return OK_SENDER

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not recipient_accepted(address, self._accepted):
            logs.event("smtp.rejected", reason="unknown_recipient")
            return UNKNOWN_RCPT
        if len(envelope.rcpt_tos) >= self._max_recipients:
            logs.event("smtp.rejected", reason="too_many_recipients")
            return TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return OK_RCPT

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            raise IntakeError("DATA ended without content")
        item = NewInboxItem(
            source="smtp",
            source_key=smtp_source_key(raw, datetime.now(UTC)),
            raw=raw,
            envelope_from=_reverse_path(envelope.mail_from),
            envelope_to=tuple(envelope.rcpt_tos),
        )
        digest = message_hash(raw)
        try:
            stored = asyncio.wrap_future(self._inbox.submit(item))
            inbox_id = await asyncio.wait_for(stored, self._store_timeout)
        except (IntakeError, TimeoutError) as exc:
            logs.event(
                "smtp.deferred",
                logging.WARNING,
                hash=digest,
                size=len(raw),
                error=type(exc).__name__,
            )
            return TEMPFAIL
        logs.event(
            "smtp.accepted",
            inbox_id=inbox_id,
            hash=digest,
            size=len(raw),
            rcpts=len(envelope.rcpt_tos),
        )
        return OK_QUEUED.format(inbox_id)

    async def handle_exception(self, error: Exception) -> str:
        """Anything unexpected: a fixed 451, never the exception text (aiosmtpd's default)."""
        logs.event("smtp.error", logging.ERROR, error=type(error).__name__)
        return TEMPFAIL


class GuardedSMTP(SMTP):
    """aiosmtpd's SMTP protocol plus connection caps, error and junk-command bounds, session,
    DATA and idle time limits, and a DATA reader without a line-length limit.

    One instance per connection. `sessions` is the listener's set of admitted connections
    (touched only on the event loop thread). The hooks used (`_handle_client`, `_timeout_cb`,
    `_reset_timeout`, `_call_handler_hook`, `_smtp_methods`, `_set_post_data_state`) are
    aiosmtpd internals; the tests pin their effect.
    """

    # The stream buffer: the longest command line, and the piece size in which DATA takes a
    # longer line (`smtpdata`); DATA lines themselves have no limit but the message size.
    line_length_limit = MAX_LINE_BYTES

    def __init__(
        self,
        handler: InboxHandler,
        *,
        limits: SmtpSettings,
        sessions: set[GuardedSMTP],
        on_reply: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            handler,
            data_size_limit=limits.max_message_bytes,  # also advertised as SIZE in EHLO
            enable_SMTPUTF8=True,
            decode_data=False,  # keep the bytes: the inbox stores them exactly as received
            timeout=limits.idle_timeout_seconds,
            ident=IDENT,
            **kwargs,
        )
        self._limits = limits
        self._sessions = sessions
        self._on_reply = on_reply  # told every reply line sent (the metrics count codes)
        self.client = ""
        """The peer's address (host only): what the per-client connection cap counts."""
        self._refusal: str | None = TOO_MANY_CONNECTIONS
        self._deadline: asyncio.TimerHandle | None = None
        self._in_data = False
        self._storing = False
        self._pending_cut: str | None = None
        # Counted since the last accepted mail (as Postfix's smtpd_hard_error_limit): a long
        # session that delivers is never cut for the odd unknown recipient or RSET.
        self._errors = 0
        self._junk = 0
        for name in JUNK_COMMANDS:
            self._smtp_methods[name] = self._budgeted(self._smtp_methods[name])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # not a STARTTLS re-entry
        if first:
            peer = transport.get_extra_info("peername")
            self.client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            self._refusal = self._admission()
            if self._refusal is None:
                self._sessions.add(self)
                self._deadline = self.loop.call_later(
                    self._limits.session_timeout_seconds, self.cut, SESSION_EXPIRED
                )
        super().connection_made(transport)

    def _admission(self) -> str | None:
        """Why this new connection is refused, or None to admit it."""
        if len(self._sessions) >= self._limits.max_connections:
            return TOO_MANY_CONNECTIONS
        same_client = sum(1 for s in self._sessions if s.client == self.client)
        if same_client >= self._limits.max_connections_per_client:
            return TOO_MANY_CLIENT_CONNECTIONS
        return None

    def connection_lost(self, error: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._sessions.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self._refusal is not None:
            logs.event("smtp.rejected", reason=_REFUSAL_REASONS[self._refusal])
            await self.push(self._refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            status = _REWRITES.get(status, status)
        if self._on_reply is not None:
            self._on_reply(status if isinstance(status, str) else status.decode("ascii", "replace"))
        await super().push(status)
        # The client's faults: permanent errors, and recipients beyond the cap (a 2,000-RCPT
        # transaction is no mail). Our own 4xx (storage, disk) are not the client's fault.
        if status[:1] in ("5", b"5") or status == TOO_MANY_RCPTS:
            self._errors += 1
            if self._errors >= self._limits.max_errors:
                self.cut(TOO_MANY_ERRORS)

    def _budgeted(self, command: Callable[[str], Any]) -> Callable[[str], Any]:
        """`command` within the junk budget; over it, 421 and close instead of running it."""

        @functools.wraps(command)  # keeps aiosmtpd's syntax attributes for HELP
        async def run(arg: str) -> None:
            self._junk += 1
            if self._junk > self._limits.max_junk_commands:
                self.cut(TOO_MANY_COMMANDS)
                return
            await command(arg)

        return run

    def _timeout_cb(self) -> None:
        """aiosmtpd's timer: the idle limit between commands, or the DATA limit during DATA."""
        self.cut(DATA_EXPIRED if self._in_data else IDLE_EXPIRED)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA with `smtpdata.read_data` as the reader (no line-length limit)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        self._in_data = True
        self._reset_timeout(self._limits.data_timeout_seconds)
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            content = await read_data(self._reader, self._limits.max_message_bytes)
            if content is None:
                status = TOO_BIG
            else:
                self.envelope.content = self.envelope.original_content = content
                status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)
        finally:
            self._in_data = False
            if self._pending_cut is not None:
                self.cut(self._pending_cut)
            elif self.transport is not None:
                self._reset_timeout()

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command != "DATA":
            return await super()._call_handler_hook(command, *args)
        # The transfer is complete; storing is bounded by the handler's store timeout, and a
        # limit that runs out meanwhile waits for the answer (a cut here would leave a stored
        # mail unacknowledged, and the client would send it again).
        self._in_data = False
        self._storing = True
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            status = await super()._call_handler_hook(command, *args)
        finally:
            self._storing = False
        if isinstance(status, str) and status.startswith("250"):
            self._errors = self._junk = 0  # a delivered mail: the client is doing real work
        return status

    def cut(self, reply: str) -> None:
        """Answer `reply` and close the connection (deferred while a mail is being stored)."""
        if self.transport is None or self.transport.is_closing():
            return
        if self._storing:
            self._pending_cut = reply
            return
        self._pending_cut = None
        logs.event("smtp.closed", reason=_CUT_REASONS.get(reply, "limit"))
        if self._on_reply is not None:
            self._on_reply(reply)
        self._writer.write(f"{reply}\r\n".encode("ascii"))
        self.transport.close()


class SmtpIntake:
    """Runs the listener in its own thread and event loop; `port` is the bound port after start.

    `writer` is for tests that need a storage double; by default an InboxWriter on `db`."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        on_stored: Callable[[], None] | None = None,
        *,
        writer: InboxWriter | None = None,
        on_reply: Callable[[str], None] | None = None,
    ) -> None:
        self._limits = settings.smtp
        self._on_reply = on_reply
        self._inbox = writer if writer is not None else InboxWriter(db, on_stored)
        self._handler = InboxHandler(
            settings.smtp.accept,
            settings.smtp.max_recipients,
            self._inbox,
            store_timeout=settings.smtp.data_timeout_seconds,
            disk=FreeSpaceFloor(_written_paths(settings, db), settings.smtp.min_free_bytes),
        )
        self.host = settings.smtp.host
        self.port = settings.smtp.port
        self._hostname = ""
        self._sessions: set[GuardedSMTP] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: OSError | None = None

    def __enter__(self) -> SmtpIntake:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def writer(self) -> InboxWriter:
        """The group-commit writer (its `batches`/`stored` counters show the batching)."""
        return self._inbox

    def start(self) -> None:
        """Bind and serve; raises IntakeError if the address cannot be bound."""
        if self._thread is not None:
            return
        self._hostname = socket.getfqdn()  # once: aiosmtpd would look it up per connection
        self._inbox.start()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="smtp-intake", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            self._inbox.stop()
            error = self._startup_error
            raise IntakeError(
                f"cannot listen on {self.host}:{self.port}: {error.strerror or error}"
            ) from error
        logs.event("smtp.listening", host=self.host, port=self.port)

    def stop(self, grace: float = 5.0) -> None:
        """Stop listening, let sessions finish a mail being stored, close them, stop the writer."""
        if self._thread is None or self._loop is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._shutdown(grace), self._loop)
        try:
            done.result(grace + 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
            self._inbox.stop()
        logs.event("smtp.stopped")

    def _factory(self) -> GuardedSMTP:
        return GuardedSMTP(
            self._handler,
            limits=self._limits,
            sessions=self._sessions,
            on_reply=self._on_reply,
            hostname=self._hostname,
            loop=self._loop,
        )

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            self._server = loop.run_until_complete(
                loop.create_server(self._factory, self.host, self.port)
            )
        except OSError as exc:
            self._startup_error = exc
            ready.set()
            loop.close()
            return
        self.port = int(self._server.sockets[0].getsockname()[1])
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self, grace: float) -> None:
        assert self._server is not None
        self._server.close()
        for protocol in list(self._sessions):
            protocol.cut(SHUTTING_DOWN)
        deadline = time.monotonic() + grace
        while self._sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for protocol in list(self._sessions):
            if protocol.transport is not None:
                protocol.transport.abort()  # type: ignore[attr-defined]
        await self._server.wait_closed()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
