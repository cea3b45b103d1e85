"""Find what a person actually wrote in a reply: the text above the quoted history, without the
signature, so tickets store (and agents relay) the new words and not the whole thread again.

The splitting is done by mail-parser-reply (MIT), which knows the German and English client
headers (`Am … schrieb …:`, `Von: … Gesendet: …`, Tobit David, …). Around it sit small
corrections, each for a case it gets wrong on the shared reply corpus:

- indentation is kept (the library strips every line; the result is mapped back to the
  original lines);
- attribution lines it misses (`2017-11-24 16:32 GMT+01:00 Name <a@b>:`, wrapped ones,
  Finnish/Portuguese/Russian wording) and Outlook blocks written as `De : …` are cut too;
- a signature is only removed when its first line is a real closing (`Mit freundlichen
  Grüßen`, `Thanks,`, `-- `, `Sent from my …`): the library's bare prefixes would otherwise
  cut `Thanks, that fixed it.` and everything below; hyphen lists are never signatures;
- leftovers above the history (`-----Ursprüngliche Nachricht-----`, `_____`, `Von meinem
  iPhone gesendet`) are dropped;
- an inline answer (text between `>` quotes) is kept with its quotes, and a forwarded message
  (`---------- Forwarded message ---------`) is kept whole: both are new content; below an
  unquoted Outlook header block there are no inline answers (the original is not quoted there,
  its own `>` lines are not ours).

`new_text` never raises: if the library fails, the whole body comes back. It returns "" only
when nothing stands above the quoted history (e.g. an agent typed only #commands).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from mailparser_reply import EmailMessage, EmailReply
from mailparser_reply.constants import MAIL_LANGUAGES

from gateway import logs

# German and English first; the other languages' header patterns are specific enough to be
# safe. Left out: Polish (one `Do:` line counts as a header), Danish and Swedish (signature
# words without word end, such as `Tak` or `/name`). "david" is Tobit David's header.
DEFAULT_LANGUAGES = ("de", "en", "fr", "it", "nl", "es", "david")

_QUOTED = re.compile(r"^\s*>")
_ADDRESS = re.compile(r"[<(\[]\s*(?:mailto:)?[^\s<>()\[\]@]+@[^\s<>()\[\]]+\s*[>)\]]")
_BARE_ADDRESS = re.compile(r"\S+@\S+\.\w+")
_WHEN = re.compile(r"\b\d{1,2}[:.]\d{2}\b|\b(?:19|20)\d{2}\b|\b\d{1,2}\.\s?\d{1,2}\.")
_WROTE_WORDS = (
    r"(?:wrote|schrieb|schreibt|a écrit|ha scritto|escribió|escreveu|schreef|skrev|kirjoitti"
    r"|napisał(?:\(a\))?|написал(?:\(а\))?|írta)"
)
_WROTE = re.compile(rf"(?:^|\s){_WROTE_WORDS}(?=[\s:]|$)", re.IGNORECASE)  # "schrieb Erika:"
_WROTE_END = re.compile(rf"{_WROTE_WORDS}\s*:?$", re.IGNORECASE)  # a line without a colon
_LABELS = {
    "from": r"from|von|de|da|van|fra|från|od|от",
    "date": r"sent|date|gesendet|datum|envoyé(?: le)?|date d'envoi|message du|inviato|data"
    r"|verzonden|sendt|skickat|wysłano|enviado|fecha|отправлено",
    "to": r"to|an|à|a|aan|til|till|do|para|кому",
    "subject": r"subject|betreff|objet|sujet|oggetto|onderwerp|emne|ämne|temat|asunto|assunto"
    r"|тема",
    "cc": r"cc|bcc|kopie|copie(?: à)?|copia",
}
_LABEL = re.compile(
    r"^\s*\**\s*(?:" + "|".join(f"(?P<{k}>{v})" for k, v in _LABELS.items()) + r")\s*\**\s*:",
    re.IGNORECASE,
)
_FORWARD = re.compile(
    r"^\s*(?:-{2,}\s*(?:forwarded message|weitergeleitete nachricht|message transféré"
    r"|messaggio inoltrato|doorgestuurd bericht)\s*-{2,}|begin forwarded message:"
    r"|anfang der weitergeleiteten nachricht:)",
    re.IGNORECASE,
)
_RULE = re.compile(r"^[\s\-_=*~—–]{2,}$")  # a line of dashes, underscores, ...
_FRAMED = re.compile(r"^\s*[-_=*]{2,}\s*\w[^_=*]{1,40}?\w\s*[-_=*]{2,}\s*$")  # -- Original --
_SIG_DELIMITER = re.compile(r"^\s*(?:--|__|_{8,})\s*$")  # not dashes: tables underline with them
_DASH_NAME = re.compile(r"^-[A-ZÄÖÜ][\w.'-]*(?: [A-ZÄÖÜ][\w.'-]*){0,2}$")  # "-Abhishek Kona"
_DEVICE = re.compile(
    r"^\s*(?:von meinem .{1,40} gesendet|gesendet (?:von|mit|über|aus|from) .{1,80}"
    r"|sent (?:from|with|via) .{1,80}|get outlook for .{1,40}|envoyé (?:de|depuis|à partir de)"
    r" .{1,60}|inviato da .{1,60}|enviado desde .{1,60}|verzonden (?:vanaf|met) .{1,60})\s*$",
    re.IGNORECASE,
)
_NAME = r"[A-ZÄÖÜ][\w.'-]*(?:\s+[A-ZÄÖÜ][\w.'-]*){0,3}"
# A line that is nothing but a closing (and maybe a name): what follows is the signature.
# Thanks-phrases are left out on purpose: "Vielen Dank!" often opens more text.
_CLOSING = re.compile(
    r"(?i:mit (?:den )?(?:freundlichen|besten|herzlichen|kollegialen) gr(?:ü|ue)(?:ß|ss)en"
    r"|mit freundlichem gru(?:ß|ss)|(?:freundliche|herzliche|beste|viele|liebe|schöne|sonnige"
    r"|kollegiale) gr(?:ü|ue)(?:ß|ss)e|gru(?:ß|ss)|gr(?:ü|ue)(?:ß|ss)e|mfg|lg|vg|hochachtungsvoll"
    r"|(?:best|kind|warm|kindest|many)? ?regards|best wishes|yours (?:sincerely|faithfully)"
    r"|sincerely|cheers|(?:med )?venlig hilsen|hilsen|mvh|(?:med )?vänlig(?:a)? hälsning(?:ar)?"
    r"|hälsningar|(?:met )?vriendelijke groet(?:en)?|groeten|(?:bien )?cordialement"
    r"|salutations|saludos|atentamente|(?:cordiali|distinti) saluti|pozdrawiam"
    r"|z poważaniem|с уважением)"
    rf"[\s,.!]*(?:{_NAME})?[\s,.!]*"
)


@dataclass(frozen=True, slots=True)
class _Split:
    cut: int  # index of the first line of the quoted history (len(lines) if none)
    signature: str  # the library's signature text for the part above, "" if none
    heads: frozenset[int] = frozenset()  # lines where the library saw a quote header


class _MappingError(Exception):
    """The library's result could not be found in the original lines."""


def new_text(body: str, language_hint: str | None = None) -> str:
    """The new text of a reply: above the quoted history, without signature; see the module."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return ""
    languages = _languages(language_hint)
    try:
        return _extract(text.split("\n"), text, languages)
    except Exception as exc:  # a library bug must never lose the text: keep all of it
        logs.event("replytext.fallback", reason=type(exc).__name__)
        return _join(text.split("\n"))


def _languages(hint: str | None) -> list[str]:
    languages = list(DEFAULT_LANGUAGES)
    code = (hint or "").strip().lower()[:2]
    if code in MAIL_LANGUAGES and code not in languages:
        languages.insert(0, code)
    return languages


def _extract(lines: list[str], text: str, languages: list[str]) -> str:
    split = _library_split(lines, text, languages)
    cut = split.cut
    if 0 < cut < len(lines) and not _confirmed_history(lines, cut):
        cut = len(lines)  # e.g. two lines starting "A:" (Italian To:) in a German Q&A
    own = _own_header(lines, 0, cut)
    if own is not None:
        cut = own
    if _forwarded(lines, cut):
        return _join(lines)
    inline = None if _outlook_history(lines, cut) else _inline_end(lines, cut, split.heads)
    if inline is not None:
        return _join(lines[: inline + 1])
    above = _strip_leftovers(lines[:cut])  # without separators, device lines, bare quotes
    if not above:
        return "" if _confirmed_history(lines, cut) else _join(lines)
    top = _strip_signature(above, split.signature, languages)
    return _join(_strip_leftovers(top)) or _join(above)  # all "signature": keep it


def _confirmed_history(lines: Sequence[str], cut: int) -> bool:
    """True if the history the library found starts with something we also call a header:
    our attribution/header-block rules, a `wrote`-word, or a `---- Original ----` line.
    A library false positive (two lines starting `A:`, Italian for To:) would drop text."""
    start = next((i for i in range(cut, len(lines)) if lines[i].strip()), len(lines))
    if start < len(lines) and _FRAMED.match(lines[start]):
        return True
    while start < len(lines) and _RULE.match(lines[start]):
        start += 1
    if _own_header(lines, start, start + 1) == start:
        return True
    head = " ".join(line.strip() for line in lines[start : start + 3])
    return bool(_WROTE.search(head)) or "processed by david" in head.lower()


# --- the library --------------------------------------------------------------------------


def _library_split(lines: list[str], text: str, languages: list[str]) -> _Split:
    message = EmailMessage(text=text, languages=list(languages), keep_hyphen_lists=True).read()
    replies = message.replies
    if not replies or replies[0].headers:
        return _Split(0, "")  # the body starts with a quote header
    first = replies[0]
    if len(replies) == 1:
        return _Split(len(lines), first.signatures or "")
    cut = _end_of(first.content, lines)
    return _Split(cut, first.signatures or "", _header_lines(replies[1:], lines, cut))


def _header_lines(replies: Sequence[EmailReply], lines: list[str], start: int) -> frozenset[int]:
    """Where the library's later quote headers begin, as original line indices."""
    found, position = set(), start
    for reply in replies:
        head = _first_line(reply.headers or "")
        for index in range(position, len(lines)):
            if head and lines[index].strip() == head:
                found.add(index)
                position = index + 1
                break
    return frozenset(found)


def _end_of(content: str, lines: list[str]) -> int:
    """The original line index just after the library's (whitespace-stripped) first part."""
    wanted = [line.strip() for line in content.split("\n") if line.strip()]
    index, end = 0, 0
    for number, line in enumerate(lines):
        if index < len(wanted) and line.strip() == wanted[index]:
            index += 1
            end = number + 1
    if index < len(wanted):
        raise _MappingError
    return end


# --- quote headers the library misses -----------------------------------------------------


def _own_header(lines: Sequence[str], start: int, stop: int) -> int | None:
    """The first attribution line or header block that starts in lines[start:stop], or None.

    An attribution may end up to two lines below `stop`: the library sometimes cuts inside
    a wrapped one (`… <a@b` / `>:`), leaving its first lines above the cut.
    """
    for index in range(start, min(len(lines), stop + 2)):
        line = lines[index].strip()
        if not line or (_QUOTED.match(line) and line != ">:"):  # ">:" ends a wrapped address
            continue
        head = _attribution_start(lines, index)
        if head is not None and start <= head < stop:
            return head
        if index < stop and _LABEL.match(line) and _header_block(lines, index):
            return index
    return None


def _attribution_start(lines: Sequence[str], end: int) -> int | None:
    """If lines[end] ends an attribution (`On … <a@b> wrote:`, wrapped over up to 4 lines,
    Zoho's `---- On … wrote ----`, or a short `Erika wrote:` above a quote), its first line."""
    last = lines[end].strip().strip("-").strip()
    if not (last.endswith(":") or _WROTE_END.search(last)):
        return None
    quote_follows = _next_is_quote(lines, end)
    for span in (1, 2, 3):
        start = end - span + 1
        if start < 0 or (span > 1 and not lines[start].strip()):
            break
        joined = " ".join(line.strip() for line in lines[start : end + 1]).strip("- ")
        if len(joined) <= 400 and _is_attribution(joined, quote_follows):
            while start > 0 and end - start < 3 and lines[start - 1].strip().endswith(","):
                start -= 1  # "On Nov 21, 2014," / "at 10:18," / "John <j@d> wrote:"
            return start
    if quote_follows and _WROTE_END.search(last) and len(last.split()) <= 12:
        return end  # "Erika Muster wrote:" right above a > quote
    return None


def _is_attribution(joined: str, quote_follows: bool) -> bool:
    if not _WHEN.search(joined):
        return False
    if _ADDRESS.search(joined):
        return True
    bare_address = _BARE_ADDRESS.search(joined) is not None
    return bool(_WROTE.search(joined)) and (quote_follows or bare_address)


def _next_is_quote(lines: Sequence[str], index: int) -> bool:
    following = next((line for line in lines[index + 1 :] if line.strip()), "")
    return bool(_QUOTED.match(following))


def _header_block(lines: Sequence[str], index: int) -> bool:
    """Three kinds of header label (From, Date, To, Subject, Cc) within seven lines."""
    kinds: set[str] = set()
    for line in lines[index : index + 7]:
        match = _LABEL.match(line)
        if match:
            kinds.update(name for name, value in match.groupdict().items() if value)
    return "from" in kinds and len(kinds) >= 3


def _forwarded(lines: Sequence[str], cut: int) -> bool:
    """True if the history starts right after a forward marker: that is content, keep it."""
    above = [line for line in lines[max(0, cut - 4) : cut + 1] if line.strip()]
    return any(_FORWARD.match(line) for line in above)


# --- inline answers -----------------------------------------------------------------------


def _inline_end(lines: Sequence[str], cut: int, heads: frozenset[int]) -> int | None:
    """The last line of new text written between quotes below `cut`, or None."""
    seen_quote, after_break, last = False, True, None
    for index in range(cut, len(lines)):
        line = lines[index].strip()
        if _QUOTED.match(line):
            seen_quote = True
            after_break = not line.lstrip("> \t")
            continue
        if not line:
            after_break = True
            continue
        if _SIG_DELIMITER.match(line):
            break
        if seen_quote and after_break and index > cut and _starts_history(lines, index, heads):
            break
        if seen_quote and (after_break or last == index - 1) and not _DEVICE.match(line):
            last = index
        after_break = False
    return last


def _outlook_history(lines: Sequence[str], cut: int) -> bool:
    """True if the history starts with an unquoted header block (`Von: … Gesendet: …`, maybe
    below `-----Ursprüngliche Nachricht-----`): Outlook leaves the original unquoted there, so
    `>` lines below are the original's own quotes and nothing between them is an answer."""
    index = next((i for i in range(cut, len(lines)) if lines[i].strip()), len(lines))
    while index < len(lines) and (_RULE.match(lines[index]) or _FRAMED.match(lines[index])):
        index += 1
    return index < len(lines) and bool(_LABEL.match(lines[index])) and _header_block(lines, index)


def _starts_history(lines: Sequence[str], index: int, heads: frozenset[int]) -> bool:
    if index in heads:
        return True
    return _own_header(lines, index, min(len(lines), index + 3)) is not None


# --- signature and leftovers --------------------------------------------------------------


def _strip_signature(top: list[str], signature: str, languages: list[str]) -> list[str]:
    """Cut at the earliest real closing: the library's signature if its first line is one, or
    a line that is only a German/English closing (`Mit freundlichen Grüßen`, `MfG`, …)."""
    cuts = []
    first = _first_line(signature).lstrip("> ")
    if first and _is_closing(first, languages):
        cuts += [i for i, line in enumerate(top) if line.strip().lstrip("> ") == first][:1]
    seen_text = False
    for index, line in enumerate(top):
        if seen_text and (_CLOSING.fullmatch(line.strip()) or _SIG_DELIMITER.match(line)):
            cuts.append(index)
            break
        seen_text = seen_text or bool(line.strip())
    return top[: min(cuts)] if cuts else top


def _is_closing(line: str, languages: list[str]) -> bool:
    """A delimiter, a device line, or a closing phrase with at most a name after it."""
    if _SIG_DELIMITER.match(line) or _DEVICE.match(line) or _CLOSING.fullmatch(line):
        return True
    pattern = "|".join(p for p in (_phrases(language) for language in languages) if p)
    closing = rf"(?i:{pattern})[\s,.!:;-]*(?:{_NAME})?[\s,.!]*"
    return bool(pattern) and re.fullmatch(closing, line) is not None


def _phrases(language: str) -> str:
    words = MAIL_LANGUAGES.get(language, {}).get("signatures", [])
    return "|".join(words) if isinstance(words, list) else str(words)


def _strip_leftovers(top: list[str]) -> list[str]:
    """Drop trailing blank lines, rules, `---- Original Message ----`, quotes and device lines."""
    lines = list(top)
    while lines and _leftover(lines[-1].strip()):
        lines.pop()
    return lines


def _leftover(line: str) -> bool:
    if not line or _RULE.match(line) or _FRAMED.match(line) or _QUOTED.match(line):
        return True
    if _DASH_NAME.match(line):
        return True
    return bool(_DEVICE.match(line)) and "," not in line and len(line.split()) <= 8


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


def _join(lines: Sequence[str]) -> str:
    """The lines with trailing spaces removed and without blank lines around them."""
    return "\n".join(line.rstrip() for line in lines).strip("\n")
