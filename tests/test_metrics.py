"""The monitoring endpoint of a real `serve` (issue 11, operations): `/metrics` counters move
during an SMTP burst, also those counted in the worker and prepare processes; `/healthz` is 503
while the worker process is dead and 200 again once the supervisor restarted it; a killed
worker jams neither the intake nor serve's shutdown."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway import validity
from gateway.app import App
from gateway.config import Settings
from gateway.opshttp import Health
from gateway.serve import Service
from storage.engine import open_database
from tests.fakes.smtp import Sink
from tests.helpers import ROOT, make_mail, serving, wait_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]




def get(app: Service, path: str) -> tuple[int, str]:
    assert app.ops is not None
    url = f"http://127.0.0.1:{app.ops.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def scrape(app: Service) -> tuple[Samples, str]:
    status, body = get(app, "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, body


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def burst(app: Service, count: int, start: int = 0) -> None:
    """`count` mails in one SMTP session, as an MTA flushing its queue does."""
    with smtplib.SMTP(app.settings.smtp.host, app.settings.smtp.port, timeout=30) as smtp:
        for number in range(start, start + count):
            mail = make_mail(
                subject=f"Frage Nr. {number} zum Kantinenplan",
                body=f"Guten Tag,\nich bin Erika Muster, Telefon 0151 2345678{number % 10}.\n",
            )
            smtp.send_message(mail)


def processed(app: Service) -> float:
    samples, _ = scrape(app)
    return sum(v for (name, _), v in samples.items() if name == "postdesk_mails_processed_total")


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[Service]:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        metrics={"host": "127.0.0.1", "port": 0},
    )
    with serving(App.build(settings)) as app:
        wait_for(lambda: get(app, "/healthz")[0] == 200, timeout=60)  # the worker is ready
        yield app


def test_counters_move_during_an_smtp_burst(service: Service) -> None:
    burst(service, 6)
    wait_for(lambda: processed(service) >= 6, timeout=60)
    first, _ = scrape(service)
    burst(service, 6, start=6)
    wait_for(lambda: processed(service) >= 12, timeout=60)
    second, body = scrape(service)

    replies = "postdesk_smtp_replies_total"
    assert value(second, replies, code="354") == 12  # one DATA per mail
    assert value(second, replies, code="250") > value(first, replies, code="250") >= 6 * 3
    done = "postdesk_mails_processed_total"
    assert value(first, done, outcome="done", stage="figures") == 6
    assert value(second, done, outcome="done", stage="figures") == 12
    stages = "postdesk_stage_duration_seconds_count"
    for stage in ("parse", "analyse"):  # timed in the prepare process, a child of the worker
        assert value(second, stages, stage=stage) == 12
    # in the worker process
    for stage in ("guard", "route", "redact", "record", "notify", "figures"):
        assert value(second, stages, stage=stage) == 12
    assert value(second, "postdesk_redactions_total", entity="PERSON") >= 12
    assert value(second, "postdesk_redactions_total", entity="PHONE_NUMBER") >= 12
    assert value(second, "postdesk_inbox_mails", state="done") == 12
    assert ("postdesk_inbox_oldest_age_seconds", (("state", "queued"),)) in second
    assert value(second, "postdesk_quarantined_mails", box="inbox") == 0
    for gauge in ("database_up", "worker_up", "rules_valid", "templates_valid"):
        assert value(second, f"postdesk_{gauge}") == 1
    [rules_version] = [dict(labels)["version"] for name, labels in second
                       if name == "postdesk_rules_info"]
    assert rules_version == validity.rules(service.settings).version
    # labels never carry personal data
    # (names and label values only: a sample's value may contain "0151" among its digits)
    lowered = "\n".join(line.rsplit(" ", 1)[0] for line in body.lower().splitlines())
    assert "erika" not in lowered and "example.net" not in lowered and "0151" not in lowered


def test_healthz_is_503_while_the_worker_is_dead(service: Service) -> None:
    assert get(service, "/healthz") == (200, "ok\n")
    assert service.runner is not None
    killed = service.runner.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    # judged at request time from the process itself: 503 from the moment it is gone, for at
    # least the supervisor's one-second pause plus the new process's start
    _status, body = wait_for(
        lambda: (r := get(service, "/healthz"))[0] == 503 and r, timeout=10, interval=0.02
    )
    assert body == "worker: not running\n"
    wait_for(lambda: get(service, "/healthz")[0] == 200, timeout=60)
    assert service.runner.pid != killed
    samples, _ = scrape(service)
    assert value(samples, "postdesk_worker_restarts_total") == 1
    assert value(samples, "postdesk_worker_up") == 1
    # the dead worker jammed nothing: the intake still wakes the new worker, and serve stops
    burst(service, 1)
    wait_for(lambda: processed(service) >= 1, timeout=60)


def test_healthz_is_503_while_the_rules_on_disk_are_broken(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    settings = make_settings(
        rules_dir=str(rules), worker={"mode": "thread", "interval_seconds": 0.05},
        metrics={"host": "127.0.0.1", "port": 0},
    )
    with serving(App.build(settings)) as app:
        # serve listens before its worker thread has reported in: healthy once it has
        wait_for(lambda: get(app, "/healthz") == (200, "ok\n"), timeout=30)
        burst(app, 1)  # worker.mode thread: the pipeline counts into serve's own registry
        wait_for(lambda: processed(app) == 1, timeout=60)
        broken = rules / "99-kaputt.yaml"
        broken.write_text("- name: kaputt\n  then: {queue: [}\n")
        assert get(app, "/healthz") == (503, "rules: invalid (1 errors)\n")
        samples, _ = scrape(app)
        assert value(samples, "postdesk_rules_valid") == 0
        assert value(samples, "postdesk_templates_valid") == 1
        broken.unlink()
        assert get(app, "/healthz") == (200, "ok\n")
        assert get(app, "/nothing")[0] == 404


def test_healthz_needs_a_database_that_answers(settings: Settings) -> None:
    class Running:
        restarts = 0

        def alive(self) -> bool:
            return True

    checks = validity.Checks(settings)
    db = open_database(settings.database.url)  # a file, but no tables: not initialised
    try:
        [problem] = Health(db, Running(), checks).problems()
        # the driver's error class: OperationalError (SQLite), UndefinedTable (PostgreSQL)
        assert problem in ("database: OperationalError", "database: UndefinedTable")
    finally:
        db.dispose()


def test_metrics_are_off_unless_configured(settings: Settings) -> None:
    assert settings.metrics is None
