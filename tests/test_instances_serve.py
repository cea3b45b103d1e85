"""Several real `postdesk serve` processes on one database (issue 14, defects 1, 2, 6, 7):
started at once on an empty database they all come up; one with another secret refuses to
start in one line; a `kill -9` of one and a graceful restart of another during a burst leave
every accepted mail processed exactly once, and no row of a running instance is taken over."""

from __future__ import annotations

import email
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from gateway.config import Settings
from storage.engine import open_database
from storage.models import Article, InboxItem, OutboxItem
from tests.helpers import ROOT, free_port, make_mail, wait_for

pytestmark = pytest.mark.slow

SECRET = "s" * 40
AGENTS = [{"email": "anna.schmidt@example.org", "name": "Anna Schmidt"}]  # in no team: only
# acknowledgements leave, one per ticket


class Instance:
    """One `postdesk serve` of the test: its config, its log, its process."""

    def __init__(self, name: str, settings: Settings, tmp_path: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.config = tmp_path / f"{name}.yaml"
        data = settings.model_dump(mode="json")
        data["log_level"] = "INFO"
        self.config.write_text(yaml.safe_dump(data))
        self.log = tmp_path / f"{name}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.settings.smtp.port

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args]

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command("serve"), cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT)

    def listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited: {self.log.read_text()[-3000:]}")
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as smtp:
                return smtp.noop()[0] == 250
        except OSError:
            return False

    def healthy(self) -> bool:
        assert self.settings.metrics is not None
        url = f"http://127.0.0.1:{self.settings.metrics.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def ids(self) -> list[str]:
        """The instance ids this instance ran under, one per start, in order."""
        return re.findall(r"serve\.started instance=(\S+)", self.log.read_text())

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def events(instances: list[Instance], name: str) -> list[dict[str, str]]:
    found = []
    for instance in instances:
        for line in instance.log.read_text().splitlines():
            if f" {name} " in line + " ":
                fields = dict(re.findall(r"(\w+)=(\S+)", line.split(f" {name}", 1)[1]))
                found.append({**fields, "log": instance.name})
    return found


def instance_settings(make_settings: Callable[..., Settings], tmp_path: Path, name: str,
                      **extra: Any) -> Settings:
    return make_settings(
        data_dir=str(tmp_path / f"var-{name}"),
        agents=AGENTS,
        redaction={"enabled": False},  # three pipelines on two cores: keep them light
        metrics={"host": "127.0.0.1", "port": free_port()},
        outgoing={"transport": "maildir", "interval_seconds": 0.2},
        **extra,
    )


def test_three_instances_started_at_once_on_an_empty_database_all_come_up(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Before: two of three crashed in the schema upgrade (no lock around it)."""
    instances = [Instance(n, instance_settings(make_settings, tmp_path, n), tmp_path,
                          {"POSTDESK_SECRET_KEY": SECRET}) for n in "abc"]
    for instance in instances:
        instance.start()
    try:
        for instance in instances:
            wait_for(instance.listening, timeout=90, interval=0.2)
            wait_for(instance.healthy, timeout=180, interval=0.2)
        assert len({i.ids()[0] for i in instances}) == 3  # three distinct instance ids
    finally:
        codes = [instance.stop() for instance in instances]
    assert codes == [0, 0, 0]
    for instance in instances:
        assert "Traceback" not in instance.log.read_text()


def test_an_instance_with_another_secret_refuses_to_start_in_one_line(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    first = Instance("first", instance_settings(make_settings, tmp_path, "first"), tmp_path,
                     {"POSTDESK_SECRET_KEY": SECRET})
    init = subprocess.run(first.command("init"), cwd=ROOT, env=first.env, capture_output=True,
                          text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    # another secret in the variable
    other = Instance("other", instance_settings(make_settings, tmp_path, "other"), tmp_path,
                     {"POSTDESK_SECRET_KEY": "t" * 40})
    refused = subprocess.run(other.command("serve"), cwd=ROOT, env=other.env,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("postdesk: error: the server secret from POSTDESK_SECRET_KEY is not "
                           "the one this database was set up with")
    # no variable: the instance made a key file of its own
    env = {k: v for k, v in os.environ.items() if k != "POSTDESK_SECRET_KEY"}
    own = Instance("own", instance_settings(make_settings, tmp_path, "own"), tmp_path)
    own.env = {**env, "PYTHONUNBUFFERED": "1"}
    refused = subprocess.run(own.command("serve"), cwd=ROOT, env=own.env, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert "the key file" in line and "secret.key" in line and "POSTDESK_SECRET_KEY" in line
    assert SECRET not in line and "t" * 40 not in line
    # the right secret starts
    first.start()
    try:
        wait_for(first.listening, timeout=90, interval=0.2)
        wait_for(first.healthy, timeout=90, interval=0.2)  # started (signals handled)
    finally:
        assert first.stop() == 0


class Burst:
    """Clients sending mails with one sender each to the instances in turn; a mail counts as
    accepted once its 250 came."""

    def __init__(self, instances: list[Instance], total: int, clients: int = 6) -> None:
        self.instances = instances
        self.total = total
        self.accepted: dict[str, str] = {}  # Message-ID -> sender
        self.sent = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()

    def _next(self) -> int | None:
        with self.lock:
            if self.sent >= self.total:
                return None
            self.sent += 1
            return self.sent

    def _client(self, number: int) -> None:
        while (n := self._next()) is not None:
            sender = f"burst{n}@example.net"
            msg = make_mail(sender=sender, subject=f"Burst {n}")
            instance = self.instances[n % len(self.instances)]
            try:
                with smtplib.SMTP("127.0.0.1", instance.port, timeout=10) as smtp:
                    smtp.send_message(msg)
            except (OSError, smtplib.SMTPException):
                continue  # refused (killed, restarting): not accepted, never sent again
            with self.lock:
                self.accepted[msg["Message-ID"]] = sender


def acknowledgements(instances: list[Instance]) -> Counter[str]:
    """Recipients of the mails in all the instances' maildirs."""
    seen: Counter[str] = Counter()
    for instance in instances:
        for path in (instance.settings.data_dir / "outgoing").glob("*/*"):
            if path.is_file():
                seen[str(email.message_from_bytes(path.read_bytes())["To"])] += 1
    return seen


def test_kill_9_of_one_instance_and_a_graceful_restart_of_another_during_a_burst(
    make_settings: Callable[..., Settings], tmp_path: Path, db_url: str
) -> None:
    """Before: a restarted instance put back every `processing` row, live instances' rows
    included, and both copies finished (two tickets, two acknowledgements of one mail)."""
    if db_url.startswith("sqlite"):
        pytest.skip("several instances on one database: PostgreSQL")
    env = {"POSTDESK_SECRET_KEY": SECRET}
    a = Instance("a", instance_settings(make_settings, tmp_path, "a"), tmp_path, env)
    b = Instance("b", instance_settings(make_settings, tmp_path, "b", instance={"id": "b-stable"}),
                 tmp_path, env)
    c = Instance("c", instance_settings(make_settings, tmp_path, "c"), tmp_path, env)
    instances = [a, b, c]
    for instance in instances:
        instance.start()
    db = open_database(db_url)
    burst = Burst(instances, total=360)
    try:
        for instance in instances:
            wait_for(instance.healthy, timeout=180, interval=0.2)
        burst.start()
        wait_for(lambda: len(burst.accepted) >= 100, timeout=120)
        assert a.process is not None
        a.process.kill()  # kill -9 mid-burst, rows in flight
        a.process.wait()
        killed = a.ids()[-1]
        a.start()  # a new default id
        wait_for(lambda: len(burst.accepted) >= 200, timeout=120)
        wait_for(b.healthy, timeout=180, interval=0.2)
        assert b.stop() == 0  # graceful restart with its stable id
        b.start()
        burst.join()
        wait_for(a.healthy, timeout=180, interval=0.2)
        wait_for(b.healthy, timeout=180, interval=0.2)

        def settled() -> bool:
            with db.session() as session:
                inbox = session.scalars(select(InboxItem.state)).all()
                outbox = session.scalars(select(OutboxItem.state)).all()
            return all(s in ("done", "quarantined") for s in inbox) and all(
                s == "sent" for s in outbox)

        wait_for(settled, timeout=240, interval=0.5)
        with db.session() as session:
            stored = Counter(session.scalars(
                select(Article.message_id).where(Article.direction == "in")).all())
            quarantined = session.scalars(
                select(InboxItem.reason).where(InboxItem.state == "quarantined")).all()
            acks = Counter(session.scalars(
                select(OutboxItem.ticket_id).where(OutboxItem.kind == "requester-received")
            ).all())
    finally:
        burst.join()
        codes = [instance.stop() for instance in instances]
        db.dispose()
    assert codes == [0, 0, 0]
    accepted = burst.accepted
    assert len(accepted) >= 150, len(accepted)  # the rest was refused while a and b restarted
    assert not quarantined, quarantined
    # every accepted mail exactly once: one article, one ticket, one acknowledgement
    assert not set(accepted) - set(stored), "accepted mails are missing"
    assert max(stored.values()) == 1, "a mail was stored twice"
    assert len(acks) == len(stored) and max(acks.values()) == 1
    delivered = acknowledgements(instances)
    assert {accepted[m]: delivered[accepted[m]] for m in accepted} == {
        sender: 1 for sender in accepted.values()}, "an acknowledgement is missing or doubled"
    # only the killed instance's rows were taken over; no live instance lost a claim
    taken = events(instances, "worker.taken_over")
    print(f"accepted {len(accepted)}, stored {len(stored)}, taken over {len(taken)} "
          f"({Counter(e['why'] for e in taken)}), killed {killed}")
    live = {i for inst in instances for i in inst.ids()} - {killed}
    for event in taken:
        claimer = event.get("claimed_by")
        assert claimer not in live or (event["why"] == "own" and claimer == "b-stable"), event
        if claimer == killed:
            assert event["why"] in ("gone", "expired"), event
    assert events(instances, "worker.lease_lost") == []
