"""Ingest benchmark: send N mails over SMTP to a RUNNING postdesk and print how fast they were
accepted and processed end to end. Starts nothing itself.

    .venv/bin/python bench/ingest.py --config config.example.yaml --mails 2000 --connections 4

Mails are mixed German/English, plain/HTML/with attachment; 30 % are replies to earlier ones
(threaded by In-Reply-To/References). "Processed" means every inbox row the run added is done
(ticket or article written). Peak RSS is the VmHWM of the server (found via its listening
socket) and of its child processes (the pipeline worker).
"""

from __future__ import annotations

import argparse
import os
import random
import smtplib
import statistics
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from gateway.config import Settings, load_settings
from storage.engine import Database, open_database
from storage.models import InboxItem

GERMAN = [
    (
        "Drucker im 3. OG druckt nicht",
        "Guten Tag,\n\nder Drucker im 3. OG (Raum 3.14) druckt seit "
        "heute früh nicht mehr. Bitte um Prüfung.\n\nMit freundlichen Grüßen\nErika Muster\n",
    ),
    (
        "Zugang zum Fachverfahren beantragt",
        "Hallo Servicedesk,\n\nich benötige für meine neue "
        "Tätigkeit einen Zugang zum Fachverfahren. Die Genehmigung liegt bei.\n",
    ),
    (
        "VPN geht nicht",
        "Sehr geehrte Damen und Herren,\nseit dem Update geht das VPN nicht mehr, "
        "Fehlermeldung 809. Ich arbeite heute im Homeoffice.\nViele Grüße\n",
    ),
]
ENGLISH = [
    (
        "Laptop will not boot",
        "Hello,\n\nmy laptop shows a black screen after the update. "
        "Could you please have a look?\n\nBest regards\nJohn\n",
    ),
    (
        "Password reset needed",
        "Hi,\nI am locked out of my account after three attempts. "
        "Please reset my password.\nThanks\n",
    ),
]
PDF = b"%PDF-1.4\n" + b"0" * 20_000 + b"\n%%EOF\n"


def build_mail(rng: random.Random, number: int, parent: EmailMessage | None) -> EmailMessage:
    subject, body = rng.choice(GERMAN if rng.random() < 0.7 else ENGLISH)
    msg = EmailMessage()
    msg["From"] = (
        str(parent["From"])
        if parent is not None
        else f"Nutzer {number % 97} <user{number % 97}@example.net>"
    )
    msg["To"] = "servicedesk@example.org"
    msg["Message-ID"] = make_msgid(domain="bench.example.net")
    if parent is not None:
        msg["Subject"] = "AW: " + str(parent["Subject"])
        msg["In-Reply-To"] = str(parent["Message-ID"])
        msg["References"] = str(parent["Message-ID"])
        body = "Nachtrag: das Problem besteht weiterhin.\n\n> " + body.replace("\n", "\n> ")
    else:
        msg["Subject"] = f"{subject} #{number}"
    kind = rng.random()
    msg.set_content(body)
    if kind < 0.3:
        msg.add_alternative(
            f"<html><body><p>{body.replace(chr(10), '<br>')}</p></body></html>", subtype="html"
        )
    elif kind < 0.45:
        msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="Übersicht.pdf")
    return msg


def build_mails(count: int, seed: int) -> list[EmailMessage]:
    rng = random.Random(seed)
    mails: list[EmailMessage] = []
    originals: list[EmailMessage] = []
    for number in range(count):
        parent = rng.choice(originals[-200:]) if originals and rng.random() < 0.3 else None
        mail = build_mail(rng, number, parent)
        mails.append(mail)
        if parent is None:
            originals.append(mail)
    return mails


def server_pid(port: int) -> int | None:
    """The pid listening on 127.0.0.1:port, read from /proc (Linux only)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def peak_rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def child_pids(pid: int | None) -> list[int]:
    """The server's child processes (the pipeline worker, multiprocessing's helper)."""
    if pid is None:
        return []
    children = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: parent pid
            children.append(int(entry))
    return sorted(children)


def rss_report(pid: int | None) -> str:
    main = peak_rss_mib(pid)
    if main is None:
        return "unknown (server pid not found)"
    children = [rss for rss in map(peak_rss_mib, child_pids(pid)) if rss is not None]
    if not children:
        return f"{main:.0f} MiB"
    parts = " + ".join(f"{rss:.0f}" for rss in children)
    return f"{main:.0f} MiB serve + {parts} MiB children = {main + sum(children):.0f} MiB"


def pending_after(db: Database, start_id: int) -> int:
    with db.reading() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(InboxItem)
                .where(InboxItem.id > start_id, InboxItem.state.in_(("queued", "processing")))
            )
            or 0
        )


def warm_up(settings: Settings, db: Database, count: int, timeout: float) -> None:
    """Send `count` mails (other Message-IDs than the measured ones) and wait until done."""
    with db.reading() as session:
        start_id = session.scalar(select(func.max(InboxItem.id))) or 0
    with smtplib.SMTP(settings.smtp.host, settings.smtp.port, timeout=60) as smtp:
        for mail in build_mails(count, seed=-1):
            smtp.sendmail(str(mail["From"].addresses[0].addr_spec),
                          [settings.service.address], mail.as_bytes())
    deadline = time.monotonic() + timeout
    while pending_after(db, start_id) and time.monotonic() < deadline:
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config.example.yaml")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--warm-up",
        type=int,
        default=0,
        metavar="N",
        help="first send N other mails and wait until they are processed (the worker's "
        "prepare process, which loads Presidio, then runs from the first measured mail on)",
    )
    args = parser.parse_args()

    settings = load_settings(args.config)
    db = open_database(settings.database.url)
    if args.warm_up:
        warm_up(settings, db, args.warm_up, args.timeout)
    with db.reading() as session:
        start_id = session.scalar(select(func.max(InboxItem.id))) or 0
    # Serialised up front, so the client spends its CPU on SMTP, not on the email package.
    mails = [
        (str(m["From"].addresses[0].addr_spec), m.as_bytes())
        for m in build_mails(args.mails, args.seed)
    ]
    batches = [mails[i :: args.connections] for i in range(args.connections)]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(batch: list[tuple[str, bytes]]) -> None:
        with smtplib.SMTP(settings.smtp.host, settings.smtp.port, timeout=60) as smtp:
            for sender, raw in batch:
                started = time.perf_counter()
                try:
                    smtp.sendmail(sender, [settings.service.address], raw)
                except smtplib.SMTPException as exc:
                    with lock:
                        failures.append(type(exc).__name__)
                    continue
                with lock:
                    latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted_s = time.perf_counter() - began

    pending = True
    while pending and time.perf_counter() - began < args.timeout:
        pending = bool(pending_after(db, start_id))
        if pending:
            time.sleep(0.02)
    processed_s = time.perf_counter() - began
    with db.reading() as session:
        states = dict(
            session.execute(
                select(InboxItem.state, func.count())
                .where(InboxItem.id > start_id)
                .group_by(InboxItem.state)
            ).all()
        )

    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0.0
    rss = rss_report(server_pid(settings.smtp.port))
    print(
        f"mails sent            {len(mails)} over {args.connections} connections "
        f"({len(failures)} refused)"
    )
    print(f"accepted              {len(latencies) / accepted_s:8.1f} mails/s")
    print(
        f"processed end-to-end  {len(latencies) / processed_s:8.1f} mails/s"
        f"{'  (TIMED OUT)' if pending else ''}"
    )
    print(
        f"accept latency        p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms"
    )
    print(f"inbox rows by state   {states}")
    print(f"server peak RSS       {rss}")


if __name__ == "__main__":
    main()
