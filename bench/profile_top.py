"""Summarise a py-spy profile of bench/e2e.py --profile FILE: per process (serve, worker,
prepare), the share of samples per activity (parse, HTML→text, quote variants, Presidio, SQL,
commit, templates, SMTP intake, outbox SMTP, pickling, …) and the top functions by own time.

    .venv/bin/python bench/profile_top.py /tmp/e2e.prof [--top 15]

Each sample is put under the innermost frame that matches an activity (a SQL statement inside
the route stage counts as SQL), else under "other". Percentages are of all samples of all
server processes, so they say where the machine's CPU went; ms per mail divide the sampled
time by the number of mails (from the .pids.json e2e writes beside the profile).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

# (activity, pattern on "function (file:line)"); the innermost matching frame decides.
# A sample whose innermost frame blocks (LEAF_WAIT) is a wait, not work; py-spy in
# --nonblocking mode cannot tell idle threads itself.
LEAF_WAIT = re.compile(r"^(Condition\.wait|Event\.wait|Queue\.get|\w*Selector\.select|sleep|"
                       r"Connection\._poll|wait) ")
WAITS: list[tuple[str, str]] = [
    ("waits for prepare results (worker)", r"^ProcessPreparer\."),
    ("idle helper threads", r"^Queue\._feed |^Thread\.run "),
]
ACTIVITIES: list[tuple[str, str]] = [
    ("waits for the SQLite write lock", r"^WriterLock\.__enter__ "),
    ("pickling between processes", r"\(multiprocessing/(connection|queues|reduction)\.py|"
                                   r"\(pickle|copyreg|_dataclass_setstate"),
    ("waits for prepare results (worker)", r"^ProcessPreparer\."),
    ("commit (SQLite fsync, synchronous=FULL)", r"(^|\.)(do_commit|_commit_impl) |fsync"),
    ("SQL (SQLAlchemy + sqlite3)", r"\(sqlalchemy/|\(sqlite3/"),
    ("Presidio analyzer", r"\(presidio_analyzer/|\(spacy/|\(phonenumbers/|\(regex/"),
    ("redaction (own recognizers)", r"\(gateway/redaction/"),
    ("HTML→text", r"html2text|\(gateway/mail/text\.py|\(html/parser|\(bs4/|\(lxml/"),
    ("quote variants / reply text", r"\(gateway/pipeline/quotes\.py|\(gateway/mail/replytext\.py"
                                    r"|mailparser_reply"),
    ("MIME parse (email package)", r"\(email/|\(gateway/mail/mimeparts\.py|\(gateway/mail/tnef\.py"
                                   r"|\(gateway/pipeline/parse\.py|mailparser"),
    ("templates (Jinja2)", r"\(jinja2/|\(gateway/outgoing/(render|templateset)\.py"),
    ("compose outgoing MIME", r"\(gateway/mail/compose\.py|\(gateway/outgoing/letters\.py"),
    ("routing rules", r"\(gateway/routing/"),
    ("outbox SMTP (smtplib)", r"\(smtplib\.py|\(gateway/outgoing/senders\.py"),
    ("SMTP intake (aiosmtpd)", r"\(aiosmtpd/|\(gateway/intake/smtp"),
    ("inbox writer", r"\(gateway/intake/inboxwriter\.py"),
    ("encryption (originals)", r"\(cryptography/|\(storage/sealing\.py|\(storage/private"),
    ("blobs (attachments)", r"\(storage/blobs\.py"),
    ("asyncio / selectors", r"\(asyncio/|\(selectors\.py"),
    ("scheduler (APScheduler)", r"\(apscheduler/"),
    ("language detection", r"detect_language|\(gateway/mail/language\.py"),
    ("logging", r"\(logging/|\(gateway/logs\.py|\(structlog/"),
    ("socket I/O", r"\(socket\.py|\(ssl\.py"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in ACTIVITIES]
COMPILED_WAITS = [(name, re.compile(pattern)) for name, pattern in WAITS]
PROCESS = re.compile(r"^process (\d+)$")
QUOTED = re.compile(r'process (\d+):"[^"]*"')  # a command line may hold ";"


def parse(path: Path) -> list[tuple[int, list[str], int]]:
    samples = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = QUOTED.sub(r"process \1", line).rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        pid = 0
        while frames and (match := PROCESS.match(frames[0])):
            pid = int(match.group(1))  # the innermost "process" frame is the sampled one
            frames.pop(0)
        samples.append((pid, frames, int(count)))
    return samples


def activity(frames: list[str]) -> str:
    if frames and LEAF_WAIT.match(frames[-1]):
        for frame in reversed(frames):
            for name, pattern in COMPILED_WAITS:
                if pattern.search(frame):
                    return name
        return "idle / waiting (event loops, timers)"
    for frame in reversed(frames):
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--rate", type=float, default=200, help="py-spy samples per second")
    options = parser.parse_args()
    sidecar = options.profile.with_suffix(".pids.json")
    meta = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    names = {int(pid): label for pid, label in meta.get("processes", meta).items()
             if pid.isdigit()}
    mails = int(meta.get("mails", 0)) or None
    samples = parse(options.profile)
    total = sum(count for _, _, count in samples)
    per_process: Counter[str] = Counter()
    by_activity: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    for pid, frames, count in samples:
        process = names.get(pid, f"pid {pid}")
        per_process[process] += count
        by_activity[process][activity(frames)] += count
        if frames:
            own[process][frames[-1]] += count

    def ms(count: int) -> str:
        return f"{count / options.rate * 1000 / mails:6.2f} ms/mail" if mails else ""

    print(f"{total} samples at {options.rate:.0f}/s"
          + (f", {mails} mails" if mails else ""))
    for process, count in per_process.most_common():
        print(f"\n== {process}: {count / total:5.1%} of samples {ms(count)}")
        for name, part in by_activity[process].most_common():
            if part / total >= 0.002:
                print(f"   {part / total:6.1%}  {ms(part)}  {name}")
        print("   top functions (own time):")
        for frame, part in own[process].most_common(options.top):
            print(f"   {part / total:6.1%}  {frame[:110]}")


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):  # piped into head
        main()
