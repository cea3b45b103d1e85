"""A realistic mail corpus for the end-to-end bench: German requester mails of 0.5–3 KB varied
text with names, dates, phone numbers and addresses that redaction has to find; 25 % with an
HTML alternative, 10 % with a 20 KB attachment; realistic headers; every mail from its own
sender (so each one opens a ticket and gets an acknowledgement). Deterministic for a seed.
"""

from __future__ import annotations

import html
import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

FIRST = [
    "Erika", "Jürgen", "Sabine", "Thomas", "Monika", "Stefan", "Katrin", "Michael", "Ute",
    "Andreas", "Petra", "Frank", "Claudia", "Markus", "Heike", "Uwe", "Sandra", "Oliver",
    "Birgit", "Tobias", "Ingrid", "Matthias", "Nicole", "Dirk", "Anja", "Holger", "Silke",
    "Kai", "Dagmar", "Sven", "Gülşen", "Mehmet", "Agnieszka", "Piotr", "Lena", "Jonas",
]
LAST = [
    "Muster", "Schröder", "Becker", "Hoffmann", "Wagner", "Krüger", "Neumann", "Schwarz",
    "Zimmermann", "Braun", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Krause",
    "Meier", "Lehmann", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser",
    "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Vogel", "Yılmaz",
]
DOMAINS = ["example.net", "stadt-musterhausen.example", "kreis-beispiel.example",
           "amt.example.de", "mail.example.com"]
STREETS = ["Hauptstraße", "Bahnhofstraße", "Lindenweg", "Am Markt", "Schillerstraße",
           "Goethestraße", "Kirchgasse", "Gartenstraße"]
CITIES = [("10115", "Berlin"), ("50667", "Köln"), ("80331", "München"), ("04109", "Leipzig"),
          ("01067", "Dresden"), ("99084", "Erfurt"), ("39104", "Magdeburg")]
TOPICS = [
    ("Drucker im {floor}. OG druckt nicht", "der Drucker"),
    ("VPN-Verbindung bricht ständig ab", "die VPN-Verbindung"),
    ("Zugang zum Fachverfahren beantragt", "der Zugang zum Fachverfahren"),
    ("Passwort abgelaufen, Anmeldung nicht möglich", "die Anmeldung"),
    ("Outlook synchronisiert den Kalender nicht", "der Kalender in Outlook"),
    ("Neuer Arbeitsplatz für Kollegin ab {date}", "die Einrichtung des Arbeitsplatzes"),
    ("Telefon im Büro {room} ohne Freizeichen", "das Telefon"),
    ("Scanner legt keine Dateien mehr ab", "der Scanner"),
    ("Fehlermeldung 0x{code} beim Start", "der Rechner"),
    ("Bitte Postfach für Bürgeranfragen freigeben", "das Funktionspostfach"),
    ("Antrag auf Homeoffice-Ausstattung", "die Ausstattung"),
    ("E-Akte lädt sehr langsam", "die E-Akte"),
]
OPENERS = [
    "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo Servicedesk,", "Liebes IT-Team,",
    "Moin,", "Guten Morgen zusammen,", "Hallo,",
]
SENTENCES = [
    "seit heute früh funktioniert {thing} nicht mehr, obwohl gestern noch alles in Ordnung war.",
    "Ich habe den Rechner bereits zweimal neu gestartet, leider ohne Erfolg.",
    "Die Kollegin {colleague} aus dem Nachbarbüro hat dasselbe Problem seit dem {date}.",
    "Am {date} wurde bei uns ein Update eingespielt, danach fing der Ärger an.",
    "Sie erreichen mich tagsüber unter {phone}, gerne auch auf dem Handy.",
    "Für Rückfragen stehe ich unter der Durchwahl {phone} zur Verfügung.",
    "Mein Vorgesetzter, Herr {colleague_last}, hat den Antrag bereits am {date} genehmigt.",
    "Es handelt sich um den Arbeitsplatz in Raum {room}, Inventarnummer {inventory}.",
    "Die Fehlermeldung lautet ungefähr: Verbindung zum Server konnte nicht hergestellt werden.",
    "Wir haben nächste Woche eine wichtige Frist, deshalb wäre eine schnelle Lösung schön.",
    "Ein Bürger, {citizen}, geboren am {birth}, wartet auf seinen Bescheid, den ich nicht "
    "drucken kann.",
    "Bitte melden Sie sich bei Frau {colleague} unter {phone2}, falls ich nicht erreichbar bin.",
    "Ich arbeite dienstags und donnerstags im Homeoffice, an den anderen Tagen im Haus.",
    "Den Screenshot der Meldung habe ich angehängt, vielleicht hilft das weiter.",
    "Der Termin beim Bürgerbüro am {date} um {time} Uhr muss sonst leider ausfallen.",
    "Laut Hotline liegt das Problem nicht an der Leitung, sondern an der Konfiguration.",
    "Könnten Sie bitte prüfen, ob mein Konto gesperrt wurde?",
    "Die Rechnung mit der IBAN {iban} konnte aus diesem Grund nicht angewiesen werden.",
    "Die Anschrift des Antragstellers lautet {street} {number}, {zip} {city}.",
    "Vielen Dank schon einmal für Ihre Mühe und die schnelle Unterstützung in den letzten "
    "Wochen.",
    "Ich habe es auch mit einem anderen Browser versucht, das Ergebnis ist dasselbe.",
    "Seit der Umstellung auf das neue Netzlaufwerk sind einige Ordner nicht mehr sichtbar.",
    "Falls ein Vor-Ort-Termin nötig ist, passt mir {weekday} zwischen 9 und 12 Uhr am besten.",
    "Herr {citizen} hat heute bereits zum dritten Mal angerufen und nach dem Stand gefragt.",
]
CLOSERS = ["Mit freundlichen Grüßen", "Viele Grüße", "Beste Grüße", "Freundliche Grüße",
           "Danke und Gruß", "MfG"]
WEEKDAYS = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"]
MAILERS = [
    ("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:115.0) Thunderbird/115.6.0"),
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("X-Mailer", "Apple Mail (2.3774.300.61.1.2)"),
    ("User-Agent", "Roundcube Webmail/1.6.5"),
]
ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ş": "s", "ı": "i"})


class _Words:
    """Random filling of the sentence placeholders."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def name(self) -> str:
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"

    def date(self) -> str:
        day = datetime(2026, 1, 1) + timedelta(days=self.rng.randrange(330))
        return day.strftime("%d.%m.%Y")

    def birth(self) -> str:
        return f"{self.rng.randint(1, 28):02d}.{self.rng.randint(1, 12):02d}." \
               f"{self.rng.randint(1940, 2004)}"

    def phone(self) -> str:
        return self.rng.choice([
            f"0{self.rng.randint(30, 991)} {self.rng.randint(100000, 9999999)}",
            f"+49 {self.rng.randint(30, 991)} {self.rng.randint(1000000, 9999999)}",
            f"0151 {self.rng.randint(1000000, 99999999)}",
        ])

    def iban(self) -> str:
        digits = "".join(str(self.rng.randint(0, 9)) for _ in range(18))
        return f"DE{self.rng.randint(10, 99)} {digits[:4]} {digits[4:8]} {digits[8:12]} " \
               f"{digits[12:16]} {digits[16:]}"

    def fill(self, sentence: str, thing: str) -> str:
        zip_code, city = self.rng.choice(CITIES)
        return sentence.format(
            thing=thing, colleague=self.name(), colleague_last=self.rng.choice(LAST),
            date=self.date(), phone=self.phone(), phone2=self.phone(),
            room=f"{self.rng.randint(0, 5)}.{self.rng.randint(1, 40):02d}",
            inventory=f"IT-{self.rng.randint(10000, 99999)}", citizen=self.name(),
            birth=self.birth(), time=f"{self.rng.randint(8, 16)}:{self.rng.choice(['00', '30'])}",
            iban=self.iban(), street=self.rng.choice(STREETS), number=self.rng.randint(1, 120),
            zip=zip_code, city=city, weekday=self.rng.choice(WEEKDAYS),
        )


def _body(words: _Words, thing: str, sender_name: str, target: int) -> str:
    rng = words.rng
    paragraphs: list[list[str]] = [[]]
    size = 0
    while size < target:
        sentence = words.fill(rng.choice(SENTENCES), thing)
        if size == 0:
            sentence = sentence[0].upper() + sentence[1:]
        paragraphs[-1].append(sentence)
        size += len(sentence) + 1
        if len(paragraphs[-1]) >= rng.randint(2, 5):
            paragraphs.append([])
    text = "\n\n".join(" ".join(p) for p in paragraphs if p)
    zip_code, city = rng.choice(CITIES)
    signature = (f"{sender_name}\nSachgebiet {rng.randint(10, 99)}\n"
                 f"{rng.choice(STREETS)} {rng.randint(1, 120)}, {zip_code} {city}\n"
                 f"Tel. {words.phone()}")
    return f"{rng.choice(OPENERS)}\n\n{text}\n\n{rng.choice(CLOSERS)}\n{signature}\n"


def _html(body: str) -> str:
    paragraphs = "".join(
        f"<p style=\"margin:0 0 8pt 0\">{html.escape(p).replace(chr(10), '<br>')}</p>"
        for p in body.split("\n\n")
    )
    return ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
            "charset=utf-8\"><style>body{font-family:Calibri,sans-serif;font-size:11pt}"
            f"</style></head><body lang=\"DE\">{paragraphs}</body></html>")


def build_mail(rng: random.Random, number: int, service: str, tag: str) -> EmailMessage:
    """One requester mail; the sender address is unique per (tag, number)."""
    words = _Words(rng)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}".lower().translate(ASCII)
    address = f"{local}.{tag}{number}@{rng.choice(DOMAINS)}"
    subject_pattern, thing = rng.choice(TOPICS)
    msg = EmailMessage()
    msg["From"] = f"{first} {last} <{address}>"
    msg["To"] = f"IT-Servicedesk <{service}>"
    msg["Subject"] = subject_pattern.format(
        floor=rng.randint(1, 6), date=words.date(),
        room=f"{rng.randint(0, 5)}.{rng.randint(1, 40)}", code=f"{rng.randrange(16**8):08X}")
    msg["Date"] = format_datetime(datetime.now(UTC) - timedelta(seconds=rng.randint(1, 90)))
    msg["Message-ID"] = make_msgid(domain=address.split("@")[1])
    msg["MIME-Version"] = "1.0"
    msg["Content-Language"] = "de-DE"
    header, value = rng.choice(MAILERS)
    msg[header] = value
    if rng.random() < 0.3:
        msg["Importance"] = "high"
    msg.set_content(_body(words, thing, f"{first} {last}", rng.randint(450, 2900)))
    shape = rng.random()
    if shape < 0.25:
        msg.add_alternative(_html(msg.get_content()), subtype="html")
    elif shape < 0.35:
        kind = rng.choice([("application", "pdf", "Fehlermeldung.pdf"),
                           ("image", "png", "Screenshot 2026-11-30.png"),
                           ("application", "vnd.openxmlformats-officedocument."
                            "spreadsheetml.sheet", "Übersicht Inventar.xlsx")])
        msg.add_attachment(rng.randbytes(20_000), maintype=kind[0], subtype=kind[1],
                           filename=kind[2])
    return msg


def build_corpus(count: int, seed: int, service: str, tag: str = "m") -> list[EmailMessage]:
    rng = random.Random(seed)
    return [build_mail(rng, number, service, tag) for number in range(count)]
