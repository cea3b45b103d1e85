"""Small builders shared by the tests: realistic mails and a running service in a thread."""

from __future__ import annotations

import base64
import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import yaml

from gateway.app import App
from gateway.config import Settings
from gateway.serve import Service
from storage.models import Article, Ticket

OUTLOOK_THREAD_INDEX = base64.b64decode("AdnVl0Q4pN2VGMzbR0qQ0ZC8ln1c0g==")  # 22-byte header


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
    import socket
    import time

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
