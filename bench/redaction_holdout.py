"""A held-out check of the PERSON rules: 20 sentences with names and shapes that neither the
rules' author nor bench/redaction_quality.py used (written by another session after the rules
were done, 2026-12-07), so it says how the rules do on text they were not tuned on. Prints the
share of name tokens removed and which were left; keep it untuned (add cases, don't fit rules
to them without writing new ones here).

    .venv/bin/python bench/redaction_holdout.py
"""

from __future__ import annotations

from pathlib import Path

from gateway.config import load_settings
from gateway.pipeline.prepare import shared_redactor
from gateway.redaction.placeholders import KeyedPseudonyms

ROOT = Path(__file__).resolve().parent.parent
settings = load_settings(ROOT / "config.example.yaml")
red = shared_redactor(settings)
assert red is not None

# (text, the name tokens that must not be left)
CASES: list[tuple[str, list[str]]] = [
    (
        'Guten Tag, mein Drucker im Zimmer 2.14 geht nicht. Viele Grüße Wenke Tschirner',
        ['Wenke', 'Tschirner'],
    ),
    (
        'Hallo zusammen,\nFrau Oelsner aus der Kämmerei kann sich nicht anmelden.\n'
        'Gruß\nBenno Rudolph',
        ['Oelsner', 'Benno', 'Rudolph'],
    ),
    (
        'Sehr geehrte Damen und Herren,\nich, Oksana Melnychuk, beantrage einen neuen Zugang.\n'
        'Mit freundlichen Grüßen\nOksana Melnychuk',
        ['Oksana', 'Melnychuk'],
    ),
    (
        'Bitte richten Sie für Herrn Thanh Tung Dang einen Arbeitsplatz ein.',
        ['Thanh', 'Tung', 'Dang'],
    ),
    (
        'Teilnehmer: Eike Gläßer, Ronja Zippel, Taras Bondarenko, Leyla Aksu',
        ['Gläßer', 'Zippel', 'Bondarenko', 'Aksu', 'Eike', 'Ronja', 'Taras', 'Leyla'],
    ),
    (
        'Cc: Wiesław Dąbrowski; Grażyna Wójcik',
        ['Dąbrowski', 'Wójcik', 'Wiesław', 'Grażyna'],
    ),
    (
        'Ansprechpartnerin: Frau Dr. Henrike Flämig, Tel. intern 2231',
        ['Henrike', 'Flämig'],
    ),
    (
        'Das Passwort von Kollegin Uhlig ist abgelaufen, sie ist ab Montag wieder da.',
        ['Uhlig'],
    ),
    (
        'Im Auftrag\nJost Seifert\nSachgebiet IT',
        ['Jost', 'Seifert'],
    ),
    (
        'Hi team, Amira Haddad cannot open Citrix since Monday. Best regards, Kwame Mensah',
        ['Amira', 'Haddad', 'Kwame', 'Mensah'],
    ),
    (
        'Bitte an Herrn Nguyen Van Hieu weiterleiten, er vertritt Frau Trinh.',
        ['Hieu', 'Trinh', 'Nguyen'],
    ),
    (
        'Rückmeldung von Hr. Zenker: der Scanner im Bürgerbüro läuft wieder.',
        ['Zenker'],
    ),
    (
        'Von: Mölle, Ricarda <r.moelle@example.org>\nGesendet: Montag\nBetreff: VPN',
        ['Mölle', 'Ricarda'],
    ),
    (
        'Am 03.05.2026 schrieb Sieglinde Wachs <s.wachs@example.org>:\n> Danke',
        ['Sieglinde', 'Wachs'],
    ),
    (
        'Liebe Frau Kühnel, anbei der Antrag von Herrn Rost.',
        ['Kühnel', 'Rost'],
    ),
    (
        'Verteiler: Haupt, Fiedler, Nestler, Kaden',
        ['Haupt', 'Fiedler', 'Nestler', 'Kaden'],
    ),
    (
        'Herr Yusuf Kaplan (geb. 02.04.1979) benötigt einen Termin.',
        ['Yusuf', 'Kaplan', '02.04.1979'],
    ),
    (
        'Mein Name ist Svitlana Hnatiuk und ich wohne seit März in Görlitz.',
        ['Svitlana', 'Hnatiuk'],
    ),
    (
        'Grüße aus Bautzen\nMětška Wałda',
        ['Mětška', 'Wałda'],
    ),
    (
        'Die Kollegen Scholze und Pönitz sind informiert.',
        ['Scholze', 'Pönitz'],
    ),
]
KEPT: list[tuple[str, list[str]]] = [
    (
        'Der Vogel sitzt am Fenster, der Koch kocht, Chemnitz und Bautzen sind Städte, '
        'Outlook hängt.',
        ['Vogel', 'Koch', 'Chemnitz', 'Bautzen', 'Outlook'],
    ),
]


def main() -> None:
    total = left = 0
    for text, names in CASES:
        result = red.redact(text, language="de", pseudonyms=KeyedPseudonyms(b"k" * 32)).text
        missed = [name for name in names if name in result]
        total += len(names)
        left += len(missed)
        if missed:
            print("left", missed, "in:", result.replace("\n", "⏎")[:150])
    print(f"held-out PERSON recall (name tokens): {(total - left) / total:.3f} "
          f"({total - left}/{total})")
    for text, words in KEPT:
        result = red.redact(text, language="de", pseudonyms=KeyedPseudonyms(b"k" * 32)).text
        print(f"must-keep words kept: {sum(w in result for w in words)}/{len(words)}")


if __name__ == "__main__":
    main()
