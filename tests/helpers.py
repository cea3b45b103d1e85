"""Small builders shared by the tests: paths of the fixture mails, free ports, polling, realistic
mails and a running service in a thread. (Fixtures are in tests/conftest.py, fake servers in
tests/fakes/.)"""

from __future__ import annotations

import base64
import smtplib
import socket
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from gateway.config import Settings
from gateway.mail.model import Address, ParsedMail
from gateway.serve import Service
from storage.models import Article, Ticket

if TYPE_CHECKING:
    from gateway.app import App
    from gateway.pipeline.context import Context, Preparing
    from storage.engine import Database

ROOT = Path(__file__).resolve().parent.parent
MAILS = Path(__file__).resolve().parent / "mails"
CORPUS = ROOT.parent / "shared" / "corpus"
PY_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"

# The shared corpus of third-party mail lies beside a developer's checkout only; a user's clone
# (and its `make test`) has none, so tests that read it skip with this reason.
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "messages").is_dir(), reason="shared corpus (../shared/corpus) not beside repo"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eml(name: str) -> bytes:
    """A hand-written fixture mail from tests/mails."""
    return (MAILS / name).read_bytes()


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`
    (generous: a first mail in `serve` starts the worker and prepare processes and loads
    Presidio, which takes seconds on a loaded 2-core machine; a passing test never waits it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


OUTLOOK_THREAD_INDEX = base64.b64decode("AdnVl0Q4pN2VGMzbR0qQ0ZC8ln1c0g==")  # 22-byte header
# Exchange Online, a reply (one child block) in a thread started on 2019-09-26 18:38 UTC.
OUTLOOK_REPLY = "AQHVdJmSz7FwOb+ZL0aIExPYLyfVU6c/a/SA"


def make_mail(
    *,
    sender: str = "Erika Muster <erika.muster@example.net>",
    to: str = "servicedesk@example.org",
    subject: str = "Drucker im 3. OG defekt",
    body: str = "Guten Tag,\nder Drucker im 3. OG druckt nicht mehr.\nViele Grüße\n",
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or make_msgid(domain="example.net")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def send(
    settings: Settings,
    msg: EmailMessage,
    mail_from: str | None = None,
    rcpt: list[str] | None = None,
) -> None:
    with smtplib.SMTP(settings.smtp.host, settings.smtp.port, timeout=10) as smtp:
        smtp.send_message(msg, from_addr=mail_from, to_addrs=rcpt)


@contextmanager
def serving(app: App) -> Iterator[Service]:
    """Serve `app` in a thread (no signal handlers) and stop it afterwards."""
    service = Service(app)
    thread = threading.Thread(target=service.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        _wait_listening(app.settings)
        yield service
    finally:
        app.stop_event.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "serve did not stop"


def started(settings: Settings) -> App:
    """An instance on the settings' database, migrated: built again on the same database it is
    a restart, or a second instance beside the first."""
    from gateway.app import App

    app = App.build(settings)
    app.init_database()
    return app


@contextmanager
def running(app: App) -> Iterator[App]:
    """`serving(app)`, for tests that need only the app's parts."""
    with serving(app):
        yield app


def write_config(path: Path, settings: Settings) -> Path:
    """`settings` as the YAML file a CLI test passes to --config (quiet: warnings only)."""
    data = settings.model_dump(mode="json")
    data["log_level"] = "WARNING"
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_listening(settings: Settings) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((settings.smtp.host, settings.smtp.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("postdesk did not start listening")


def tickets(app: App) -> list[Ticket]:
    from sqlalchemy import select

    with app.db.session() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)))


def articles(app: App) -> list[Article]:
    from sqlalchemy import select

    with app.db.session() as session:
        return list(session.scalars(select(Article).order_by(Article.id)))


# --- one pipeline stage on its own ---------------------------------------------------------


def parsed_mail(**overrides: Any) -> ParsedMail:
    """A parsed mail as the parse stage leaves it: Erika's printer request, nothing threaded."""
    values: dict[str, Any] = {
        "message_id": make_msgid(domain="example.net"),
        "message_id_generated": False,
        "from_": Address("Erika Muster", "erika.muster@example.net"),
        "to": [Address("", "servicedesk@example.org")],
        "cc": [],
        "reply_to": [],
        "subject": "Drucker im 3. OG defekt",
        "date": None,
        "in_reply_to": [],
        "references": [],
        "thread_index": None,
        "thread_topic": None,
        "headers": {},
        "text": "Guten Tag,\nder Drucker im 3. OG druckt nicht mehr.\nViele Grüße\n",
        "html": None,
        "attachments": [],
    }
    values.update(overrides)
    return ParsedMail(**values)


@contextmanager
def stage_context(
    db: Database, settings: Settings, mail: ParsedMail | None = None, **fields: Any
) -> Iterator[Context]:
    """A Context for calling one stage function, in one transaction like the worker's: a real
    inbox row and TicketStore on `db` (migrated), blobs under data_dir, the shipped templates.
    `fields` set any other field: of the Context (ticket, sender_role, ...), of its Services
    (proof_key, pseudonym_key, ruleset) or of what PREPARE made (texts, commands, analysis)."""
    from gateway.outgoing.letters import Letters, Renderer
    from gateway.pipeline.context import Context, PreparedMail, Services
    from storage.blobs import BlobStore
    from storage.models import InboxItem, utcnow
    from storage.tickets import TicketStore

    now = fields.pop("now", None) or utcnow()
    mail = mail or parsed_mail()
    keys = {name: fields.pop(name) for name in ("proof_key", "pseudonym_key", "ruleset",
                                                "previous_proof_keys", "previous_pseudonym_keys")
            if name in fields}
    made = {name: fields.pop(name) for name in ("texts", "commands", "analysis", "inseparable")
            if name in fields}
    with db.session() as session:
        inbox = InboxItem(source="smtp", source_key=make_msgid(), raw=b"x", received_at=now,
                          envelope_from=mail.from_.email, envelope_to=["servicedesk@example.org"])
        session.add(inbox)
        session.flush()
        store = TicketStore(session)
        renderer = Renderer(settings.templates_dir, settings.service.language)
        services = Services(settings=settings, store=store,
                            blobs=BlobStore(settings.data_dir / "blobs"),
                            letters=Letters(settings, renderer, store,
                                            proof_key=keys.get("proof_key", b"")),
                            **keys)
        prepared = PreparedMail(inbox_id=inbox.id, mail=mail, **made)
        yield Context(services=services, inbox=inbox, prepared=prepared, now=now, **fields)


def open_ticket_row(ctx: Context, requester: str = "erika.muster@example.net",
                    **fields: Any) -> Ticket:
    """A ticket already in the database (as an earlier mail left it), with its requester as a
    party; `fields` set columns such as status, owner, queue."""
    ticket = ctx.store.create_ticket(
        prefix=ctx.settings.service.ticket_prefix, subject="Drucker im 3. OG defekt",
        requester=requester, language="de", conversation=None, now=ctx.now,
    )
    ctx.store.add_participant(ticket, requester, "requester")
    for name, value in fields.items():
        setattr(ticket, name, value)
    return ticket


def run_prepare(stage: Callable[[Preparing], None], ctx: Context) -> None:
    """Run one PREPARE stage (quotes.prepare, redact.prepare) for a stage_context, as the
    worker would have before its transaction: on a Preparing of the context's mail, whose
    results become what PREPARE made (`ctx.prepared`) and its decisions the context's."""
    from gateway.pipeline.context import IncomingMail, Preparing

    made = ctx.prepared
    state = Preparing(incoming=IncomingMail.of(ctx.inbox), settings=ctx.settings,
                      mail=made.mail, texts=made.texts, commands=made.commands,
                      analysis=made.analysis)
    stage(state)
    made.texts, made.commands, made.analysis = state.texts, state.commands, state.analysis
    made.inseparable = state.inseparable
    ctx.decisions.extend(state.decisions)
