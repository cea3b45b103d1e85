"""Keep an agent's answer apart from the agent mail it replies to, so that nothing of a
notification (ticket facts, owner, requester address, command help, proof token) is ever relayed
to a requester.

Every mail to agents opens with the delimiter line `DELIMITER` and ends with an end marker
`##- … <REF>·<id> -##` (a per-mail id). However a client quotes the mail (Outlook's unquoted
header block, `> ` quoting in Thunderbird, Gmail and Apple Mail, HTML turned into text), both
lines survive it, so `separate` can take the answer from above the first marker line (without
the client's quote header and the signature) or, when the agent wrote below the quoted mail,
from below its last line. Text written between quoted lines cannot be told apart safely.

`leaks` is the final scan of the text that would go to the requester; any finding holds the
reply (stored as a note, the agent is told) instead of relaying it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import message_from_bytes, policy

from gateway.mail import replytext

DELIMITER = "##- Bitte oberhalb dieser Zeile antworten / Please reply above this line -##"
# Shorter notification lines ("Status: neu", "Ticket: LDS-1") are words an answer may use too.
MIN_LINE_CHARS, MIN_LINE_WORDS = 16, 3

_MARK = re.compile(r"##-.{0,160}?-##")
_DELIMITER_WORDS = re.compile(r"oberhalb dieser zeile antworten|reply above this line", re.I)
_QUOTED = re.compile(r"^\s*>")
# Lines a client puts between the answer and the quoted mail.
_SEPARATOR = re.compile(
    r"^\s*(?:-{2,}\s*(?:ursprüngliche nachricht|original message|original nachricht)\s*-{2,}"
    r"|[-_=]{5,})\s*$",
    re.I,
)
_HEADER_FIELD = re.compile(
    r"^\s*\**\s*(?:von|from|gesendet|sent|datum|date|an|to|cc|bcc|betreff|subject|antwort an"
    r"|reply-to)\s*\**\s*:",
    re.I,
)
_ATTRIBUTION = re.compile(r"(?:\b(?:schrieb|wrote)\b[^:]*|>)\s*:$", re.I)  # "… schrieb …:"
_ATTRIBUTION_START = re.compile(r"^(?:am|on)\s.*(?:\d|@)", re.I)  # first line of a wrapped one
_TOKEN = re.compile(
    r"(?:\+|\bpd\.)[A-Za-z][A-Za-z0-9]{0,9}-\d{1,12}\.[A-Za-z2-7]{20}(?![A-Za-z2-7])"
)
_HELP = re.compile(
    r"#(?:zuweisen|assign)\s+NAME\s*\|\s*me|niedrig\s*\|\s*normal\s*\|\s*hoch"
    r"|low\s*\|\s*normal\s*\|\s*high|#(?:intern|note)\s+(?:nur interne notiz|internal note only)"
    r"|#original\s+\[N\]",
    re.I,
)
_CLOSINGS = frozenset({"mit freundlichen grüßen", "kind regards"})


@dataclass(frozen=True, slots=True)
class Separated:
    """The agent's answer, and why it cannot be relayed as it is (None if it can)."""

    text: str
    problem: str | None = None  # "inline" | "above-and-below"


def separate(body: str) -> Separated:
    """The answer in an agent's reply; see the module docstring."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    marks = [i for i, line in enumerate(lines) if _MARK.search(line)]
    if not marks:
        return Separated(replytext.new_text(body))  # no agent mail quoted: the usual split
    first = marks[0]
    top = _answer(lines[: first + 1])
    if _QUOTED.match(lines[first]):
        # `> ` quoting: the quoted mail ends at its last quoted line; unquoted text inside it
        # is an inline answer, unquoted text after it a bottom-posted one.
        end = max(i for i, line in enumerate(lines) if _QUOTED.match(line))
        inside = any(line.strip() and not _QUOTED.match(line) for line in lines[first:end])
        bottom = _answer(lines[end + 1 :])
        problem = "inline" if inside else None
    else:  # unquoted (Outlook): the quoted mail ends at its end marker
        bottom = _answer(lines[marks[-1] + 1 :]) if len(marks) > 1 else ""
        problem = None
    if top and bottom:
        problem = problem or "above-and-below"
    return Separated(top or bottom, problem)


def _answer(lines: Sequence[str]) -> str:
    """New text of a stretch of the reply, without quote header, separator or marker lines."""
    kept = replytext.new_text("\n".join(lines)).split("\n")
    while kept and _residue(kept[-1]):
        popped = kept.pop().strip()
        if kept and _ATTRIBUTION.search(popped) and _ATTRIBUTION_START.match(kept[-1].strip()):
            kept.pop()  # "On Mon, … <a@b>" / "wrote:"
    return "\n".join(kept).strip("\n")


def _residue(line: str) -> bool:
    text = line.strip()
    return (
        not text
        or bool(_QUOTED.match(text) or _MARK.search(text) or _SEPARATOR.match(text))
        or bool(_HEADER_FIELD.match(text))
        or bool(_ATTRIBUTION.search(text))
    )


def replace_addresses(text: str, addresses: Iterable[str], central: str) -> str:
    """`text` with every one of `addresses` (an agent's, in a signature or anywhere) replaced by
    the central address: requesters write to the service, never to a person's mailbox."""
    wanted = sorted({a.strip().lower() for a in addresses if a.strip()}, key=len, reverse=True)
    if not wanted:
        return text
    pattern = re.compile(
        r"(?<![\w.+-])(?:" + "|".join(re.escape(a) for a in wanted) + r")(?![\w-])", re.I
    )
    return pattern.sub(central, text)


def own_lines(raw_mails: Iterable[bytes]) -> list[str]:
    """The lines agent mails carry of their own, as `words()` without the padding: their text
    parts without the requester's quoted text (`> ` lines), short lines and the closing."""
    found: dict[str, None] = {}
    for raw in raw_mails:
        try:
            part = message_from_bytes(raw, policy=policy.default).get_body(("plain",))
            text = part.get_content() if part is not None else ""
        except (LookupError, ValueError, TypeError):
            continue
        for line in text.split("\n"):
            normal = words(line).strip()
            if _QUOTED.match(line) or normal in _CLOSINGS or len(normal) < MIN_LINE_CHARS:
                continue
            if len(normal.split()) >= MIN_LINE_WORDS:
                found[normal] = None
    return list(found)


def words(text: str) -> str:
    """Lower-case words separated by one space and padded with one: line breaks, quoting,
    table cells and punctuation do not matter when comparing texts."""
    return " " + " ".join(re.sub(r"[\W_]+", " ", text.lower()).split()) + " "


def leaks(
    text: str,
    *,
    agent_addresses: Iterable[str],
    tokens: Iterable[str] = (),
    notification_lines: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[str]:
    """What of agent-only content is in `text` (the requester-bound answer): reason codes
    `marker`, `token`, `agent-address`, `help`, `notification`, in that order; [] when clean.

    `notification_lines` come from `own_lines`; lines equal to one in `ignore` (the service's
    name and address) are not counted."""
    lowered = text.lower()
    reasons = []
    if _MARK.search(text) or _DELIMITER_WORDS.search(text):
        reasons.append("marker")
    if _TOKEN.search(text) or any(t and t.lower() in lowered for t in tokens):
        reasons.append("token")
    if any(a.strip() and a.strip().lower() in lowered for a in agent_addresses):
        reasons.append("agent-address")
    if _HELP.search(text):
        reasons.append("help")
    skip = {words(i).strip() for i in ignore}
    seen = words(text)
    if any(f" {line} " in seen for line in notification_lines if line not in skip):
        reasons.append("notification")
    return reasons
