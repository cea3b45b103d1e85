"""SMTP intake over real loopback sockets into a real database: 250 only after the commit,
451 on storage failure, recipient policy, size/recipient/connection caps, per-client limits,
the disk floor, long and bare-LF lines, time limits."""

from __future__ import annotations

import logging
import re
import select
import smtplib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sql_select
from sqlalchemy import text

from gateway import logs
from gateway.config import Settings, SmtpSettings
from gateway.errors import IntakeError
from gateway.intake.diskspace import FreeSpaceFloor, free_bytes
from gateway.intake.inboxwriter import InboxWriter
from gateway.intake.smtp import (
    DATA_EXPIRED,
    IDLE_EXPIRED,
    LOW_DISK,
    SESSION_EXPIRED,
    SHUTTING_DOWN,
    TEMPFAIL,
    TOO_BIG,
    TOO_MANY_CLIENT_CONNECTIONS,
    TOO_MANY_COMMANDS,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_ERRORS,
    SmtpIntake,
    recipient_accepted,
)
from storage.engine import Database, open_database
from storage.models import InboxItem
from storage.spool import NewInboxItem
from tests.helpers import CORPUS, needs_corpus, wait_for

SERVICE = "servicedesk@example.org"
SECRET = "SECRET-internal-detail /srv/db jane.doe@example.net"
QUEUED = re.compile(r"^2\.0\.0 OK queued as (\d+)$")


def _mail(n: int, tag: str = "m") -> bytes:
    return (
        "From: Erika Mustermann <erika@example.net>\r\n"
        f"To: {SERVICE}\r\n"
        f"Subject: Drucker defekt {n}\r\n"
        f"Message-ID: <{tag}-{n}@example.net>\r\n"
        "\r\n"
        f"Guten Tag,\r\nder Drucker Nr. {n} druckt nicht.\r\n.Punkt am Zeilenanfang\r\n"
    ).encode()


def _crlf(raw: bytes) -> bytes:
    """What SMTP carries: CRLF line ends, ending in CRLF."""
    fixed = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    return fixed if fixed.endswith(b"\r\n") else fixed + b"\r\n"


def _rows(url: str) -> list[InboxItem]:
    """Inbox rows read through a separate engine (its own connections)."""
    fresh = open_database(url)
    try:
        with fresh.session() as session:
            return list(session.scalars(sql_select(InboxItem).order_by(InboxItem.id)))
    finally:
        fresh.dispose()


def _deliver(
    client: smtplib.SMTP,
    raw: bytes,
    rcpts: tuple[str, ...] = (SERVICE,),
    sender: str = "erika@example.net",
) -> tuple[int, str]:
    client.mail(sender)
    for rcpt in rcpts:
        client.rcpt(rcpt)
    code, reply = client.data(raw)
    return code, reply.decode()


def _inbox_id(reply: str) -> int:
    match = QUEUED.match(reply)
    assert match, reply
    return int(match.group(1))


class RawClient:
    """A line-level SMTP client for what smtplib hides: greetings, 421s, trickling."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        """`source`: the client's own address; Linux routes all of 127.0.0.0/8 to loopback,
        so 127.0.0.2, 127.0.0.3, ... act as separate client hosts."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=5, source_address=(source, 0)
        )
        self.file = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed without a reply")
            lines.append(line.decode().rstrip("\r\n"))
            if line[3:4] != b"-":
                return "\n".join(lines)

    def command(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def greeted(self) -> RawClient:
        """Read the 220 greeting and say EHLO; raises if the server refused the connection."""
        greeting = self.reply()
        assert greeting.startswith("220 "), greeting
        assert self.command("EHLO client.example.net").startswith("250")
        return self

    def trickle(self, data: bytes, every: float, limit: float) -> tuple[str, float]:
        """Send `data` one byte per `every` seconds until the server answers; (reply, seconds)."""
        start = time.monotonic()
        for byte in data:
            readable, _, _ = select.select([self.sock], [], [], every)
            if readable:
                return self.reply(), time.monotonic() - start
            if time.monotonic() - start > limit:
                break
            self.sock.sendall(bytes([byte]))
        raise AssertionError("the server never cut the trickling client off")

    def closed(self) -> bool:
        return self.file.readline() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def serve(
    make_settings: Callable[..., Settings], db: Database
) -> Iterator[Callable[..., SmtpIntake]]:
    """Start an SmtpIntake on a free port with smtp overrides; stopped after the test."""
    started: list[SmtpIntake] = []

    def start(
        *,
        on_stored: Callable[[], None] | None = None,
        writer: InboxWriter | None = None,
        **smtp: Any,
    ) -> SmtpIntake:
        settings = make_settings(smtp={"port": 0, **smtp})
        intake = SmtpIntake(settings, db, on_stored=on_stored, writer=writer)
        intake.start()
        started.append(intake)
        return intake

    yield start
    for intake in started:
        intake.stop()


def active_connections(intake: SmtpIntake) -> int:
    """SMTP sessions the intake holds open now (its own bookkeeping: the test waits until the
    server side has let a closed client go)."""
    return len(intake._sessions)


def _client(intake: SmtpIntake) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", intake.port, timeout=10)
    client.ehlo("client.example.net")
    return client


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.database.url.removeprefix("sqlite:///"))


def _need_sqlite(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("failure injection uses SQLite triggers and locks")


# --- acceptance and durability ----------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("sample", ["flanker/8bitmime.eml", "django-helpdesk/utf-nondecodable.eml"])
def test_stores_raw_bytes_and_envelope_before_250(
    serve: Callable[..., SmtpIntake], settings: Settings, sample: str
) -> None:
    raw = _crlf((CORPUS / "messages" / sample).read_bytes())
    intake = serve()
    with _client(intake) as client:
        code, reply = _deliver(client, raw, rcpts=(SERVICE, "ServiceDesk+T0k3n@Example.ORG"))
        assert code == 250
        inbox_id = _inbox_id(reply)
        # Read right after the 250, through another connection: the row is already committed.
        (row,) = _rows(settings.database.url)
    assert row.id == inbox_id
    assert row.raw == raw  # byte-exact, 8-bit bytes included
    assert row.source == "smtp" and row.state == "queued" and row.size == len(raw)
    assert row.envelope_from == "erika@example.net"
    assert row.envelope_to == [SERVICE, "ServiceDesk+T0k3n@Example.ORG"]


def test_250_waits_for_the_commit(
    serve: Callable[..., SmtpIntake], settings: Settings, db: Database
) -> None:
    _need_sqlite(db)
    intake = serve()
    blocker = sqlite3.connect(_sqlite_path(settings), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # hold the write lock: no commit can happen now
    replies: list[tuple[int, str]] = []

    def send() -> None:
        with _client(intake) as client:
            replies.append(_deliver(client, _mail(1)))

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.6)
    assert replies == []  # the client is still waiting: no 250 without a commit
    blocker.execute("ROLLBACK")
    blocker.close()
    sender.join(10)
    ((code, reply),) = replies
    assert code == 250
    assert [r.id for r in _rows(settings.database.url)] == [_inbox_id(reply)]


def test_storage_failure_answers_451_without_detail_and_a_retry_succeeds(
    serve: Callable[..., SmtpIntake],
    settings: Settings,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _need_sqlite(db)
    caplog.set_level(logging.INFO, logger="postdesk")
    with db.engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TRIGGER broken BEFORE INSERT ON inbox "
                f"BEGIN SELECT RAISE(ABORT, '{SECRET}'); END"
            )
        )
    intake = serve()
    with _client(intake) as client:
        code, reply = _deliver(client, _mail(1))
        assert (code, f"{code} {reply}") == (451, TEMPFAIL)
        assert _rows(settings.database.url) == []
        with db.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER broken"))
        code, reply = _deliver(client, _mail(1))  # the client retries in the same session
        assert code == 250
    assert [r.id for r in _rows(settings.database.url)] == [_inbox_id(reply)]
    assert "smtp.deferred" in caplog.text
    assert "SECRET" not in caplog.text and "jane" not in caplog.text


class ExplodingWriter(InboxWriter):
    """A writer whose submit fails with an internal message (the error must not leak)."""

    def submit(self, item: NewInboxItem) -> Any:
        raise RuntimeError(SECRET)


def test_unexpected_error_text_never_reaches_the_client(
    serve: Callable[..., SmtpIntake], db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postdesk")
    intake = serve(writer=ExplodingWriter(db))
    with _client(intake) as client:
        code, reply = _deliver(client, _mail(1))
        assert f"{code} {reply}" == TEMPFAIL
        assert client.noop()[0] == 250  # the session goes on
    assert "smtp.error error=RuntimeError" in caplog.text
    assert "SECRET" not in caplog.text


def test_identical_deliveries_are_two_rows(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    intake = serve()
    with _client(intake) as client:
        first = _inbox_id(_deliver(client, _mail(7))[1])
        second = _inbox_id(_deliver(client, _mail(7))[1])
    rows = _rows(settings.database.url)
    assert first != second and [r.id for r in rows] == [first, second]
    assert rows[0].raw == rows[1].raw and rows[0].source_key != rows[1].source_key


def test_null_sender_and_smtputf8(serve: Callable[..., SmtpIntake], settings: Settings) -> None:
    intake = serve()
    with _client(intake) as client:
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
        assert _deliver(client, _mail(1), sender="")[0] == 250  # a bounce: MAIL FROM:<>
        client.mail("jürgen.müller@beispiel.de", options=["SMTPUTF8"])
        client.rcpt(SERVICE)
        assert client.data("Subject: Grüße\r\n\r\nÄrger mit dem Drucker\r\n".encode())[0] == 250
    bounce, utf8 = _rows(settings.database.url)
    assert bounce.envelope_from == ""
    assert utf8.envelope_from == "jürgen.müller@beispiel.de"
    assert "Ärger".encode() in (utf8.raw or b"")


def test_on_stored_hook_runs_after_each_commit(serve: Callable[..., SmtpIntake]) -> None:
    woken = threading.Event()
    intake = serve(on_stored=woken.set)
    with _client(intake) as client:
        assert _deliver(client, _mail(1))[0] == 250
    assert woken.wait(5)


# --- recipient policy and caps ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("servicedesk@example.org", True),
        ("ServiceDesk@EXAMPLE.org", True),
        ("servicedesk+proof-4711@example.org", True),
        ("SERVICEDESK+A+B@Example.Org", True),
        ("it-hilfe@amt.example", True),
        ("it-hilfe+x@amt.example", True),
        ("other@example.org", False),
        ("other+servicedesk@example.org", False),
        ("servicedeskx@example.org", False),
        ("servicedesk@example.org.evil.example", False),
        ("servicedesk@evil.example", False),
        ("servicedesk+x@evil.example", False),
        ("+x@example.org", False),
        ("servicedesk", False),
    ],
)
def test_recipient_policy(address: str, accepted: bool) -> None:
    accepted_set = {"servicedesk@example.org", "it-hilfe@amt.example"}
    assert recipient_accepted(address, accepted_set) is accepted


def test_unknown_recipient_550_plus_address_accepted(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    intake = serve()
    with _client(intake) as client:
        client.mail("erika@example.net")
        assert client.rcpt("someone@elsewhere.example")[0] == 550  # never an open relay
        code, reply = client.rcpt("nobody+x@example.org")
        assert (code, reply[:5]) == (550, b"5.1.1")
        assert client.rcpt("servicedesk+tok@example.org")[0] == 250
        assert client.data(_mail(1))[0] == 250
        client.mail("erika@example.net")
        assert client.rcpt("someone@elsewhere.example")[0] == 550
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.data(_mail(2))
        assert refused.value.smtp_code == 503  # no accepted recipient, nothing stored
    (row,) = _rows(settings.database.url)
    assert row.envelope_to == ["servicedesk+tok@example.org"]


def test_too_many_recipients_452(serve: Callable[..., SmtpIntake], settings: Settings) -> None:
    intake = serve(max_recipients=3)
    with _client(intake) as client:
        client.mail("erika@example.net")
        for n in range(3):
            assert client.rcpt(f"servicedesk+{n}@example.org")[0] == 250
        assert client.rcpt("servicedesk+3@example.org") == (452, b"4.5.3 Too many recipients")
        assert client.data(_mail(1))[0] == 250
    (row,) = _rows(settings.database.url)
    assert len(row.envelope_to) == 3


def test_oversized_mail_552_and_size_advertised(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    intake = serve(max_message_bytes=2048)
    big = _mail(1) + (b"y" * 76 + b"\r\n") * 40
    with _client(intake) as client:
        assert client.esmtp_features["size"] == "2048"
        client.mail("erika@example.net")
        client.rcpt(SERVICE)
        code, reply = client.data(big)
        assert (code, reply[:5]) == (552, b"5.3.4")
        code, reply = client.mail("erika@example.net", options=["SIZE=999999"])
        assert (code, reply[:5]) == (552, b"5.3.4")
        assert _deliver(client, _mail(2))[0] == 250  # the session is still usable
    assert len(_rows(settings.database.url)) == 1


@needs_corpus
def test_long_lines_are_stored_not_refused(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    long_links = _crlf((CORPUS / "messages" / "flanker" / "long-links.eml").read_bytes())
    html = b"Subject: Link\r\n\r\n<p><a href='https://example.org/" + b"x" * 5000 + b"'>\r\n"
    with _client(serve()) as client:
        assert _deliver(client, long_links)[0] == 250
        assert _deliver(client, html)[0] == 250  # over RFC 5321's 998, stored as received
        assert _deliver(client, b"Subject: x\r\n\r\n" + b"y" * 70_000 + b"\r\n")[0] == 250
        assert _deliver(client, _mail(1))[0] == 250
    assert [r.raw for r in _rows(settings.database.url)][:2] == [long_links, html]


def _raw_transfer(raw: RawClient, data: bytes) -> str:
    """One transaction over a raw socket, `data` sent exactly as given (smtplib would turn
    bare LFs into CRLF); the reply to the end of data."""
    assert raw.command("MAIL FROM:<erika@example.net>").startswith("250")
    assert raw.command(f"RCPT TO:<{SERVICE}>").startswith("250")
    assert raw.command("DATA").startswith("354")
    raw.sock.sendall(data + b"\r\n.\r\n")
    return raw.reply()


def test_long_bare_lf_mail_is_stored_as_received(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    """A mail with bare-LF line ends is one 'line' to a CRLF reader: over 64 KiB it used to get
    a permanent `500 Line too long`. Now only the message size limit applies."""
    bare_lf = (
        b"From: erika@example.net\nSubject: Protokoll\n\n"
        + b"".join(b"Zeile %05d " % n + b"x" * 990 + b"\n" for n in range(200))  # ~200 KiB
        + b"Ende"
    )
    one_line = b"Subject: Link\r\n\r\n." + b"z" * 300_000  # a stuffed dot opens the line
    intake = serve(max_message_bytes=400_000)
    raw = RawClient(intake.port).greeted()
    assert QUEUED.match(_raw_transfer(raw, bare_lf)[4:])
    assert QUEUED.match(_raw_transfer(raw, one_line)[4:])
    # Over the size limit it is 552 (the transfer is drained), and the session goes on.
    assert _raw_transfer(raw, bare_lf + b"y" * 200_000) == TOO_BIG
    assert QUEUED.match(_raw_transfer(raw, _mail(1).replace(b"\n.", b"\n.."))[4:])
    raw.command("QUIT")
    raw.close()
    rows = _rows(settings.database.url)
    assert [r.raw for r in rows] == [
        bare_lf + b"\r\n",
        b"Subject: Link\r\n\r\n" + b"z" * 300_000 + b"\r\n",  # dot-unstuffed
        _mail(1) + b"\r\n",
    ]


@pytest.mark.parametrize(
    "smuggled_end", [b"\n.\n", b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b"\r\n\x00.\r\n"]
)
def test_only_crlf_dot_crlf_ends_the_data(
    serve: Callable[..., SmtpIntake], settings: Settings, smuggled_end: bytes
) -> None:
    """SMTP smuggling: a second mail hidden behind a non-standard end of data stays part of
    the first, also when the first line is longer than the stream buffer."""
    smuggled = (
        smuggled_end
        + b"MAIL FROM:<ceo@example.org>\r\nRCPT TO:<servicedesk@example.org>\r\nDATA\r\n"
        + b"Subject: smuggled\r\n\r\nforged"
    )
    intake = serve()
    raw = RawClient(intake.port).greeted()
    for first_line in (b"Subject: a\r\n\r\nshort", b"Subject: b\r\n\r\n" + b"w" * 70_000):
        assert QUEUED.match(_raw_transfer(raw, first_line + smuggled)[4:])
    raw.command("QUIT")
    raw.close()
    rows = _rows(settings.database.url)
    assert len(rows) == 2 and all(b"Subject: smuggled" in (r.raw or b"") for r in rows)


# --- per-client limits and the disk floor -----------------------------------------------


def test_one_client_address_cannot_take_every_connection(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    """21 idle connections from one address used to fill a 20-connection listener, and every
    other sender got 421 for the whole session time."""
    per_client = SmtpSettings().max_connections_per_client
    assert 1 < per_client < 20  # a sane default, below the attack's 20
    intake = serve(max_connections=20)
    hog = [RawClient(intake.port, source="127.0.0.2") for _ in range(21)]
    greetings = [c.reply() for c in hog]
    assert [g[:4] for g in greetings] == ["220 "] * per_client + ["421 "] * (21 - per_client)
    assert set(greetings[per_client:]) == {TOO_MANY_CLIENT_CONNECTIONS}
    for refused in hog[per_client:]:
        assert refused.closed()
    # Another client host (and the local one) still gets in and delivers.
    for source in ("127.0.0.3", "127.0.0.1"):
        other = RawClient(intake.port, source=source).greeted()
        assert QUEUED.match(_raw_transfer(other, _mail(1))[4:])
        other.close()
    for admitted in hog[:per_client]:
        assert admitted.command("NOOP").startswith("250")  # the hog's sessions are untouched
        admitted.close()
    wait_for(lambda: active_connections(intake) == 0, timeout=5)
    with _client(intake):  # a freed slot is free again
        pass


def test_per_client_cap_is_configurable(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve(max_connections_per_client=2)
    first, second = RawClient(intake.port).greeted(), RawClient(intake.port).greeted()
    third = RawClient(intake.port)
    assert third.reply() == TOO_MANY_CLIENT_CONNECTIONS and third.closed()
    first.command("QUIT")
    wait_for(lambda: active_connections(intake) < 2, timeout=5)
    RawClient(intake.port).greeted().close()
    for client in (first, second, third):
        client.close()


def test_failed_rcpts_are_bounded_per_session(
    serve: Callable[..., SmtpIntake], caplog: pytest.LogCaptureFixture
) -> None:
    """2,000 failed RCPTs in one session used to be allowed; now `max_errors` 5xx replies
    without a delivered mail, then 421. A delivered mail starts the count anew."""
    caplog.set_level(logging.INFO, logger="postdesk")
    limit = SmtpSettings().max_errors
    assert 5 <= limit <= 50
    intake = serve()
    raw = RawClient(intake.port).greeted()
    assert raw.command("MAIL FROM:<erika@example.net>").startswith("250")
    for _ in range(limit - 1):
        assert raw.command("RCPT TO:<nobody@elsewhere.example>").startswith("550 5.1.1")
    raw.command("RSET")
    assert QUEUED.match(_raw_transfer(raw, _mail(1))[4:])  # resets the count
    assert raw.command("MAIL FROM:<erika@example.net>").startswith("250")
    replies = [raw.command("RCPT TO:<nobody@elsewhere.example>") for _ in range(limit - 1)]
    assert all(r.startswith("550 ") for r in replies)
    assert raw.command("BOGUS COMMAND") == '500 Error: command "BOGUS" not recognized'
    assert raw.reply() == TOO_MANY_ERRORS  # right after the limit-th error
    assert raw.closed()
    raw.close()
    assert "smtp.closed reason=too_many_errors" in caplog.text


def test_nothing_pipelined_after_the_421_is_processed(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    """A client that pipelines past its limit: the cut ends the session at once, so a mail
    further down the same write is neither stored nor acknowledged after the 421."""
    intake = serve(max_errors=3)
    raw = RawClient(intake.port).greeted()
    raw.sock.sendall(
        b"MAIL FROM:<erika@example.net>\r\n"
        + b"RCPT TO:<nobody@elsewhere.example>\r\n" * 3
        + f"RSET\r\nMAIL FROM:<erika@example.net>\r\nRCPT TO:<{SERVICE}>\r\nDATA\r\n".encode()
        + _mail(1)
        + b".\r\n"
    )
    replies = []
    while line := raw.file.readline():
        replies.append(line.decode().rstrip("\r\n"))
    raw.close()
    assert [r[:3] for r in replies] == ["250", "550", "550", "550", "421"]
    assert replies[-1] == TOO_MANY_ERRORS
    time.sleep(0.2)
    assert _rows(settings.database.url) == []


def test_recipients_beyond_the_cap_count_as_errors(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve(max_recipients=1, max_errors=3)
    raw = RawClient(intake.port).greeted()
    raw.command("MAIL FROM:<erika@example.net>")
    assert raw.command(f"RCPT TO:<{SERVICE}>").startswith("250")
    for _ in range(3):
        assert raw.command(f"RCPT TO:<{SERVICE}>") == "452 4.5.3 Too many recipients"
    assert raw.reply() == TOO_MANY_ERRORS
    assert raw.closed()
    raw.close()


def test_junk_commands_are_bounded_per_session(serve: Callable[..., SmtpIntake]) -> None:
    """20,000 NOOPs in one session used to be allowed (a NOOP every few seconds holds a slot
    for the whole session time); now `max_junk_commands` without a delivered mail, then 421."""
    limit = SmtpSettings().max_junk_commands
    assert 5 <= limit <= 100
    intake = serve()
    raw = RawClient(intake.port).greeted()  # EHLO is one of them
    for _ in range(limit - 2):
        assert raw.command("NOOP").startswith("250")
    assert raw.command("RSET").startswith("250")
    assert QUEUED.match(_raw_transfer(raw, _mail(1))[4:])  # resets the count
    for command in ("HELP", "VRFY <x@example.org>", "HELO client.example.net"):
        assert raw.command(command)[:1] == "2"
    for _ in range(limit - 3):
        assert raw.command("NOOP").startswith("250")
    assert raw.command("NOOP") == TOO_MANY_COMMANDS
    assert raw.closed()
    raw.close()


def test_help_still_lists_the_budgeted_commands(serve: Callable[..., SmtpIntake]) -> None:
    raw = RawClient(serve().port).greeted()
    listed = raw.command("HELP").split(": ", 1)[1].split()
    assert {"NOOP", "RSET", "EHLO", "DATA", "MAIL", "RCPT", "QUIT"} <= set(listed)
    assert raw.command("HELP NOOP") == "250 Syntax: NOOP [ignored]"
    raw.close()


def test_mail_from_452_below_the_disk_floor(
    serve: Callable[..., SmtpIntake], settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="postdesk")
    free = free_bytes(settings.data_dir)
    assert free is not None
    intake = serve(min_free_bytes=free + 2**40)  # a floor above what the disk really has
    with _client(intake) as client:
        assert client.mail("erika@example.net") == (452, LOW_DISK[4:].encode())
        with pytest.raises(smtplib.SMTPSenderRefused):
            client.sendmail("erika@example.net", [SERVICE], _mail(1))
        assert client.noop()[0] == 250  # a 4xx: no error count, the session goes on
    assert _rows(settings.database.url) == []
    assert "smtp.deferred reason=low_disk_space" in caplog.text
    with _client(serve(min_free_bytes=max(free // 2, 1))) as client:
        assert _deliver(client, _mail(1))[0] == 250


def test_disk_floor_watches_every_filesystem_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = Path("/dev/shm")
    disk, ram = free_bytes(tmp_path), free_bytes(shm)
    if disk is None or ram is None or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm as a second filesystem")
    calls: list[str] = []
    real_statvfs = __import__("os").statvfs

    def counting(path: Any) -> Any:
        calls.append(str(path))
        return real_statvfs(path)

    monkeypatch.setattr("gateway.intake.diskspace.os.statvfs", counting)
    between = (min(disk, ram) + max(disk, ram)) // 2
    missing = tmp_path / "var" / "not-yet"  # measured at its nearest existing ancestor
    assert FreeSpaceFloor([missing, shm], floor=between).low()  # the smaller one is below
    assert not FreeSpaceFloor([missing, shm], floor=min(disk, ram) // 2).low()
    assert not FreeSpaceFloor([missing, shm], floor=0).low()
    calls.clear()
    floor = FreeSpaceFloor([tmp_path, shm], floor=1, cache_seconds=60)
    for _ in range(100):
        assert not floor.low()
    assert len(calls) == 2  # once per filesystem, then cached


def test_connection_cap_421(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve(max_connections=2)
    first, second = _client(intake), _client(intake)
    with pytest.raises(smtplib.SMTPConnectError) as refused:
        smtplib.SMTP("127.0.0.1", intake.port, timeout=5)
    error = refused.value
    assert (error.smtp_code, error.smtp_error) == (421, TOO_MANY_CONNECTIONS[4:].encode())
    first.quit()
    wait_for(lambda: active_connections(intake) < 2, timeout=5)
    with _client(intake) as third:
        assert _deliver(third, _mail(1))[0] == 250
    second.quit()


# --- time limits ------------------------------------------------------------------------


def test_session_time_limit_cuts_a_chatty_client(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve(session_timeout_seconds=0.5, idle_timeout_seconds=10)
    raw = RawClient(intake.port)
    assert raw.reply().startswith("220 ")
    started = time.monotonic()
    reply = "250"
    while reply.startswith("250") and time.monotonic() - started < 5:
        server_spoke = select.select([raw.sock], [], [], 0.05)[0]  # that would be the cut
        reply = raw.reply() if server_spoke else raw.command("NOOP")  # never idle
    assert reply == SESSION_EXPIRED and 0.4 < time.monotonic() - started < 2.5
    assert raw.closed()
    raw.close()


def test_data_time_limit_cuts_a_trickling_client(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    intake = serve(data_timeout_seconds=0.5, idle_timeout_seconds=10, session_timeout_seconds=10)
    raw = RawClient(intake.port)
    raw.reply()
    raw.command("EHLO client.example.net")
    assert raw.command("MAIL FROM:<erika@example.net>").startswith("250")
    assert raw.command(f"RCPT TO:<{SERVICE}>").startswith("250")
    assert raw.command("DATA").startswith("354")
    reply, seconds = raw.trickle(_mail(1), every=0.05, limit=5)
    assert reply == DATA_EXPIRED and 0.3 < seconds < 2.5
    assert raw.closed()
    raw.close()
    assert _rows(settings.database.url) == []


def test_a_limit_running_out_during_the_commit_waits_for_the_250(
    serve: Callable[..., SmtpIntake], settings: Settings, db: Database
) -> None:
    _need_sqlite(db)
    intake = serve(session_timeout_seconds=0.5)
    raw = RawClient(intake.port)
    raw.reply()
    raw.command("EHLO client.example.net")
    raw.command("MAIL FROM:<erika@example.net>")
    raw.command(f"RCPT TO:<{SERVICE}>")
    assert raw.command("DATA").startswith("354")
    blocker = sqlite3.connect(_sqlite_path(settings), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the commit now waits past the session limit
    raw.sock.sendall(_mail(1) + b".\r\n")
    time.sleep(0.8)
    blocker.execute("ROLLBACK")
    blocker.close()
    (row,) = wait_for(lambda: _rows(settings.database.url), timeout=5)
    assert raw.reply() == f"250 2.0.0 OK queued as {row.id}"  # the stored mail is acknowledged
    assert raw.reply() == SESSION_EXPIRED  # and only then the connection is cut
    assert raw.closed()
    raw.close()


def test_idle_limit_421(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve(idle_timeout_seconds=0.3)
    raw = RawClient(intake.port)
    raw.reply()
    started = time.monotonic()
    assert raw.reply() == IDLE_EXPIRED and time.monotonic() - started < 2
    raw.close()


def test_stop_tells_open_sessions(serve: Callable[..., SmtpIntake]) -> None:
    intake = serve()
    raw = RawClient(intake.port)
    raw.reply()
    intake.stop()
    assert raw.reply() == SHUTTING_DOWN
    raw.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", intake.port), timeout=1)


def test_start_fails_clearly_on_a_taken_port(
    serve: Callable[..., SmtpIntake], make_settings: Callable[..., Settings], db: Database
) -> None:
    taken = serve()
    intake = SmtpIntake(make_settings(smtp={"port": taken.port}), db)
    with pytest.raises(IntakeError, match=f"cannot listen on 127.0.0.1:{taken.port}"):
        intake.start()


# --- concurrency and group commit -------------------------------------------------------


def test_concurrent_clients_lose_and_duplicate_nothing(
    serve: Callable[..., SmtpIntake], settings: Settings
) -> None:
    intake = serve()

    def client_run(c: int) -> list[int]:
        with _client(intake) as client:
            return [_inbox_id(_deliver(client, _mail(n, tag=f"c{c}"))[1]) for n in range(20)]

    with ThreadPoolExecutor(10) as pool:
        ids = [i for batch in pool.map(client_run, range(10)) for i in batch]
    rows = _rows(settings.database.url)
    assert len(ids) == len(set(ids)) == len(rows) == 200
    assert {r.id for r in rows} == set(ids)
    message_ids = {message_from_bytes(r.raw or b"")["Message-ID"] for r in rows}
    assert message_ids == {f"<c{c}-{n}@example.net>" for c in range(10) for n in range(20)}


def _item(n: int, sender: str = "erika@example.net") -> NewInboxItem:
    return NewInboxItem(
        source="smtp",
        source_key=f"test-{n}",
        raw=_mail(n),
        envelope_from=sender,
        envelope_to=(SERVICE,),
    )


def test_writer_commits_all_waiting_items_in_one_transaction(db: Database) -> None:
    calls: list[int] = []
    writer = InboxWriter(db, on_stored=lambda: calls.append(1))
    futures = [writer.submit(_item(n)) for n in range(10)]  # all waiting before the thread runs
    writer.start()
    ids = [f.result(10) for f in futures]
    writer.stop()
    assert ids == sorted(set(ids)) and writer.batches == 1 and writer.stored == 10
    assert calls == [1]
    with pytest.raises(IntakeError, match="stopped"):
        writer.submit(_item(99)).result(1)


def test_writer_isolates_a_poisoned_item(db: Database, settings: Settings) -> None:
    _need_sqlite(db)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER poison BEFORE INSERT ON inbox "
                "WHEN NEW.envelope_from = 'poison@example.net' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
        )
    writer = InboxWriter(db)
    futures = [
        writer.submit(_item(n, "poison@example.net" if n == 2 else "ok@example.net"))
        for n in range(5)
    ]
    writer.start()
    outcomes = [f.exception(10) for f in futures]
    writer.stop()
    assert [type(o).__name__ if o else None for o in outcomes] == [
        None,
        None,
        "IntakeError",
        None,
        None,
    ]
    assert "poisoned" not in str(outcomes[2])
    assert {r.source_key for r in _rows(settings.database.url)} == {
        "test-0",
        "test-1",
        "test-3",
        "test-4",
    }


def test_writer_drops_an_item_whose_caller_gave_up(db: Database, settings: Settings) -> None:
    writer = InboxWriter(db)
    withdrawn = writer.submit(_item(1))
    assert withdrawn.cancel()
    kept = writer.submit(_item(2))
    writer.start()
    kept.result(10)
    writer.stop()
    assert [r.source_key for r in _rows(settings.database.url)] == ["test-2"]


# --- logs -------------------------------------------------------------------------------


class _Recorder(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def production_logging() -> Iterator[list[logging.LogRecord]]:
    """`logs.setup()` as `postdesk serve` runs it, plus a recorder on aiosmtpd's logger."""
    root = logging.getLogger()
    saved = (
        root.handlers[:],
        root.level,
        {name: logging.getLogger(name).level for name in ("mail.log", "postdesk")},
    )
    logs.setup("INFO")
    records: list[logging.LogRecord] = []
    recorder = _Recorder(records)
    root.addHandler(recorder)
    yield records
    root.handlers[:], level, levels = saved
    root.setLevel(level)
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_logs_carry_no_addresses(
    serve: Callable[..., SmtpIntake], production_logging: list[logging.LogRecord]
) -> None:
    intake = serve()
    with _client(intake) as client:
        client.mail("erika@example.net")
        client.rcpt("stranger@elsewhere.example")
        client.rcpt(SERVICE)
        client.data(_mail(1))
    messages = [r.getMessage() for r in production_logging]
    assert any(m.startswith("smtp.accepted inbox_id=") for m in messages)
    assert not [r for r in production_logging if r.name.startswith("mail.")]
    assert not [m for m in messages if "@" in m]
