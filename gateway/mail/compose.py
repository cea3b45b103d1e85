"""Build outgoing mail as bytes that every relay accepts: all headers pure ASCII (RFC 2047
encoded words for umlauts, no SMTPUTF8 needed; relays of public administrations reject raw UTF-8
headers), bodies quoted-printable (7-bit clean), lines folded, threading headers set so the mail
lands in the requester's conversation, and a Message-ID fixed here so a re-send is the same mail.

Every header value is encoded and folded here, with the stdlib's encoders (`email.header.Header`
for encoded words, `email.charset` for quoted-printable bodies), and handed to the serialiser
verbatim. That keeps Message-ID, In-Reply-To and References intact (the stdlib folder would
turn a long Message-ID list into encoded words, which breaks threading in every client), and it
is the worker's hot path: the stdlib's header registry and content manager parse every value
they are given (1.3 ms per acknowledgement, measured); this takes 0.2 ms. Only attachments
(agent replies, rare) still go through the content manager and the stdlib's serialiser; mail
without them (every acknowledgement and notification) is written here, byte for byte what that
serialiser writes for the same parts (a test holds the two to it), at a fraction of its cost.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import Header
from email.message import EmailMessage, Message
from email.policy import Compat32
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import PermanentDeliveryError
from gateway.mail import threadindex

if TYPE_CHECKING:  # a runtime import would cycle: gateway.pipeline imports notify → compose
    from gateway.mail.model import Address, MailAttachment

MAX_REFERENCES = 10  # keep the first id and the newest ones (RFC 5322 3.6.4 allows trimming)
MAX_MESSAGE_ID_LENGTH = 250
MAX_LINE = 78
MAX_ENCODED_WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters

# Header lines at most 78 characters; our verbatim headers are not refolded behind our back.
POLICY = policy.SMTP.clone(utf8=False, max_line_length=MAX_LINE, refold_source="none")


class _Prefolded(Compat32):
    """Writes header values as they are (compose encoded and folded them), with CRLF, and
    never parses one: the stdlib's header-object policies re-parse every header they write or
    read. Header objects (attachment parts built by the content manager) fold themselves."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        if hasattr(value, "name"):
            return POLICY.fold_binary(name, value)
        return f"{name}: {self.linesep.join(value.splitlines())}{self.linesep}".encode("ascii")


_PREFOLDED = _Prefolded(linesep="\r\n")

_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PHRASE_OF_ATOMS = re.compile(rf"{_ATEXT}( {_ATEXT})*")
_DOT_ATOM = re.compile(rf"{_ATEXT}(\.{_ATEXT})*")
_BLANKS = re.compile(r"([ \t]+)")  # the only whitespace written raw; any other is encoded

_UTF8 = "utf-8"

Token = tuple[str, str]  # (whitespace before it, text): the unit the folder keeps whole


@dataclass(frozen=True, slots=True)
class ComposedMail:
    message_id: str  # "<id@domain>"
    raw: bytes  # CRLF line ends, 7-bit, ready for SMTP DATA


def new_message_id(domain: str) -> str:
    """A fresh `<uuid@domain>`; the guard recognises our own mail by the domain."""
    return f"<{uuid.uuid4().hex}@{_ascii_domain(domain)}>"


@dataclass(frozen=True, slots=True)
class Letterhead:
    """Who the service's mail comes from: the same on every mail, so it is built once from the
    config (gateway.outgoing.letters) and handed to `compose` whole."""

    address: str  # the central address: From and envelope sender
    name: str  # its display name
    domain: str  # the right-hand side of our Message-IDs (the guard knows our mail by it)
    language: str = "de"  # of mail to someone whose language is not known

    def sender_name(self, on_behalf_of: str | None = None) -> str:
        """`Anna Schmidt (IT-Servicedesk)` for a reply relayed on an agent's behalf."""
        return f"{on_behalf_of} ({self.name})" if on_behalf_of else self.name


def compose(
    letterhead: Letterhead,
    *,
    to: Sequence[Address],
    cc: Sequence[Address],
    subject: str,
    text: str,
    html: str | None,
    in_reply_to: str | None,
    references: Sequence[str],
    thread_index: bytes | None,
    automatic: bool,
    attachments: Sequence[MailAttachment] = (),
    now: datetime,
    thread_topic: str | None = None,
    message_id: str | None = None,
    reply_to: Address | None = None,
    on_behalf_of: str | None = None,
) -> ComposedMail:
    """One outgoing mail from `letterhead` as bytes plus its Message-ID (`message_id` if given,
    else a new one); `on_behalf_of` names the agent whose reply it relays.

    Raises PermanentDeliveryError when an address cannot be written without SMTPUTF8
    (a non-ASCII local part), and ValueError for a CR/LF in the subject, no recipient or a
    malformed `message_id`."""
    if any(ch in subject for ch in "\r\n"):
        raise ValueError("subject contains a line break")
    if not to:
        raise ValueError("a mail needs at least one recipient")
    if message_id is None:
        message_id = new_message_id(letterhead.domain)
    elif not _valid_ids([message_id]):
        raise ValueError("message_id is not a well-formed <left@right> id")
    headers: list[tuple[str, str]] = [
        ("From", _addresses("From", [(letterhead.sender_name(on_behalf_of),
                                      letterhead.address)])),
        ("To", _addresses("To", [(a.name, a.email) for a in to])),
    ]
    if cc:
        headers.append(("Cc", _addresses("Cc", [(a.name, a.email) for a in cc])))
    if reply_to is not None:
        headers.append(("Reply-To", _addresses("Reply-To", [(reply_to.name, reply_to.email)])))
    headers.append(("Subject", _unstructured("Subject", subject)))
    headers.append(("Date", format_datetime(now)))
    headers.append(("Message-ID", message_id))
    _set_threading(headers, in_reply_to, references, thread_index, thread_topic or subject)
    if automatic:
        headers.append(("Auto-Submitted", "auto-replied"))  # RFC 3834: never answer it
        headers.append(("X-Auto-Response-Suppress", "All"))  # Exchange: no out-of-office
    headers.append(("MIME-Version", "1.0"))
    body = _text_part("plain", text)
    if html is not None:
        body = _multipart("alternative", [body, _text_part("html", html)])
    if attachments:  # the content manager builds these parts, the stdlib writes the mail
        message = _message(_multipart("mixed", [body]), headers)
        payload = message.get_payload()
        assert isinstance(payload, list)
        payload.extend(_attachment(a) for a in attachments)
        raw = message.as_bytes(policy=_PREFOLDED)
    else:
        raw = _serialise(_Part([*headers, *body.headers], body.payload, body.boundary))
    return ComposedMail(message_id=message_id, raw=raw)


def _set_threading(
    headers: list[tuple[str, str]],
    in_reply_to: str | None,
    references: Sequence[str],
    thread_index: bytes | None,
    topic: str,
) -> None:
    parent = _valid_ids([in_reply_to] if in_reply_to else [])
    if parent:
        headers.append(("In-Reply-To", parent[0]))
    refs = cap_references(_valid_ids(references))
    if refs:
        headers.append(("References", _fold_ids(refs)))
    if thread_index is not None:
        headers.append(("Thread-Index", threadindex.encode(thread_index)))
    # a requester's topic may hold line breaks
    headers.append(("Thread-Topic", _unstructured("Thread-Topic", " ".join(topic.split()))))


# --- bodies -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    """A MIME part: headers (encoded and folded) and either its encoded body (LF line ends)
    or its subparts."""

    headers: list[tuple[str, str]]
    payload: str | list[_Part]
    boundary: str = ""  # of a multipart, as its Content-Type names it


def _text_part(subtype: str, text: str) -> _Part:
    body = _crlf_free(text)
    return _Part(
        [
            ("Content-Type", f'text/{subtype}; charset="{_UTF8}"'),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ],
        quoted_printable(body if body.endswith("\n") else body + "\n"),
    )


# Bytes quoted-printable leaves as they are in a body: printable ASCII but "=", tab, line ends.
_QP_UNSAFE = re.compile(r"[^\t\n\r !-<>-~]")
_QP_ESCAPES = {chr(octet): f"={octet:02X}" for octet in range(256)}
_QP_MAX_LINE = 76


def quoted_printable(text: str) -> str:
    """`text` as UTF-8 quoted-printable with LF line ends: exactly what
    `email.charset.Charset("utf-8")` with QP body encoding returns (its
    `email.quoprimime.body_encode`), at about half the cost. The stdlib escapes every byte
    through a 256-entry `str.translate` table, slow on anything not pure ASCII (every German
    mail); mostly safe text needs only its few unsafe bytes replaced."""
    if not text:
        return text
    body = text.encode(_UTF8).decode("latin-1")  # one character per byte, as the stdlib does
    body = _QP_UNSAFE.sub(lambda unsafe: _QP_ESCAPES[unsafe.group()], body)
    limit = _QP_MAX_LINE - 1  # room for the "=" of a soft line break
    encoded: list[str] = []
    for line in body.splitlines():  # only CR and LF are left unescaped to split at
        start = 0
        last_start = len(line) - 1 - _QP_MAX_LINE
        while start <= last_start:  # break long lines, never inside an escape sequence
            stop = start + limit
            if line[stop - 2] == "=":
                encoded.append(line[start : stop - 1])
                start = stop - 2
            elif line[stop - 1] == "=":
                encoded.append(line[start:stop])
                start = stop - 1
            else:
                encoded.append(line[start:stop] + "=")
                start = stop
        if line and line[-1] in " \t":  # whitespace at the end of a line is protected
            room = start - last_start
            if room >= 3:
                end = _QP_ESCAPES[line[-1]]
            elif room == 2:
                end = line[-1] + "=\n"
            else:
                end = "=\n" + _QP_ESCAPES[line[-1]]
            encoded.append(line[start:-1] + end)
        else:
            encoded.append(line[start:])
    if body[-1] in "\r\n":
        encoded.append("")
    return "\n".join(encoded)


def _multipart(subtype: str, parts: list[_Part]) -> _Part:
    # Random and never produced by the quoted-printable or base64 encoders (they write no
    # "=_" pair), so it cannot occur inside a part.
    boundary = f"=_{uuid.uuid4().hex}"
    content_type = f'multipart/{subtype};\n boundary="{boundary}"'
    return _Part([("Content-Type", content_type)], parts, boundary)


_LINE_END = re.compile(r"\r\n|\r|\n")


def _serialise(part: _Part) -> bytes:
    """The part as the stdlib's BytesGenerator writes it with the `_PREFOLDED` policy: each
    header as `_Prefolded.fold_binary` does, a blank line, then the body with CRLF line ends;
    subparts between `--boundary` lines, closed by `--boundary--` (no preamble, no epilogue)."""
    out = [_PREFOLDED.fold_binary(name, value) for name, value in part.headers]
    out.append(b"\r\n")
    if isinstance(part.payload, str):
        out.append("\r\n".join(_LINE_END.split(part.payload)).encode("ascii", "surrogateescape"))
    else:
        delimiter = f"--{part.boundary}".encode("ascii")
        for index, subpart in enumerate(part.payload):
            out.append(delimiter + b"\r\n" if index == 0 else b"\r\n" + delimiter + b"\r\n")
            out.append(_serialise(subpart))
        out.append(b"\r\n" + delimiter + b"--\r\n")
    return b"".join(out)


def _message(part: _Part, headers: Sequence[tuple[str, str]] = ()) -> Message:
    """The part as an `email` Message (for the stdlib serialiser), with `headers` first."""
    message = Message()
    for name, value in (*headers, *part.headers):
        message[name] = value
    if isinstance(part.payload, str):
        message.set_payload(part.payload)
    else:
        subparts: list[Message | str] = [_message(p) for p in part.payload]
        message.set_payload(subparts)
    return message


def _attachment(attachment: MailAttachment) -> Message:
    maintype, _, subtype = attachment.content_type.partition("/")
    if not maintype or not subtype or maintype in ("multipart", "message"):
        # containers cannot be sent base64-encoded (RFC 2046); ship them as opaque bytes
        maintype, subtype = "application", "octet-stream"
    part = EmailMessage(policy=POLICY)
    part.set_content(attachment.data, maintype=maintype, subtype=subtype,
                     disposition="attachment", filename=attachment.filename)
    return part


def _crlf_free(text: str) -> str:
    """Normalise line ends to LF; the serialiser writes CRLF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- header values ------------------------------------------------------------------------


def _unstructured(name: str, text: str) -> str:
    """Subject-like text: ASCII words stay readable (`[LDS-1042]` can be found by eye and by
    filters), runs of other words become encoded words; folded at blanks."""
    tokens: list[Token] = []
    run: list[str] = []  # a run of words to encode, with the blanks between them
    run_blank = ""
    parts = _BLANKS.split(text)
    for index in range(0, len(parts), 2):
        blank, word = (parts[index - 1] if index else ""), parts[index]
        if not word:
            continue
        opens_line = not tokens and not run
        room = MAX_LINE - (len(name) + 2 if opens_line else len(blank))
        if _must_encode(word, room):
            if run:
                run.append(blank)
            else:
                run_blank = blank
            run.append(word)
            continue
        if run:
            tokens.extend(_encoded_words("".join(run), run_blank, name, first=not tokens))
            run = []
        tokens.append((blank, word))
    if run:
        tokens.extend(_encoded_words("".join(run), run_blank, name, first=not tokens))
    return _fold(name, tokens)


def _must_encode(word: str, room: int) -> bool:
    """Non-ASCII, control characters, something that reads like an encoded word, or too long
    to fit on a line."""
    return not word.isascii() or not word.isprintable() or "=?" in word or len(word) > room


def _encoded_words(text: str, blank: str, name: str, first: bool) -> list[Token]:
    """`text` as RFC 2047 encoded words (split at character boundaries, each ≤ 75 characters,
    the first one shorter when it opens the header line); readers drop the blanks between
    encoded words, so all of `text`'s own blanks are inside them."""
    words = _encode_words(text, name if first else None)
    return [(blank if i == 0 else " ", word) for i, word in enumerate(words)]


@functools.lru_cache(maxsize=256)
def _encode_words(text: str, header_name: str | None) -> tuple[str, ...]:
    """The encoded words themselves. Cached: the same runs come back in every mail (agents'
    and the service's names, the templates' own words), and `email.header` is slow."""
    text = text.encode(_UTF8, "replace").decode(_UTF8)  # a lone surrogate becomes "?"
    header = Header(text, _UTF8, header_name=header_name)
    return tuple(header.encode(maxlinelen=MAX_ENCODED_WORD + 1, splitchars="").split())


def _addresses(name: str, mailboxes: Sequence[tuple[str, str]]) -> str:
    tokens: list[Token] = []
    for index, (display_name, email) in enumerate(mailboxes):
        mailbox = _mailbox(name, display_name, email, first=index == 0)
        if index:
            last_blank, last_text = tokens[-1]
            tokens[-1] = (last_blank, last_text + ",")
            mailbox[0] = (" ", mailbox[0][1])
        tokens.extend(mailbox)
    return _fold(name, tokens)


def _mailbox(header: str, display_name: str, email: str, first: bool) -> list[Token]:
    """`Name <local@domain>` as tokens: an ASCII name as atoms or a quoted string, any other
    as encoded words; the address itself in its ASCII form."""
    local, _, domain = ascii_address(email).rpartition("@")
    if not _DOT_ATOM.fullmatch(local):
        local = _quoted(local)
    addr_spec = f"{local}@{domain}"
    name = " ".join(display_name.split())  # no line breaks or control whitespace in a header
    if not name:
        return [("", addr_spec)]
    phrase: list[Token]
    if _must_encode_phrase(name):
        phrase = _encoded_words(name, "", header, first)
    elif _PHRASE_OF_ATOMS.fullmatch(name):
        phrase = [("" if i == 0 else " ", word) for i, word in enumerate(name.split(" "))]
    else:
        phrase = [("", _quoted(name))]
    return [*phrase, (" ", f"<{addr_spec}>")]


def _must_encode_phrase(name: str) -> bool:
    return not name.isascii() or not name.isprintable() or "=?" in name or len(name) > 60


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fold(name: str, tokens: Sequence[Token]) -> str:
    """Join tokens, breaking the line before a token's blank where the line (which starts
    with `Name: `) would pass 78 characters. Unfolding (removing the line breaks) restores
    the value exactly."""
    out: list[str] = []
    line = len(name) + 2
    for blank, text in tokens:
        if out:
            if blank and line + len(blank) + len(text) > MAX_LINE:
                out.append("\n")
                line = 0
            out.append(blank)
            line += len(blank)
        out.append(text)
        line += len(text)
    return "".join(out)


# --- threading ids and addresses ----------------------------------------------------------


def cap_references(ids: Sequence[str]) -> list[str]:
    """At most MAX_REFERENCES ids: the thread's first plus the newest ones, duplicates dropped."""
    unique = list(dict.fromkeys(ids))
    if len(unique) <= MAX_REFERENCES:
        return unique
    return [unique[0], *unique[-(MAX_REFERENCES - 1):]]


def _valid_ids(ids: Sequence[str]) -> list[str]:
    """Only well-formed, ASCII `<left@right>` ids of sane length; anything else is dropped."""
    return [
        i.strip() for i in ids
        if i and len(i.strip()) <= MAX_MESSAGE_ID_LENGTH and _MESSAGE_ID.fullmatch(i.strip())
    ]


def _fold_ids(ids: Sequence[str]) -> str:
    """Space-separated ids, folded so no line passes 78 characters where an id allows it."""
    return _fold("References", [("" if i == 0 else " ", m) for i, m in enumerate(ids)])


def ascii_address(email: str) -> str:
    """`email` as it can travel without SMTPUTF8: the domain in IDNA form. Raises
    PermanentDeliveryError for a non-ASCII local part or a malformed address (no address in the
    message)."""
    local, _, domain = email.rpartition("@")
    if not local or not domain or "<" in email or ">" in email or any(map(str.isspace, email)):
        raise PermanentDeliveryError("recipient address is not a valid addr-spec")
    if not local.isascii():
        raise PermanentDeliveryError("address needs SMTPUTF8 (non-ASCII local part)")
    return f"{local}@{_ascii_domain(domain)}"


def _ascii_domain(domain: str) -> str:
    """An internationalised domain in its ASCII (IDNA) form; raises for an invalid one."""
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise PermanentDeliveryError("domain cannot be written in ASCII") from exc
