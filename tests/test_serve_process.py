"""`postdesk serve` as real processes: a second serve on a port that is taken says so in one
line and exits 1, without starting a worker or touching the first serve's work (issue 11,
defect 8: it printed a multiprocessing traceback, `EOFError: Ran out of input`)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from storage.models import InboxItem
from tests.helpers import ROOT, make_mail, send, tickets, wait_for


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


# --- issue 12, defect 3: one regex rule stopped all intake and survived a restart ------------

SLOW = r"\w*\w*\w*\w*\w*\w*!x"  # slips past the backtracking check: years on 200 characters
STUCK_SUBJECT = "a" * 200 + "!"
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> list[str] | None:
    """State, ppid, … of a process from /proc (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def running_pid(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has ended


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now (children, their children, …)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def pipeline_processes(pid: int) -> set[int]:
    """The worker and prepare processes below serve `pid` (not multiprocessing's tracker)."""
    return {p for p in descendants(pid) if b"resource_tracker" not in
            Path(f"/proc/{p}/cmdline").read_bytes()} if running_pid(pid) else set()


def slow_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "00-eilig.yaml").write_text(
        f"- name: eilig\n  when: {{subject: {{matches: '{SLOW}'}}}}\n  then: {{queue: eilig}}\n"
    )
    return rules


def start_serve(config: Path, settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    process = subprocess.Popen(serve_command(config), stdout=out, stderr=subprocess.STDOUT)
    out.close()
    wait_for(lambda: listening(settings) or process.poll() is not None, timeout=60)
    assert process.poll() is None, log.read_text()
    return process


def serve_config(tmp_path: Path, settings: Settings) -> Path:
    config = tmp_path / "config.yaml"
    data = settings.model_dump(mode="json")
    data["log_level"] = "INFO"
    config.write_text(yaml.safe_dump(data))
    return config


@needs_proc
def test_an_overrunning_rule_quarantines_its_mail_with_file_and_line_and_the_next_goes_on(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rules = slow_rules(tmp_path)
    settings = make_settings(rules_dir=str(rules), redaction={"enabled": False},
                             routing={"evaluation_budget_seconds": 1})
    app = App.build(settings, sender=RecordingSender())
    app.init_database()
    serve = start_serve(serve_config(tmp_path, settings), settings, tmp_path / "serve.log")
    try:
        send(settings, make_mail(subject=STUCK_SUBJECT))
        sent = time.monotonic()
        send(settings, make_mail(subject="Drucker kaputt"))
        [ticket] = wait_for(lambda: tickets(app), timeout=60)
        assert ticket.subject == "Drucker kaputt"
        assert time.monotonic() - sent < 30  # a budget of 1 s, not the prepare timeout (120 s)
        with app.db.session() as session:
            first = session.scalars(select(InboxItem).order_by(InboxItem.id)).first()
            assert first is not None
            assert (first.state, first.stage, first.attempts) == ("quarantined", "route", 1)
            assert first.reason is not None
            assert first.reason.startswith("RuleOverrun: evaluating rule 'eilig' at ")
            assert f"{rules / '00-eilig.yaml'}:1 " in first.reason
        assert len(pipeline_processes(serve.pid)) == 2  # worker + a new prepare process
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        app.db.dispose()
    log = (tmp_path / "serve.log").read_text()
    assert code == 0 and "Traceback" not in log
    assert "rules.overrun" in log and "rule=eilig" in log and STUCK_SUBJECT not in log


@needs_proc
def test_sigterm_ends_serve_and_every_child_within_the_shutdown_timeout_whatever_the_worker_does(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """The worker waits for a prepare process spinning in a rule (budget and prepare timeout
    set far away), and is itself stopped dead (SIGSTOP): serve still ends within 3 s."""
    settings = make_settings(rules_dir=str(slow_rules(tmp_path)), redaction={"enabled": False},
                             routing={"evaluation_budget_seconds": 600},
                             worker={"prepare_timeout_seconds": 600,
                                     "shutdown_timeout_seconds": 3})
    App.build(settings, sender=RecordingSender()).init_database()
    serve = start_serve(serve_config(tmp_path, settings), settings, tmp_path / "serve.log")
    try:
        send(settings, make_mail(subject=STUCK_SUBJECT))
        children = wait_for(lambda: len(pipeline_processes(serve.pid)) == 2
                            and pipeline_processes(serve.pid), timeout=60)
        time.sleep(1.0)  # well inside the rule
        [worker] = [pid for pid in children if _stat(pid)[1] == str(serve.pid)]  # type: ignore[index]
        os.kill(worker, signal.SIGSTOP)
        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=30)
        took = time.monotonic() - started
        # PR_SET_PDEATHSIG kills them at once; a loaded CI machine may take a few seconds to
        # schedule the deaths (the old code left them running for good)
        wait_for(lambda: not any(running_pid(p) for p in children), timeout=10.0)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert code == 0 and took <= 3 + 1.0, took  # the timeout, and a second to exit
    log = (tmp_path / "serve.log").read_text()
    assert "worker.killed" in log and "serve.stopped" in log


@needs_proc
def test_kill_9_of_serve_takes_worker_and_prepare_process_along_and_a_new_serve_starts(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: the orphaned worker held the SQLite lock and a restarted serve died with
    "database is locked". Here the prepare process is spinning in a rule when serve dies.
    At the default cpu_priority (idle) a killed process dies only once a core has nothing else
    to do, which on a busy test machine can be seconds: measured at normal priority."""
    settings = make_settings(rules_dir=str(slow_rules(tmp_path)), redaction={"enabled": False},
                             routing={"evaluation_budget_seconds": 600},
                             worker={"prepare_timeout_seconds": 600, "cpu_priority": "normal"})
    app = App.build(settings, sender=RecordingSender())
    app.init_database()
    config = serve_config(tmp_path, settings)
    serve = start_serve(config, settings, tmp_path / "serve.log")
    try:
        send(settings, make_mail(subject=STUCK_SUBJECT))
        children = wait_for(lambda: len(pipeline_processes(serve.pid)) == 2
                            and pipeline_processes(serve.pid), timeout=60)
        time.sleep(1.0)
        serve.kill()
        serve.wait(timeout=10)
        # PR_SET_PDEATHSIG kills them at once; a loaded CI machine may take a few seconds to
        # schedule the deaths (the old code left them running for good)
        wait_for(lambda: not any(running_pid(p) for p in children), timeout=10.0)
    finally:
        if serve.poll() is None:
            serve.kill()
    # the same SQLite file, now with the default budget: the mail that was spinning is taken
    # again (its attempt was cut short), quarantined, and the next one is a ticket
    settings = settings.model_copy(update={"routing": settings.routing.model_copy(
        update={"evaluation_budget_seconds": 1.0})})
    again = start_serve(serve_config(tmp_path, settings), settings, tmp_path / "again.log")
    try:
        send(settings, make_mail(subject="Nach dem Neustart"))
        wait_for(lambda: [t for t in tickets(app) if t.subject == "Nach dem Neustart"],
                 timeout=60)
        with app.db.session() as session:
            first = session.get(InboxItem, 1)
            assert first is not None and (first.state, first.stage) == ("quarantined", "route")
    finally:
        again.send_signal(signal.SIGTERM)
        code = again.wait(timeout=60)
        app.db.dispose()
    log = (tmp_path / "again.log").read_text()
    assert code == 0 and "database is locked" not in log and "Traceback" not in log
