"""Deterministic generator of the labelled mail set for bench/redaction.py: seeded Faker
identities (de_DE and en_US, plus a fifth of Polish, Turkish, Italian, French, Czech and
Dutch names that the first-name list does not know) placed into German, English and mixed
service-desk mails with salutations, signatures, third parties, forwarded and quoted mails,
birth dates in every form the issue names, and ordinary dates and name-like words that must
survive.

Mails are written in a small markup, also used by the hand-written mails in
tests/data/redaction/: `[[PER:Anna Schmidt]]` is a name to redact, `[[DOB:…]]` a birth date,
`[[EMAIL:…]]`, `[[PHONE:…]]`, `[[IBAN:…]]`, `[[TAX:…]]`, `[[ID:…]]`, `[[KVNR:…]]`,
`[[ADDR:…]]` the other entities; `[[DATE:…]]` is an ordinary date and `[[KEEP:…]]` a
name-like word, both of which must stay. A file starts with header lines (`language: de`,
`known: Schmidt, Anna (BA Mitte)`) and a blank line.

    .venv/bin/python bench/redaction_corpus.py --show 3     # print three generated mails
"""

from __future__ import annotations

import argparse
import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from faker import Faker

SEED = 4
TAGS = {
    "PER": "PERSON",
    "DOB": "DATE_OF_BIRTH",
    "EMAIL": "EMAIL_ADDRESS",
    "PHONE": "PHONE_NUMBER",
    "IBAN": "IBAN_CODE",
    "TAX": "DE_TAX_ID",
    "ID": "ID_DOCUMENT",
    "KVNR": "DE_HEALTH_INSURANCE",
    "ADDR": "STREET_ADDRESS",
    "DATE": "ORDINARY_DATE",
    "KEEP": "KEEP",
}
_MARK = re.compile(r"\[\[(?P<tag>[A-Z]+):(?P<value>.*?)\]\]", re.DOTALL)


@dataclass
class LabelledMail:
    name: str
    language: str  # de | en | mixed
    known_names: list[str]
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, entity)


def parse_markup(name: str, markup: str) -> LabelledMail:
    """A mail in the markup above → plain text plus labelled character spans."""
    head, _, body = markup.partition("\n\n")
    meta: dict[str, list[str]] = {}
    for line in head.splitlines():
        key, _, value = line.partition(":")
        meta.setdefault(key.strip().lower(), []).append(value.strip())
    text: list[str] = []
    spans: list[tuple[int, int, str]] = []
    pos = length = 0
    for match in _MARK.finditer(body):
        text.append(body[pos : match.start()])
        length += match.start() - pos
        value = match.group("value")
        spans.append((length, length + len(value), TAGS[match.group("tag")]))
        text.append(value)
        length += len(value)
        pos = match.end()
    text.append(body[pos:])
    return LabelledMail(
        name=name,
        language=meta.get("language", ["de"])[0],
        known_names=[v for v in meta.get("known", []) if v],
        text="".join(text),
        spans=spans,
    )


def load_markup_dir(folder: Path) -> list[LabelledMail]:
    """Every `*.txt` mail of a folder of hand-written markup mails."""
    return [parse_markup(p.name, p.read_text("utf-8")) for p in sorted(folder.glob("*.txt"))]


# ---------------------------------------------------------------- identities and values

MONTHS_DE = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
MONTHS_EN = "January February March April May June July August September October November December"
_PLAIN = re.compile(
    r"(?:[a-z]+ ){0,2}[A-ZÀ-ÖØ-ÞĀ-ž][a-zß-öø-ÿĀ-ž]+(?:-[A-ZÀ-ÖØ-ÞĀ-ž][a-zß-öø-ÿĀ-ž]+)?"
)
FOREIGN = ("pl_PL", "tr_TR", "it_IT", "fr_FR", "cs_CZ", "nl_NL")


@dataclass
class Person:
    first: str
    last: str
    female: bool
    title: str  # "", "Dr." or "Prof. Dr."
    email: str
    born: date

    @property
    def full(self) -> str:
        return f"[[PER:{self.first} {self.last}]]"


def _ascii(value: str) -> str:
    value = value.replace("ß", "ss").replace("ä", "ae").replace("ö", "oe").replace("ü", "ue")
    value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z-]", "", value.lower())


class Values:
    """Everything random in one mail, drawn from one seeded generator."""

    def __init__(self, rnd: random.Random, fakers: dict[str, Faker]) -> None:
        self.rnd = rnd
        self.fakers = fakers

    def person(self, locale: str = "de_DE") -> Person:
        if locale != "en_US" and self.rnd.random() < 0.2:
            locale = self.rnd.choice(FOREIGN)
        fake = self.fakers[locale]
        female = self.rnd.random() < 0.5
        first = last = ""
        while not _PLAIN.fullmatch(first):  # not "H.-Dieter"
            first = (fake.first_name_female() if female else fake.first_name_male()).split()[0]
        while not _PLAIN.fullmatch(last) or last in ("Doktor", "Herr", "Frau"):
            last = fake.last_name()  # not "Smith II", nor the "Doktor" family Faker knows
        title = self.rnd.choice(["", "", "", "", "", "Dr.", "Dr.", "Prof. Dr."])
        domain = self.rnd.choice(
            ["ba-mitte.berlin.de", "stadt-musterhausen.de", "lra-example.de", "senfin.berlin.de",
             "gmail.com", "web.de", "example.org", "acme-consulting.com", "t-online.de"]
        )  # fmt: skip
        email = f"{_ascii(first)}.{_ascii(last.split()[-1])}@{domain}"
        born = date(1950, 1, 1) + timedelta(days=self.rnd.randrange(0, 365 * 55))
        return Person(first, last, female, title, email, born)

    def choice(self, options: list[str]) -> str:
        return self.rnd.choice(options)

    def date(self, en: bool = False) -> str:
        day = date(2024, 6, 1) + timedelta(days=self.rnd.randrange(0, 700))
        return _format_date(day, self.rnd, en, ordinary=True)

    def dob(self, who: Person, en: bool = False) -> str:
        return _format_date(who.born, self.rnd, en, ordinary=False)

    def phone(self) -> str:
        r = self.rnd
        area = r.choice(["030", "040", "089", "0221", "0211", "069", "0711", "0351"])
        mobile = r.choice(["0151", "0160", "0170", "0171", "0172", "0176"])
        # 015x and 0176 numbers have eight digits after the prefix, the others seven
        long = mobile in ("0151", "0176")
        digits = "".join(str(r.randrange(10)) for _ in range(7))
        mobile_digits = digits + str(r.randrange(10)) if long else digits
        return r.choice(
            [
                f"{area} {digits}",
                f"{area} {digits[:4]}-{digits[4:]}",
                f"{area}/{digits}",
                f"+49 {area[1:]} {digits}",
                f"+49 ({area[1:]}) {digits[:3]} {digits[3:]}",
                f"{mobile} {mobile_digits}",
                f"{mobile}-{mobile_digits}",
                f"+49 {mobile[1:]} {mobile_digits}",
            ]
        )

    def iban(self) -> str:
        raw = self.fakers["de_DE"].iban()
        return (
            " ".join(raw[i : i + 4] for i in range(0, len(raw), 4))
            if self.rnd.random() < 0.6
            else raw
        )

    def tax_id(self) -> str:
        while True:
            digits = [self.rnd.randrange(1, 10)] + [self.rnd.randrange(10) for _ in range(9)]
            if max(digits.count(d) for d in digits) <= 3:
                break
        value = "".join(map(str, digits)) + str(_tax_check(digits))
        if self.rnd.random() < 0.5:
            value = f"{value[:2]} {value[2:5]} {value[5:8]} {value[8:]}"
        return value

    def id_card(self) -> str:
        chars = "CFGHJKLMNPRTVWXYZ0123456789"
        body = self.rnd.choice("CFGHJKLMNPRTVWXYZ") + "".join(
            self.rnd.choice(chars) for _ in range(7)
        )
        return body + str(_icao_check(body))

    def kvnr(self) -> str:
        letter = self.rnd.choice("ABCDEFGHIJKLMNOPRSTUVWZ")
        digits = "".join(str(self.rnd.randrange(10)) for _ in range(8))
        return f"{letter}{digits}{_kvnr_check(letter, digits)}"

    def street(self) -> str:
        fake = self.fakers["de_DE"]
        return f"{fake.street_name()} {self.rnd.randrange(1, 120)}, {fake.postcode()} {fake.city()}"

    def ticket(self) -> str:
        return f"LDS-{self.rnd.randrange(1000, 99999)}"


def _format_date(day: date, rnd: random.Random, en: bool, *, ordinary: bool) -> str:
    if en:
        month = MONTHS_EN.split()[day.month - 1]
        forms = [
            f"{day:%Y-%m-%d}",
            f"{month} {day.day}, {day.year}",
            f"{day.day} {month} {day.year}",
            f"{day:%m/%d/%Y}",
            f"{day:%d/%m/%Y}",
            f"{day.day}{_suffix(day.day)} of {month} {day.year}",
        ]
    else:
        month = MONTHS_DE.split()[day.month - 1]
        forms = [
            f"{day:%d.%m.%Y}",
            f"{day:%d.%m.%Y}",
            f"{day.day}.{day.month}.{day.year}",
            f"{day.day}. {month} {day.year}",
            f"{day:%d.%m.%y}",
            f"{day:%Y-%m-%d}",
        ]
    tag = "DATE" if ordinary else "DOB"
    return f"[[{tag}:{rnd.choice(forms)}]]"


def _suffix(day: int) -> str:
    return "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _tax_check(digits: list[int]) -> int:
    product = 10
    for d in digits:
        total = (d + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return 0 if check == 10 else check


def _icao_check(body: str) -> int:
    weights = (7, 3, 1)
    values = [int(c) if c.isdigit() else ord(c) - 55 for c in body]
    return sum(v * weights[i % 3] for i, v in enumerate(values)) % 10


def _kvnr_check(letter: str, digits: str) -> int:
    effective = f"{ord(letter) - 64:02d}{digits}"
    total = 0
    for i, ch in enumerate(effective):
        product = int(ch) * (1 if i % 2 == 0 else 2)
        total += product // 10 + product % 10
    return total % 10


# ---------------------------------------------------------------- German building blocks


def hon_de(p: Person, *, dative: bool = False, title: bool = True, full: bool = False) -> str:
    word = "Frau" if p.female else ("Herrn" if dative else "Herr")
    name = f"{p.first} {p.last}" if full else p.last
    t = f" {p.title}" if title and p.title else ""
    return f"{word}{t} [[PER:{name}]]"


def hon_en(p: Person, *, full: bool = False) -> str:
    word = ("Ms" if p.female else "Mr") + ("." if len(p.last) % 2 else "")
    t = " Dr." if p.title else ""
    name = f"{p.first} {p.last}" if full else p.last
    return f"{word}{t} [[PER:{name}]]"


def dob_de(v: Values, p: Person) -> str:
    d = v.dob(p)
    return v.choice(
        [
            f"geb. {d}", f"geb. am {d}", f"geboren am {d}", f"Geburtsdatum: {d}",
            f"*{d}", f"* {d}", f"Geb.-Datum {d}", f"Geburtsdatum {d}", f"geboren {d}",
        ]
    )  # fmt: skip


def dob_en(v: Values, p: Person) -> str:
    d = v.dob(p, en=True)
    return v.choice(
        [
            f"DOB {d}", f"DOB: {d}", f"date of birth {d}", f"Date of birth: {d}",
            f"born on {d}", f"D.O.B. {d}", f"born {d}", f"birth date: {d}",
        ]
    )  # fmt: skip


def greeting_de(v: Values, to: Person | None) -> str:
    options = ["Sehr geehrte Damen und Herren,", "Hallo Servicedesk,", "Hallo zusammen,",
               "Guten Tag,", "Liebe Kolleginnen und Kollegen,",
               "Hallo liebes IT-Team,"]  # fmt: skip
    if to:
        options += [
            f"Sehr geehrte{'' if to.female else 'r'} {hon_de(to)},",
            f"Hallo {hon_de(to, title=False)},",
            f"Hallo [[PER:{to.first}]],",
            f"Liebe{'' if to.female else 'r'} [[PER:{to.first}]],",
            f"Guten Tag {hon_de(to, full=True)},",
        ]
    return v.choice(options)


def greeting_en(v: Values, to: Person | None) -> str:
    options = [
        "Dear Sir or Madam,",
        "Hello,",
        "Hi team,",
        "Dear colleagues,",
        "Hello IT Service Desk,",
    ]
    if to:
        options += [f"Dear {hon_en(to)},", f"Hi [[PER:{to.first}]],", f"Dear [[PER:{to.first}]],",
                    f"Hello [[PER:{to.first} {to.last}]],"]  # fmt: skip
    return v.choice(options)


ORGS_DE = ["Bezirksamt Mitte von Berlin", "Abt. Finanzen, Referat II B",
           "Stadtverwaltung Musterhausen",
           "Landratsamt Beispielkreis – Ordnungsamt", "Senatsverwaltung für Finanzen",
           "Bürgeramt Nord", "Jugendamt, Sachgebiet 3"]  # fmt: skip


def signature_de(v: Values, p: Person) -> str:
    closing = v.choice(["Mit freundlichen Grüßen", "Mit freundlichen Grüßen", "Viele Grüße",
                        "Beste Grüße", "Freundliche Grüße", "MfG", "Gruß", "Herzliche Grüße",
                        "Im Auftrag", "Mit freundlichem Gruß", "LG"])  # fmt: skip
    name = v.choice([
        f"[[PER:{p.first} {p.last}]]", f"[[PER:{p.first} {p.last}]]",
        f"{p.title + ' ' if p.title else ''}[[PER:{p.first} {p.last}]]",
        f"[[PER:{p.last}, {p.first}]]", f"[[PER:{p.first}]]", f"i.A. [[PER:{p.first} {p.last}]]",
        f"[[PER:{p.first} {p.last}]] | {v.choice(['Referentin', 'IT-Koordination'])}",
    ])  # fmt: skip
    extra = v.choice([
        "", f"\n{v.choice(ORGS_DE)}", f"\n{v.choice(ORGS_DE)}\nTel.: [[PHONE:{v.phone()}]]",
        f"\n{v.choice(ORGS_DE)}\nTelefon [[PHONE:{v.phone()}]]\nE-Mail: [[EMAIL:{p.email}]]",
        f"\nRaum 3.{v.rnd.randrange(10, 40)}, Tel. [[PHONE:{v.phone()}]]",
    ])  # fmt: skip
    gap = v.choice(["\n", "\n\n"])
    return f"{closing}{gap}{name}{extra}"


def signature_en(v: Values, p: Person) -> str:
    closing = v.choice(["Best regards", "Kind regards", "Regards", "Many thanks", "Best",
                        "Thanks", "Cheers", "Sincerely", "Best wishes"])  # fmt: skip
    name = v.choice([f"[[PER:{p.first} {p.last}]]", f"[[PER:{p.first}]]",
                     f"{'Dr. ' if p.title else ''}[[PER:{p.first} {p.last}]]"])  # fmt: skip
    extra = v.choice(["", "\nAcme Consulting Ltd.", f"\nPhone: [[PHONE:{v.phone()}]]",
                      f"\nSenior Consultant | Acme\nMobile [[PHONE:{v.phone()}]]"])  # fmt: skip
    return f"{closing},\n{name}{extra}" if v.rnd.random() < 0.5 else f"{closing}\n{name}{extra}"


KEEP_DE = [
    "Im [[KEEP:April]] wurde der Server umgezogen, seitdem hakt es.",
    "Das schwarze [[KEEP:Brett]] im Flur zeigt noch die alte Hotline.",
    "Das [[KEEP:Amt]] hat die Umstellung für den [[KEEP:August]] angekündigt.",
    "Der Hintergrund der Vorlage soll in [[KEEP:Weiß]] statt Grau sein.",
    "Das Plakat mit dem [[KEEP:Wolf]] und dem [[KEEP:Fuchs]] hängt im Foyer (Umweltbildung).",
    "Die neue Regelung tritt zum Monatsersten in [[KEEP:Kraft]].",
    "Im [[KEEP:Sommer]] war das Problem schon einmal aufgetreten.",
    "Das geht mir durch [[KEEP:Mark]] und Bein, wenn der Lüfter so laut ist.",
    "Der [[KEEP:Bauer]] aus dem Ortsteil hat sich über das Formular beschwert.",
    "Die Formulare liegen im [[KEEP:Amt]] aus, Zimmer 1.12.",
    "Bitte das [[KEEP:Brett]] für die Aushänge nicht vergessen.",
    "Der Kalender für [[KEEP:April]] und [[KEEP:Mai]] ist noch leer.",
    "Seit [[KEEP:Juni]] funktioniert der Scanner nur noch in Schwarz-[[KEEP:Weiß]].",
    "Die Schriftfarbe [[KEEP:Braun]] ist im Corporate Design nicht vorgesehen.",
]  # fmt: skip
KEEP_EN = [
    "Since [[KEEP:April]] the printer keeps jamming.",
    "Please [[KEEP:Mark]] the ticket as urgent.",
    "The [[KEEP:Grace]] period for the licence ends soon.",
    "The [[KEEP:Bill]] for the new laptops has not arrived yet.",
    "[[KEEP:Will]] the VPN be available over the weekend?",
    "We moved to the new office in [[KEEP:May]], so the network ports changed.",
    "The [[KEEP:Wolf]] Street office and the [[KEEP:Hunter]] building share one printer.",
]  # fmt: skip

REQUESTS_DE: list[Callable[[Values, Person, Person], str]] = [
    lambda v, r, t: (
        f"mein Drucker im 3. OG druckt seit {v.date()} nicht mehr. Ticket {v.ticket()} wurde "
        f"bereits geschlossen, das Problem besteht aber weiter. {v.choice(KEEP_DE)}"
    ),
    lambda v, r, t: (
        f"für unsere neue Kollegin {hon_de(t, full=True)} ({dob_de(v, t)}) bitte ich um "
        f"Einrichtung eines Zugangs zum Fachverfahren ab dem {v.date()}. Die Genehmigung der "
        f"Vorgesetzten liegt bei."
        if t.female
        else f"für unseren neuen Kollegen {hon_de(t, full=True)}, {dob_de(v, t)}, bitte ich "
        f"um ein Benutzerkonto. Dienstbeginn ist der {v.date()}."
    ),
    lambda v, r, t: (
        f"{hon_de(t, title=False)} hat heute angerufen und bittet um Rückruf unter "
        f"[[PHONE:{v.phone()}]]. Es geht um den Bescheid vom {v.date()}."
    ),
    lambda v, r, t: (
        f"anbei die Anfrage einer Bürgerin: [[PER:{t.first} {t.last}]], {dob_de(v, t)}, "
        f"Steuer-ID [[TAX:{v.tax_id()}]], bittet um Erstattung der Gebühr vom {v.date()} auf "
        f"das Konto IBAN [[IBAN:{v.iban()}]]."
    ),
    lambda v, r, t: (
        f"die Krankmeldung von {hon_de(t, dative=True)} (Versichertennummer "
        f"[[KVNR:{v.kvnr()}]]) ist am {v.date()} eingegangen. Bitte die Vertretung im "
        f"Postfach bis {v.date()} einrichten."
    ),
    lambda v, r, t: (
        f"zur Identitätsprüfung hat [[PER:{t.first} {t.last}]] die Ausweisnummer "
        f"[[ID:{v.id_card()}]] angegeben; Geburtsdatum laut Antrag {v.dob(t)}. Termin ist "
        f"der {v.date()} um 10:30 Uhr."
    ),
    lambda v, r, t: (
        f"seit dem Update am {v.date()} geht das VPN nicht mehr (Fehler 809). Ich arbeite "
        f"bis {v.date()} im Homeoffice. Rückfragen gern an meine Vertretung "
        f"[[PER:{t.first} {t.last}]] ([[EMAIL:{t.email}]])."
    ),
    lambda v, r, t: (
        f"bitte das Passwort für das Konto von {hon_de(t, dative=True, full=True)} "
        f"zurücksetzen. {'Sie' if t.female else 'Er'} ist telefonisch unter "
        f"[[PHONE:{v.phone()}]] erreichbar. {v.choice(KEEP_DE)}"
    ),
    lambda v, r, t: (
        f"der Antrag von [[PER:{t.last}, {t.first}]] (geboren am {v.dob(t)}) hängt seit "
        f"{v.date()} im Workflow. Frist für die Bearbeitung ist der {v.date()}."
    ),
    lambda v, r, t: (
        f"ich habe mit {hon_de(t)} aus dem Personalrat gesprochen: die Schulung am {v.date()} "
        f"findet statt, Anmeldeschluss ist der {v.date()}. {v.choice(KEEP_DE)}"
    ),
    lambda v, r, t: (
        f"im Formular stehen noch die alten Daten: Name [[PER:{t.first} {t.last}]], "
        f"Anschrift [[ADDR:{v.street()}]], Geburtsdatum {v.dob(t)}. Bitte bis {v.date()} "
        f"korrigieren."
    ),
    lambda v, r, t: (
        f"[[PER:{t.first} {t.last}]] aus dem Referat II A hat mir gesagt, dass der Scanner "
        f"wieder geht. Bei mir leider nicht. {v.choice(KEEP_DE)}"
    ),
    lambda v, r, t: (
        f"die Rechnung vom {v.date()} (Aktenzeichen 12-{v.rnd.randrange(100, 999)}/2025) ist "
        f"noch offen. {v.choice(KEEP_DE)}"
    ),
    lambda v, r, t: (
        f"Kind: [[PER:{t.first} {r.last}]], {dob_de(v, t)}, soll für die Kita-Anmeldung "
        f"erfasst werden. Die Gebühr vom {v.date()} ist bezahlt."
    ),
    lambda v, r, t: (
        f"könnten Sie bitte {hon_de(t, full=True)} Bescheid geben, dass der Termin am "
        f"{v.date()} verschoben wird? {v.choice(KEEP_DE)}"
    ),
]


def body_de(v: Values, r: Person, t: Person, agent: Person | None) -> str:
    paragraphs = v.rnd.sample(REQUESTS_DE, k=v.rnd.choice([1, 2, 2, 3]))
    texts = [f(v, r, t if i == 0 else v.person()) for i, f in enumerate(paragraphs)]
    text = "\n\n".join(
        x[0].upper() + x[1:] if i or v.rnd.random() < 0.3 else x for i, x in enumerate(texts)
    )
    return f"{greeting_de(v, agent)}\n\n{text}\n\n{signature_de(v, r)}\n"


REQUESTS_EN: list[Callable[[Values, Person, Person], str]] = [
    lambda v, r, t: (
        f"our contractor {hon_en(t, full=True)} needs a guest account from {v.date(True)} "
        f"until {v.date(True)}. For the security check: {dob_en(v, t)}."
    ),
    lambda v, r, t: (
        f"I cannot log in to the portal since {v.date(True)}. {v.choice(KEEP_EN)} "
        f"Please call me back on [[PHONE:{v.phone()}]]."
    ),
    lambda v, r, t: (
        f"[[PER:{t.first} {t.last}]] from Acme Consulting will install the new switch on "
        f"{v.date(True)}. Contact: [[EMAIL:{t.email}]]."
    ),
    lambda v, r, t: (
        f"the applicant, [[PER:{t.first} {t.last}]], {dob_en(v, t)}, asked about the refund "
        f"of the fee paid on {v.date(True)}; IBAN [[IBAN:{v.iban()}]]."
    ),
    lambda v, r, t: (
        f"I spoke to {hon_en(t)} yesterday; the deadline is {v.date(True)}. {v.choice(KEEP_EN)}"
    ),
    lambda v, r, t: (
        f"please reset the password for [[PER:{t.first} {t.last}]] ({dob_en(v, t)}), "
        f"ticket {v.ticket()}. {v.choice(KEEP_EN)}"
    ),
    lambda v, r, t: (
        f"the meeting with [[PER:{t.first}]] and {hon_en(t)} moved to {v.date(True)}. "
        f"The invoice dated {v.date(True)} is attached."
    ),
]


def body_en(v: Values, r: Person, t: Person, agent: Person | None) -> str:
    paragraphs = v.rnd.sample(REQUESTS_EN, k=v.rnd.choice([1, 2, 2, 3]))
    texts = [f(v, r, t if i == 0 else v.person("en_US")) for i, f in enumerate(paragraphs)]
    text = "\n\n".join(x[0].upper() + x[1:] for x in texts)
    return f"{greeting_en(v, agent)}\n\n{text}\n\n{signature_en(v, r)}\n"


# ---------------------------------------------------------------- whole mails


def display_name(v: Values, p: Person) -> str:
    return v.choice(
        [
            f"{p.first} {p.last}",
            f"{p.last}, {p.first}",
            f"{p.last}, {p.first} (BA Mitte)",
            f"{p.first} {p.last} - Stadtverwaltung",
            f"{p.title + ' ' if p.title else ''}{p.first} {p.last}",
            "",
        ]
    )


def forwarded_de(v: Values, inner_from: Person, inner_body: str) -> str:
    sent = f"{v.choice(['Montag', 'Dienstag', 'Mittwoch'])}, {v.date()} 09:1{v.rnd.randrange(10)}"
    header = v.choice([
        f"-----Ursprüngliche Nachricht-----\nVon: [[PER:{inner_from.last}, {inner_from.first}]] "
        f"<[[EMAIL:{inner_from.email}]]>\nGesendet: {sent}\nAn: Servicedesk "
        f"<servicedesk@example.org>\nBetreff: Anfrage\n\n",
        f"Am {v.date()} um 10:15 schrieb [[PER:{inner_from.first} {inner_from.last}]] "
        f"<[[EMAIL:{inner_from.email}]]>:\n",
        f"---------- Weitergeleitete Nachricht ----------\nVon: [[PER:{inner_from.first} "
        f"{inner_from.last}]] <[[EMAIL:{inner_from.email}]]>\nDatum: {sent}\nBetreff: Antrag\n\n",
    ])  # fmt: skip
    if header.startswith("Am "):
        inner_body = "\n".join(f"> {line}" if line else ">" for line in inner_body.splitlines())
    return f"{header}{inner_body}"


def forwarded_en(v: Values, inner_from: Person, inner_body: str) -> str:
    header = v.choice([
        f"On {v.date(True)}, at 10:15 AM, [[PER:{inner_from.first} {inner_from.last}]] "
        f"<[[EMAIL:{inner_from.email}]]> wrote:\n",
        f"---------- Forwarded message ---------\nFrom: [[PER:{inner_from.first} "
        f"{inner_from.last}]] <[[EMAIL:{inner_from.email}]]>\nDate: {v.date(True)}\n"
        f"Subject: Request\n\n",
    ])  # fmt: skip
    if header.startswith("On "):
        inner_body = "\n".join(f"> {line}" if line else ">" for line in inner_body.splitlines())
    return f"{header}{inner_body}"


def generate(count: int = 360, seed: int = SEED) -> Iterator[LabelledMail]:
    """`count` labelled mails: 2/3 German, 1/4 English, the rest mixed; same seed, same mails."""
    from faker import Faker  # a bench dependency only; parsing markup needs none

    rnd = random.Random(seed)
    locales = ("de_DE", "en_US", *FOREIGN)
    fakers = {loc: Faker(loc) for loc in locales}
    for i, fake in enumerate(fakers.values()):
        fake.seed_instance(seed * 100 + i)
    for n in range(count):
        v = Values(rnd, fakers)
        kind = "de" if n % 12 < 8 else ("en" if n % 12 < 11 else "mixed")
        yield parse_markup(f"gen-{n:03d}-{kind}", _mail(v, kind))


def _mail(v: Values, kind: str) -> str:
    requester = v.person("en_US" if kind == "en" else "de_DE")
    third = v.person("en_US" if kind == "en" and v.rnd.random() < 0.6 else "de_DE")
    agent = v.person() if v.rnd.random() < 0.4 else None
    known = [display_name(v, requester)]
    if agent:
        known.append(display_name(v, agent))
    if kind == "de":
        body = body_de(v, requester, third, agent)
        if v.rnd.random() < 0.2:
            inner = v.person()
            body = body + "\n" + forwarded_de(v, inner, body_de(v, inner, v.person(), None))
    elif kind == "en":
        body = body_en(v, requester, third, agent)
        if v.rnd.random() < 0.2:
            inner = v.person("en_US")
            body = body + "\n" + forwarded_en(v, inner, body_en(v, inner, v.person("en_US"), None))
    else:
        inner = v.person()
        note = body_en(v, requester, third, agent)
        body = note + "\n" + forwarded_de(v, inner, body_de(v, inner, v.person(), None))
    head = f"language: {kind}\n" + "".join(f"known: {k}\n" for k in known if k)
    return f"{head}\n{body}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=3, help="print this many mails")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    for mail in list(generate(seed=args.seed))[: args.show]:
        print(f"=== {mail.name} known={mail.known_names}\n{mail.text}")
        for start, end, entity in mail.spans:
            print(f"    {entity:20} {mail.text[start:end]!r}")


if __name__ == "__main__":
    main()
