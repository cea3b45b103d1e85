"""Defect 9: what postdesk creates holds personal data, so it is private to the service's user:
folders 0700, files 0600, whatever the (usual, looser) umask; a stricter umask still wins."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.intake.poller import PollHealth
from gateway.serve import serve
from storage.engine import open_database
from storage.migrate import upgrade
from storage.private import make_dirs
from tests.helpers import make_mail, wait_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test; the old one comes back afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_sqlite_files_are_0600_and_their_folder_0700(
    tmp_path: Path, umask: Callable[[int], None], mask: int
) -> None:
    umask(mask)
    path = tmp_path / "site" / "var" / "postdesk.db"
    db = open_database(f"sqlite:///{path}")
    try:
        upgrade(db)
        with db.session() as session:  # a write: -wal and -shm exist now
            session.connection().exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        for name in ("postdesk.db", "postdesk.db-wal", "postdesk.db-shm", "postdesk.db-writelock"):
            assert mode(path.with_name(name)) == 0o600, name
        assert mode(path.parent) == 0o700
        assert mode(path.parent.parent) == 0o700  # a missing parent is created private too
    finally:
        db.dispose()


def test_served_data_folders_and_files_are_private(
    tmp_path: Path, make_settings: Callable[..., Settings], umask: Callable[[int], None]
) -> None:
    umask(0o022)
    settings = make_settings()
    app = App.build(settings)
    app.init_database()
    app.blobs.put(b"an attachment")
    app.sender.send(
        "servicedesk@example.org", ["someone@example.net"], b"Subject: x\r\n\r\nx\r\n", "<a@b>"
    )
    from gateway.intake import health

    health.write(settings.data_dir, PollHealth(source="graph"))
    data = settings.data_dir
    for folder in [data, data / "blobs", data / "outgoing", data / "outgoing" / "new",
                   data / "health", settings.secrets.key_file.parent]:
        assert mode(folder) == 0o700, folder
    for sub in (data / "blobs").rglob("*"):
        assert mode(sub) == (0o700 if sub.is_dir() else 0o600), sub
    assert mode(settings.secrets.key_file) == 0o600
    assert all(mode(f) == 0o600 for f in (data / "outgoing" / "new").iterdir())
    assert all(mode(f) == 0o600 for f in (data / "health").iterdir())
    app.worker.close()
    app.db.dispose()


def test_a_stricter_umask_is_not_loosened(tmp_path: Path, umask: Callable[[int], None]) -> None:
    umask(0o277)
    make_dirs(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == 0o500
    assert mode(tmp_path / "a" / "b") == 0o500
    (tmp_path / "a").chmod(0o700)  # let pytest clean up


def test_init_tightens_a_site_created_before_modes_were_set(
    tmp_path: Path, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    settings = make_settings(database={"url": f"sqlite:///{tmp_path / 'var' / 'postdesk.db'}"})
    data = settings.data_dir
    data.mkdir(mode=0o755)
    (data / "blobs").mkdir(mode=0o755)
    db_file = data / "postdesk.db"
    db_file.touch(mode=0o644)
    db_file.chmod(0o644)
    data.chmod(0o755)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**settings.model_dump(mode="json"), "log_level": "WARNING"}))
    assert main(["--config", str(config), "init"]) == 0
    out = capsys.readouterr().out
    assert mode(data) == 0o700
    assert mode(data / "blobs") == 0o700
    assert mode(db_file) == 0o600
    assert "permissions tightened" in out


@pytest.mark.slow
def test_a_mail_through_serve_leaves_nothing_world_readable(
    tmp_path: Path, make_settings: Callable[..., Settings], umask: Callable[[int], None]
) -> None:
    import smtplib
    import threading

    umask(0o022)
    settings = make_settings(
        database={"url": f"sqlite:///{tmp_path / 'var' / 'postdesk.db'}"},
        worker={"mode": "thread", "interval_seconds": 0.05},
        outgoing={"transport": "maildir", "interval_seconds": 0.1},
    )
    app = App.build(settings)
    server = threading.Thread(target=serve, args=(app,), kwargs={"install_signals": False})
    server.start()
    try:
        mail = make_mail(subject="Drucker defekt")
        mail.add_attachment(b"%PDF-1.4 x", maintype="application", subtype="pdf", filename="a.pdf")

        def sent() -> bool:
            try:
                with smtplib.SMTP("127.0.0.1", settings.smtp.port, timeout=5) as smtp:
                    smtp.send_message(mail)
            except OSError:
                return False
            return True

        wait_for(sent, timeout=30)
        outgoing = settings.data_dir / "outgoing" / "new"
        wait_for(lambda: outgoing.is_dir() and any(outgoing.iterdir()), timeout=60)
    finally:
        app.stop_event.set()
        server.join(timeout=60)
    loose = [
        str(path.relative_to(tmp_path))
        for path in [settings.data_dir, *settings.data_dir.rglob("*")]
        if mode(path) & 0o077
    ]
    assert loose == []
