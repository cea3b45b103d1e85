"""Keep the active routing ruleset: load it from `rules_dir` with what the config knows (agents,
teams, templates), reload it when a file changes, and keep the last good one when a change is
broken — the error is logged once, with file and line (see gateway.reloading)."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.errors import PostdeskError
from gateway.reloading import Reloading, State, files_fingerprint
from gateway.routing.ruleset import Ruleset, RulesetInvalid, load_ruleset, rule_files


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


def _fingerprint(settings: Settings) -> Hashable:
    """Cheap change detection: names, sizes and mtimes of the rule files, and the template
    names a rule may use (a rule naming a template added since becomes valid)."""
    try:
        files = rule_files(settings.rules_dir)
    except RulesetInvalid:
        files = []  # no rules folder: load() says so
    return files_fingerprint(files), frozenset(template_names(settings.templates_dir))


class ActiveRuleset(Reloading[Ruleset]):
    """The ruleset in force. `current()` looks for changed files at most every `check_seconds`
    (`refresh()` looks now); a broken change is refused as a whole, logged once with file and
    line, and the previous ruleset stays active."""

    what = "rules"

    def __init__(
        self, settings: Settings, check_seconds: float = 1.0, start: State[Ruleset] | None = None
    ) -> None:
        self.settings = settings
        super().__init__(check_seconds, start)

    @property
    def ruleset(self) -> Ruleset:
        return self.value

    def load(self) -> Ruleset:
        return load(self.settings)

    def fingerprint(self) -> Hashable:
        return _fingerprint(self.settings)

    def describe(self, value: Ruleset) -> dict[str, Any]:
        return {"version": value.version, "rules": len(value.rules)}

    def errors(self, exc: PostdeskError) -> list[str] | None:
        return [str(error) for error in exc.errors] if isinstance(exc, RulesetInvalid) else None
