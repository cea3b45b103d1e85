"""What reading attachments costs in PREPARE: gateway.mail.attachtext.extract per file, and the
search for personal data in the text it gives (the redactor, as the analyse step runs it),
for the attachments of the realistic corpus (bench/corpus.py: 20 KB of random bytes as PDF,
PNG or XLSX: nothing readable) and for files that do hold text (a 20 KB PDF of several pages,
a DOCX, an HTML page).

    .venv/bin/python bench/attachtext.py [--rounds 30]

Prints ms per file (median and p90) and the characters found. Indicative only on a shared
machine."""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time
from pathlib import Path

from gateway.config import settings_from_dict
from gateway.mail import attachtext
from gateway.pipeline.prepare import shared_redactor

LINE = ("Sehr geehrte Frau Sommerfeld, wie besprochen sende ich Ihnen die Unterlagen zum "
        "Antrag vom 14.07.2025; Rueckfragen gern an 0351 564-2871.")


def pdf(pages: int, lines: int) -> bytes:
    """A PDF of `pages` pages of `lines` lines each (Helvetica, uncompressed streams)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    font = 3
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for _ in range(pages):
        content = "BT /F1 9 Tf 40 800 Td 11 TL " + " ".join(
            f"({LINE[: 60 + n % 40]}) '" for n in range(lines)) + " ET"
        objects.append(f"<< /Length {len(content)} >>\nstream\n{content}\nendstream")
        contents = len(objects)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       f"<< /Font << /F1 {font} 0 R >> >> /Contents {contents} 0 R >>")
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n"
            "%%EOF\n").encode()
    return out


def docx(paragraphs: int) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for _ in range(paragraphs):
        document.add_paragraph(LINE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def samples() -> list[tuple[str, str, str, bytes]]:
    rng = random.Random(1)
    return [
        ("corpus: random 20 KB as PDF", "Fehlermeldung.pdf", "application/pdf",
         rng.randbytes(20_000)),
        ("corpus: random 20 KB as PNG", "Screenshot.png", "image/png", rng.randbytes(20_000)),
        ("corpus: random 20 KB as XLSX", "Inventar.xlsx",
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         rng.randbytes(20_000)),
        ("PDF with text, 4 pages", "antrag.pdf", "application/pdf", pdf(4, 50)),
        ("DOCX with text, 120 paragraphs", "antrag.docx",
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx(120)),
        ("HTML, 20 KB", "seite.html", "text/html",
         ("<html><body>" + "".join(f"<p>{LINE}</p>" for _ in range(140))
          + "</body></html>").encode()),
    ]


def measure(rounds: int) -> None:
    settings = settings_from_dict({}, base=Path.cwd())
    redactor = shared_redactor(settings)
    assert redactor is not None
    entities = settings.redaction.all_entities()
    print(f"{'file':<34} {'size':>7} {'state':<10} {'chars':>6}  {'extract ms':>16}  "
          f"{'redact ms':>16}")
    for label, name, kind, data in samples():
        extract_ms, redact_ms = [], []
        state, text = "", None
        for _ in range(rounds):
            began = time.perf_counter()
            state, text = attachtext.extract(name, kind, data)
            extract_ms.append((time.perf_counter() - began) * 1000)
            if text is not None:
                began = time.perf_counter()
                redactor.prepare(text, language="de", entities=entities)
                redact_ms.append((time.perf_counter() - began) * 1000)
        print(f"{label:<34} {len(data):>7} {state:<10} {len(text or ''):>6}  "
              f"{_figures(extract_ms):>16}  {_figures(redact_ms) if redact_ms else '-':>16}")


def _figures(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"{statistics.median(values):.2f} / {p90:.2f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    measure(parser.parse_args().rounds)
