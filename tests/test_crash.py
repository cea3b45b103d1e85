"""`kill -9` of a real `postdesk serve` while clients are sending: after a restart every mail
that got a 250 is a ticket, and none is stored twice."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from gateway.config import Settings
from storage.engine import open_database
from storage.models import Article, InboxItem
from tests.helpers import ROOT, make_mail, wait_for

pytestmark = pytest.mark.slow


def start_server(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return process


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not listen")


def test_kill_9_while_sending_loses_and_duplicates_nothing(
    tmp_path: Path, db_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(
        outgoing={"transport": "maildir", "interval_seconds": 0.2}, log_level="WARNING"
    )
    port = settings.smtp.port
    config = settings.model_dump(mode="json")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = tmp_path / "serve.log"

    server = start_server(config_path, log)
    wait_listening(port, server, log)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        index = 0
        while not stop.is_set():
            msg = make_mail(sender=f"user{number}@example.net", subject=f"Crash {number}-{index}")
            index += 1
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.send_message(msg)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.02)
                continue
            with lock:
                acknowledged.append(msg["Message-ID"])

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    wait_for(lambda: len(acknowledged) >= 60, timeout=30)
    server.send_signal(signal.SIGKILL)
    server.wait()
    time.sleep(0.3)  # clients now hit a closed port
    stop.set()
    for thread in clients:
        thread.join()
    assert acknowledged, "no mail was accepted before the kill"

    restarted = start_server(config_path, log)
    try:
        wait_listening(port, restarted, log)
        db = open_database(db_url)

        def settled() -> bool:
            with db.session() as session:
                states = session.scalars(select(InboxItem.state)).all()
            return bool(states) and all(s in ("done", "quarantined") for s in states)

        wait_for(settled, timeout=60)
        with db.session() as session:
            stored = Counter(
                session.scalars(select(Article.message_id).where(Article.direction == "in")).all()
            )
            quarantined = session.scalars(
                select(InboxItem.reason).where(InboxItem.state == "quarantined")
            ).all()
        db.dispose()
        assert not quarantined, quarantined
        assert all(count == 1 for count in stored.values()), "a mail was stored twice"
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} acknowledged mails are missing"
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0, log.read_text()[-2000:]
