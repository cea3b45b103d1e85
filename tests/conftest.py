"""Shared fixtures: settings in a temp folder, a real migrated database (SQLite file always,
PostgreSQL too when POSTDESK_TEST_DATABASE_URL is set), an SMTP sink on a free loopback port.
Only fixtures live here; the helpers tests import are in tests/helpers.py and tests/fakes/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from gateway.config import Settings, settings_from_dict
from storage.engine import Database, open_database
from storage.migrate import upgrade
from tests.fakes.smtp import Sink
from tests.helpers import ROOT, free_port, running

if TYPE_CHECKING:
    from gateway.app import App

PG_URL = os.environ.get("POSTDESK_TEST_DATABASE_URL")




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


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    """The running service (serve in a thread) delivering its mail to `sink`. Test files that
    need other settings (agents in teams, limits) define their own `service`."""
    # Agents in no team: no agent notifications, so the sink sees only requester mail here
    # (agents' mail is tested in test_agents.py).
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        agents=[{"email": "anna.schmidt@example.org", "name": "Anna Schmidt"}],
    )
    from gateway.app import App

    app = App.build(settings)
    with running(app):
        yield app
