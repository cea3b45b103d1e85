"""Shared fixtures: settings in a temp folder, a real migrated database (SQLite file always,
PostgreSQL too when POSTDESK_TEST_DATABASE_URL is set), free loopback ports, mail samples."""

from __future__ import annotations

import os
import socket
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from gateway.config import Settings, settings_from_dict
from storage.engine import Database, open_database
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
MAILS = Path(__file__).resolve().parent / "mails"
CORPUS = ROOT.parent / "shared" / "corpus"
PY_EMAIL_DATA = Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"
PG_URL = os.environ.get("POSTDESK_TEST_DATABASE_URL")

# The shared corpus of third-party mail lies beside a developer's checkout only; a user's clone
# (and its `make test`) has none, so tests that read it skip with this reason.
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "messages").is_dir(), reason="shared corpus (../shared/corpus) not beside repo"
)


@pytest.fixture(autouse=True)
def _no_sealing_key_from_an_earlier_test() -> Iterator[None]:
    """The sealing key is per process (set by App.build): tests must not inherit one."""
    from storage import sealing

    sealing.configure(None)
    yield
    sealing.configure(None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eml(name: str) -> bytes:
    """A hand-written fixture mail from tests/mails."""
    return (MAILS / name).read_bytes()


def _reset_postgres(url: str) -> None:
    db = open_database(url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        db.dispose()


def _db_params() -> list[Any]:
    params: list[Any] = ["sqlite"]
    if PG_URL:
        params.append(pytest.param("postgresql", marks=pytest.mark.postgres))
    return params


@pytest.fixture(params=_db_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL: a fresh SQLite file, or (second run) the emptied PostgreSQL test database."""
    if request.param == "postgresql":
        assert PG_URL is not None
        _reset_postgres(PG_URL)
        return PG_URL
    return f"sqlite:///{tmp_path / 'postdesk.db'}"


@pytest.fixture
def make_settings(tmp_path: Path, db_url: str) -> Callable[..., Settings]:
    """Build Settings for a test: temp data_dir, the test database, the shipped templates/rules."""

    def build(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "service": {
                "address": "servicedesk@example.org",
                "name": "IT-Servicedesk",
                "ticket_prefix": "LDS",
                "language": "de",
            },
            "database": {"url": db_url},
            "data_dir": str(tmp_path / "var"),
            "smtp": {
                "host": "127.0.0.1",
                "port": free_port(),
                "accept": ["servicedesk@example.org", "buergerservice@example.org"],
            },
            "outgoing": {"transport": "maildir"},
            "agents": [
                {"email": "anna.schmidt@example.org", "name": "Anna Schmidt", "teams": ["it"]},
                {
                    "email": "ben.mueller@example.org",
                    "name": "Ben Müller",
                    "teams": ["it", "fachverfahren"],
                },
            ],
            "teams": [
                {"name": "it", "lead": "anna.schmidt@example.org"},
                {"name": "fachverfahren"},
            ],
            "rules_dir": str(ROOT / "rules"),
            "templates_dir": str(ROOT / "templates"),
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return settings_from_dict(data, base=tmp_path)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The settings' database, migrated to the newest schema."""
    database = open_database(settings.database.url)
    upgrade(database)
    yield database
    database.dispose()


class Sink:
    """A real SMTP server on loopback that records what it receives (the requester's MTA)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 OK"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def parsed(self) -> list[Any]:
        from email import message_from_bytes, policy

        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.messages]


@pytest.fixture
def sink() -> Iterator[Sink]:
    from aiosmtpd.controller import Controller

    recorder = Sink()
    recorder.controller = Controller(
        recorder, hostname="127.0.0.1", port=free_port(), decode_data=False
    )
    recorder.controller.start()
    yield recorder
    recorder.controller.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; fail the test after `timeout`
    (generous: a first mail in `serve` starts the worker and prepare processes and loads
    Presidio, which takes seconds on a loaded 2-core machine; a passing test never waits it)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
