"""Turn the bytes and header words a mail carries into clean `str`, never raising.

Mail declares charsets it does not use, sends raw 8-bit headers and mixes RFC 2047 words
with plain text; every later stage (threading, rules, templates) wants plain Unicode
without surrogates or control characters. This module is the one place that guesses.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

# Labels that real mail uses for a superset: WHATWG maps Latin-1 to windows-1252, and
# Korean/Chinese mail names the narrow legacy set while sending the wide one. Declared
# ASCII and unknown labels are guessed (8-bit "ASCII" is UTF-8 or windows-1252 in practice).
_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
}
_GUESS = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "8bit", "us-ascii",
                    "ascii"})
_FOLD = re.compile(r"\r?\n(?=[ \t])|\r\n?|\n")
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_WORD = re.compile(r"=\?(?P<charset>[^?\s]+)\?(?P<enc>[qQbB])\?(?P<text>[^?\s]*)\?=")


def guess_decode(data: bytes) -> str:
    """Undeclared bytes: UTF-8 if they mostly are (even truncated), else windows-1252."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", "replace")
    high = len(data) - len(data.translate(None, _HIGH_BYTES))
    if text.count("\ufffd") * 4 < high:
        return text
    return data.decode("cp1252", "replace")


def decode_bytes(data: bytes, charset: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset; return the text and a defect reason (or None)."""
    label = (charset or "").strip().lower().split("*", 1)[0]
    if label in _GUESS:
        return no_surrogates(guess_decode(data)), None
    codec = _SUPERSETS.get(label, label)
    try:
        return no_surrogates(data.decode(codec)), None
    except UnicodeError:  # also the bare UnicodeError of the "undefined" codec
        if codec.replace("-", "").replace("_", "") == "utf8":  # mislabelled Latin-1, or cut
            return no_surrogates(guess_decode(data)), "bytes invalid in declared charset"
    except (LookupError, ValueError):  # unknown name, or one with a NUL in it
        return no_surrogates(guess_decode(data)), "unknown charset"
    try:
        return no_surrogates(data.decode(codec, "replace")), "bytes invalid in declared charset"
    except (LookupError, ValueError):
        return no_surrogates(guess_decode(data)), "bytes invalid in declared charset"


def no_surrogates(text: str) -> str:
    """Replace lone surrogates (some codecs produce them) so the text encodes as UTF-8."""
    if _SURROGATES.search(text) is None:
        return text
    return _SURROGATES.sub("\ufffd", text)


def has_raw_8bit(value: str) -> bool:
    """True if the parser kept raw 8-bit bytes in this header text (as surrogate escapes)."""
    return _SURROGATES.search(value) is not None


def repair_8bit(value: str) -> str:
    """Header text the parser kept as surrogate-escaped raw bytes -> decoded text."""
    if not has_raw_8bit(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", value)
    return guess_decode(raw)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words; undecodable words are kept as written.

    Hand-rolled instead of `email.header.decode_header`, which round-trips plain runs through
    `raw-unicode-escape` and so mangles a literal backslash (`C:\\Users`) next to an encoded
    word. Adjacent words in one charset are joined as bytes first: encoders split UTF-8
    characters across words.
    """
    if "=?" not in value:
        return value
    out: list[str] = []
    pending, charset, pos = b"", "", 0
    for match in _WORD.finditer(value):
        gap, data = value[pos : match.start()], _word_bytes(match)
        word_charset = match["charset"].lower().split("*", 1)[0]
        joins = pos > 0 and gap.strip() == ""  # blanks between two words are not text
        if data is None or not joins or word_charset != charset:
            out.append(decode_bytes(pending, charset)[0] if pending else "")
            pending, charset = b"", ""
            out.append("" if joins else gap)
        if data is None:
            out.append(match[0])
        else:
            pending, charset = pending + data, word_charset
        pos = match.end()
    out.append(decode_bytes(pending, charset)[0] if pending else "")
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(match: re.Match[str]) -> bytes | None:
    text = match["text"]
    try:
        if match["enc"] in "qQ":
            return binascii.a2b_qp(text.encode("ascii"), header=True)
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, binascii.Error):
        return None


def header_text(raw: object) -> str:
    """One header value as clean text: unfolded, 8-bit repaired, words decoded, NFC."""
    value = raw if isinstance(raw, str) else str(raw)
    value = _FOLD.sub("", value)
    value = decode_words(repair_8bit(value))
    value = _CONTROLS.sub("", value.replace("\t", " "))
    if not value.isascii():
        value = unicodedata.normalize("NFC", no_surrogates(value))
    return value.strip()


def fold_spaces(value: str) -> str:
    """Collapse every run of whitespace (newlines too) to one space."""
    return " ".join(value.split())
