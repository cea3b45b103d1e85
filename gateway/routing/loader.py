"""Read a rule file into plain data plus the line of every key and list item, because
`yaml.safe_load` forgets positions and admins need `file:line` for every mistake."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Key = str | int
Path_ = tuple[Key, ...]

# libyaml's parser when PyYAML was built with it (the wheels are): same nodes and marks, several
# times faster, which `status` and the rule reload feel.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_NODES = 100_000  # aliases can expand a small file exponentially ("billion laughs")
MAX_DEPTH = 40  # nesting deeper than this is a mistake, not a rule


@dataclass
class Located:
    """A YAML document as Python data, with `lines[path]` = 1-based line of that key or item."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of `path`, else of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1



def display_path(data: Any, path: Path_) -> str:
    """`when.all[1].subject` for a path into `data`; list indexes only where `data` has a list
    (a single keyword written without brackets is reported as `contains`, not `contains[0]`)."""
    text = ""
    node = data
    for key in path:
        if isinstance(key, int):
            if isinstance(node, list):
                text += f"[{key}]"
                node = node[key] if key < len(node) else None
            continue
        text += f".{key}" if text else key
        node = node.get(key) if isinstance(node, dict) else None
    return text


class YamlProblem(Exception):
    """The file is not usable YAML; `line` is where the parser noticed."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def read_yaml(text: str, loader_class: Any = _Loader) -> tuple[Located, list[YamlProblem]]:
    """Parse one YAML document. Syntax errors raise YamlProblem; duplicate keys are returned
    as problems (PyYAML would silently keep the last one) alongside the data."""
    loader = loader_class(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            if loader_class is not yaml.SafeLoader:  # the pure parser words errors better
                return read_yaml(text, yaml.SafeLoader)
            if not isinstance(exc, yaml.MarkedYAMLError):
                raise
            raise _problem(exc) from exc
        except RecursionError as exc:
            raise YamlProblem(1, "nested too deeply") from exc
        if node is None:
            return Located(None, {}), []
        builder = _Builder(loader)
        builder.lines[()] = node.start_mark.line + 1
        data = builder.build(node, (), 0)
        return Located(data, builder.lines), builder.problems
    finally:
        loader.dispose()


def _problem(exc: yaml.MarkedYAMLError) -> YamlProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "not valid YAML"
    start = exc.context_mark
    if exc.problem and exc.context and start is not None and start.line + 1 != line:
        problem += f" ({exc.context} that starts on line {start.line + 1})"
    return YamlProblem(line, f"invalid YAML: {problem}")


class _Builder:
    """Turns the composed node tree into dicts/lists/scalars, recording lines on the way."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[Path_, int] = {}
        self.problems: list[YamlProblem] = []
        self.count = 0
        self.active: set[int] = set()
        self.own_keys: dict[int, set[int]] = {}  # a node's own keys, before merges were added

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_NODES:
            raise YamlProblem(line, f"more than {MAX_NODES} values (are aliases expanding?)")
        if depth > MAX_DEPTH:
            raise YamlProblem(line, f"nested more than {MAX_DEPTH} levels deep")
        if id(node) in self.active:
            raise YamlProblem(line, "an alias refers to a value that contains it")
        self.active.add(id(node))
        try:
            return self._build(node, path, depth)
        except yaml.MarkedYAMLError as exc:
            raise _problem(exc) from exc
        finally:
            self.active.discard(id(node))

    def _build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.build(item, (*path, index), depth + 1))
            return items
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        return self.loader.construct_object(node)

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[str, Any]:
        own = self.own_keys.setdefault(id(node), {id(key) for key, _ in node.value})
        self.loader.flatten_mapping(node)  # `<<: *anchor` merges come first; own keys override
        result: dict[str, Any] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(YamlProblem(line, "a key must be plain text"))
                continue
            key = str(key_node.value)  # the text as written: `on:` stays "on", not True
            if id(key_node) in own:
                if key in seen:
                    self.problems.append(YamlProblem(line, f"duplicate key {key!r}"))
                    continue
                seen.add(key)
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result
