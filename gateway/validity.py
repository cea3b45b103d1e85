"""Are the admin-edited files that serve depends on valid right now, and which version are they?
Answered for `postdesk status`, the metrics and `/healthz` from the files on disk (a running
serve keeps its last good rules while the files are broken), and cached until a file changes,
so a scrape every few seconds costs a few stat() calls."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Settings
from gateway.reloading import files_fingerprint

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class Validity:
    """One kind of file: valid or not, its version (a content hash) and the errors, each as
    `file:line: message` (never mail content: these are the admins' own files)."""

    valid: bool
    version: str | None
    count: int  # rules, or template files
    errors: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Validity:
        errors = data["errors"]
        count = data["count"]
        version = data["version"]
        assert isinstance(errors, list) and isinstance(count, int)
        return cls(bool(data["valid"]), str(version) if version else None, count, tuple(errors))

    def to_json(self) -> dict[str, object]:
        return {
            "valid": self.valid,
            "version": self.version,
            "count": self.count,
            "errors": list(self.errors),
        }


def rules(settings: Settings) -> Validity:
    """The rules in `rules_dir`, validated as `postdesk rules check` does."""
    from gateway.errors import RulesetInvalid
    from gateway.routing import active as routing

    try:
        ruleset = routing.load(settings)
    except RulesetInvalid as exc:
        return Validity(False, None, 0, tuple(str(error) for error in exc.errors))
    return Validity(True, ruleset.version, len(ruleset.rules))


def templates(settings: Settings) -> Validity:
    """Every template parses and renders against sample views, as `postdesk templates check`
    judges them (the same function)."""
    from gateway.errors import TemplatesInvalid
    from gateway.outgoing.templateset import check

    try:
        renderer = check(settings)
    except TemplatesInvalid as exc:
        return Validity(False, None, 0, tuple(error.located() for error in exc.errors))
    return Validity(True, renderer.version, len(renderer.sources.files))


def _fingerprint(root: Path) -> Fingerprint:
    return files_fingerprint(sorted(root.rglob("*")) if root.is_dir() else [])


@dataclass
class _Cached:
    roots: tuple[Path, ...]
    check: Callable[[Settings], Validity]
    fingerprint: Fingerprint | None = None
    result: Validity | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, settings: Settings) -> Validity:
        with self.lock:
            fingerprint = tuple(e for root in self.roots for e in _fingerprint(root))
            if self.result is None or fingerprint != self.fingerprint:
                self.result, self.fingerprint = self.check(settings), fingerprint
            return self.result


class Checks:
    """Rules and templates validity for a long-running process, recomputed only after a file
    in `rules_dir` or `templates_dir` changed (names, sizes, mtimes)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # rules name templates (`template:`), so a template file change re-checks them too
        self._rules = _Cached((settings.rules_dir, settings.templates_dir), rules)
        self._templates = _Cached((settings.templates_dir,), templates)

    def rules(self) -> Validity:
        return self._rules.get(self.settings)

    def templates(self) -> Validity:
        return self._templates.get(self.settings)

    def both(self) -> tuple[tuple[str, Validity], tuple[str, Validity]]:
        return ("rules", self.rules()), ("templates", self.templates())


def remembered(settings: Settings, kind: str) -> Validity:
    """`rules(settings)` or `templates(settings)` (`kind`), remembered in the data folder until
    a file changes: a short-lived `postdesk status` then costs a few stat() calls instead of
    rendering every template (about 0.2 s). The file holds only versions and `file:line`
    errors of the admins' own files; one that cannot be read or written is simply not used."""
    check, roots = {
        "rules": (rules, (settings.rules_dir, settings.templates_dir)),
        "templates": (templates, (settings.templates_dir,)),
    }[kind]
    fingerprint = [list(entry) for root in roots for entry in _fingerprint(root)]
    # rules name agents, teams and templates of the config: its values are part of the key
    config = settings.model_dump_json()
    key = hashlib.sha256(json.dumps([kind, config, fingerprint]).encode()).hexdigest()
    path = settings.data_dir / "cache" / f"{kind}-validity.json"
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return Validity.from_json(data["result"])
    except (OSError, ValueError, KeyError, TypeError, AssertionError):
        pass
    result = check(settings)
    try:
        from storage import private

        private.make_dirs(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # 0600
        with os.fdopen(fd, "w") as handle:
            json.dump({"key": key, "result": result.to_json()}, handle)
        os.replace(tmp, path)
    except OSError:
        pass
    return result
