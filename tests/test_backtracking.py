"""Issue 12, defect 3: one regex rule stopped all intake. Patterns that can backtrack
exponentially are refused wherever rules are loaded (`rules check`, serve's reload), and an
evaluation that overruns its CPU budget costs only its mail (quarantined at stage route with
the rule's file:line), inline or in the prepare process, whose child is then replaced."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.errors import RuleOverrun, RulesetInvalid
from gateway.pipeline.context import IncomingMail
from gateway.pipeline.prepare import ProcessPreparer, prepare
from gateway.routing import active as routing
from gateway.routing.backtracking import catastrophic
from storage.models import utcnow
from tests.helpers import make_mail, write_config

EXPONENTIAL = [
    r"(a+)+$", r"(a*)*$", r"(a|aa)+$", r"(\w+\s?)*$", r"^(\w+\s?)*$", r"(a|a)*b", r"(\s|.)*x",
    r"((ab)*|a)*c", r"(a+ba+)+$", r"(x+x+)+y", r"(\d+)*x", r"(?:[a-z]+\d*)+!", r"((a+)b?)+c",
    r"(a+){2,}x", r"(a?a?)+b", r"(\w+)+@", r"(?:(?:\w+)|(?:\d+))+;",
]
FINE = [
    r"(\w+\.)+de", r"(\d+\.){3}\d+", r"(?:re|aw|fw|wg):\s*", r"\bstörung\b", r"^(re|aw):",
    r"(ab)+", r"a+b+", r"(\s*,\s*\w+)*", r"(ba+)+$", r"(?>a+)+$", r"(a++)+$", r"(\d{2})+",
    r"[\w.-]+@[\w-]+\.\w+", r"ticket\s*#?\d+", r".*foo.*bar", r"(a+b)+",
    r"(?:[A-Z]{2}\d{2}\s?){5}", r"x(?=a+)", r"LDS-\d+", r"(?:dringend|eilt)!+",
]
SLOW = r"\w*\w*\w*\w*\w*\w*!x"  # polynomial, not exponential: the check lets it pass


@pytest.mark.parametrize("pattern", EXPONENTIAL)
def test_patterns_that_backtrack_exponentially_are_found(pattern: str) -> None:
    assert catastrophic(pattern)


@pytest.mark.parametrize("pattern", FINE)
def test_ordinary_patterns_pass(pattern: str) -> None:
    assert not catastrophic(pattern)


def test_what_is_refused_really_is_slow_and_what_passes_is_not() -> None:
    """The check's premise, measured: (a+)+$ takes 4 times longer for each 2 characters more
    of a text that almost matches (30 of them: minutes); (\\w+\\.)+de, which the check allows,
    takes no time on 1,000 (it is quadratic on a long enough text: the budget's case)."""
    script = "import re,sys,time; t=time.perf_counter(); re.search(sys.argv[1], sys.argv[2]); " \
             "print(time.perf_counter()-t)"
    times = [float(subprocess.run([sys.executable, "-c", script, r"(a+)+$", "a" * n + "!"],
                                  capture_output=True, text=True, timeout=60).stdout)
             for n in (18, 20, 22)]
    assert times[2] > 2 * times[1] > 4 * times[0]
    started = time.perf_counter()
    re.search(r"(\w+\.)+de", "ab." * 333 + "x", re.IGNORECASE)
    assert time.perf_counter() - started < 0.1


def rules_dir(tmp_path: Path, pattern: str, name: str = "00-slow.yaml") -> Path:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(
        "# a rule an admin wrote\n"
        "- name: eilig\n"
        f"  when: {{subject: {{matches: '{pattern}'}}}}\n"
        "  then: {queue: eilig}\n"
    )
    return folder


def test_rules_check_refuses_a_pattern_that_backtracks_with_file_and_line(
    tmp_path: Path, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = rules_dir(tmp_path, r"(a+)+$")
    config = write_config(tmp_path / "config.yaml", settings)
    code = main(["--config", str(config), "rules", "check", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    first = err.splitlines()[0]
    assert first.startswith(f"{folder / '00-slow.yaml'}:3: when.subject.matches: ")
    assert "(a+)+$" in first and "practically forever" in first
    assert err.splitlines()[-1] == "1 error(s); the rules were not accepted"


def test_a_header_pattern_is_checked_too(tmp_path: Path, settings: Settings) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "- name: x\n  when: {header: {name: X-Ticket, matches: '(\\d+)*x'}}\n  then: {queue: q}\n"
    )
    with pytest.raises(RulesetInvalid) as refused:
        routing.load(settings, folder)
    assert str(refused.value.errors[0]).startswith(f"{folder / 'a.yaml'}:2: when.header.matches")


def item(number: int, subject: str) -> IncomingMail:
    raw = make_mail(subject=subject).as_bytes()
    return IncomingMail(id=number, source="smtp", raw=raw, received_at=utcnow())


def test_inline_an_evaluation_over_the_budget_fails_the_mail_at_route_naming_the_rule(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """Inline nothing can stop a running evaluation; one found over the budget afterwards
    quarantines its mail like the prepare process would (the same rules would overrun again)."""
    settings = make_settings(rules_dir=str(rules_dir(tmp_path, SLOW)),
                             redaction={"enabled": False},
                             routing={"evaluation_budget_seconds": 0.05})
    ruleset = routing.load(settings)
    slow = prepare(item(1, "a" * 40 + "!"), settings, None, ruleset)  # ~1 s
    assert slow.stage == "route"
    assert slow.error is not None and slow.error.startswith("RuleOverrun: evaluating rule 'eilig'")
    assert f"{tmp_path / 'rules' / '00-slow.yaml'}:2" in slow.error
    quick = prepare(item(2, "Drucker"), settings, None, ruleset)
    assert quick.error is None and quick.route is not None and quick.route.queue == "allgemein"


def test_the_prepare_process_is_replaced_when_the_rules_overrun_and_the_next_mail_goes_on(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(rules_dir=str(rules_dir(tmp_path, SLOW)),
                             redaction={"enabled": False},
                             routing={"evaluation_budget_seconds": 1})
    ruleset = routing.load(settings)
    preparer = ProcessPreparer(settings)
    try:
        preparer.submit(item(1, "Drucker"), ruleset)
        assert preparer.take().route is not None  # the child is up
        assert preparer._process is not None
        stuck = preparer._process
        preparer.submit(item(2, "a" * 200 + "!"), ruleset)  # years, at this length
        preparer.submit(item(3, "Monitor flackert"), ruleset)
        started = time.monotonic()
        with pytest.raises(RuleOverrun) as overrun:
            preparer.take()
        assert time.monotonic() - started < 10  # the budget, not the prepare timeout (120 s)
        assert (overrun.value.stage, overrun.value.transient) == ("route", False)
        assert str(overrun.value).startswith("RuleOverrun: evaluating rule 'eilig' at ")
        assert f"{tmp_path / 'rules' / '00-slow.yaml'}:2 " in str(overrun.value)
        assert not stuck.is_alive()  # killed, not left spinning
        after = preparer.take()
        assert after.inbox_id == 3 and after.error is None
        assert after.route is not None and after.ruleset is ruleset
    finally:
        preparer.close()


def test_the_prepare_process_evaluates_with_the_rules_the_worker_has_after_a_reload(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(rules_dir=str(rules_dir(tmp_path, "eilt")),
                             redaction={"enabled": False})
    first = routing.load(settings)
    rules_dir(tmp_path, "dringend")  # the edit the worker's reload picked up
    second = routing.load(settings)
    preparer = ProcessPreparer(settings)
    try:
        preparer.submit(item(1, "eilt sehr"), first)
        preparer.submit(item(2, "eilt sehr"), second)
        preparer.submit(item(3, "dringend"), second)
        routed = [preparer.take() for _ in range(3)]
        assert [p.route.queue for p in routed if p.route] == ["eilig", "allgemein", "eilig"]
        assert [p.ruleset for p in routed] == [first, second, second]
    finally:
        preparer.close()


def test_a_reload_with_such_a_pattern_keeps_the_rules_in_force_and_logs_file_and_line(
    make_settings: Callable[..., Settings], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from gateway.routing.active import ActiveRuleset

    folder = rules_dir(tmp_path, "eilt")
    active = ActiveRuleset(make_settings(rules_dir=str(folder)), check_seconds=0)
    before = active.ruleset
    rules_dir(tmp_path, r"(\w+\s?)*$")  # the admin's edit
    assert active.refresh() is False
    assert active.ruleset is before
    [refused] = [r.getMessage() for r in caplog.records if "rules.refused" in r.getMessage()]
    assert f"{folder / '00-slow.yaml'}:3: when.subject.matches" in refused
