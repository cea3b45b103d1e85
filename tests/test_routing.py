"""Routing rules over time: rule files reload while `serve` runs, and a broken change keeps the
last good rules active; plus the `rules check` / `rules test` commands. (What the route stage
decides for a mail: tests/test_pipeline_route.py.)"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from tests.helpers import ROOT, make_mail, running, send, tickets, wait_for, write_config

# Within the example rules' service hours (Mo-Fr 7-18, Europe/Berlin): a Wednesday, 10:00. The
# rule `ausserhalb-dienstzeit` would otherwise tag every mail these tests send in the evening.
OFFICE_HOURS_DATE = "Wed, 18 Nov 2026 10:00:00 +0100"


RULE = """- name: {name}
  when: {{subject: {{contains: [{word}]}}}}
  then: {{queue: {queue}}}
"""


def test_serve_reloads_rules_and_keeps_the_last_good_ones_when_broken(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    settings = make_settings(rules_dir=str(rules), worker={"interval_seconds": 0.05})
    app = App.build(settings, sender=RecordingSender())

    def queue_of(subject: str) -> str | None:
        send(settings, make_mail(subject=subject))
        ticket = wait_for(lambda: next((t for t in tickets(app) if t.subject == subject), None))
        return ticket.queue

    with running(app):
        assert queue_of("Kaffeemaschine kaputt 1") == "allgemein"
        (rules / "05-kueche.yaml").write_text(
            RULE.format(name="kueche", word="Kaffeemaschine", queue="kueche") + "  stopp: true\n"
        )  # a typo: unknown key → the whole change is refused
        time.sleep(1.2)
        assert queue_of("Kaffeemaschine kaputt 2") == "allgemein"  # old rules still route
        assert queue_of("Heizung ausgefallen") == "haus"
        fixed_at = time.monotonic()
        (rules / "05-kueche.yaml").write_text(
            RULE.format(name="kueche", word="Kaffeemaschine", queue="kueche")
        )
        time.sleep(max(0.0, 2.0 - (time.monotonic() - fixed_at)))
        assert queue_of("Kaffeemaschine kaputt 3") == "kueche"  # active within 2 s


class StderrLog:
    """What the service's processes write to stderr (the worker process logs there), read as
    it grows: the worker process is no thread of the test, so caplog does not see it."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd = capfd
        self.text = ""

    def lines(self, event: str) -> list[str]:
        self.text += self.capfd.readouterr().err
        return [line for line in self.text.splitlines() if f" {event} " in f"{line} "]

    def wait(self, event: str, seconds: float) -> list[str]:
        """The lines of `event`, once there is one; fails after `seconds`."""
        return wait_for(lambda: self.lines(event), timeout=seconds)  # type: ignore[no-any-return]


EDITS = {
    "rules": (
        "rules/05-kueche.yaml",
        RULE.format(name="kueche", word="Kaffee", queue="kueche") + "  stopp: true\n",
        "05-kueche.yaml:4: stopp",
        RULE.format(name="kueche", word="Kaffee", queue="kueche"),
    ),
    "templates": (
        "templates/site/de/requester-received.txt.j2",
        "Guten Tag,\n{{ ref }\n",
        "site/de/requester-received.txt.j2:2: syntax error",
        "Guten Tag,\n{{ ref }}\n",
    ),
}


@pytest.mark.parametrize("what", ["rules", "templates"])
def test_serve_logs_an_edit_once_within_2_s_without_any_mail(
    make_settings: Callable[..., Settings], tmp_path: Path, what: str,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    """Defect 6 (issue 11): reload was lazy — after an edit serve logged nothing until the next
    mail. Now the process that routes (the worker process) looks for edits while idle and logs
    a refusal (file:line) or a reload once, within 2 s, with no mail sent."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    (tmp_path / "templates" / "site" / "de").mkdir(parents=True)
    settings = make_settings(rules_dir=str(tmp_path / "rules"),
                             templates_dir=str(tmp_path / "templates"), log_level="INFO")
    app = App.build(settings, sender=RecordingSender())
    relative, broken, error, fixed = EDITS[what]
    log = StderrLog(capfd)
    with running(app):
        log.wait("worker.started", 30)  # the worker process is up (slow on a busy machine)
        (tmp_path / relative).write_text(broken)
        edited = time.monotonic()
        [refused] = log.wait(f"{what}.refused", 2.0)
        assert time.monotonic() - edited <= 2.0 and error in refused
        time.sleep(1.2)  # more looks at the same broken files: logged once only
        assert len(log.lines(f"{what}.refused")) == 1
        (tmp_path / relative).write_text(fixed)
        edited = time.monotonic()
        [reloaded] = log.wait(f"{what}.reloaded", 2.0)
        assert time.monotonic() - edited <= 2.0 and "version=" in reloaded
        time.sleep(1.2)
        assert len(log.lines(f"{what}.reloaded")) == 1
        assert tickets(app) == []  # no mail was needed
    # serve's own process neither routes nor logs reloads: once, not once per process
    assert not [r for r in caplog.records if r.getMessage().startswith(what)]


@pytest.fixture
def config_file(tmp_path: Path, settings: Settings) -> Path:
    return write_config(tmp_path / "config.yaml", settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- name: x\n  when: {subject: {contains: [a]}\n", "bad.yaml:3: invalid YAML"),
        (
            "- name: x\n  when: {subjekt: {contains: [a]}}\n  then: {queue: q}\n",
            "bad.yaml:2: when.subjekt",
        ),
        (
            "- name: x\n  when:\n    subject: {matches: '(unclosed'}\n  then: {queue: q}\n",
            "bad.yaml:3",
        ),
        (
            "- name: x\n  then:\n    queue: q\n    owner: nobody@example.org\n",
            "bad.yaml:4: then.owner",
        ),
    ],
)
def test_rules_check_reports_file_and_line(
    config_file: Path, tmp_path: Path, text: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "candidate"
    folder.mkdir()
    (folder / "bad.yaml").write_text(text)
    assert main(["--config", str(config_file), "rules", "check", str(folder)]) == 1
    _, err = capsys.readouterr()
    assert expected in err and "Traceback" not in err
    assert main(["--config", str(config_file), "rules", "check"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith("ok: ") and "rules in 4 files" in out


def test_rules_test_prints_one_decision_per_mail_and_stores_nothing(
    config_file: Path, tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    mails = tmp_path / "mails"
    mails.mkdir()
    subjects = {"a": "Drucker Störung", "b": "Krankmeldung", "c": "Wann ist offen?"}
    for name, subject in subjects.items():
        mail = make_mail(subject=subject, headers={"Date": OFFICE_HOURS_DATE})  # judged then
        (mails / f"{name}.eml").write_bytes(mail.as_bytes())
    database = Path(settings.database.url.removeprefix("sqlite:///"))
    assert main(["--config", str(config_file), "rules", "test", str(mails)]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{mails / 'a.eml'}: rule 'it-stoerung' → queue it-stoerung, team it (round_robin)",
        f"{mails / 'b.eml'}: rule 'krankmeldung' → queue personal, priority normal, "
        "tags vertraulich, template requester-received",
        f"{mails / 'c.eml'}: no rule matched → queue allgemein",
    ]
    if settings.database.url.startswith("sqlite"):
        assert not database.exists()  # not even opened

    assert (
        main(["--config", str(config_file), "rules", "test", str(mails / "b.eml"), "--json"]) == 0
    )
    [result] = yaml.safe_load(capsys.readouterr()[0])
    assert result["decision"]["queue"] == "personal"
    assert [hit["rule"] for hit in result["hits"]] == ["krankmeldung"]
    assert any(miss["rule"] == "buergerservice" for miss in result["misses"])
