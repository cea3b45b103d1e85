"""Deterministic labelled corpus for bench/redaction_quality.py: German and English service-desk
mails (IT incidents in a Saxon authority, citizens' requests to it) whose people come from the
hand-written lists in bench/quality_names.py, never from Faker or the redactor's own lists.

Each name is marked `[[PER:…]]` when its surname is on the redactor's generated list and
`[[PNL:…]]` ("person, no list") when its surname is on no list the redactor reads; birth
dates `[[DOB:…]]`, words that must stay `[[KEEP:…]]`. The header names (From/To/Cc display
names) are given as `known:` lines like bench/redaction_corpus.py; agents' names separately.

    .venv/bin/python bench/redaction_quality_corpus.py --show 3
"""

from __future__ import annotations

import argparse
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from quality_names import AGENTS, GROUPS, KEEP_SENTENCES_DE, KEEP_SENTENCES_EN

SEED = 15
DATA = Path(__file__).resolve().parent.parent / "gateway" / "redaction" / "data"
TAGS = {"PER": "PERSON", "PNL": "PERSON", "DOB": "DATE_OF_BIRTH", "KEEP": "KEEP"}
_MARK = re.compile(r"\[\[(?P<tag>[A-Z]+):(?P<value>.*?)\]\]", re.DOTALL)
MONTHS_DE = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember"
MONTHS_EN = "January February March April May June July August September October November December"


def _words(name: str) -> set[str]:
    lines = (DATA / name).read_text("utf-8").splitlines()
    return {w.strip().lower() for w in lines if w.strip() and not w.startswith("#")}


def redactor_lists() -> tuple[set[str], set[str]]:
    """(surnames on the generated list, every word of every list the redactor reads)."""
    every: set[str] = set()
    for path in DATA.glob("*.txt"):
        every |= _words(path.name)
    return _words("last_names.txt"), every


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    female: bool
    listed: bool  # surname on the redactor's list

    @property
    def tag(self) -> str:
        return "PER" if self.listed else "PNL"

    def mark(self, value: str) -> str:
        return f"[[{self.tag}:{value}]]"

    @property
    def full(self) -> str:
        return self.mark(f"{self.first} {self.last}")

    @property
    def surname(self) -> str:
        return self.mark(self.last)

    @property
    def given(self) -> str:
        return self.mark(self.first)

    @property
    def comma(self) -> str:
        return self.mark(f"{self.last}, {self.first}")

    def titled(self, rnd: random.Random, en: bool = False) -> str:
        if en:
            honorific = rnd.choice(["Ms", "Mrs"] if self.female else ["Mr", "Mr."])
        else:
            honorific = "Frau" if self.female else "Herr"
        title = rnd.choice(["", "", "", "Dr. "])
        name = self.surname if rnd.random() < 0.6 else self.full
        return f"{honorific} {title}{name}"

    @property
    def display(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def email(self) -> str:
        value = unicodedata.normalize("NFKD", f"{self.first}.{self.last}".lower())
        value = value.replace("ı", "i").replace("ł", "l").replace("đ", "d")
        value = re.sub(r"[^a-z.-]", "", value.encode("ascii", "ignore").decode())
        return f"{value}@lds.sachsen.example"


@dataclass
class Mail:
    name: str
    language: str
    known: list[str]  # From/To/Cc display names
    body: str  # markup
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class LabelledMail:
    name: str
    language: str
    known_names: list[str]
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    unlisted: set[tuple[int, int]] = field(default_factory=set)  # PERSON spans of "PNL"


def parse(mail: Mail) -> LabelledMail:
    out: list[str] = []
    spans: list[tuple[int, int, str]] = []
    unlisted: set[tuple[int, int]] = set()
    pos = length = 0
    for match in _MARK.finditer(mail.body):
        out.append(mail.body[pos : match.start()])
        length += match.start() - pos
        value, tag = match.group("value"), match.group("tag")
        spans.append((length, length + len(value), TAGS[tag]))
        if tag == "PNL":
            unlisted.add((length, length + len(value)))
        out.append(value)
        length += len(value)
        pos = match.end()
    out.append(mail.body[pos:])
    return LabelledMail(mail.name, mail.language, mail.known, "".join(out), spans, unlisted)


class People:
    """Draws people: a third ordinary German names, the rest from the other groups."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        listed, every = redactor_lists()
        self.pool: dict[str, list[Person]] = {}
        for group, entries in GROUPS.items():
            people = []
            for first, last, female in entries:
                in_list = last.lower() in listed
                if not in_list and last.lower() in every:
                    continue  # on some other list (a noun, a title): neither listed nor unlisted
                people.append(Person(first, last, female, in_list))
            self.pool[group] = people
        self.agents = [Person(f, s, w, s.lower() in listed) for f, s, w in AGENTS]

    def draw(self, n: int) -> list[Person]:
        chosen: list[Person] = []
        while len(chosen) < n:
            group = "german" if self.rnd.random() < 0.3 else self.rnd.choice(list(self.pool))
            person = self.rnd.choice(self.pool[group])
            if person not in chosen:
                chosen.append(person)
        return chosen


def dob(rnd: random.Random, en: bool, *, star: bool = True) -> str:
    day = date(1940, 1, 1) + timedelta(days=rnd.randrange(0, 365 * 75))
    if en:
        month = MONTHS_EN.split()[day.month - 1]
        forms = [f"{day:%Y-%m-%d}", f"{month} {day.day}, {day.year}",
                 f"{day.day} {month} {day.year}", f"{day:%d/%m/%Y}"]  # fmt: skip
        lead = rnd.choice(["born", "date of birth:", "DOB", "born on"])
    else:
        month = MONTHS_DE.split()[day.month - 1]
        forms = [f"{day:%d.%m.%Y}", f"{day.day}.{day.month}.{day.year}",
                 f"{day.day}. {month} {day.year}"]  # fmt: skip
        leads = ["geb.", "geboren am", "Geburtsdatum:", "geb. am", *(["*"] if star else [])]
        lead = rnd.choice(leads)
    return f"{lead} [[DOB:{rnd.choice(forms)}]]"


Template = Callable[[random.Random, list[Person], Person], str]

CLOSINGS_DE = ["Mit freundlichen Grüßen", "Viele Grüße", "Freundliche Grüße", "Beste Grüße",
               "MfG", "Mit freundlichen Grüßen\nIm Auftrag", "Gruß"]  # fmt: skip
CLOSINGS_EN = ["Best regards,", "Kind regards,", "Regards,", "Thanks,", "Best,", "Cheers,"]
UNITS = ["Referat 23 – Wohngeld", "Sachgebiet IT-Service", "Landesdirektion Sachsen",
         "Bürgerbüro", "Ordnungsamt", "Staatsbetrieb Zentrales Flächenmanagement",
         "Referat 14 | Haushalt", "Landratsamt Bautzen"]  # fmt: skip


def signature(rnd: random.Random, p: Person, en: bool = False) -> str:
    closing = rnd.choice(CLOSINGS_EN if en else CLOSINGS_DE)
    name = rnd.choice([p.full, p.full, p.comma, f"Dr. {p.full}", p.given]) if not en else (
        rnd.choice([p.full, p.full, p.given]))
    unit = rnd.choice(UNITS)
    phone = f"Tel.: 0351 564-{rnd.randrange(1000, 9999)}"
    return f"{closing}\n{name}\n{unit}\n{phone}"


def keep_de(rnd: random.Random) -> str:
    return rnd.choice(KEEP_SENTENCES_DE)


def keep_en(rnd: random.Random) -> str:
    return rnd.choice(KEEP_SENTENCES_EN)


def t_printer(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b = ps[0], ps[1]
    return (f"Hallo zusammen,\n\nder Drucker in Raum 2.{rnd.randrange(10, 40)} druckt seit heute "
            f"nicht mehr. {keep_de(rnd)} {b.titled(rnd)} hat es auch schon versucht, ohne Erfolg.\n"
            f"{keep_de(rnd)}\n\n{signature(rnd, a)}")


def t_account(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    who = "Frau" if b.female else "Herr"
    contact = "Ansprechpartnerin" if c.female else "Ansprechpartner"
    return (f"Sehr geehrte Damen und Herren,\n\nzum 1. des Monats beginnt {who} {b.full} "
            f"({dob(rnd, False)}) bei uns im Sachgebiet. Bitte richten Sie ein Konto, "
            f"ein Postfach in [[KEEP:Outlook]] und den Zugang zu [[KEEP:Citrix]] ein.\n"
            f"{contact}: {rnd.choice([c.full, c.titled(rnd)])}\n{keep_de(rnd)}\n\n"
            f"{signature(rnd, a)}")


def t_forward(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c, d = ps[0], ps[1], ps[2], ps[3]
    return (f"Hallo {agent.given},\n\nbitte einmal ansehen, siehe unten.\n\n{signature(rnd, a)}\n\n"
            f"-----Ursprüngliche Nachricht-----\nVon: {b.comma} <{b.email}>\n"
            f"Gesendet: [[KEEP:Dienstag]], 4. März 2025 09:12\nAn: {a.full}\n"
            f"Cc: {c.full}; {d.comma}\nBetreff: VPN\n\n"
            f"Guten Morgen {a.titled(rnd)},\n\n{keep_de(rnd)} Die Verbindung bricht ab, sobald "
            f"ich mich anmelde.\n\nViele Grüße\n{b.given} {rnd.choice(['', ''])}".rstrip())


def t_participants(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    lines = [f"- {rnd.choice([p.full, p.titled(rnd), p.comma])}" for p in ps[1:]]
    return ("Hallo,\n\nfür die Schulung am [[KEEP:Mittwoch]] sind angemeldet:\n"
            + "\n".join(lines)
            + f"\n\nBitte Räume in [[KEEP:Dresden]] buchen. {keep_de(rnd)}\n\n"
            + signature(rnd, ps[0]))


def t_verteiler(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    names = ", ".join(p.full for p in ps[1:])
    return (f"Verteiler: {names}\n\nLiebe Kolleginnen und Kollegen,\n\n{keep_de(rnd)} "
            f"Die Wartung ist für [[KEEP:Samstag]] geplant.\n\n{signature(rnd, ps[0])}")


def t_prepositions(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c, d = ps[0], ps[1], ps[2], ps[3]
    return (f"Hallo {agent.titled(rnd)},\n\nbitte das Notebook an {b.full} übergeben; die Freigabe "
            f"kam von {c.full}. Die Lizenz ist für {d.full} gedacht, der Termin ist bei "
            f"{rnd.choice([b.full, b.titled(rnd)])}.\n{keep_de(rnd)}\n\n{signature(rnd, a)}")


def t_colleague(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    kb = "meine Kollegin" if b.female else "mein Kollege"
    kc = "Kollegin" if c.female else "Kollege"
    return (f"Guten Tag,\n\n{kb} {b.full} kann sich seit [[KEEP:Montag]] nicht anmelden. "
            f"{kc} {c.surname} ist im Urlaub und vertritt nicht. {keep_de(rnd)}\n\n"
            f"{signature(rnd, a)}")


def t_citizen(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    child = "meine Tochter" if b.female else "meinen Sohn"
    neighbour = "Meine Nachbarin" if c.female else "Mein Nachbar"
    return (f"Sehr geehrte{'' if agent.female else 'r'} {agent.titled(rnd)},\n\n"
            f"ich beantrage für {child} {b.given} {a.surname}, {dob(rnd, False)}, einen Platz "
            f"im Hort. {neighbour} {c.titled(rnd)} kann das bezeugen. Ich wohne seit [[KEEP:Mai]] "
            f"in [[KEEP:Chemnitz]].\n{keep_de(rnd)}\n\nMit freundlichen Grüßen\n\n{a.full}\n"
            f"Straße der Nationen {rnd.randrange(1, 90)}\n09111 Chemnitz")


def t_citizen_form(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a = ps[0]
    return (f"Antrag auf Wohngeld\n\nName: {a.surname}\nVorname: {a.given}\n"
            f"{dob(rnd, False, star=False)}\nAnschrift: Hauptstraße 3, 02625 Bautzen\n\n"
            f"{keep_de(rnd)}\n\n"
            f"Mit freundlichen Grüßen\n{a.full}")


def t_ia(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b = ps[0], ps[1]
    return (f"Sehr geehrte Damen und Herren,\n\nim Auftrag von {b.titled(rnd)} übersende ich die "
            f"Liste. {keep_de(rnd)}\n\nIm Auftrag\n\n{a.full}\n{rnd.choice(UNITS)}")


def t_notes(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c, d = ps[0], ps[1], ps[2], ps[3]
    return (f"Hallo,\n\nkurze Notiz zum Vorgang: Rücksprache mit {b.surname} ist erfolgt, laut "
            f"{c.surname} fehlt noch die Unterschrift. Die Akte liegt bei {d.surname}, "
            f"Rückruf bitte an {b.full}. {keep_de(rnd)}\n\n{signature(rnd, a)}")


def t_en_notes(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    return (f"Hi,\n\nI spoke with {b.surname} this morning; according to {c.surname} the "
            f"laptop was handed over by {b.surname} on [[KEEP:Friday]]. {keep_en(rnd)}\n\n"
            f"{signature(rnd, a, en=True)}")


def t_en_incident(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    return (f"Hi {agent.given},\n\n{b.full} from our Leipzig office cannot log in since "
            f"[[KEEP:Tuesday]]. {keep_en(rnd)} Could you reset the account? "
            f"cc {c.full}\n\n{signature(rnd, a, en=True)}")


def t_en_dear(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b = ps[0], ps[1]
    return (f"Dear {agent.titled(rnd, en=True)},\n\nplease set up an account for {b.full} "
            f"({dob(rnd, True)}), who joins the project team. {keep_en(rnd)} "
            f"{b.titled(rnd, en=True)} will need access to [[KEEP:Citrix]].\n\n"
            f"{signature(rnd, a, en=True)}")


def t_en_forward(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    a, b, c = ps[0], ps[1], ps[2]
    return (f"FYI, see below.\n\n{signature(rnd, a, en=True)}\n\n"
            f"From: {b.full} <{b.email}>\nSent: [[KEEP:Monday]], 3 March 2025 10:01\n"
            f"To: {a.full}\nCc: {c.full}\nSubject: Laptop\n\nHello {a.given},\n\n"
            f"{keep_en(rnd)} The laptop does not boot.\n\nThanks,\n{b.given}")


def t_en_participants(rnd: random.Random, ps: list[Person], agent: Person) -> str:
    names = "; ".join(rnd.choice([p.full, p.titled(rnd, en=True)]) for p in ps[1:])
    return (f"Hello,\n\nParticipants: {names}\n\n{keep_en(rnd)}\n\n"
            f"{signature(rnd, ps[0], en=True)}")


TEMPLATES_DE: list[Template] = [t_printer, t_account, t_forward, t_participants, t_verteiler,
                                t_prepositions, t_colleague, t_citizen, t_citizen_form, t_ia,
                                t_notes]
TEMPLATES_EN: list[Template] = [t_en_incident, t_en_dear, t_en_forward, t_en_participants,
                                t_en_notes]


def generate(count: int = 400, seed: int = SEED) -> list[Mail]:
    rnd = random.Random(seed)
    people = People(rnd)
    mails = []
    for i in range(count):
        en = rnd.random() < 0.3
        template = rnd.choice(TEMPLATES_EN if en else TEMPLATES_DE)
        ps = people.draw(4)
        agent = rnd.choice(people.agents)
        body = template(rnd, ps, agent)
        known = []
        if rnd.random() < 0.85:  # From display name: "First Last" or "Last, First (LDS)"
            sender = ps[0]
            known.append(rnd.choice([sender.display, f"{sender.last}, {sender.first}",
                                     f"{sender.last}, {sender.first} (LDS)"]))
        if rnd.random() < 0.3:
            known.append(ps[1].display)  # in Cc
        mails.append(Mail(f"q{i:04d}-{template.__name__}", "en" if en else "de", known, body))
    return mails


def agent_names() -> list[str]:
    return [f"{f} {s}" for f, s, _ in AGENTS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=3)
    args = parser.parse_args()
    for mail in generate()[: args.show]:
        print(f"--- {mail.name} ({mail.language}) known={mail.known}\n{mail.body}\n")


if __name__ == "__main__":
    main()
