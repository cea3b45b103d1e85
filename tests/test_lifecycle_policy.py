"""Queue policies (rules/lifecycle/queues.yaml): the shipped file loads, mistakes name their
file and line, and a queue's sections replace the defaults' ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import Settings
from gateway.errors import RulesetInvalid
from gateway.lifecycle.policy import BUILT_IN, Period, load_policies, parse_policies
from tests.helpers import write_config


def test_the_shipped_policies_load() -> None:
    policies = load_policies(Settings())
    personal = policies.for_queue("personal")
    assert personal.retention.period == Period(6, "months")
    assert personal.rule == "personal"
    other = policies.for_queue("it-stoerung")
    assert other.retention.period == Period(2, "years") and other.rule == "defaults"
    assert other.sla.priorities["normal"].first_response == 8 * 60


def test_a_mistake_names_file_line_and_key() -> None:
    raw = b"defaults:\n  sla:\n    priorities:\n      normal: {first_response: soon}\n"
    with pytest.raises(RulesetInvalid) as caught:
        parse_policies(raw, "queues.yaml")
    text = str(caught.value.errors[0])
    assert text.startswith("queues.yaml:4: defaults.sla.priorities.normal.first_response")


def test_an_unknown_calendar_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queues.yaml"
    path.write_text("queues:\n  it:\n    calendar: nights\n")
    with pytest.raises(RulesetInvalid, match="calendar 'nights'"):
        load_policies(Settings(lifecycle_file=path))


def test_without_a_file_the_built_in_defaults_apply(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    assert load_policies(Settings(rules_dir=tmp_path / "rules")) is BUILT_IN
    assert BUILT_IN.for_queue("x").sla.priorities == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("90 days", Period(90, "days")), ("6 Monate", Period(6, "months")),
    ("2 years", Period(2, "years")), ("1 Jahr", Period(1, "years")),
])
def test_periods_in_german_and_english(text: str, expected: Period) -> None:
    raw = f"defaults:\n  retention: {{period: {text}}}\n".encode()
    assert parse_policies(raw, "q.yaml").for_queue(None).retention.period == expected


def test_a_period_counts_months_by_the_calendar() -> None:
    from datetime import UTC, datetime

    assert Period(6, "months").before(datetime(2026, 8, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC)


def test_rules_check_also_checks_the_queue_policies(
    make_settings: Callable[..., Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An admin's one check before a change goes live covers the SLA and deletion periods."""
    policy = tmp_path / "queues.yaml"
    policy.write_text("defaults:\n  retention:\n    period: forever\n")
    config = write_config(tmp_path / "config.yaml", make_settings(lifecycle_file=str(policy)))
    assert main(["--config", str(config), "rules", "check"]) == 1
    _, err = capsys.readouterr()
    assert f"{policy}:3: defaults.retention.period" in err and "Traceback" not in err
    policy.write_text("queues:\n  personal:\n    retention: {period: 6 months}\n")
    assert main(["--config", str(config), "rules", "check"]) == 0
    out, _ = capsys.readouterr()
    assert "ok: queue policies for 1 queue(s) and the defaults" in out and str(policy) in out
