"""How long the search for personal data takes for one huge German body (issue 12: a 925K-
character mail held up every mail behind it for 40 s; one over 1,000,000 characters, spaCy's
nlp.max_length, was quarantined at `analyse`). Prints seconds and the recall of labelled
values per size, so chunking can be checked for what it finds as well as for speed.

    .venv/bin/python bench/huge_mail.py [--sizes 925000,1500000] [--profile]
    .venv/bin/python bench/huge_mail.py --mail [--sizes …]   # the whole PREPARE, per stage

`--mail` sends each body as a mail through PREPARE (parse, language, quotes, analyse, …) with
the default settings (redaction.max_analysis_chars included) and prints each stage's time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from redaction_corpus import generate  # noqa: E402

from gateway.redaction import ALL_ENTITIES, Redactor  # noqa: E402


def body(size: int) -> tuple[str, list[tuple[int, int, str]]]:
    """German labelled mails one after another up to `size` characters, with their spans."""
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    length = 0
    while length < size:
        for mail in generate(240):
            if mail.language != "de":
                continue
            spans += [(s + length, e + length, entity) for s, e, entity in mail.spans]
            parts.append(mail.text + "\n\n")
            length += len(mail.text) + 2
            if length >= size:
                break
    text = "".join(parts)[:size]
    keep = ("ORDINARY_DATE", "KEEP")  # labelled values that must stay: not counted here
    return text, [span for span in spans if span[1] <= size and span[2] not in keep]


def recall(text: str, spans: list[tuple[int, int, str]], found: list[tuple[int, int]]) -> float:
    """Share of labelled values whose every character lies inside some finding."""
    covered = bytearray(len(text))
    for start, end in found:
        covered[start:end] = b"\x01" * (end - start)
    hits = sum(all(covered[s:e]) for s, e, _ in spans)
    return hits / len(spans) if spans else 1.0


def prepare_mail(text: str) -> None:
    """Time each PREPARE stage for one mail with `text` as its plain body."""
    import tempfile
    from email.message import EmailMessage

    from gateway.config import settings_from_dict
    from gateway.pipeline.context import IncomingMail
    from gateway.pipeline.prepare import prepare, shared_redactor
    from storage.models import utcnow

    msg = EmailMessage()
    msg["From"] = "Erika Muster <erika.muster@example.net>"
    msg["To"] = "servicedesk@example.org"
    msg["Subject"] = "Protokoll"
    msg["Message-ID"] = "<huge@example.net>"
    msg.set_content(text)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_dict(
            {"database": {"url": f"sqlite:///{tmp}/bench.db"}, "data_dir": tmp,
             "service": {"address": "servicedesk@example.org"}},
            base=Path(tmp),
        )
        item = IncomingMail(id=1, source="smtp", raw=msg.as_bytes(), received_at=utcnow())
        redactor = shared_redactor(settings)  # built once (not timed below)
        times: dict[str, float] = {}
        started = time.perf_counter()
        prepared = prepare(item, settings, redactor,
                           observe=lambda s, t: times.__setitem__(s, t))
        total = time.perf_counter() - started
    stages = ", ".join(f"{name} {seconds:.2f}" for name, seconds in times.items())
    print(f"{len(text):>9} chars as a mail: {total:5.1f} s (error: {prepared.error}); {stages}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="925000,1500000")
    parser.add_argument("--profile", action="store_true", help="cProfile the first size")
    parser.add_argument("--mail", action="store_true", help="time PREPARE per stage")
    args = parser.parse_args()
    if args.mail:
        for size in (int(s) for s in args.sizes.split(",")):
            prepare_mail(body(size)[0])
        return
    redactor = Redactor(entities=ALL_ENTITIES)
    redactor.analyze("Guten Tag, Anna Schmidt", language="de")  # warm up
    for n, size in enumerate(int(s) for s in args.sizes.split(",")):
        text, spans = body(size)
        profile = cProfile.Profile() if args.profile and n == 0 else None
        started = time.perf_counter()
        try:
            if profile is not None:
                profile.enable()
            findings = redactor.analyze(text, language="de")
        except Exception as exc:  # the old engine's limit: report it
            print(f"{len(text):>9} chars: failed after {time.perf_counter() - started:.1f} s: "
                  f"{type(exc).__name__}: {str(exc)[:80]}")
            continue
        finally:
            if profile is not None:
                profile.disable()
        seconds = time.perf_counter() - started
        found = [(f.start, f.end) for f in findings]
        print(f"{len(text):>9} chars: {seconds:6.1f} s, {len(findings)} findings, "
              f"recall of {len(spans)} labelled values {recall(text, spans, found):.3f}")
        if profile is not None:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
