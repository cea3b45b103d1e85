"""Several real `postdesk serve` processes on one PostgreSQL database, for the scale-out tests:
each instance has its own port and data folder and shares the database and the secret."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select

from gateway.config import Settings
from storage.engine import Database, open_database
from storage.migrate import upgrade
from storage.models import InboxItem
from storage.states import INBOX_WAITING
from tests.helpers import ROOT, wait_for

SECRET = "scale-out-test-secret-0123456789-abcdefghijklmnop"


@dataclass
class Instance:
    settings: Settings
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return self.settings.smtp.port


def migrated(url: str) -> Database:
    """The (emptied) database at `url`, migrated once before the instances start."""
    db = open_database(url)
    upgrade(db)
    return db


def _listening(instance: Instance) -> bool:
    if instance.process.poll() is not None:
        raise AssertionError(f"serve exited: {instance.log.read_text()[-2000:]}")
    try:
        with socket.create_connection(("127.0.0.1", instance.port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def cluster(
    count: int, make_settings: Callable[..., Settings], tmp_path: Path, **overrides: Any
) -> Iterator[list[Instance]]:
    """`count` serve processes started one after another (each listening before the next
    starts), stopped with SIGTERM afterwards; each must exit 0."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "POSTDESK_SECRET_KEY": SECRET}
    instances: list[Instance] = []
    try:
        for number in range(count):
            folder = tmp_path / f"instance{number}"
            settings = make_settings(data_dir=str(folder / "var"), log_level="WARNING",
                                     **overrides)
            folder.mkdir(parents=True, exist_ok=True)
            config = folder / "config.yaml"
            config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
            log = folder / "serve.log"
            with log.open("ab") as handle:
                process = subprocess.Popen(
                    [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"],
                    cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
                )
            instance = Instance(settings, process, log)
            instances.append(instance)
            wait_for(lambda started=instance: _listening(started), timeout=60)
        yield instances
    finally:
        for instance in instances:
            if instance.process.poll() is None:
                instance.process.send_signal(signal.SIGTERM)
        codes = [instance.process.wait(timeout=60) for instance in instances]
        assert codes == [0] * len(instances), [i.log.read_text()[-2000:] for i in instances]


def settle(db: Database, expected_rows: int, timeout: float = 120) -> None:
    """Wait until the inbox holds `expected_rows` rows and none of them is waiting."""

    def settled() -> bool:
        with db.reading() as session:
            states = session.scalars(select(InboxItem.state)).all()
        return len(states) >= expected_rows and not any(s in INBOX_WAITING for s in states)

    started = time.monotonic()
    wait_for(settled, timeout=timeout)
    print(f"settled in {time.monotonic() - started:.1f} s")
