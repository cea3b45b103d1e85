"""Tell an out-of-office reply by its words when its headers do not say it is automatic (many
clients and servers send vacation replies without `Auto-Submitted`). Used for agents' mail only:
an agent's auto-reply relayed to a requester starts a mail loop, while a requester who writes
"Abwesenheitsnotiz funktioniert nicht" must still reach an agent.

The markers are data, kept short and specific; each is a case-insensitive regular expression.
A subject counts only if it *starts* with a marker (clients put theirs first, and an agent's
real reply starts with "AW:"/"Re:" and may well quote a ticket subject with these words); a body
counts only within its first BODY_CHARS characters, where auto-replies state their business."""

from __future__ import annotations

import re

SUBJECT_MARKERS: tuple[str, ...] = (
    r"abwesenheits(notiz|nachricht|meldung)",
    r"automatische antwort",
    r"abwesend",
    r"nicht im büro",
    r"out of (the )?office",
    r"automatic reply",
    r"auto[- ]?(reply|response|antwort)",
    r"auto:",  # Sieve vacation (Dovecot, Thunderbird filters)
    r"(urlaub|vacation|away)( notice| reply|:)",
)

BODY_PHRASES: tuple[str, ...] = (
    r"ich bin (\S+ ){0,6}nicht im (büro|haus)",
    r"bin ich (\S+ ){0,6}(nicht im (büro|haus)|abwesend|nicht erreichbar|außer haus)",
    r"abwesenheits(notiz|nachricht)",
    r"dies ist eine automatische (antwort|nachricht)",
    r"i am (\S+ ){0,4}out of (the )?office",
    r"i('m| am| will be) (\S+ ){0,4}(away|on (vacation|holiday|leave))",
    r"this is an (automatic|automated|auto-generated) (reply|response|message)",
)

BODY_CHARS = 600

_SUBJECT = re.compile(r"^\s*(" + "|".join(SUBJECT_MARKERS) + r")(?![a-zäöüß])", re.IGNORECASE)
_BODY = re.compile("|".join(f"(?:{phrase})" for phrase in BODY_PHRASES), re.IGNORECASE)


def verdict(subject: str, text: str) -> str | None:
    """Why this mail reads as an out-of-office reply, or None. The reason names where the
    marker was found, never the words around it (it goes into logs)."""
    if _SUBJECT.search(subject):
        return "out-of-office subject"
    body = " ".join(text[:BODY_CHARS].split())  # line breaks and runs of spaces as one space
    if _BODY.search(body):
        return "out-of-office text"
    return None
