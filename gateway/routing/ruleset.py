"""Routing rules that admins edit as YAML: load a rules directory, validate every rule (each
mistake reported as `file:line: key.path: message`, and a broken directory refused as a whole so
the caller keeps its last good ruleset), compile it, and evaluate mails against it with an
explanation. Pure: no database, no network; only the rules directory is read.

File format (see the shipped `rules/*.yaml`): each `*.yaml`/`*.yml` file (not starting with a
dot), in file-name order, holds a YAML list of rules:

    - name: it-stoerung          # unique across all files
      description: optional text
      when: {subject: {contains: [Störung, Ausfall]}}   # absent/empty: every mail
      then: {queue: it-stoerung, team: it, assign: round_robin}
      stop: true                 # default; false lets later rules add (see evaluate.py)
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from gateway.errors import RuleError, RulesetInvalid
from gateway.routing import schema
from gateway.routing.conditions import compile_condition, fold
from gateway.routing.evaluate import (
    CompiledRule,
    Evaluation,
    MailFacts,
    RouteDecision,
    RuleHit,
    RuleMiss,
    Ruleset,
)
from gateway.routing.loader import YamlProblem, display_path, read_yaml

__all__ = [
    "CompiledRule",
    "Evaluation",
    "MailFacts",
    "RouteDecision",
    "RuleError",
    "RuleHit",
    "RuleMiss",
    "Ruleset",
    "RulesetInvalid",
    "fold",
    "load_ruleset",
    "rule_files",
]


def load_ruleset(directory: Path, *, agents: Collection[str], teams: Collection[str],
                 templates: Collection[str], timezone: str, default_queue: str) -> Ruleset:
    """Load, validate and compile every rule file in `directory`.

    Raises RulesetInvalid listing every error of every file (never just the first). File
    names in messages are `directory / name` as `directory` was given."""
    zone = _zone(timezone, directory)
    known = schema.Known.of(agents, teams, templates)
    digest = hashlib.sha256()
    rules: list[CompiledRule] = []
    errors: list[RuleError] = []
    files = rule_files(directory)
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            errors.append(RuleError(str(path), None, f"cannot read: {exc.strerror}"))
            continue
        digest.update(f"{path.name}\0{len(raw)}\0".encode() + raw)
        file_rules, file_errors = _load_file(str(path), raw, known, zone)
        rules.extend(file_rules)
        errors.extend(file_errors)
    errors.extend(_duplicate_names(rules))
    if errors:
        order = {str(path): index for index, path in enumerate(files)}
        errors.sort(key=lambda e: (order.get(e.file, -1), e.line or 0))
        raise RulesetInvalid(errors)
    return Ruleset(version=digest.hexdigest()[:12], files=tuple(files), rules=tuple(rules),
                   default_queue=default_queue, zone=zone)


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a directory in load order; editor lock/backup files are skipped."""
    if not directory.exists():
        raise RulesetInvalid([RuleError(str(directory), None, "rules directory not found")])
    if not directory.is_dir():
        raise RulesetInvalid([RuleError(str(directory), None, "not a directory")])
    found = [p for p in directory.iterdir()
             if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()]
    return sorted(found, key=lambda p: p.name)


def _zone(timezone: str, directory: Path) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        message = f"unknown time zone {timezone!r}"
        raise RulesetInvalid([RuleError(str(directory), None, message)]) from exc


def _load_file(label: str, raw: bytes, known: schema.Known,
               zone: ZoneInfo) -> tuple[list[CompiledRule], list[RuleError]]:
    """One file's compiled rules and its errors (if any error, the rules are not used)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return [], [RuleError(label, line, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                                           "save the file as UTF-8")]
    try:
        doc, problems = read_yaml(text)
    except YamlProblem as problem:
        return [], [RuleError(label, problem.line, problem.message)]
    errors = [RuleError(label, p.line, p.message) for p in problems]
    if doc.data is None:
        return [], errors  # an empty file (or only comments) holds no rules
    if not isinstance(doc.data, list):
        return [], [*errors, RuleError(label, doc.line_of(()), "expected a list of rules, "
                                       "each starting with '- name:'")]
    rules: list[CompiledRule] = []
    for index, item in enumerate(doc.data):
        try:
            rule = schema.Rule.model_validate(item, context={"known": known})
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                loc = tuple(err["loc"])
                where = display_path(item, loc)
                message = schema.error_message(err)
                errors.append(RuleError(label, doc.line_of((index, *loc)),
                                        f"{where}: {message}" if where else message))
            continue
        rules.append(CompiledRule(name=rule.name, file=label, line=doc.line_of((index,)),
                                  description=rule.description, stop=rule.stop,
                                  when=compile_condition(rule.when, zone), then=rule.then))
    return rules, errors


def _duplicate_names(rules: list[CompiledRule]) -> list[RuleError]:
    first: dict[str, CompiledRule] = {}
    errors = []
    for rule in rules:
        earlier = first.setdefault(rule.name, rule)
        if earlier is not rule:
            errors.append(RuleError(rule.file, rule.line, f"name: {rule.name!r} is already used "
                                                          f"at {earlier.file}:{earlier.line}"))
    return errors
