"""Rules that find people's names in German and English service-desk mail without a
statistical model: honorifics and titles, salutations, signature blocks after a closing,
a known first name followed by a surname, header lines of forwarded mails, and the display
names of this mail's own From/To/Cc/Reply-To in every form they take in the text.

Each rule returns character spans of the name only ("Frau [NAME-1]" keeps the honorific, so
the redacted text still reads naturally); `gateway.redaction.engine` merges and numbers them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from gateway.redaction.names import (
    AMBIGUOUS_FIRST,
    ARTICLES,
    COMMON_WORDS,
    DETERMINERS,
    FUNCTION_WORDS,
    MONTHS,
    NOT_NAME,
    ORG_WORDS,
    PARTICLES,
    UPPER,
    WORD,
    PersonName,
    is_clear_first_name,
    is_first_name,
    last_names,
    parse_display_name,
)
from gateway.redaction.vocabulary import frequent_english, kept_words, name_like, unknown


@dataclass(frozen=True, slots=True)
class NameSpan:
    start: int
    end: int
    score: float
    rule: str  # which rule found it, for the benchmark's error analysis


_END = r"(?![\w@'’-]|\.\w)"  # not inside a longer word or an address
_UNIT = re.compile(rf"(?:{PARTICLES})?({WORD}){_END}")
_KNOWN_BEFORE = re.compile(r"[\w@.-]")  # a known name does not go on a word or an address
_KNOWN_END = re.compile(_END)
_GAP = re.compile(r"[ \t]+")
_TITLE = (
    r"(?:Dr\.|Prof\.|Dipl\.-\w+\.?|med\.|rer\.[ \t]?nat\.|jur\.|phil\.|h\.[ \t]?c\.|Mag\.|Ing\.)"
)
_HONORIFIC = re.compile(
    rf"(?<![\w.])(?P<h>Herrn?|Frau|Hr\.|Fr\.|Mr\.?|Mrs\.?|Ms\.?|Miss|Mx\.?|{_TITLE})"
    rf"(?:[ \t]+{_TITLE})*[ \t]+"
)
# Role nouns between an honorific and the name: "Frau Bürgermeisterin Schulz".
_ROLE = re.compile(
    r"(?:Kolleg(?:e|in)|Bürgermeister(?:in)?|Präsident(?:in)?|Direktor(?:in)?|Minister(?:in)?"
    r"|Doktor|Professor(?:in)?|Staatssekretär(?:in)?|Abgeordnete[rn]?|Vorsitzende[rn]?"
    r"|Pfarrer(?:in)?|Amtsleiter(?:in)?|Dezernent(?:in)?|Stadtr(?:at|ätin)|Senator(?:in)?"
    r"|Bezirksstadtr(?:at|ätin)|Referatsleiter(?:in)?|Sachbearbeiter(?:in)?)[ \t]+"
)
_SALUTATION = re.compile(
    r"^[ \t>]*(?:Sehr[ \t]+geehrte[rs]?|Hallo|Hi|Hey|Liebe[rs]?|Guten[ \t]+(?:Tag|Morgen|Abend)"
    r"|Moin|Servus|Grüß[ \t]+Gott|Dear|Hello|Good[ \t]+(?:morning|afternoon|evening))[ \t,]+",
    re.MULTILINE,
)
_CLOSING = re.compile(
    r"^[ \t>]*(?:Mit[ \t]+(?:den[ \t]+)?(?:freundlichen|besten|herzlichen|kollegialen)"
    r"[ \t]+Grü(?:ß|ss)en"
    r"|Mit[ \t]+freundlichem[ \t]+Gru(?:ß|ss)"
    r"|(?:Freundliche|Viele|Beste|Herzliche|Liebe|Schöne|Sonnige|Kollegiale|Besten)"
    r"[ \t]+Grü(?:ß|ss)e"
    r"|Gru(?:ß|ss)|Grü(?:ß|ss)e|MfG|LG|VG|BG|Im[ \t]+Auftrag|In[ \t]+Vertretung|i\.[ \t]?[AV]\."
    r"|Best[ \t]+regards|Kind[ \t]+regards|Warm[ \t]+regards|Regards|Best[ \t]+wishes|Best"
    r"|Cheers|Thanks|Thank[ \t]+you|Many[ \t]+thanks|Sincerely"
    r"|Yours[ \t]+(?:sincerely|faithfully|truly)"
    r"|Danke(?:schön)?|Vielen[ \t]+Dank|Herzlichen[ \t]+Dank|--)"
    r"(?P<rest>[^\n]{0,60})$",
    re.MULTILINE | re.IGNORECASE,
)
_SIGN_PREFIX = re.compile(
    r"^[ \t>]*(?:(?:i\.[ \t]?[AV]\.|Im[ \t]+Auftrag|In[ \t]+Vertretung|gez\.|Ihr|Ihre|Euer|Eure"
    rf"|Your|Yours)[ \t]+)?(?:(?:Herr|Frau|Mr\.?|Mrs\.?|Ms\.?)[ \t]+)?(?:(?:{_TITLE})[ \t]+)*",
    re.IGNORECASE,
)
_INLINE_IA = re.compile(r"(?<![\w.])(?:i\.[ \t]?[AV]\.|gez\.)[ \t]+")
# A sign-off line of a dash and a name, the dash right before it ("-Abhishek Kona", "–Anna"):
# a bullet item has a space after its dash ("- Bürgerbüro Öffnungszeiten").
_DASH_SIGN = re.compile(rf"^[ \t>]*[-–—](?=[{UPPER}])(?P<v>[^\n]{{1,60}})$", re.MULTILINE)
_HEADER_LINE = re.compile(
    r"^[ \t>*]*(?:Von|From|An|To|Cc|CC|Kopie|Absender|Sender|Reply-To|Antwort[ \t]an)[ \t]*:\*?"
    r"[ \t]*(?P<v>[^\n]+)$",
    re.MULTILINE,
)
_WROTE = re.compile(
    rf"(?:schrieb[ \t]+\"?(?P<a>[^<\n\"]+?)\"?[ \t]*(?:<|\[mailto:|:[ \t]*$))"
    rf"|(?P<b>(?:{WORD}[ \t]+){{0,3}}{WORD})[ \t]*(?:<[^>\n]*>|\[mailto:[^\]\n]*\])[ \t]*"
    rf"(?:wrote|schrieb)",
    re.MULTILINE,
)
_ADDRESS_PART = re.compile(r"<[^>]*>|\[mailto:[^\]]*\]|\S+@\S+")
_NAME_LINE = re.compile(rf"(?:{PARTICLES})?{WORD}(?:[ \t]+(?:{PARTICLES})?{WORD}){{0,3}}")
# Form fields and nouns for people that a name follows: "Nachname: Nguyen", "Kind: Emil
# Ahrens", "meine Vertretung Otýlie Macháčková", "our contractor Tobias Oyelaran".
_FIELD = re.compile(
    r"(?<![\w-])(?:Name|Vorname|Vornamen|Nachname|Familienname|Geburtsname|Name,[ \t]*Vorname"
    r"|Vor-[ \t]und[ \t]Nachname|Kind|Antragsteller(?:in)?|Ansprechpartner(?:in)?|Kontakt"
    r"|Kontaktperson|Betroffene[rn]?|Teilnehmer(?:in)?|Benutzer(?:in)?|Nutzer(?:in)?"
    r"|Full[ \t]name|First[ \t]name|Last[ \t]name|Surname|Given[ \t]names?|Contact|Applicant"
    r"|Employee|Requester|Requested[ \t]by)[ \t]*:?[ \t]*"
)
_APPOSITION = re.compile(
    r"(?<![\w-])(?:[Kk]olleg(?:e|in|en)|Mitarbeiter(?:in)?|Vertretung|Vorgesetzte[rn]?"
    r"|Sachbearbeiter(?:in)?|Antragsteller(?:in)?|Bürger(?:in)?|Sohn|Tochter|Ehemann|Ehefrau"
    r"|Vater|Mutter|Azubi|Auszubildende[rn]?|Praktikant(?:in)?|Nachfolger(?:in)?"
    r"|Vorgänger(?:in)?|colleague|contractor|intern|manager|father|mother|son|daughter|wife"
    r"|husband|applicant|employee|customer|client|tenant|patient|supervisor|assistant"
    r"|Familie|family)"
    r"[ \t]*[,:]?[ \t]+"
)
# Phrases that take a person or an office: "on behalf of Abdirahman Warsame", "im Auftrag von
# Maik Scheibe", but "im Auftrag von Landratsamt Meißen" (the name must start with a word that
# may be a name).
_ON_BEHALF = re.compile(
    r"(?<![\w-])(?:on[ \t]+behalf[ \t]+of|(?:im|in)[ \t]+(?:Auftrag|Namen|Vertretung)[ \t]+von"
    r"|i\.[ \t]?[AV]\.[ \t]+von)[ \t]+",
    re.IGNORECASE,
)
_SURNAME_COMMA = re.compile(rf"(?<![\w@.-])({WORD}),[ \t]+(?={WORD})")
_AFTER_NAME = re.compile(r"[ \t]*(?:[(<\[;)\n]|$|,[ \t]*(?:geb|\*|born|DOB))", re.IGNORECASE)
_LOWER_NEXT = re.compile(r"[ \t]+[a-zäöüß]")
_PUNCT_NEXT = re.compile(r"[ \t]*[,.;:!?]")
_LINE_END = re.compile(r"[ \t]*(?:[,!:;.]|$)", re.MULTILINE)
# A sign-off in lower case: "heiko", "heiko zenker" (a first name, maybe a surname).
_LOWER_SIGN_OFF = re.compile(
    r"[ \t>,]*(?P<name>(?P<given>[a-zäöüß]{2,})(?:[ \t]+(?P<surname>[a-zäöüß][a-zäöüß-]+))?)"
    r"[ \t.!]*"
)
_AND_NAME = re.compile(rf"[ \t]+(?:and|und|&)[ \t]+({WORD}){_END}")
# A form filled in capitals: "NAME: RENÉ JÄHNIG", "Nachname: BÖTTGER" (the label in any case).
_CAPS_WORD = rf"(?:[{UPPER}]['’])?[{UPPER}]{{2,}}(?:-[{UPPER}]{{2,}})*"
_CAPS_VALUE = re.compile(
    rf":[ \t]*(?P<v>{_CAPS_WORD}(?:[ \t]+{_CAPS_WORD}){{0,3}})(?=[ \t]*(?:[,;(\n]|$))",
    re.MULTILINE,
)  # found from its colon (a literal is quick to look for), then its label before it
_CAPS_LABEL = re.compile(
    r"(?<![\w-])(?i:Name|Vorname|Vornamen|Nachname|Familienname|Geburtsname"
    r"|Antragsteller(?:in)?|Ansprechpartner(?:in)?|Kontaktperson|Full[ \t]name|First[ \t]name"
    r"|Last[ \t]name|Surname)[ \t]*$"
)
# The subject of a reporting verb at the start of a sentence: "Jun Wei said …", "Aleksandra
# called", "Ana Lima meinte, …". Names short enough to be words somewhere ("Jun", "Wei") have
# no other sign in running text.
_REPORTING_VERBS = (
    "said", "says", "wrote", "writes", "asked", "asks", "told", "tells", "reported", "reports",
    "mentioned", "called", "phoned", "confirmed", "meinte", "meint", "sagte", "sagt", "schrieb",
    "schreibt", "fragte", "fragt", "meldete", "meldet", "rief", "bestätigte", "bestätigt",
)
# found from the verb (most texts have none), then the name right before it
_REPORTING_VERB = re.compile(rf"[ \t](?:{'|'.join(_REPORTING_VERBS)})(?![\w-])")
_REPORTER = re.compile(
    rf"(?:^|(?<=[.!?][ \t]))[ \t>]*(?P<n>{WORD}(?:[ \t]+{WORD})?)[ \t]*$", re.MULTILINE
)
# Whose thing it is: "Ayodele's laptop", "Nomvula’s account was locked".
_POSSESSIVE = re.compile(
    rf"(?<![\w.'’/@-])({WORD})['’]s[ \t]+(?:new[ \t]+|old[ \t]+|work[ \t]+)?"
    r"(?:laptop|notebook|computer|PC|phone|mobile|account|password|mailbox|inbox|desk"
    r"|access|login|e-?mail|calendar|printer|badge|screen|monitor|headset|keyboard)s?(?![\w-])"
)
# One or two initials before a surname: "K. Pietzsch", "A. Luotonen", "K.-H. Zschoche".
_INITIALS = re.compile(rf"(?<![\w.-])(?:[{UPPER}]\.(?:-[{UPPER}]\.)?[ \t]?){{1,2}}(?=[{UPPER}])")


RULES = (
    "honorific", "salutation", "signature", "first-name", "first-name-alone", "field",
    "apposition", "surname-comma", "header", "name-run", "list", "slot", "initials",
    "caps-field", "reported", "possessive", "on-behalf",
)  # fmt: skip
"""The names of the rules (NameSpan.rule), for the benchmark's per-signal figures."""

# Capitalised parts of names that are also words: Vietnamese middle names, Arabic particles.
_JOINERS = frozenset(["Van", "Văn", "Thi", "Thị", "Al", "El", "Abu", "Ibn", "Bin", "Bint"])
# Vietnamese middle names: the two syllables after them are given names even where they are
# also words ("Thi Lan Nguyen", "Van Hung Duong"); all but "Van" are themselves evidence.
_VIETNAMESE = frozenset(["Van", "Văn", "Thi", "Thị"])
_LIST_LABEL = re.compile(
    r"^[ \t>]*(?:Verteiler(?:liste)?|Teilnehmer(?:innen|:innen|\*innen)?|Teilnehmende|Anwesend"
    r"|Entschuldigt|Abwesend|Kopie[ \t]an|Empfänger(?:innen)?|Participants|Attendees|Present"
    r"|Apologies|Distribution)[ \t]*:[ \t]*(?P<v>[^\n]+)$",
    re.MULTILINE | re.IGNORECASE,
)
_BULLET = re.compile(r"^[ \t>]*(?:[-*•–]|\d{1,2}[.)])[ \t]+(?P<v>[^\n]+?)[ \t]*$", re.MULTILINE)
# Two or more capitalised words in a row, none a particle: the candidates of the name-run rule.
_RUN = re.compile(
    rf"(?=[{UPPER}])(?<![\w.'’/-])(?<!\w@){WORD}{_END}(?:[ \t]+{WORD}{_END})+"
)  # after "@" only as a mention ("@Mykola Shevchuk"), not as an address's domain
_NON_SPACE = re.compile(r"\S+")
_ITEM = re.compile(r"[^,;]+(?:,[ \t]*[^,;]+)?")
# One word alone between the commas or semicolons of a list ("Haupt, Fiedler; Kaden.").
_LONE_ITEM = re.compile(rf"(?:^|(?<=[,;]))[ \t]*(?P<w>{WORD})[ \t.]*(?=[,;]|$)")
# Words after which a lone surname stands: "Rücksprache mit Pietzsch", "laut Kowalczyk",
# "die Akte liegt bei Nguyen", "I spoke with Petrenko", "according to Barakat".
_SLOT = re.compile(
    r"(?<![\w-])(?:(?P<strong>laut|Rücksprache[ \t]mit|according[ \t]to|spoke[ \t]with"
    r"|talked[ \t](?:to|with))|mit|bei|von|an|für|durch|gegenüber|with|from|by|to|for|cc"
    r"|und|and|sowie|oder|or)[ \t]+"
    rf"(?=[{UPPER}])"
)
_SLOT_END = re.compile(r"[ \t]*(?:[,.;:!?)]|$|[ \t][a-zäöüß])", re.MULTILINE)


def _prev_word(text: str, pos: int) -> str:
    """The word just before `pos`, lower-cased ("" at the start)."""
    head = text[max(0, pos - 30) : pos].rstrip()
    match = re.search(r"([\wäöüß]+)\W*$", head)
    return match.group(1).lower() if match else ""


def _usable(word: str, stop: frozenset[str] = NOT_NAME) -> bool:
    return word not in stop and not any(p.lower() in ORG_WORDS for p in word.split("-"))


def name_at(
    text: str, pos: int, *, max_words: int = 4, first: frozenset[str] = NOT_NAME
) -> tuple[int, int, list[str]] | None:
    """The name starting at `pos`: a capitalised word, followed by more while the last one
    taken is a first name ("Anna Maria Schmidt", but "Frau Schmidt | Bescheid" stops).
    `first` are the words the name may not start with; nor may an article."""
    unit = _UNIT.match(text, pos)
    if not unit or not _usable(unit.group(1), first):
        return None
    if _article_first(unit.group(0)):
        return None
    words, end = [unit.group(1)], unit.end()
    while len(words) < max_words and _takes_next(words[-1]):
        nxt = _next_unit(text, end)
        if not nxt or not _usable(nxt.group(1), FUNCTION_WORDS):
            break
        if not is_first_name(words[-1]) and not name_like(nxt.group(1)):
            break  # "Frau Kaya Bescheid geben"
        words.append(nxt.group(1))
        end = nxt.end()
    return pos, end, words


def _article_first(name: str) -> bool:
    """A lone "der"/"den" before a name is an article, not a particle: "Hallo, der Drucker",
    "Gruß / der Drucker", but "van der Berg"."""
    return name.split(None, 1)[0] in ("der", "den")


def _takes_next(word: str) -> bool:
    """Whether a name may go on after `word`: after a first name, a Vietnamese or Arabic
    joiner, or a word nobody listed ("Thi Thuy Truong", "Yuliia Melnyk")."""
    return is_first_name(word) or word in _JOINERS or unknown(word)


def _next_unit(text: str, end: int) -> re.Match[str] | None:
    gap = _GAP.match(text, end)
    return _UNIT.match(text, gap.end()) if gap else None


def _titled_name(text: str, pos: int) -> tuple[int, int] | None:
    """The name after an honorific, where even a month is a name ("Frau Mai", "Ms April
    Watson", "Frau Mai Linh Pham"); an unknown first word takes the next one along unless
    that one is a known surname's follower: "Frau Nihan Gülen", but "Frau Schmidt Bescheid
    geben"."""
    found = name_at(text, pos, first=FUNCTION_WORDS)
    if not found:
        return None
    start, end, words = found
    if len(words) == 1 and words[0] not in last_names():
        nxt = _next_unit(text, end)
        if nxt and _usable(nxt.group(1)) and unknown(nxt.group(1)):
            # a second given name nobody listed: "Herrn Thanh Tung Dang einen …"
            end = nxt.end()
            nxt = _next_unit(text, end)
        if nxt and _usable(nxt.group(1)) and _surname_follows(text, nxt):
            end = nxt.end()
    return start, end


class PersonFinder:
    """All PERSON rules over one text; stateless and safe to share between threads."""

    def find(self, text: str, known: Sequence[PersonName] = ()) -> list[NameSpan]:
        spans: list[NameSpan] = []
        spans += self._honorifics(text)
        spans += self._salutations(text)
        spans += self._signatures(text)
        spans += self._first_names(text)
        spans += self._fields(text)
        spans += self._on_behalf(text)
        spans += self._surname_first(text)
        spans += [NameSpan(s, e, 0.95, "header") for s, e, _ in header_names(text)]
        spans += self._name_runs(text)
        spans += self._lists(text)
        spans += self._slots(text)
        spans += self._initials(text)
        spans += self._capitals(text)
        spans += self._reported(text)
        spans += self._possessives(text)
        if known:
            spans += KnownNames(known).find(text)
        return spans

    def _honorifics(self, text: str) -> Iterator[NameSpan]:
        for match in _HONORIFIC.finditer(text):
            honorific = match.group("h")
            if honorific in ("Frau", "Herr", "Herrn") and _prev_word(text, match.start()) in (
                DETERMINERS
            ):
                continue
            pos = match.end()
            role = _ROLE.match(text, pos)
            if role:
                pos = role.end()
            found = _titled_name(text, pos)
            if found:
                yield NameSpan(found[0], found[1], 0.9, "honorific")

    def _salutations(self, text: str) -> Iterator[NameSpan]:
        for match in _SALUTATION.finditer(text):
            if _HONORIFIC.match(text, match.end()):
                continue  # "Sehr geehrte Frau Schmidt": the honorific rule has it
            found = name_at(text, match.end(), max_words=3)
            if not found:
                continue
            start, end, words = found
            if len(words) == 1:  # "Hallo Aleksandra Nowak,": one unknown word more
                gap = _GAP.match(text, end)
                nxt = _UNIT.match(text, gap.end()) if gap else None
                if nxt and _usable(nxt.group(1)) and _LINE_END.match(text, nxt.end()):
                    end = nxt.end()
                    words.append(nxt.group(1))
            pair = _AND_NAME.match(text, end)  # "Hi Ngozi and Chinonso," / "und Team,"
            if pair and _LINE_END.match(text, pair.end()):
                second = pair.group(1)
                if _all_name_like(words) and name_like(second) and _usable(second):
                    yield NameSpan(pair.start(1), pair.end(1), 0.8, "salutation")
                    yield NameSpan(start, end, 0.85, "salutation")
                elif is_clear_first_name(words[0]) or all(unknown(w) for w in words):
                    yield NameSpan(start, end, 0.85, "salutation")
            elif is_clear_first_name(words[0]) or _LINE_END.match(text, end):
                yield NameSpan(start, end, 0.85, "salutation")

    def _fields(self, text: str) -> Iterator[NameSpan]:
        for pattern, rule in ((_FIELD, "field"), (_APPOSITION, "apposition")):
            for match in pattern.finditer(text):
                if _HONORIFIC.match(text, match.end()):
                    continue  # "Kollegin Frau Sommerfeld": the honorific rule has it
                found = _name_or_two(text, match.end())
                if found:
                    yield NameSpan(found[0], found[1], 0.8, rule)

    def _on_behalf(self, text: str) -> Iterator[NameSpan]:
        """On whose behalf: "on behalf of Abdirahman Warsame", "im Auftrag von Maik Scheibe";
        an office ("im Auftrag von Landratsamt Meißen") stays."""
        for match in _ON_BEHALF.finditer(text):
            unit = _UNIT.match(text, match.end())
            if not unit or unit.start(1) != unit.start() or not name_like(unit.group(1)):
                continue
            found = _name_or_two(text, match.end())
            if found:
                yield NameSpan(found[0], found[1], 0.8, "on-behalf")

    def _surname_first(self, text: str) -> Iterator[NameSpan]:
        """ "Albers, Rüdiger (geboren …)", "Schmidt, Anna-Lena;" in running text; given names
        that may be names but are not listed only where the name plainly ends: "Manço, Sunay
        (geboren …)"."""
        for match in _SURNAME_COMMA.finditer(text):
            surname = match.group(1)
            if not _usable(surname):
                continue
            given = name_at(text, match.end(), max_words=3)
            if not given:
                continue
            closed = _AFTER_NAME.match(text, given[1])
            if all(is_first_name(w) for w in given[2]):
                if surname in last_names() or closed:
                    yield NameSpan(match.start(1), given[1], 0.85, "surname-comma")
            elif closed and name_like(surname) and _all_name_like(given[2]):
                # given names nobody listed: "von Manço, Sunay (geboren …)"
                yield NameSpan(match.start(1), given[1], 0.8, "surname-comma")

    def _signatures(self, text: str) -> Iterator[NameSpan]:
        for match in _CLOSING.finditer(text):
            rest_start = match.start("rest")
            rest = match.group("rest")
            if rest.strip(" \t,"):  # "Viele Grüße, Anna" / "LG Anna"
                span = _signature_line(text, rest_start, match.end(), same_line=True)
                if span:
                    yield span
                continue
            span = _next_signature_line(text, match.end())
            if span:
                yield span
        for match in _INLINE_IA.finditer(text):
            found = name_at(text, match.end())
            if found:
                yield NameSpan(found[0], found[1], 0.85, "signature")
        for match in _DASH_SIGN.finditer(text):
            span = _signature_line(text, match.start("v"), match.end(), same_line=False)
            if span is None:
                continue
            words = [unit.group(1) for unit in _UNIT.finditer(text, span.start, span.end)]
            if _all_name_like(words):  # not "-Neuer Drucker"
                yield span

    def _name_runs(self, text: str) -> Iterator[NameSpan]:
        """Two or more capitalised words in a row that may all be names, one of them no
        word and no listed name: "Ayşe Kaya from our office", "an Rasha Youssef übergeben",
        "Van Minh Tran". Not after an article ("der Koch Wettbewerb")."""
        for match in _RUN.finditer(text):  # one pattern finds the runs: a unit-by-unit
            run = list(_NON_SPACE.finditer(match.group(0)))  # walk doubled the rules' time
            yield from _runs_of_names(text, match.start(), run)

    def _lists(self, text: str) -> Iterator[NameSpan]:
        """Names as items of a list: "Verteiler: A B, C D", "Participants: A; B", bullet
        lines "- Kovalenko, Olena"; honorific items are the honorific rule's."""
        for match in _LIST_LABEL.finditer(text):
            yield from _labelled_list(text, match.start("v"), match.group("v"))
        if "\n" not in text:
            return
        for match in _BULLET.finditer(text):
            yield from _list_items(text, match.start("v"), match.group("v"), single=False)

    def _slots(self, text: str) -> Iterator[NameSpan]:
        """A lone surname or first name after a preposition that takes people ("laut
        Kowalczyk", "mit Pietzsch besprochen", "with Mariano and …"): a word nobody listed, a
        first name or a listed surname that is no everyday word; "mit Outlook", "bei Koch und
        Kellner", "in Chemnitz" stay. After "laut" or "according to", which take people, any
        listed surname: "laut Braun", "laut König"."""
        for match in _SLOT.finditer(text):
            unit = _UNIT.match(text, match.end())
            if not unit or unit.start(1) != unit.start() or not _SLOT_END.match(text, unit.end()):
                continue
            word = unit.group(1)
            if unknown(word) or is_clear_first_name(word) or (
                _lone_surname(word) if not match.group("strong")
                else word in last_names() and _usable(word, FUNCTION_WORDS)
            ):
                yield NameSpan(unit.start(), unit.end(), 0.7, "slot")

    def _initials(self, text: str) -> Iterator[NameSpan]:
        """Initials and a surname that may be a name (listed, or no word): "K. Pietzsch" under
        a closing, "an J. Kretzschmar", "K.-H. Zschoche"; "Plan B. Danach" stays."""
        for match in _INITIALS.finditer(text):
            unit = _UNIT.match(text, match.end())
            if unit and unit.start(1) == unit.start() and name_like(unit.group(1)) and _usable(
                unit.group(1)
            ):
                yield NameSpan(match.start(), unit.end(), 0.75, "initials")

    def _capitals(self, text: str) -> Iterator[NameSpan]:
        """A name field of a form filled in capitals: "NAME: RENÉ JÄHNIG"; each word, written
        as a name, may be one ("KONTAKT: IT-SERVICE" stays)."""
        for match in _CAPS_VALUE.finditer(text):
            colon = match.start()
            if not _CAPS_LABEL.search(text, max(0, colon - 30), colon):
                continue
            if _all_name_like([_title(word) for word in match.group("v").split()]):
                yield NameSpan(match.start("v"), match.end("v"), 0.8, "caps-field")

    def _reported(self, text: str) -> Iterator[NameSpan]:
        """Who said or asked something, at the start of a sentence: two capitalised words that
        may each be a name (_reporter_word: "Jun Wei said", not "Customer Service said",
        "Microsoft Teams says"); one word only if it is a first name that is no word
        ("Aleksandra called")."""
        for verb in _REPORTING_VERB.finditer(text):
            match = _REPORTER.search(text, max(0, verb.start() - 80), verb.start())
            if not match:
                continue
            words = match.group("n").split()
            if len(words) == 1:
                if not is_clear_first_name(words[0]):
                    continue
            elif not all(_reporter_word(word) for word in words):
                continue
            yield NameSpan(match.start("n"), match.end("n"), 0.75, "reported")

    def _possessives(self, text: str) -> Iterator[NameSpan]:
        """Whose laptop or account it is: "Ayodele's laptop"; a word, place or product stays
        ("Microsoft's account")."""
        if "'s " not in text and "’s " not in text:
            return  # no possessive at all (nearly every German text)
        for match in _POSSESSIVE.finditer(text):
            word = match.group(1)
            if name_like(word) and _usable(word):
                yield NameSpan(match.start(1), match.end(1), 0.75, "possessive")

    def _first_names(self, text: str) -> Iterator[NameSpan]:
        pos = 0
        while True:
            unit = _UNIT.search(text, pos)
            if not unit:
                return
            word = unit.group(1)
            pos = unit.end()
            if not is_first_name(word) or word in NOT_NAME:
                continue
            found = name_at(text, unit.start(1))
            if not found:
                continue
            start, end, words = found
            if len(words) >= 2 and (
                word not in AMBIGUOUS_FIRST or words[1] in last_names() or is_first_name(words[1])
            ):
                yield NameSpan(start, end, 0.8, "first-name")
                pos = end
            elif len(words) == 1 and is_clear_first_name(word) and _stands_alone(text, start, end):
                yield NameSpan(start, end, 0.6, "first-name-alone")


def _title(word: str) -> str:
    """A word written in capitals as a name is written: "JÄHNIG" → "Jähnig"."""
    return "-".join(part.capitalize() for part in word.split("-"))


def _reporter_word(word: str) -> bool:
    """A word that may be part of the name of someone who said something: a listed name or no
    word, or a short one that is no everyday English word ("Jun", "Wei": syllable names the
    dictionaries hold); "Deutsche Bahn", "Kaspersky Endpoint" stay."""
    return (
        _usable(word) and word not in kept_words()  # _usable: no function word either
        and not frequent_english(word) and word not in AMBIGUOUS_FIRST
        and (name_like(word) or len(word) <= 4)
    )  # fmt: skip


def _lone_surname(word: str) -> bool:
    """A listed surname that is no everyday word or first name ("Pietzsch", not "Koch")."""
    return (
        word in last_names() and _usable(word) and word not in COMMON_WORDS
        and word not in AMBIGUOUS_FIRST and not is_first_name(word)
        and not frequent_english(word)  # "with Case creation"
    )  # fmt: skip


def _runs_of_names(text: str, at: int, run: list[re.Match[str]]) -> Iterator[NameSpan]:
    """The stretches of `run` (adjacent capitalised words from `at`) that read as one name."""
    words = [u.group(0) for u in run]
    i = 0
    while i < len(run) - 1:
        part = _name_words(words[i:])
        if _is_name(part) and _prev_word(text, at + run[i].start()) not in ARTICLES:
            yield NameSpan(at + run[i].start(), at + run[i + len(part) - 1].end(), 0.8,
                           "name-run")
        i += max(1, len(part))


def _name_words(words: list[str]) -> list[str]:
    """The leading words that may all be parts of one name."""
    taken: list[str] = []
    for word in words:
        after_vietnamese = any(w in _VIETNAMESE for w in taken[-2:])
        if not (_may_be_name(word) or (after_vietnamese and _usable(word))):
            break
        taken.append(word)
    while taken and taken[-1] in _JOINERS:  # "… Van" ends no name
        taken.pop()
    return taken


def _is_name(part: list[str]) -> bool:
    """Two or more name words, one of them evidence: no word and no listed name, or a
    Vietnamese middle name."""
    names = [w for w in part if w not in _JOINERS]
    return len(names) >= 2 and any(
        unknown(w) or (w in _VIETNAMESE and w != "Van") for w in part
    )


def _may_be_name(word: str) -> bool:
    return word in _JOINERS or (_usable(word) and name_like(word))


def _names_part(value: str) -> str:
    """A list line up to its first mail address ("Verteiler: A, B <a@x>" → "A, B ")."""
    return _ADDRESS_PART.split(value)[0] if "@" in value else value


def _list_items(text: str, offset: int, value: str, *, single: bool) -> Iterator[NameSpan]:
    """The items of one list line that are names; `single`: one word nobody listed will do
    (after a list label, not on a bullet line, where "- Wohngeldantrag" is no one)."""
    for item in _ITEM.finditer(_names_part(value)):
        raw = item.group(0)
        stripped = raw.strip(" \t.")
        if not stripped or _HONORIFIC.match(stripped + " "):
            continue
        start = offset + item.start() + raw.index(stripped)
        if _is_list_name(stripped, single=single):
            yield NameSpan(start, start + len(stripped), 0.8, "list")


def _labelled_list(text: str, offset: int, value: str) -> Iterator[NameSpan]:
    """The names on a "Verteiler:"/"Teilnehmer:" line. Such a list names one kind of thing:
    in a list of lone words of which at least half read as names (a listed name or no word),
    a surname that is also a word ("Haupt", "Nestler") stands for a person too ("Verteiler:
    Haupt, Fiedler, Nestler, Kaden"); places and products stay, and a list of offices
    ("Wohngeldstelle, Hausmeisterei") stays one of offices."""
    yield from _list_items(text, offset, value, single=True)
    listed = _names_part(value)
    words = [(offset + m.start("w"), m.group("w")) for m in _LONE_ITEM.finditer(listed)]
    pieces = [piece for piece in re.split(r"[,;]", listed) if piece.strip(" \t.")]
    if len(words) < 2 or len(words) != len(pieces):
        return  # not a list of lone words
    if 2 * sum(name_like(word) for _, word in words) < len(words):
        return
    for start, word in words:
        if _lone_word_of_list(word):
            yield NameSpan(start, start + len(word), 0.7, "list")


def _lone_word_of_list(word: str) -> bool:
    """A list's word (capitalised: _LONE_ITEM) that may stand for a person in a list of
    names: no place, product, function word or organisation word."""
    return _usable(word) and word not in kept_words() and word not in FUNCTION_WORDS


def _is_list_name(item: str, *, single: bool) -> bool:
    surname, comma, given = item.partition(",")
    words = (given.split() + surname.split()) if comma else item.split()
    if not words or len(words) > 4:
        return False
    if not all(re.fullmatch(WORD, w) for w in words) or _name_words(words) != words:
        return False
    names = [w for w in words if w not in _JOINERS]
    if len(names) >= 2:
        return _is_name(words) or any(is_first_name(w) or w in last_names() for w in names)
    return single and bool(names) and (unknown(names[0]) or names[0] in last_names())


def _surname_follows(text: str, word: re.Match[str]) -> bool:
    """Whether `word`, after an unknown capitalised word, reads as that person's surname:
    a known surname, or followed by punctuation, a lower-case word or a noun."""
    if word.group(1) in last_names() or _AFTER_NAME.match(text, word.end()):
        return True
    if _LOWER_NEXT.match(text, word.end()) or _PUNCT_NEXT.match(text, word.end()):
        return True
    after = _next_unit(text, word.end())
    return bool(after and after.group(1) in NOT_NAME)


def _name_or_two(text: str, pos: int) -> tuple[int, int] | None:
    """A name at `pos`; an unknown first word may take one more ("Niek Bílková (…")."""
    found = name_at(text, pos)
    if not found:
        return None
    start, end, words = found
    if len(words) == 1:
        nxt = _next_unit(text, end)
        if nxt and _usable(nxt.group(1)) and _surname_follows(text, nxt):
            end = nxt.end()
    return start, end


_NUMBER_BEFORE = re.compile(r"\d\.?[ \t]*$")
_LABEL_AFTER = re.compile(r"\*?:|\.?[ \t]*\d")


def _stands_alone(text: str, start: int, end: int) -> bool:
    """A lone first name, not "das Brett", "1. Jan. 2023", "9 Jan 2014" or a header label
    such as Danish "Til:" or Dutch "Van:"."""
    if _prev_word(text, start) in ARTICLES:
        return False
    if _NUMBER_BEFORE.search(text, max(0, start - 6), start):
        return False
    return not _LABEL_AFTER.match(text, end)


def _next_signature_line(text: str, pos: int) -> NameSpan | None:
    """The name on the first non-empty line after a closing (skipping "Im Auftrag" lines)."""
    lines = 0
    while pos < len(text) and lines < 4:
        line_start = pos + 1
        line_end = text.find("\n", line_start)
        line_end = len(text) if line_end < 0 else line_end
        line = text[line_start:line_end]
        pos = line_end
        lines += 1
        if not line.strip(" \t>-_"):
            continue
        if re.fullmatch(
            r"[ \t>]*(?:i\.[ \t]?[AV]\.|Im[ \t]+Auftrag|In[ \t]+Vertretung)[ \t]*", line
        ):
            continue
        return _signature_line(text, line_start, line_end, same_line=False)
    return None


def _all_name_like(words: Sequence[str]) -> bool:
    """Every word may be a name (listed, or no word at all): "Abhishek Kona", "Anna Schmidt",
    not "Laptop Rückgabe" or "Reset Password"."""
    return bool(words) and all(name_like(word) and _usable(word) for word in words)


def _signature_line(text: str, start: int, end: int, *, same_line: bool) -> NameSpan | None:
    """A name line in a signature: "Dr. Anna Schmidt", "Schmidt, Anna | Referat IT", "Anna";
    also written in lower case when it starts with a listed first name: "gruß, heiko zenker"."""
    lower = _LOWER_SIGN_OFF.fullmatch(text, start, end)
    if lower:
        given, surname = lower.group("given"), lower.group("surname")
        if is_clear_first_name(given.capitalize()) and (
            surname is None or name_like(surname.capitalize())
        ):
            return NameSpan(lower.start("given"), lower.end("name"), 0.75, "signature")
        return None
    line = text[start:end]
    prefix = _SIGN_PREFIX.match(line.lstrip(" \t,"))
    offset = len(line) - len(line.lstrip(" \t,")) + (prefix.end() if prefix else 0)
    body = line[offset:]
    cut = re.search(r"[ \t]+[|–-][ \t]|[ \t]*\(|[ \t]*/|\t|[ \t]{2,}", body)
    body = body[: cut.start()] if cut else body
    body = body.rstrip(" \t,.")
    comma = re.fullmatch(rf"({WORD})[ \t]*,[ \t]*({WORD}(?:[ \t]+{WORD})?)", body)
    if comma and all(  # "Schmidt, Anna", "Kowaltschuk, Wolodymyr"
        is_first_name(w) or (name_like(w) and _usable(w)) for w in comma.group(2).split()
    ):
        return NameSpan(start + offset, start + offset + len(body), 0.85, "signature")
    body = body.split(",")[0].rstrip()
    if not _NAME_LINE.fullmatch(body) or _article_first(body):
        return None
    units = list(_UNIT.finditer(body))
    stop = NOT_NAME if len(units) == 1 else NOT_NAME - MONTHS  # "April Jones"
    if not _usable(units[0].group(1), stop) or any(
        not _usable(u.group(1), FUNCTION_WORDS) for u in units[1:]
    ):
        return None
    if same_line and not is_first_name(units[0].group(1)) and (
        len(units) == 1 or not _all_name_like([u.group(1) for u in units])
    ):
        return None  # "LG Anna", "Viele Grüße Wenke Tschirner", not "Im Auftrag von Landratsamt"
    return NameSpan(start + offset, start + offset + len(body), 0.85, "signature")


def header_names(text: str) -> list[tuple[int, int, PersonName]]:
    """People in quoted header lines of forwarded or replied mails: "Von: Schmidt, Anna
    <a@b.de>", "An: Müller, Peter; Weber, Eva", "Am 3.3.2025 schrieb Anna Schmidt <…>:"."""
    found: list[tuple[int, int, PersonName]] = []
    for match in _HEADER_LINE.finditer(text):
        offset = match.start("v")
        for part in re.finditer(r"[^;]+", match.group("v")):
            _add_header_name(found, offset + part.start(), part.group(0))
    if "wrote" not in text and "schrieb" not in text:
        return found
    for match in _WROTE.finditer(text):
        group = "a" if match.group("a") else "b"
        _add_header_name(found, match.start(group), match.group(group))
    return found


def _add_header_name(found: list[tuple[int, int, PersonName]], start: int, value: str) -> None:
    value = _ADDRESS_PART.split(value)[0]
    value = value.split("(")[0]
    stripped = value.strip(" \t\"'")
    if not stripped:
        return
    person = parse_display_name(stripped)
    if person is None:
        return
    begin = start + value.index(stripped)
    found.append((begin, begin + len(stripped), person))


class KnownNames:
    """Finds the variants of given people's names ("Anna-Lena Schmidt", "Schmidt, Anna-Lena",
    "Schmidt", "Anna-Lena"); lone variants that are ordinary words need a non-article before.

    Built for every mail (its header names), so it compiles no pattern: each variant is looked
    for with str.find and the same boundaries a pattern would check. Compiling one alternation
    per mail was a tenth of PREPARE's time (bench/e2e.py corpus, cProfile)."""

    def __init__(self, people: Iterable[PersonName]) -> None:
        self._variants = sorted({v for p in people for v in p.variants()}, key=len, reverse=True)

    def _occurrences(self, text: str) -> list[tuple[int, int]]:
        """Where a variant stands as a word of its own: leftmost first, the longest variant at
        a place, none inside an earlier one (what `finditer` over the alternation gives)."""
        found: list[tuple[int, int]] = []
        for variant in self._variants:
            at = text.find(variant)
            while at >= 0:
                end = at + len(variant)
                if (at == 0 or not _KNOWN_BEFORE.match(text, at - 1)) and _KNOWN_END.match(
                    text, end
                ):
                    found.append((at, -end))
                at = text.find(variant, at + 1)
        chosen: list[tuple[int, int]] = []
        taken = 0
        for at, negative_end in sorted(found):  # at one place the longest comes first
            if at >= taken:
                chosen.append((at, -negative_end))
                taken = -negative_end
        return chosen

    def find(self, text: str) -> list[NameSpan]:
        spans = []
        for start, end in self._occurrences(text):
            value = text[start:end]
            if (
                " " not in value
                and (value in COMMON_WORDS or value in AMBIGUOUS_FIRST)
                and _prev_word(text, start) in ARTICLES
            ):
                continue
            spans.append(NameSpan(start, end, 0.95, "known"))
        return spans
