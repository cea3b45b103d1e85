"""The text of an attachment, so that it can be redacted like the body, stored and searched:
plain text, HTML (inscriptis), PDF (pypdf), DOCX (python-docx) and ODT (its content.xml, read
with the standard library: the format is a zip of XML, and odfpy, the library for it, has not
been released since 2020).

Files come from anyone on the internet, so every reader is capped: the file's size, the pages
of a PDF, the unpacked size of a zip (DOCX, ODT: a "zip bomb" unpacks a few KB into GBs), the
characters kept, and the time (checked between pages; in the main thread of the prepare
process an interval timer also stops a single page that never ends). A file that cannot be
read within the caps, or not at all (an encrypted PDF, a broken DOCX), is `unreadable`; a
format without text (images, spreadsheets, anything else) is `none`. Nothing here raises: the
mail is processed whatever its attachments hold. Runs in PREPARE, where the prepare process's
own time limit is the last guard."""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gateway.mail.text import guess_decode

EXTRACTED, UNREADABLE, NONE = "extracted", "unreadable", "none"
STATES = (EXTRACTED, UNREADABLE, NONE)

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_ODT = "application/vnd.oasis.opendocument.text"
_KINDS = {
    "text/plain": "text", "text/csv": "text", "text/markdown": "text",
    "text/html": "html", "application/xhtml+xml": "html",
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    _DOCX: "docx", _ODT: "odt",
}
_SUFFIXES = {".txt": "text", ".csv": "text", ".log": "text", ".md": "text", ".htm": "html",
             ".html": "html", ".pdf": "pdf", ".docx": "docx", ".odt": "odt"}


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps of one extraction (config `attachment_text`)."""

    max_bytes: int = 10_000_000  # larger files are not read (unreadable)
    max_pages: int = 200  # PDF pages read; the rest is cut with a notice
    max_unpacked_bytes: int = 50_000_000  # DOCX/ODT: the zip's members together
    max_chars: int = 200_000  # text kept; the rest is cut with a notice
    seconds: float = 20.0  # per file


class _Unreadable(Exception):
    """This file cannot be read (broken, encrypted, over a cap)."""


def kind_of(filename: str, content_type: str) -> str | None:
    """"text", "html", "pdf", "docx", "odt", or None (no text format). The declared type
    first; a generic one (application/octet-stream) falls back to the file name's suffix."""
    kind = _KINDS.get(content_type.split(";")[0].strip().lower())
    if kind is not None:
        return kind
    name = filename.lower()
    dot = name.rfind(".")
    return _SUFFIXES.get(name[dot:]) if dot >= 0 else None


def extract(filename: str, content_type: str, data: bytes,
            limits: Limits = Limits()) -> tuple[str, str | None]:
    """(state, text) of one attachment: ("extracted", text), ("unreadable", None) or
    ("none", None). Never raises (bar KeyboardInterrupt/SystemExit)."""
    kind = kind_of(filename, content_type)
    if kind is None:
        return NONE, None
    if len(data) > limits.max_bytes:
        return UNREADABLE, None
    deadline = time.monotonic() + limits.seconds
    try:
        with _alarm(limits.seconds):
            text = _READERS[kind](data, limits, deadline)
    except (_Unreadable, _Timeout, RecursionError, MemoryError):
        return UNREADABLE, None
    except Exception:  # a library's error on hostile input: the file is unreadable
        return UNREADABLE, None
    text = _tidy(text)
    if not text.strip():
        return NONE, None  # e.g. a scanned PDF: no text layer
    if len(text) > limits.max_chars:
        cut = text.rfind("\n", limits.max_chars // 2, limits.max_chars)
        cut = limits.max_chars if cut < 0 else cut
        text = text[:cut] + f"\n[... {len(text) - cut} characters of the file not kept ...]\n"
    return EXTRACTED, text


def _tidy(text: str) -> str:
    """No NULs or other controls but line breaks and tabs (they upset databases and search)."""
    return "".join(c for c in text if c >= " " or c in "\n\t").replace("\r", "")


def _check(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise _Unreadable("over the time cap")


def _text(data: bytes, limits: Limits, deadline: float) -> str:
    return guess_decode(data)


def _html(data: bytes, limits: Limits, deadline: float) -> str:
    from inscriptis import get_text

    return str(get_text(guess_decode(data)))


def _pdf(data: bytes, limits: Limits, deadline: float) -> str:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its messages may quote the file
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:  # many PDFs are "encrypted" with an empty user password (copy protection only)
            if not reader.decrypt(""):
                raise _Unreadable("encrypted")
        except _Unreadable:
            raise
        except Exception as exc:
            raise _Unreadable("encrypted") from exc
    pages: list[str] = []
    total = len(reader.pages)
    for number, page in enumerate(reader.pages):
        if number >= limits.max_pages:
            pages.append(f"[... {total - number} more pages not read ...]")
            break
        _check(deadline)
        pages.append(page.extract_text() or "")
        if sum(len(p) for p in pages) > limits.max_chars:
            break
    return "\n\n".join(pages)


def _zip_checked(data: bytes, limits: Limits) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise _Unreadable("not a zip") from exc
    if sum(info.file_size for info in archive.infolist()) > limits.max_unpacked_bytes:
        raise _Unreadable("unpacks too large")
    return archive


def _docx(data: bytes, limits: Limits, deadline: float) -> str:
    _zip_checked(data, limits).close()
    import docx

    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for paragraph in document.paragraphs:
        lines.append(paragraph.text)
    _check(deadline)
    for table in document.tables:
        for row in table.rows:
            _check(deadline)
            lines.append("\t".join(cell.text for cell in row.cells))
    for section in document.sections:
        for part in (section.header, section.footer):
            lines.extend(paragraph.text for paragraph in part.paragraphs)
    return "\n".join(lines)


_ODF_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_BLOCKS = {f"{{{_ODF_TEXT}}}p", f"{{{_ODF_TEXT}}}h"}


def _odt(data: bytes, limits: Limits, deadline: float) -> str:
    from xml.etree import ElementTree

    with _zip_checked(data, limits) as archive:
        try:
            content = archive.read("content.xml")
        except KeyError as exc:
            raise _Unreadable("no content.xml") from exc
    if b"<!DOCTYPE" in content[:4096] or b"<!ENTITY" in content:
        raise _Unreadable("entity declarations")  # ODF never needs them: refuse, don't expand
    root = ElementTree.fromstring(content)
    lines = []
    for element in root.iter():
        if element.tag in _BLOCKS:
            lines.append(_odf_text(element))
    return "\n".join(lines)


def _odf_text(element: Any) -> str:
    """A paragraph's text: spans, links and the spacing elements (s, tab, line-break)."""
    parts: list[str] = [element.text or ""]
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "s":
            parts.append(" " * int(child.get(f"{{{_ODF_TEXT}}}c", "1") or 1))
        elif name == "tab":
            parts.append("\t")
        elif name == "line-break":
            parts.append("\n")
        elif child.tag not in _BLOCKS:
            parts.append(_odf_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


_READERS: dict[str, Callable[[bytes, Limits, float], str]] = {
    "text": _text, "html": _html, "pdf": _pdf, "docx": _docx, "odt": _odt,
}


class _Timeout(Exception):
    """The interval timer went off: one page or part took longer than the file's time cap."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """An interval timer that interrupts a reader stuck inside one call, where one can be set:
    the main thread of a process that uses no SIGALRM of its own (the prepare process). In
    other threads only the checks between pages apply (and the prepare time limit)."""
    usable = (threading.current_thread() is threading.main_thread()
              and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None)
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    def expired(signum: int, frame: object) -> None:
        raise _Timeout()

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))  # 0 would mean "no timer"
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
