"""Keep the active routing ruleset: load it from `rules_dir` with what the config knows (agents,
teams, templates), reload it when a file changes, and keep the last good one when a change is
broken — the error is logged once, with file and line."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from gateway import logs
from gateway.config import Settings
from gateway.ruleset import Ruleset, RulesetInvalid, load_ruleset, rule_files


def template_names(templates_dir: Path) -> set[str]:
    """Names a rule's `template:` may use: every `<lang>/<name>.txt.j2` that is shipped."""
    return {
        path.name.removesuffix(".txt.j2")
        for path in templates_dir.glob("*/*.txt.j2")
        if not path.name.startswith("_")
    }


def load(settings: Settings, directory: Path | None = None) -> Ruleset:
    """Load the rules in `directory` (default: `rules_dir`); raises RulesetInvalid."""
    return load_ruleset(
        directory or settings.rules_dir,
        agents=[agent.email for agent in settings.agents],
        teams=settings.team_names(),
        templates=template_names(settings.templates_dir),
        timezone=settings.service.timezone,
        default_queue=settings.routing.default_queue,
    )


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: names, sizes and mtimes of the rule files."""
    entries = []
    for path in rule_files(directory):
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((path.name, stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class ActiveRuleset:
    """The ruleset in force. `current()` looks for changed files at most every `check_seconds`;
    a broken change is refused as a whole and the previous ruleset stays active."""

    def __init__(self, settings: Settings, check_seconds: float = 1.0) -> None:
        self.settings = settings
        self.check_seconds = check_seconds
        self._fingerprint = _fingerprint(settings.rules_dir)
        self._checked = time.monotonic()
        self._refused: tuple[tuple[str, int, int], ...] | None = None
        self.ruleset = load(settings)  # at start a broken ruleset is an error, not a fallback
        logs.event("rules.loaded", version=self.ruleset.version, rules=len(self.ruleset.rules))

    def current(self) -> Ruleset:
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            self._reload_if_changed()
        return self.ruleset

    def _reload_if_changed(self) -> None:
        fingerprint = _fingerprint(self.settings.rules_dir)
        if fingerprint in (self._fingerprint, self._refused):
            return
        try:
            ruleset = load(self.settings)
        except RulesetInvalid as exc:
            self._refused = fingerprint  # log a broken state once, not on every check
            for error in exc.errors:
                logs.event(
                    "rules.refused", logging.ERROR, error=str(error), active=self.ruleset.version
                )
            return
        self._fingerprint, self._refused = fingerprint, None
        self.ruleset = ruleset
        logs.event("rules.loaded", version=ruleset.version, rules=len(ruleset.rules))
