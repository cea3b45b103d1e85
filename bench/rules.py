"""Rule-evaluation benchmark: generate 200 realistic routing rules and ~1,000 German/English
mails, load the rules once, then print how long `Ruleset.evaluate` takes per mail (the budget
is < 1 ms per mail for 200 rules). Most mails match late or not at all, so nearly every rule is
tested: the worst case. Not a test; it only prints.

    .venv/bin/python bench/rules.py [--rules 200] [--mails 1000] [--body-chars 3000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.routing.ruleset import MailFacts, Ruleset, load_ruleset


def _words(text: str) -> list[str]:
    return text.split()


AGENTS = ["anna.schmidt@example.org", "ben.mueller@example.org"]
TEAMS = ["it", "fachverfahren"]
WORDS = _words(
    "Drucker Netzwerk Anmeldung Kennwort Bildschirm Telefon Laptop Mailpostfach Freigabe "
    "Laufwerk Scanner Tastatur Headset Webcam Dokument Vorgang Bescheid Akte Termin Raum "
    "Zugang Antrag Rechnung Software Lizenz Update Fehlermeldung Störung Ausfall Server "
    "Datenbank Verbindung Zertifikat Signatur Postfach Kalender Besprechung Gebühren "
    "Einwohner Meldebescheinigung Gewerbe Bauantrag Formular Portal Schnittstelle")
FILLER = _words(
    "bitte bei mir seit heute morgen nicht mehr richtig und ich habe schon neu gestartet "
    "leider ohne Erfolg können Sie sich das bitte ansehen vielen Dank im Voraus mit "
    "freundlichen Grüßen aus dem Fachbereich der Verwaltung")
# Rule keywords are compounds ("Druckerausfall"); mails mostly hold the plain words, so most
# rules are tested against the whole text without a hit: the expensive case.
COMPOUNDS = [a + b for a in ("Drucker", "Netz", "Kennwort", "Zertifikat", "Server", "Postfach",
                             "Telefon", "Scanner", "Portal", "Konto", "Lizenz", "Heizungs")
             for b in ("ausfall", "störung", "sperre", "fehler", "antrag", "wechsel", "problem",
                       "tausch", "freigabe", "verlängerung")]
APPS = ["OK.EWO", "VOIS", "eAkte", "SAP", "Allris", "ProDoppik", "OK.FIS", "KM-Hydra", "MESO"]
DOMAINS = ["landkreis-beispiel.de", "stadt-beispiel.de", "kommune-beispiel.de", "bva.bund.de"]


def make_rule(rng: random.Random, number: int) -> dict[str, Any]:
    """One rule of a realistic kind: keywords, senders, recipients, regexes, time, combinators."""
    words = rng.sample(COMPOUNDS, rng.randint(3, 8))
    kind = number % 8
    when: dict[str, Any]
    if kind == 0:
        when = {"subject": {"contains": [*words, f"Begriff{number}"]}}
    elif kind == 1:
        when = {"any": [{"subject": {"contains": words}}, {"body": {"contains": words}}]}
    elif kind == 2:
        when = {"from": [f"@{rng.choice(DOMAINS)}", f"*@*.{number}.example.net"],
                "subject": {"contains": words[:3]}}
    elif kind == 3:
        when = {"to": f"postfach{number}@example.org"}
    elif kind == 4:
        when = {"subject": {"matches": rf"\b({'|'.join(rng.sample(APPS, 3))})\b-{number}"}}
    elif kind == 5:
        when = {"not": {"time": {"weekdays": ["mo", "di", "mi", "do", "fr"],
                                 "hours": "07:00-18:00"}},
                "body": {"contains": [f"Notfall{number}", "Rufbereitschaft"]}}
    elif kind == 6:
        when = {"all": [{"language": "de"}, {"attachment": {"filename": "*.xlsx"}},
                        {"subject": {"contains": words[:2]}}]}
    else:
        when = {"header": {"name": "x-mailer", "contains": [f"Monitoring{number}"]},
                "body": {"matches": rf"Ticket-Nr\.?\s*{number}\d+"}}
    then: dict[str, Any] = {"queue": f"queue-{number % 17}", "tags": [f"t{number % 11}"]}
    if number % 3 == 0:
        then.update(team=rng.choice(TEAMS), assign="round_robin")
    rule: dict[str, Any] = {"name": f"regel-{number:03d}", "when": when, "then": then}
    if number % 10 == 0:
        rule["stop"] = False
    return rule


def make_mail(rng: random.Random, number: int, body_chars: int) -> MailFacts:
    subject = " ".join(rng.sample(WORDS + FILLER, rng.randint(3, 7)))
    if rng.random() < 0.3:  # some mails do name a topic a rule looks for
        subject += " " + rng.choice(COMPOUNDS)
    body_words: list[str] = []
    while sum(len(w) + 1 for w in body_words) < rng.randint(body_chars // 4, body_chars):
        body_words.append(rng.choice(FILLER if rng.random() < 0.8 else WORDS))
    attachments = (("Liste.xlsx", "application/vnd.ms-excel"),) if number % 5 == 0 else ()
    return MailFacts(
        from_addr=f"person{number}@{rng.choice(DOMAINS)}", from_name=f"Person {number}",
        to=("servicedesk@example.org",), cc=(), subject=subject, body=" ".join(body_words),
        headers={"x-mailer": ["Microsoft Outlook 16.0"], "message-id": [f"<{number}@x>"]},
        attachments=attachments, language="de" if number % 4 else "en",
        sender_is_agent=False,
        received_at=datetime(2024, 3, 4, 6, tzinfo=UTC) + timedelta(minutes=37 * number))


def load(rules: list[dict[str, Any]], directory: Path) -> tuple[Ruleset, float]:
    per_file = 40
    for start in range(0, len(rules), per_file):
        text = yaml.safe_dump(rules[start:start + per_file], allow_unicode=True, sort_keys=False)
        (directory / f"{start // per_file:02d}-bench.yaml").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    ruleset = load_ruleset(directory, agents=AGENTS, teams=TEAMS, templates=[],
                           timezone="Europe/Berlin", default_queue="allgemein")
    return ruleset, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--body-chars", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(20240312)
    with tempfile.TemporaryDirectory() as folder:
        ruleset, load_seconds = load([make_rule(rng, n) for n in range(args.rules)], Path(folder))
    mails = [make_mail(rng, n, args.body_chars) for n in range(args.mails)]
    rounds = []
    tested = matched = 0
    for _ in range(args.rounds):
        started = time.perf_counter()
        for mail in mails:
            evaluation = ruleset.evaluate(mail)
        rounds.append((time.perf_counter() - started) / len(mails))
    for mail in mails:
        evaluation = ruleset.evaluate(mail)
        tested += sum(not r.reason.startswith("not evaluated") for r in evaluation.results)
        matched += bool(evaluation.hits)
    print(f"rules: {len(ruleset.rules)} in {len(ruleset.files)} files, loaded in "
          f"{load_seconds * 1000:.1f} ms")
    print(f"mails: {len(mails)}, body up to {args.body_chars} chars, "
          f"{matched / len(mails):.0%} matched a rule, {tested / len(mails):.0f} rules tested "
          "per mail on average")
    print(f"evaluate: {min(rounds) * 1e6:.0f} µs/mail best of {args.rounds} rounds, "
          f"{statistics.median(rounds) * 1e6:.0f} µs/mail median")


if __name__ == "__main__":
    main()
