"""Config: the example file is valid as shipped; bad files fail with the key path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError
from tests.helpers import ROOT


def test_example_config_is_valid_and_paths_resolve_next_to_it() -> None:
    settings = load_settings(ROOT / "config.example.yaml")
    assert settings.service.address == "servicedesk@example.org"
    assert settings.database.url == f"sqlite:///{ROOT / 'var' / 'postdesk.db'}"
    assert settings.templates_dir == ROOT / "templates"
    assert settings.agent("Anna.Schmidt@example.org") is not None


def test_a_limit_set_in_part_keeps_the_other_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("limits:\n  warning:\n    per_ticket: 5\n")
    limits = load_settings(path).limits
    assert (limits.warning.per_ticket, limits.warning.per_recipient) == (5, 10)
    assert (limits.requester.per_ticket, limits.window_seconds) == (20, 3600)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("smtp:\n  port: 99999\n", "smtp.port: Input should be less than or equal to 65535"),
        ("service:\n  adress: x@example.org\n", "service.adress: Extra inputs are not permitted"),
        ("service:\n  timezone: Mars/Olympus\n", "unknown time zone 'Mars/Olympus'"),
        ("smtp:\n  accept: [other@example.org]\n", "smtp.accept must contain service.address"),
        ("outgoing:\n  transport: pigeon\n", "outgoing.transport: Input should be 'maildir'"),
        ("limits:\n  warning:\n    per_tick: 5\n",
         "limits.warning.per_tick: Extra inputs are not permitted"),
        ("limits:\n  window_seconds: 0\n", "limits.window_seconds: Input should be greater than 0"),
        ("smtp: [\n", "config.yaml:2"),
        ("- just\n- a list\n", "the top level must be a mapping"),
    ],
)
def test_invalid_config_names_key_path_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("text", "views"),
    [
        ("", {"it": "redacted", None: "redacted"}),
        ("redaction:\n  agent_view: original\n", {"it": "original", None: "original"}),
        ("redaction:\n  agent_view: {personal: original, it: redacted}\n",
         {"personal": "original", "it": "redacted", "haus": "redacted", None: "redacted"}),
    ],
)
def test_agent_view_is_one_word_or_a_word_per_queue(
    tmp_path: Path, text: str, views: dict[str | None, str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    redaction = load_settings(path).redaction
    assert {queue: redaction.agent_view_for(queue) for queue in views} == views
    assert redaction.agent_view_max_bytes == 10 * 1024 * 1024
    assert load_settings(path).limits.original.per_ticket == 10


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redaction:\n  agent_view: unredacted\n", "redaction.agent_view"),
        ("redaction:\n  agent_view: {personal: yes}\n", "redaction.agent_view"),
        ("redaction:\n  agent_view: {'my queue': original}\n", "'my queue' is not a queue name"),
        ("redaction:\n  agent_view_max_bytes: -1\n",
         "redaction.agent_view_max_bytes: Input should be greater than or equal to 0"),
    ],
)
def test_bad_agent_view_names_key_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert expected in str(error.value)
