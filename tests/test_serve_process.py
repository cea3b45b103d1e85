"""`postdesk serve` as real processes: a second serve on a port that is taken says so in one
line and exits 1, without starting a worker or touching the first serve's work (issue 11,
defect 8: it printed a multiprocessing traceback, `EOFError: Ran out of input`)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gateway.app import App
from gateway.config import Settings
from gateway.senders import RecordingSender
from tests.conftest import wait_for
from tests.helpers import make_mail, send, tickets


def serve_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve"]


def listening(settings: Settings) -> bool:
    try:
        with socket.create_connection((settings.smtp.host, settings.smtp.port), timeout=1):
            return True
    except OSError:
        return False


def test_second_serve_on_a_busy_port_says_so_in_one_line_and_leaves_the_first_alone(
    settings: Settings, tmp_path: Path
) -> None:
    data = settings.model_dump(mode="json")
    data["log_level"] = "INFO"  # anything the second serve started would show in its stderr
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    app = App.build(settings, sender=RecordingSender())  # to read the database afterwards
    app.init_database()
    first_log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(serve_command(config), stdout=first_log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: listening(settings) or first.poll() is not None, timeout=60)
        assert first.poll() is None
        started = time.monotonic()
        second = subprocess.run(serve_command(config), capture_output=True, text=True,
                                timeout=120)
        assert second.returncode == 1
        [line] = second.stderr.splitlines()  # nothing else: no traceback, no worker's log
        where = f"{settings.smtp.host}:{settings.smtp.port}"
        assert line.startswith(f"postdesk: error: cannot listen on {where}: ")
        assert "in use" in line
        assert time.monotonic() - started < 30
        # the first one still takes mail and turns it into a ticket
        assert first.poll() is None
        send(settings, make_mail(subject="Nach dem zweiten serve"))
        wait_for(lambda: [t for t in tickets(app) if t.subject == "Nach dem zweiten serve"],
                 timeout=60)
    finally:
        first.send_signal(signal.SIGTERM)
        code = first.wait(timeout=60)
        first_log.close()
        app.db.dispose()
    log = (tmp_path / "first.log").read_text()
    assert code == 0 and "Traceback" not in log and "worker.recovered" not in log
