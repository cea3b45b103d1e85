"""Find regular expressions that Python's backtracking engine can take practically forever on:
a repeated group whose inside can match the same text in more than one way (`(a+)+`, `(a*)*`,
`(a|aa)+`, `(\\w+\\s?)*`). On a line that almost matches, the engine tries every way of
splitting it between the repetitions: 2^n for n characters, so 35 characters are minutes.

The check walks the parsed pattern (`re._parser`); it is conservative on purpose (a rare safe
pattern may be refused, with a hint to rewrite it), and it does not look for the slower-but-
polynomial patterns (`a*a*a*b`): those are what the evaluation budget in PREPARE is for.

Why not a linear-time engine (google-re2): its `\\w`, `\\d` and `\\b` are ASCII-only, so
`\\w+` stops at the "ö" of "Störung": existing rules would silently match other mails."""

from __future__ import annotations

import re
import re._constants as c
import re._parser as sre
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

Node = tuple[Any, Any]  # (opcode, argument) of re._parser

_REPEATS = (c.MAX_REPEAT, c.MIN_REPEAT)
_CHARS = (c.LITERAL, c.NOT_LITERAL, c.ANY, c.IN)
_ZERO_WIDTH = (c.AT, c.ASSERT, c.ASSERT_NOT)
# Characters that stand for all others when sets are compared: Latin-1, a few letters, spaces,
# digits and dashes from elsewhere, plus every character a pattern names itself.
_SAMPLES = frozenset(
    [chr(i) for i in range(256)] + list("ſKİıẞ\u2013\u2014\u2028\u3000\u0663\uff10")
)
_CATEGORIES = {
    c.CATEGORY_DIGIT: re.compile(r"\d"),
    c.CATEGORY_NOT_DIGIT: re.compile(r"\D"),
    c.CATEGORY_SPACE: re.compile(r"\s"),
    c.CATEGORY_NOT_SPACE: re.compile(r"\S"),
    c.CATEGORY_WORD: re.compile(r"\w"),
    c.CATEGORY_NOT_WORD: re.compile(r"\W"),
}

HINT = ("a repeated group whose inside can match the same text in more than one way, like "
        "(a+)+, (a|aa)+ or (\\w+\\s?)*, can take practically forever on some mails; "
        "rewrite it (e.g. (a+)+ as a+, (\\w+\\s?)* as [\\w\\s]*)")


def catastrophic(pattern: str) -> bool:
    """Whether `pattern` has a repeated group that can backtrack exponentially. The pattern
    must compile (check that first)."""
    tree = sre.parse(pattern, re.IGNORECASE)
    alphabet = _SAMPLES | {chr(av) for op, av in _walk(tree) if op in (c.LITERAL, c.NOT_LITERAL)}
    return _Check(alphabet).any_risky(tree)


def _walk(nodes: Iterable[Node]) -> Iterable[Node]:
    """Every node, depth first."""
    for op, av in nodes:
        yield op, av
        for inner in _children(op, av):
            yield from _walk(inner)


def _children(op: Any, av: Any) -> list[Sequence[Node]]:
    if op in (*_REPEATS, c.POSSESSIVE_REPEAT):
        return [av[2]]
    if op == c.SUBPATTERN:
        return [av[3]]
    if op == c.BRANCH:
        return list(av[1])
    if op in (c.ASSERT, c.ASSERT_NOT):
        return [av[1]]
    if op == c.ATOMIC_GROUP:
        return [av]
    if op == c.GROUPREF_EXISTS:
        return [branch for branch in av[1:] if branch is not None]
    return []


class _Check:
    def __init__(self, alphabet: frozenset[str]) -> None:
        self.alphabet = alphabet
        self.everything = frozenset(alphabet)

    def any_risky(self, tree: Sequence[Node]) -> bool:
        for op, av in _walk(tree):
            if op in _REPEATS and av[1] > 1 and self._risky(_unwrap(av[2])):
                return True
        return False

    def _risky(self, body: Sequence[Node]) -> bool:
        """Can the body of a repeat split one text into iterations in more than one way? Not if
        it has a character no loose part can take (a separator, like the "." of (\\w+\\.)+) and
        the part after the last separator cannot run into the part before the first."""
        loose = frozenset().union(*self._loose(body))
        if not loose:
            return False
        separators = [i for i, node in enumerate(body)
                      if _one_char(node) and not (self.chars(node) & loose)]
        if not separators:
            return True
        before, after = body[: separators[0]], body[separators[-1] + 1 :]
        return bool(self.ends(after, last=True) & self.ends(before, last=False))

    def _loose(self, body: Sequence[Node]) -> list[frozenset[str]]:
        """The characters of each part that can match texts of different lengths in more than
        one way: a variable repeat, an alternation whose branches can start alike."""
        parts: list[frozenset[str]] = []
        for op, av in body:
            if op in _REPEATS:
                if av[0] != av[1]:
                    parts.append(self.chars((op, av)))
                else:
                    parts += self._loose(av[2])
            elif op == c.SUBPATTERN:
                parts += self._loose(av[3])
            elif op == c.BRANCH:
                branches = av[1]
                starts = [self.ends(b, last=False) for b in branches]
                overlap = any(starts[i] & starts[j] for i in range(len(starts))
                              for j in range(i + 1, len(starts)))
                twins = len({_freeze(b) for b in branches}) < len(branches)
                if twins or sum(self.nullable(b) for b in branches) > 1:
                    parts.append(self.everything)  # two branches match the same text: 2^n
                elif overlap or any(self.nullable(b) for b in branches):
                    parts.append(self.chars((op, av)))
                else:
                    for branch in branches:
                        parts += self._loose(branch)
            elif op == c.GROUPREF:
                parts.append(self.everything)
            elif op == c.GROUPREF_EXISTS:
                for branch in av[1:]:
                    if branch is not None:
                        parts += self._loose(branch)
            # possessive repeats and atomic groups never give back: not loose
        return parts

    def chars(self, node: Node) -> frozenset[str]:
        """Every character the node can consume."""
        op, av = node
        if op in _CHARS:
            return _char_set(self.alphabet, op, _freeze(av))
        if op in _ZERO_WIDTH:
            return frozenset()
        if op == c.GROUPREF:
            return self.everything
        return frozenset().union(*(self.chars(n) for inner in _children(op, av) for n in inner))

    def ends(self, seq: Sequence[Node], last: bool) -> frozenset[str]:
        """The characters a match of `seq` can start with (or end with, if `last`)."""
        found: frozenset[str] = frozenset()
        for node in reversed(seq) if last else seq:
            found |= self._node_ends(node, last)
            if not self.nullable([node]):
                break
        return found

    def _node_ends(self, node: Node, last: bool) -> frozenset[str]:
        op, av = node
        if op in _CHARS or op in _ZERO_WIDTH or op == c.GROUPREF:
            return self.chars(node)
        return frozenset().union(*(self.ends(inner, last) for inner in _children(op, av)))

    def nullable(self, seq: Sequence[Node]) -> bool:
        """Whether `seq` can match the empty text."""
        return all(self._empty(op, av) for op, av in seq)

    def _empty(self, op: Any, av: Any) -> bool:
        if op in _CHARS:
            return False
        if op in (*_REPEATS, c.POSSESSIVE_REPEAT):
            return av[0] == 0 or self.nullable(av[2])
        if op == c.SUBPATTERN:
            return self.nullable(av[3])
        if op == c.ATOMIC_GROUP:
            return self.nullable(av)
        if op == c.BRANCH:
            return any(self.nullable(b) for b in av[1])
        return True  # zero-width; a back reference or (?(1)..|..) may be empty too


def _one_char(node: Node) -> bool:
    """Whether the node always takes exactly one character, or a fixed number of them from one
    set (`.`, `[a-z]`, `\\d{2}`): such a node can separate the repetitions of a group."""
    op, av = node
    if op in _CHARS:
        return True
    if op in _REPEATS and av[0] == av[1] >= 1:
        return len(av[2]) == 1 and _one_char(av[2][0])
    if op == c.SUBPATTERN:
        return len(av[3]) == 1 and _one_char(av[3][0])
    return False


def _unwrap(body: Sequence[Node]) -> Sequence[Node]:
    """A repeat's body without the group around it: `(x y)+` → x y."""
    while len(body) == 1 and body[0][0] == c.SUBPATTERN:
        body = body[0][1][3]
    return body


def _freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@lru_cache(maxsize=4096)
def _char_set(alphabet: frozenset[str], op: Any, av: Any) -> frozenset[str]:
    """The sample characters a one-character node matches, ignoring case (as rules do)."""
    return frozenset(ch for ch in alphabet
                     if any(_one(op, av, v) for v in {ch, ch.lower(), ch.upper()} if len(v) == 1))


def _one(op: Any, av: Any, ch: str) -> bool:
    if op == c.LITERAL:
        return ord(ch) == av
    if op == c.NOT_LITERAL:
        return ord(ch) != av
    if op == c.ANY:
        return True  # with or without DOTALL: the larger set is the careful answer
    negate = bool(av) and av[0][0] == c.NEGATE
    hit = any(_in_item(item_op, item_av, ch) for item_op, item_av in av)
    return hit != negate


def _in_item(op: Any, av: Any, ch: str) -> bool:
    if op == c.LITERAL:
        return ord(ch) == av
    if op == c.RANGE:
        return av[0] <= ord(ch) <= av[1]
    if op == c.CATEGORY:
        return _CATEGORIES[av].match(ch) is not None
    return False  # NEGATE, handled by the caller
