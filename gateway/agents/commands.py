"""Read the #commands an agent puts at the top of a reply, as plain data, without applying them.

Agents work tickets from their own mail client, so the command language has to survive real
typing: German and English words, any case, `# erledigt` with a space, a trailing full stop,
umlauts typed as `ue`. It must also be strict where leniency would hurt: a line that starts
with `#` but is not a command (a typo such as `#erledgt`) is an error, never text, so it is
not relayed to the requester. `parse_commands` checks syntax; `validate` checks arguments
against the agent directory and queues. The caller applies commands only if there is no
error at all (atomic), and leaves `remaining_text` for the requester.

The block: after optional blank lines, every line starting with `#` (blank lines between are
allowed) up to the first line that does not. Commands below that line are ordinary text;
`misplaced_commands` finds them in the new text so the agent can be told they did nothing.

    #erledigt | #close | #resolve         status resolved
    #warten | #wartet | #pending          status pending (waiting for the requester)
    #offen | #open                        status open
    #zuweisen NAME|me, #assign NAME|me    owner (NAME: address, full name or unique first name)
    #übernehmen | #uebernehmen | #take    owner = the acting agent
    #priorität | #prioritaet | #prio | #priority  niedrig|normal|hoch|dringend / low|…|urgent
    #queue NAME                           move to a queue
    #tag TAG [TAG …]                      add tags
    #intern | #note                       the whole mail is an internal note, not relayed
    #original [N]                         the unredacted original of article N (default: the
                                          requester's newest mail), to the agent alone
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from gateway.mail.words import PRIORITIES, STATUS, fold

# Words are compared in their folded ASCII form (gateway.mail.words.fold):
# "Übernehmen" -> "uebernehmen".
ASSIGN = frozenset({"zuweisen", "assign"})
TAKE = frozenset({"uebernehmen", "take"})
PRIORITY = frozenset({"prioritaet", "prio", "priority"})
QUEUE = frozenset({"queue"})
TAG = frozenset({"tag"})
NOTE = frozenset({"intern", "note"})
ORIGINAL = frozenset({"original"})
ME = frozenset({"me", "mich", "ich"})
KNOWN = frozenset(STATUS) | ASSIGN | TAKE | PRIORITY | QUEUE | TAG | NOTE | ORIGINAL

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_COMMAND = re.compile(r"#\s*(?P<word>[^\s:=]*)\s*[:=]?\s*(?P<arg>.*)", re.DOTALL)
_SLUG = re.compile(r"\w[\w.-]{0,63}")  # the same names routing rules accept for queues/tags
_TRAILING = ".!,;"

_ErrorFn = Callable[[str, str], None]
_AddFn = Callable[[str, "str | None"], None]


@dataclass(frozen=True, slots=True)
class Command:
    """One command: `kind` is status|assign|priority|queue|tag|note|original; `value` is
    canonical (for original: the article number as digits, or None for the default one)."""

    kind: str
    value: str | None
    line_no: int  # 1-based line in the text given to parse_commands
    line: str


@dataclass(frozen=True, slots=True)
class CommandError:
    """A bad command line; `code` is stable for templates, `message` is English prose."""

    line_no: int
    line: str
    message: str
    code: str = "invalid"


@dataclass(slots=True)
class CommandBlock:
    """The parsed block: commands in line order, the text below it, and the syntax errors."""

    commands: list[Command] = field(default_factory=list)
    remaining_text: str = ""
    errors: list[CommandError] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        """True if the mail is an internal note (`#intern`): store it, relay nothing."""
        return any(c.kind == "note" for c in self.commands)


class CommandValueError(ValueError):
    """An argument that does not name exactly one agent or queue."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_commands(text: str) -> CommandBlock:
    """Split the command block off the top of `text`; syntax errors name their line."""
    lines = text.splitlines(keepends=True)
    block = CommandBlock()
    end = 0
    for index, raw in enumerate(lines):
        line = _clean(raw)
        if not line:
            continue
        if not line.startswith("#"):
            break
        end = index + 1
        _parse_line(line, index + 1, block)
    block.errors.extend(_conflicts(block.commands))
    block.errors.sort(key=lambda e: e.line_no)
    if end:
        rest = lines[end:]
        while rest and not _clean(rest[0]):
            rest.pop(0)
        block.remaining_text = "".join(rest)
    else:
        block.remaining_text = text
    return block


def misplaced_commands(text: str) -> list[CommandError]:
    """Lines of `text` (give it the new text, quotes already stripped) that are a valid command
    but stand below the top, so they were not applied: the agent should hear about them."""
    errors = []
    for index, raw in enumerate(text.splitlines()):
        line = _clean(raw)
        if not line.startswith("#"):
            continue
        probe = CommandBlock()
        _parse_line(line, index + 1, probe)
        if probe.commands and not probe.errors:
            message = "commands only work on the first lines of a reply; this one was not applied"
            errors.append(CommandError(index + 1, line, message, "misplaced"))
    return errors


def validate(
    block: CommandBlock,
    *,
    agents: Sequence[tuple[str, str]],
    acting_agent: str,
    queues: Collection[str] | None,
) -> list[CommandError]:
    """Every error of the block: its syntax errors plus unknown/ambiguous agents and queues.

    `agents` are (email, name) pairs; `queues` None means any queue name is accepted.
    """
    errors = list(block.errors)
    for command in block.commands:
        try:
            if command.kind == "assign" and command.value is not None:
                resolve_agent(command.value, agents=agents, acting_agent=acting_agent)
            elif command.kind == "queue" and command.value is not None and queues is not None:
                resolve_queue(command.value, queues)
        except CommandValueError as exc:
            errors.append(CommandError(command.line_no, command.line, exc.message, exc.code))
    return sorted(errors, key=lambda e: e.line_no)


def resolve_agent(value: str, *, agents: Sequence[tuple[str, str]], acting_agent: str) -> str:
    """The agent's address for `me`, an address, a full name, an address local part or a
    unique first name (umlauts may be typed as ae/oe/ue)."""
    wanted = fold(value)
    if wanted in ME:
        return acting_agent.strip().lower()
    if "@" in wanted:
        matches = [email for email, _ in agents if email.strip().lower() == wanted]
    else:
        matches = _by_name(wanted, agents)
    if len(matches) > 1:
        raise CommandValueError("ambiguous-agent", f"'{value}' names more than one agent")
    if not matches:
        raise CommandValueError("unknown-agent", f"no agent is called '{value}'")
    return matches[0].strip().lower()


def resolve_queue(value: str, queues: Collection[str]) -> str:
    """The queue's configured spelling for a case-insensitive name."""
    matches = [queue for queue in queues if queue.casefold() == value.casefold()]
    if not matches:
        raise CommandValueError("unknown-queue", f"there is no queue '{value}'")
    return matches[0]


def _by_name(wanted: str, agents: Sequence[tuple[str, str]]) -> list[str]:
    """Full name, then address local part, then first name: the first rule that matches."""
    keys: tuple[Callable[[str, str], str], ...] = (
        lambda email, name: fold(name),
        lambda email, name: fold(email.partition("@")[0]),
        lambda email, name: (fold(name).split() or [""])[0],
    )
    for key in keys:
        found = [email for email, name in agents if key(email, name) == wanted]
        if found:
            return found
    return []


def _parse_line(line: str, line_no: int, block: CommandBlock) -> None:
    match = _COMMAND.fullmatch(line)  # matches every line that starts with "#"
    word = fold(match["word"] if match else "").rstrip(_TRAILING)
    arg = (match["arg"] if match else "").strip().rstrip(_TRAILING).strip()

    def error(message: str, code: str) -> None:
        block.errors.append(CommandError(line_no, line, message, code))

    def add(kind: str, value: str | None) -> None:
        block.commands.append(Command(kind, value, line_no, line))

    if word not in KNOWN:
        error(_unknown(word, match["word"] if match else ""), "unknown-command")
    elif word in ORIGINAL:
        _original(arg, error, add)
    elif word in STATUS or word in TAKE or word in NOTE:
        _no_argument(word, arg, error, add)
    elif not arg:
        error(f"'#{word}' needs an argument", "missing-argument")
    elif word in PRIORITY:
        _priority(arg, error, add)
    elif word in ASSIGN:
        add("assign", "me" if fold(arg) in ME else arg)
    elif word in QUEUE:
        _queue(arg, error, add)
    else:
        _tags(arg, error, add)


def _no_argument(word: str, arg: str, error: _ErrorFn, add: _AddFn) -> None:
    if arg:
        error(f"'#{word}' takes no argument", "unexpected-argument")
    elif word in TAKE:
        add("assign", "me")
    elif word in NOTE:
        add("note", None)
    else:
        add("status", STATUS[word])


def _priority(arg: str, error: _ErrorFn, add: _AddFn) -> None:
    value = PRIORITIES.get(fold(arg))
    if value is None:
        choices = "niedrig, normal, hoch, dringend (low, normal, high, urgent)"
        error(f"unknown priority '{arg}': use {choices}", "bad-priority")
    else:
        add("priority", value)


def _original(arg: str, error: _ErrorFn, add: _AddFn) -> None:
    """`#original` or `#original N` (an article number as `tickets show` counts, from 1)."""
    if not arg:
        add("original", None)
    elif arg.isascii() and arg.isdigit() and 0 < int(arg) < 1_000_000:
        add("original", str(int(arg)))
    else:
        error(f"'#original' takes an article number (1, 2, …), not '{arg}'", "bad-article")


def _queue(arg: str, error: _ErrorFn, add: _AddFn) -> None:
    if _SLUG.fullmatch(arg):
        add("queue", arg)
    else:
        error(_bad_name(arg), "bad-name")


def _tags(arg: str, error: _ErrorFn, add: _AddFn) -> None:
    tags = [tag.lstrip("#") for tag in re.split(r"[\s,;]+", arg) if tag.lstrip("#")]
    bad = [tag for tag in tags if not _SLUG.fullmatch(tag)]
    if bad or not tags:
        error(_bad_name(bad[0] if bad else arg), "bad-name")
        return
    for tag in tags:
        add("tag", tag)


def _conflicts(commands: list[Command]) -> list[CommandError]:
    """A second, different status/owner/priority/queue: which one was meant is unknowable."""
    seen: dict[str, Command] = {}
    errors = []
    for command in commands:
        if command.kind in ("tag", "note"):
            continue
        first = seen.setdefault(command.kind, command)
        if first is not command and fold(first.value or "") != fold(command.value or ""):
            message = f"contradicts line {first.line_no} ('{first.line}')"
            errors.append(CommandError(command.line_no, command.line, message, "conflict"))
    return errors


def _unknown(word: str, typed: str) -> str:
    close = difflib.get_close_matches(word, sorted(KNOWN), n=1, cutoff=0.7)
    hint = f" (did you mean #{close[0]}?)" if close else ""
    return f"unknown command '#{typed}'{hint}"


def _bad_name(value: str) -> str:
    return f"'{value}' is not a valid name: letters, digits, '-', '_' or '.', no spaces"


def _clean(raw: str) -> str:
    """The line as typed, without the invisible characters mail clients and editors insert."""
    text = unicodedata.normalize("NFC", raw.translate(_INVISIBLE)).replace("\u00a0", " ")
    return text.strip()
