"""Redaction benchmark: precision and recall per entity over the generated labelled set
(bench/redaction_corpus.py) and, separately, over the hand-written mails in
tests/data/redaction/ that the rules were not tuned on; the share of ordinary dates and
name-like words kept; analyze throughput per core for a 1.5 KB body; engine start-up time.

    .venv/bin/python bench/redaction.py [--mails 360] [--errors 20] [--spacy-model NAME]

A gold value counts as found when every letter and digit of it lies inside a prediction of
the same entity type (a half-redacted name is a miss); a prediction counts as correct when it
overlaps a gold value of its type. Targets (issue 4): recall >= 0.95 PERSON, >= 0.99
DATE_OF_BIRTH, precision >= 0.90 for both, >= 99 % ordinary dates kept, >= 100 mails/s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from redaction_corpus import LabelledMail, generate, load_markup_dir  # noqa: E402

from gateway.redaction import (  # noqa: E402
    ALL_ENTITIES,
    Finding,
    KeyedPseudonyms,
    Language,
    Redactor,
    detect_language,
)

HAND_WRITTEN = ROOT / "tests" / "data" / "redaction"
REAL_BODIES = ROOT.parent / "shared" / "corpus" / "reply-bodies"
TARGETS = {"PERSON": (0.90, 0.95), "DATE_OF_BIRTH": (0.90, 0.99)}


@dataclass
class Score:
    gold: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    predicted: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)  # ORDINARY_DATE / KEEP that survived
    errors: list[str] = field(default_factory=list)


def evaluate(redactor: Redactor, mails: list[LabelledMail]) -> Score:
    score = Score()
    for mail in mails:
        findings = redactor.analyze(
            mail.text,
            language=cast(Language, mail.language),
            known_names=mail.known_names,
        )
        _score_mail(score, mail, findings)
    return score


def _score_mail(score: Score, mail: LabelledMail, findings: list[Finding]) -> None:
    covered: dict[str, set[int]] = {}
    for f in findings:
        covered.setdefault(f.entity, set()).update(range(f.start, f.end))
    anything = set().union(*covered.values()) if covered else set()
    for start, end, entity in mail.spans:
        value = mail.text[start:end]
        if entity in ("ORDINARY_DATE", "KEEP"):
            score.gold[entity] += 1
            if not anything & set(range(start, end)):
                score.kept[entity] += 1
            else:
                score.errors.append(f"{mail.name}: {entity} redacted: {value!r}")
            continue
        score.gold[entity] += 1
        needed = {i for i in range(start, end) if mail.text[i].isalnum()}
        if needed <= covered.get(entity, set()):
            score.found[entity] += 1
        else:
            score.errors.append(f"{mail.name}: missed {entity}: {_context(mail.text, start, end)}")
    for f in findings:
        score.predicted[f.entity] += 1
        if any(e == f.entity and s < f.end and f.start < t for s, t, e in mail.spans):
            score.correct[f.entity] += 1
        else:
            score.errors.append(
                f"{mail.name}: false {f.entity}: {_context(mail.text, f.start, f.end)}"
            )


def _context(text: str, start: int, end: int) -> str:
    before = text[max(0, start - 30) : start].replace("\n", "⏎")
    after = text[end : end + 20].replace("\n", "⏎")
    return f"…{before}«{text[start:end]}»{after}…"


def report(title: str, score: Score, show_errors: int) -> None:
    print(f"\n{title}")
    print(f"  {'entity':22} {'gold':>5} {'pred':>5} {'precision':>9} {'recall':>7}")
    for entity in ALL_ENTITIES:
        gold, pred = score.gold[entity], score.predicted[entity]
        if not gold and not pred:
            continue
        precision = score.correct[entity] / pred if pred else float("nan")
        recall = score.found[entity] / gold if gold else float("nan")
        target = TARGETS.get(entity)
        mark = ""
        if target:
            mark = "  ok" if precision >= target[0] and recall >= target[1] else "  BELOW TARGET"
        print(f"  {entity:22} {gold:5} {pred:5} {precision:9.3f} {recall:7.3f}{mark}")
    for entity, label in (
        ("ORDINARY_DATE", "ordinary dates kept"),
        ("KEEP", "name-like words kept"),
    ):
        if score.gold[entity]:
            share = 100 * score.kept[entity] / score.gold[entity]
            print(f"  {label}: {score.kept[entity]}/{score.gold[entity]} = {share:.1f} %")
    for line in score.errors[:show_errors]:
        print(f"    {line}")
    if len(score.errors) > show_errors:
        print(f"    … {len(score.errors) - show_errors} more")


def real_bodies(redactor: Redactor, show: bool) -> None:
    """Unlabelled third-party reply bodies: what gets redacted there, for reading by eye
    (precision on text nobody wrote for this benchmark)."""
    files = sorted(p for p in REAL_BODIES.rglob("*.txt") if p.is_file())
    counts: Counter[str] = Counter()
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        for f in redactor.analyze(text, language=detect_language(text)):
            counts[f.entity] += 1
            if show and f.entity != "EMAIL_ADDRESS":
                print(f"    {path.name:40} {f.entity:14} {_context(text, f.start, f.end)}")
    summary = ", ".join(f"{e} {n}" for e, n in counts.most_common())
    print(f"\nreal reply bodies (unlabelled, {len(files)} files): {summary or 'nothing'}")


def throughput(redactor: Redactor, mails: list[LabelledMail], seconds: float = 6.0) -> None:
    """Mails per second on one core: bodies cut or joined to 1.5 KB, full `redact` calls."""
    bodies, pool = [], "\n\n".join(m.text for m in mails)
    for i in range(200):
        start = (i * 977) % max(1, len(pool) - 1600)
        bodies.append(pool[start : start + 1500])
    pseudonyms = KeyedPseudonyms(b"benchmark-key-0123456789")
    for body in bodies[:20]:  # warm up
        redactor.redact(body, language="de", pseudonyms=pseudonyms)
    runs, latencies = 0, []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        body = bodies[runs % len(bodies)]
        t0 = time.perf_counter()
        language = detect_language(body)
        redactor.redact(
            body, language=language, known_names=["Schmidt, Anna"], pseudonyms=pseudonyms
        )
        latencies.append(time.perf_counter() - t0)
        runs += 1
    elapsed = time.perf_counter() - started
    latencies.sort()
    print(
        f"\nthroughput (1.5 KB bodies, detect_language + redact, one core): "
        f"{runs / elapsed:.0f} mails/s; median {1000 * statistics.median(latencies):.1f} ms, "
        f"p99 {1000 * latencies[int(0.99 * len(latencies))]:.1f} ms"
    )


def startup(spacy_model: str | None) -> None:
    """Fresh interpreter: import + build the engine + first redaction."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from gateway.redaction import Redactor, DEFAULT_ENTITIES, KeyedPseudonyms\n"
        "i = time.perf_counter() - t\n"
        f"r = Redactor(entities=DEFAULT_ENTITIES, spacy_model={spacy_model!r})\n"
        "r.redact('Hallo Frau Schmidt, geb. 01.02.1980', language='de',"
        " pseudonyms=KeyedPseudonyms(b'x' * 16))\n"
        "print(f'{i:.2f} {time.perf_counter() - t:.2f}')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    print(f"start-up: imports {out[0]} s, ready after first redaction {out[1]} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=360, help="generated mails")
    parser.add_argument("--errors", type=int, default=15, help="errors to print per set")
    parser.add_argument("--spacy-model", default=None, help="installed spaCy model to add")
    parser.add_argument("--no-speed", action="store_true", help="skip throughput and start-up")
    parser.add_argument("--show-real", action="store_true", help="list real-corpus findings")
    args = parser.parse_args()

    redactor = Redactor(entities=ALL_ENTITIES, spacy_model=args.spacy_model)
    generated = list(generate(args.mails))
    size = statistics.mean(len(m.text) for m in generated)
    report(
        f"generated set: {len(generated)} mails (mean {size:.0f} chars)",
        evaluate(redactor, generated),
        args.errors,
    )
    hand = load_markup_dir(HAND_WRITTEN)
    if hand:
        report(
            f"hand-written set (not tuned on): {len(hand)} mails",
            evaluate(redactor, hand),
            args.errors,
        )
    if REAL_BODIES.is_dir():
        real_bodies(redactor, args.show_real)
    if not args.no_speed:
        throughput(redactor, generated)
        startup(args.spacy_model)


if __name__ == "__main__":
    main()
