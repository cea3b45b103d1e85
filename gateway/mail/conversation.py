"""Message-ID tokens and the conversation keys of a mail, read from its header block alone.

The parse stage reads Message-ID, In-Reply-To and References with `message_ids`; the intake
computes `keys` from the raw bytes before the inbox row is written, so that a reply is not
processed before a mail of its conversation that is still queued or in flight (several
instances claim from one queue: storage.spool). A key is a short hash, never the header text:
Message-IDs and subjects may carry personal data."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable

from gateway.mail import threadindex
from gateway.mail.text import header_text

_BRACKETED = re.compile(r"<([^<>]*)>")
_SEPARATORS = re.compile(r"[\s,;]+")
_MAX_ID_CHARS = 900
# Any `[WORD-N]` tag: the intake does not know the ticket prefix, and a foreign tag only orders
# the mails that carry it among themselves.
_TAG = re.compile(r"\[\s*([a-z][a-z0-9]{0,19})\s*-\s*(\d{1,18})\s*\]", re.I)
_HEADER_END = re.compile(rb"\r?\n\r?\n")
MAX_KEYS = 40
"""Keys per mail at most: its own Message-ID, In-Reply-To, the first and the latest
References, a ticket tag and an Outlook conversation. A mail with hundreds of References
costs no more than this."""
KEY_CHARS = 32
_WANTED = frozenset({"message-id", "in-reply-to", "references", "subject", "thread-index"})


def message_ids(values: Iterable[str]) -> list[str]:
    """`<id@host>` tokens from In-Reply-To / References / Message-ID, in order, deduplicated.

    Tolerates missing brackets, commas and folding; tokens without `@` (`<[bogus]>`) drop.
    """
    found: list[str] = []
    for value in values:
        tokens = _BRACKETED.findall(value) or _SEPARATORS.split(value)
        found += [ident for ident in map(_clean_id, tokens) if ident]
    return list(dict.fromkeys(found))


def first_message_id(values: list[str]) -> str | None:
    ids = message_ids(values)
    return ids[0] if ids else None


def _clean_id(token: str) -> str | None:
    token = "".join(token.split()).strip("<>\"'")
    local, at, host = token.rpartition("@")
    if not (at and local and host) or len(token) > _MAX_ID_CHARS:
        return None
    return f"<{token}>"


def thread_index(value: str | None) -> bytes | None:
    """Outlook's Thread-Index, base64-decoded; None if absent or not base64."""
    compact = "".join((value or "").split())
    if not compact:
        return None
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _key(kind: str, value: str) -> str:
    return hashlib.blake2b(f"{kind}:{value}".encode(), digest_size=KEY_CHARS // 2).hexdigest()


def _wanted_headers(raw: bytes) -> dict[str, list[str]]:
    """The values of the few headers `keys` reads, unfolded and decoded (header_text); a
    plain scan of the header block: the parser costs five times as much, for the intake."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw
    found: list[tuple[str, list[str]]] = []  # (name, value lines) of the wanted headers
    wanted = False
    for line in head.decode("ascii", "surrogateescape").splitlines():
        if line[:1] in (" ", "\t"):
            if wanted:
                found[-1][1].append(line)
            continue
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        wanted = bool(colon) and name in _WANTED
        if wanted:
            found.append((name, [value]))
    headers: dict[str, list[str]] = {}
    for name, value_lines in found:
        headers.setdefault(name, []).append(header_text(" ".join(value_lines)))
    return headers


def keys(raw: bytes) -> tuple[str, ...]:
    """The conversation keys of a mail: two mails that share a key belong to one conversation
    and are processed in arrival order. Its own Message-ID (for a mail without one, the hash of
    its bytes, as the parse stage makes it), every In-Reply-To/References id, a `[PREFIX-N]`
    tag in the subject and Outlook's Thread-Index conversation. Reads the header block only."""
    headers = _wanted_headers(raw)
    own = first_message_id(headers.get("message-id", []))
    found = [_key("m", own) if own else _key("raw", hashlib.sha256(raw).hexdigest()[:32])]
    parents = message_ids(headers.get("in-reply-to", []))
    references = message_ids(headers.get("references", []))
    if len(references) > MAX_KEYS - 8:  # the thread's root and its latest mails
        references = [references[0], *references[-(MAX_KEYS - 9):]]
    found += [_key("m", ident) for ident in (*parents[:4], *references)]
    for subject in headers.get("subject", [])[:1]:
        tag = _TAG.search(subject)
        if tag is not None:
            found.append(_key("t", f"{tag.group(1).upper()}-{int(tag.group(2))}"))
    index = thread_index(next(iter(headers.get("thread-index", [])), None))
    conversation = threadindex.conversation_key(index) if index is not None else None
    if conversation is not None:
        found.append(_key("c", conversation))
    return tuple(dict.fromkeys(found))[:MAX_KEYS]
