"""`postdesk status` and `status --json`: one report, the same facts in both forms; unassigned
open tickets older than an hour are counted with the oldest reference (issue 11)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from gateway.cli import main
from gateway.config import Settings
from storage.engine import Database, open_database
from storage.models import Ticket, utcnow
from tests.helpers import make_mail, write_config

KEYS = {
    "inbox", "outbox", "quarantined", "waiting", "rules", "templates", "mailboxes",
    "unassigned", "rate_limited", "oldest_queued", "cluster",
}


@pytest.fixture
def config(tmp_path: Path, settings: Settings) -> Path:
    return write_config(tmp_path / "config.yaml", settings)


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str]:
    code = main(["--config", str(config), *args])
    return code, capsys.readouterr().out


def age(settings: Settings, ref: str, hours: float) -> None:
    db = open_database(settings.database.url)
    with db.session() as session:
        session.execute(
            update(Ticket)
            .where(Ticket.ref == ref)
            .values(created_at=utcnow() - timedelta(hours=hours))
        )
    db.dispose()


def test_json_is_one_object_and_text_says_the_same(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.eml").write_bytes(make_mail(subject="Frage zum Kantinenplan").as_bytes())
    run(capsys, config, "import", str(tmp_path / "a.eml"))
    code, out = run(capsys, config, "status", "--json")
    report = json.loads(out)
    assert code == 0 and set(report) == KEYS
    assert report["inbox"] == {"queued": 0, "processing": 0, "done": 1, "quarantined": 0}
    assert report["outbox"]["queued"] == 1  # the acknowledgement; nobody to notify
    assert report["quarantined"] == {"inbox": 0, "outbox": 0}
    rules = report["rules"]
    assert rules["valid"] is True and rules["count"] > 0 and len(rules["version"]) == 12
    templates = report["templates"]
    assert templates["valid"] is True and templates["count"] > 0 and templates["version"]
    assert report["mailboxes"] == []
    assert report["unassigned"] == {
        "older_than_minutes": 60, "count": 0, "oldest": None, "oldest_created_at": None
    }
    assert report["rate_limited"] == {
        "window_seconds": 3600, "tickets": 0, "mails": 0, "limits": {}, "latest": None
    }
    assert report["oldest_queued"]["inbox"] is None
    assert report["oldest_queued"]["outbox"]["age_seconds"] >= 0  # the acknowledgement
    # no `serve` ever ran on this database: no leader, no instance, no job run, and no line
    assert report["cluster"] == {"leader": None, "instances": [], "jobs": []}
    code, out = run(capsys, config, "status")
    lines = out.splitlines()
    assert lines.pop(3).startswith("oldest queued: outbox ")
    assert lines == [
        "inbox:  queued 0, processing 0, done 1, quarantined 0",
        "outbox: queued 1, sending 0, sent 0, failed 0, quarantined 0",
        "quarantined: inbox 0, outbox 0",
        f"rules:  version {rules['version']}, {rules['count']} rules",
        f"templates: version {templates['version']}, {templates['count']} files",
        "unassigned: none older than 1 h",
        "rate limited: none in the last hour",
    ]


def test_unassigned_tickets_older_than_an_hour(
    tmp_path: Path, config: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    subjects = ["Frage zum Kantinenplan", "Parkplatz", "VPN Störung", "Neue Frage"]
    for number, subject in enumerate(subjects):
        (tmp_path / f"{number}.eml").write_bytes(make_mail(subject=subject).as_bytes())
    run(capsys, config, "import", *(str(tmp_path / f"{n}.eml") for n in range(4)))
    age(settings, "LDS-1", 3)  # unassigned, 3 h: counted, the oldest
    age(settings, "LDS-2", 1.5)  # unassigned, 1.5 h: counted
    age(settings, "LDS-3", 5)  # owned by the IT team's agent: not counted
    # LDS-4: unassigned but new: not counted
    code, out = run(capsys, config, "status", "--json")
    assert code == 0
    unassigned = json.loads(out)["unassigned"]
    assert (unassigned["count"], unassigned["oldest"]) == (2, "LDS-1")
    out = run(capsys, config, "status")[1]
    [line] = [line for line in out.splitlines() if line.startswith("unassigned:")]
    assert line.startswith(
        "unassigned: 2 open tickets without owner older than 1 h, oldest LDS-1 (since "
    )


def test_broken_rules_are_reported_invalid(
    tmp_path: Path, settings: Settings, db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "10-bad.yaml").write_text("- name: x\n  then: {queue: [}\n")
    data = settings.model_dump(mode="json")
    data["rules_dir"] = str(rules)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    code, out = run(capsys, config, "status", "--json")
    report = json.loads(out)["rules"]
    assert code == 0 and report["valid"] is False and report["version"] is None
    assert "10-bad.yaml:2" in report["errors"][0]
    code, out = run(capsys, config, "status")
    assert "rules:  INVALID (1 errors; serve keeps the last good rules): " in out


def test_status_remembers_validity_until_a_file_changes(
    settings: Settings, tmp_path: Path
) -> None:
    import shutil

    from gateway import validity

    templates = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, templates)
    site = settings.model_copy(update={"templates_dir": templates})
    first = validity.remembered(site, "templates")
    assert first.valid and (site.data_dir / "cache" / "templates-validity.json").is_file()
    assert validity.remembered(site, "templates") == first
    layout = templates / "_layout.txt.j2"
    layout.write_text(layout.read_text() + "{% if %}\n")
    broken = validity.remembered(site, "templates")
    assert not broken.valid and "_layout.txt.j2" in broken.errors[0]
