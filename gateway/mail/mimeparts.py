"""Split a parsed MIME tree into the body a person wrote and the files they attached.

mail-parser's own split is not enough for a ticket: it merges the text of attached
messages into the body, invents random names for unnamed parts (so a re-parse differs)
and leaves Outlook's winmail.dat packed. This walk is deterministic, keeps every part
that is not body text as an attachment, and never raises on a broken part.

Rules, in document order:
- text/plain and text/html without a file name or `attachment` disposition are body text;
  inside one multipart/alternative only the first of each is used (the rest are the same
  text again); several plain parts (e.g. text around an inline image) are joined.
- message/* parts (attached mails, DSN reports) are attachments; attached mails as `.eml`,
  never opened into the body.
- winmail.dat is replaced by the files inside it (kept as is, with a defect, if it
  cannot be unpacked); its body text is used only when the mail has no other body.
- everything else is an attachment, whatever its extension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.errors import MessageError
from email.generator import BytesGenerator
from email.message import Message
from email.policy import Compat32
from io import BytesIO
from typing import Any

from inscriptis import get_text

from gateway.mail import tnef as winmail
from gateway.mail.filenames import safe_filename, type_for
from gateway.mail.model import MailAttachment
from gateway.mail.text import decode_bytes, fold_spaces, has_raw_8bit, header_text, repair_8bit

_ATTACHED_MAIL = frozenset({"message/rfc822", "message/global", "message/news"})
_TNEF_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
_PARAM_HEADERS = frozenset({"content-type", "content-disposition"})


@dataclass(slots=True)
class Body:
    """What a mail says and carries: body text, HTML, attachments, and what was wrong."""

    text: str = ""
    html: str | None = None
    attachments: list[MailAttachment] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Walk:
    """State of one walk: body pieces found so far and the Body being filled."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    winmail_text: list[str] = field(default_factory=list)
    winmail_html: list[str] = field(default_factory=list)
    seen_alternatives: set[tuple[int, str]] = field(default_factory=set)
    body: Body = field(default_factory=Body)

    def add_file(self, content_type: str, name: str | None, data: bytes) -> None:
        index = len(self.body.attachments) + 1
        filename = safe_filename(name, content_type, index)
        if content_type == "application/octet-stream":
            content_type = type_for(filename) or content_type
        self.body.attachments.append(MailAttachment(filename, content_type, data))


def extract(message: Message) -> Body:
    """Body text, HTML, attachments and defects of a compat32 message (iterative walk)."""
    walk = _Walk()
    stack: list[tuple[Message, int | None]] = [(message, None)]
    while stack:
        part, alternative = stack.pop()
        ctype = part.get_content_type()
        if not part.is_multipart():  # a leaf; never get_payload() it undecoded (can raise)
            _add_leaf(walk, part, ctype, alternative)
            continue
        children = [child for child in part.get_payload() if isinstance(child, Message)]
        if ctype.startswith("multipart/"):
            group = id(part) if ctype == "multipart/alternative" else alternative
            stack.extend((child, group) for child in reversed(children))
        else:
            _add_message(walk, part, ctype, children)
    return _finish(walk)


def _add_leaf(walk: _Walk, part: Message, ctype: str, alternative: int | None) -> None:
    name = _filename(part)
    if ctype in _TNEF_TYPES or (name or "").lower() == "winmail.dat":
        _add_winmail(walk, part, ctype, name)
    elif ctype.startswith("multipart/"):  # boundary never found: the text is all there is
        walk.body.defects.append(f"{ctype}: no parts found, kept as plain text")
        walk.plain.append(_decode_text(walk, part, "text/plain"))
    elif ctype in ("text/plain", "text/html") and not name and (
        part.get_content_disposition() != "attachment"
    ):
        if alternative is not None:
            if (alternative, ctype) in walk.seen_alternatives:
                return
            walk.seen_alternatives.add((alternative, ctype))
        target = walk.plain if ctype == "text/plain" else walk.html
        target.append(_decode_text(walk, part, ctype))
    else:
        walk.add_file(ctype, name, _payload(part))


def _add_message(walk: _Walk, part: Message, ctype: str, inner: list[Message]) -> None:
    data = b"\n".join(_flatten(walk, child) for child in inner)
    name = _filename(part)
    if ctype in _ATTACHED_MAIL:
        subjects = [v for k, v in inner[0].raw_items() if k.lower() == "subject"] if inner else []
        if not name and subjects:
            name = fold_spaces(header_text(subjects[0]))[:80]
        if name and not name.lower().endswith(".eml"):
            name += ".eml"
    walk.add_file(ctype, name, data)


def _add_winmail(walk: _Walk, part: Message, ctype: str, name: str | None) -> None:
    data = _payload(part)
    try:
        unpacked = winmail.unpack(data)
    except winmail.WinmailError as exc:
        walk.body.defects.append(f"winmail.dat kept packed: {exc}")
        walk.add_file(ctype, name or "winmail.dat", data)
        return
    for item in unpacked.files:
        walk.add_file(item.content_type, item.name, item.data)
    if unpacked.text:
        walk.winmail_text.append(_clean_newlines(unpacked.text))
    if unpacked.html:
        walk.winmail_html.append(unpacked.html)
    if unpacked.rtf_only:
        walk.body.defects.append("winmail.dat: body only as compressed RTF, not converted")
    if not (unpacked.files or unpacked.text or unpacked.html):
        walk.body.defects.append("winmail.dat held no files or text; kept packed")
        walk.add_file(ctype, name or "winmail.dat", data)


def _finish(walk: _Walk) -> Body:
    body = walk.body
    text = "\n".join(walk.plain)
    html = "\n".join(walk.html)
    if not text.strip() and not html.strip():
        text, html = "\n".join(walk.winmail_text), "\n".join(walk.winmail_html)
    body.html = html or None
    body.text = text if text.strip() or not html.strip() else _html_to_text(body, html)
    return body


def _html_to_text(body: Body, html: str) -> str:
    try:
        return get_text(html)
    except Exception as exc:  # lxml/inscriptis on hostile markup: keep the HTML, note it
        body.defects.append(f"text/html: not convertible to text ({type(exc).__name__})")
        return ""


def _decode_text(walk: _Walk, part: Message, ctype: str) -> str:
    try:
        charset = part.get_content_charset()
    except (ValueError, TypeError, LookupError):  # e.g. a NUL inside the parameter
        charset = None
    text, problem = decode_bytes(_payload(part), charset)
    if problem:
        walk.body.defects.append(f"{ctype}: {problem}")
    return _clean_newlines(text)


def _clean_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _payload(part: Message) -> bytes:
    """The transfer-decoded bytes of a leaf part (b"" if there are none)."""
    cte = part.get("content-transfer-encoding")
    if cte is not None and str(cte) != str(cte).strip().lower():
        # the stdlib compares the raw value, so "Base64 " would come back undecoded
        part.replace_header("content-transfer-encoding", str(cte).strip().lower())
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _filename(part: Message) -> str | None:
    """The decoded file name (RFC 2231 parameters, RFC 2047 words, raw 8-bit), if any."""
    for name, value in part.raw_items():
        # the stdlib would turn raw 8-bit parameters into U+FFFD before we see them
        if name.lower() in _PARAM_HEADERS and has_raw_8bit(value):
            part.replace_header(name, repair_8bit(value))
    try:
        raw = part.get_filename()
    except (ValueError, TypeError, LookupError, IndexError):  # broken RFC 2231 parameters
        return None
    if not raw:
        return None
    return header_text(raw) or None


class _Verbatim(Compat32):
    """Write headers back exactly as they were parsed: no refolding, no re-encoding.

    compat32 would rebuild each header through `email.header.Header`, which changes it and
    raises on values a broken mail really carries (an "embedded header").
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        return f"{name}: {value}{self.linesep}".encode("utf-8", "surrogateescape")


_VERBATIM = _Verbatim()


def _flatten(walk: _Walk, message: Message) -> bytes:
    """An attached message as bytes, as close to what was sent as the parse allows."""
    buffer = BytesIO()
    try:
        BytesGenerator(buffer, mangle_from_=False, policy=_VERBATIM).flatten(message)
    except (RecursionError, LookupError, ValueError, TypeError, MessageError) as exc:
        walk.body.defects.append(f"attached message not fully re-serialised ({type(exc).__name__})")
    return buffer.getvalue()
