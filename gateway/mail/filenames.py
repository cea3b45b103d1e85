"""Attachment file names a sender chose, made safe to store, show and download.

A name comes from the sender: it may carry paths (`../../etc/passwd`, `C:\\x\\y.doc`),
control or bidi-override characters, or be empty or endless. Nothing here drops an
attachment; a bad name only ever becomes a plainer one.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata

MAX_NAME_CHARS = 120
_MAX_EXT_CHARS = 16

# Python's built-in table only (no /etc/mime.types), so names are the same on every machine,
# plus the office and mail types the built-in table lacks.
_TYPES = mimetypes.MimeTypes()
_EXTRA = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.ms-outlook": ".msg",
    "application/ms-tnef": ".dat",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pgp-signature": ".asc",
    "text/calendar": ".ics",
    "text/vcard": ".vcf",
    "text/x-vcard": ".vcf",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/news": ".eml",
}
_EXTRA_BY_EXT = {ext: ctype for ctype, ext in _EXTRA.items() if not ctype.startswith("message/")}
_WINDOWS_RESERVED = re.compile(r'[<>:"|?*]')
_DRIVE = re.compile(r"^[A-Za-z]:")
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def extension_for(content_type: str) -> str:
    """The usual extension for a content type (".bin" when unknown)."""
    ctype = content_type.lower()
    ext = _EXTRA.get(ctype) or _TYPES.guess_extension(ctype)
    if ext:
        return ext
    return ".txt" if ctype.startswith(("message/", "text/")) else ".bin"


def type_for(filename: str) -> str | None:
    """The content type a file name suggests, or None."""
    ext = filename[filename.rfind(".") :].lower() if "." in filename else ""
    return _EXTRA_BY_EXT.get(ext) or _TYPES.guess_type(filename, strict=False)[0]


def safe_filename(name: str | None, content_type: str, index: int) -> str:
    """A file name without path parts or control characters, capped, never empty.

    `index` is the attachment's 1-based position, used for `attachment-N.<ext>`.
    """
    cleaned = _clean(name or "")
    if not cleaned:
        return f"attachment-{index}{extension_for(content_type)}"
    return _cap(cleaned)


def _clean(name: str) -> str:
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _DRIVE.sub("", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _DROP_CATEGORIES)
    name = _WINDOWS_RESERVED.sub("_", name)
    name = " ".join(name.split())
    return name.strip(" .")


def _cap(name: str) -> str:
    if len(name) <= MAX_NAME_CHARS:
        return name
    dot = name.rfind(".")
    ext = name[dot:] if dot > 0 and len(name) - dot <= _MAX_EXT_CHARS else ""
    stem = name[: MAX_NAME_CHARS - len(ext)].rstrip(" .")
    return (stem or "attachment") + ext
