"""Scale-out bench: 1, 2 and 3 `postdesk serve` instances on one PostgreSQL database, each with
its own data folder and SMTP port, the same secret, `blobs.store: database`, a relay sink. It
sends a realistic corpus (bench/corpus.py) spread over the instances, then replies by
In-Reply-To to the acknowledgements, each sent to another instance than its original, and
measures per run

- accepted mails/s (all instances together) and processed mails/s (inbox rows done),
- server CPU ms per mail (every serve, worker and prepare process of every instance);

and checks the outcome: every mail exactly once, no reply opened a ticket.

    .venv/bin/python bench/scaleout.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python bench/scaleout.py --instances 1 2 3 --mails 600 --replies 200

On this 2-core machine more instances cannot be faster; docs/scaling.md turns the CPU per
mail from here and the serial fraction (time per mail holding a row lock every instance needs:
bench/shared_locks.py) into the bound for more hosts (Amdahl).
"""

from __future__ import annotations

import argparse
import os
import shutil
import smtplib
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build_corpus
from e2e import (
    CLK_TCK,
    SERVICE,
    Sink,
    cpu_seconds,
    descendants,
    make_site,
    start_serve,
    stop_serve,
    wire,
)

BASE_PORT = 34100


@dataclass
class RunResult:
    instances: int
    mails: int
    accepted_per_s: float
    processed_per_s: float
    cpu_ms_per_mail: float
    db_cpu_ms_per_mail: float
    new_tickets_from_replies: int
    duplicates: int


def database_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL process on this machine (the server runs here)."""
    total = 0.0
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def reset_database(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def send(port: int, mails: list[tuple[str, bytes]], accepted: list[float]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
        for sender, raw in mails:
            smtp.sendmail(sender, [SERVICE], raw)
            accepted.append(time.monotonic())


def send_spread(ports: list[int], mails: list[tuple[str, bytes]], per_port: int = 2) -> float:
    """Send `mails` over `per_port` connections to each instance; seconds it took."""
    accepted: list[float] = []
    lanes = [(port, i) for port in ports for i in range(per_port)]
    batches = [mails[i::len(lanes)] for i in range(len(lanes))]
    threads = [threading.Thread(target=send, args=(port, batch, accepted))
               for (port, _), batch in zip(lanes, batches, strict=True)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - began


def reply_to(original: bytes, ack_message_id: str, number: int) -> tuple[str, bytes]:
    """A requester's answer to its acknowledgement, threaded by In-Reply-To only."""
    msg = message_from_bytes(original, policy=policy.default)
    sender = str(msg["From"].addresses[0].addr_spec)
    reply = (f"From: {msg['From']}\r\nTo: {SERVICE}\r\nSubject: AW: {msg['Subject']}\r\n"
             f"Message-ID: <reply-{number}@bench.example.net>\r\n"
             f"In-Reply-To: {ack_message_id}\r\nReferences: {ack_message_id}\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n\r\n"
             "Danke, das Problem besteht leider weiterhin. Bitte melden Sie sich.\r\n")
    return sender, reply.encode()


def wait_done(url: str, expected: int, timeout: float) -> float:
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(text(
                    "SELECT count(*) FROM inbox WHERE state IN ('done', 'quarantined')")).scalar()
            if done is not None and done >= expected:
                return time.monotonic()
            time.sleep(0.2)
    finally:
        engine.dispose()
    raise SystemExit(f"only part of {expected} inbox rows were done after {timeout:.0f} s")


def acknowledgement_ids(url: str) -> dict[str, str]:
    """requester → Message-ID of the newest acknowledgement queued for them."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT t.requester, o.message_id FROM outbox o JOIN tickets t ON t.id = o.ticket_id "
            "WHERE o.kind LIKE '%received' ORDER BY o.id")).all()
    engine.dispose()
    return {requester: message_id for requester, message_id in rows}


def outcome(url: str, originals: int) -> tuple[int, int]:
    """(tickets beyond one per original: replies that opened a ticket, or doubles; inbound
    Message-IDs stored twice)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar() or 0
        doubled = conn.execute(text(
            "SELECT count(*) FROM (SELECT message_id FROM articles WHERE direction = 'in' "
            "GROUP BY message_id HAVING count(*) > 1) d")).scalar() or 0
    engine.dispose()
    return int(tickets) - originals, int(doubled)


def run(options: argparse.Namespace, instances: int) -> RunResult:
    reset_database(options.url)
    folder = Path(tempfile.mkdtemp(prefix=f"scale-{instances}-", dir=options.tmp))
    sink = Sink(options.sink_port)
    sink.start()
    key_file = folder / "shared-secret.key"
    serves = []
    ports = [BASE_PORT + 10 * i for i in range(instances)]
    try:
        for i, port in enumerate(ports):
            site = folder / f"i{i}"
            site.mkdir()
            config = make_site(site, port, options.sink_port, options.redaction, [
                f"database.url={options.url}", f"secrets.key_file={key_file}",
                "blobs.store=database", f"instance.id=bench-{i}", *options.set])
            serves.append(start_serve(config, port, [], site / "serve.log", None))
        mails = wire(build_corpus(options.mails, seed=options.seed, service=SERVICE))
        processes: dict[int, str] = {}
        for serve in serves:
            processes.update(descendants(serve.pid))
        cpu_before = cpu_seconds(processes)
        db_before = database_cpu_seconds()
        began = time.monotonic()
        accepted_s = send_spread(ports, mails)
        wait_done(options.url, len(mails), options.timeout)
        acks = acknowledgement_ids(options.url)
        originals = dict(mails)
        replies = []
        for n, (sender, _) in enumerate(mails[: options.replies]):
            if sender.lower() in acks:
                replies.append(reply_to(originals[sender], acks[sender.lower()], n))
        # each reply goes to the next instance after the one its original went to
        reply_ports = ports[1:] + ports[:1]
        accepted_s += send_spread(reply_ports, replies)
        finished = wait_done(options.url, len(mails) + len(replies), options.timeout)
        cpu_after = cpu_seconds(processes)
        db_cpu = database_cpu_seconds() - db_before
        total = len(mails) + len(replies)
        cpu = sum(cpu_after.get(p, 0) - cpu_before.get(p, 0) for p in processes)
        from_replies, doubled = outcome(options.url, len(mails))
        return RunResult(instances, total, total / accepted_s, total / (finished - began),
                         cpu / total * 1000, db_cpu / total * 1000, from_replies, doubled)
    finally:
        for serve in serves:
            stop_serve(serve)
        sink.stop()
        if options.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get(
        "POSTDESK_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"))
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--mails", type=int, default=600)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redaction", choices=["on", "off"], default="on")
    parser.add_argument("--sink-port", type=int, default=BASE_PORT - 1)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--tmp", default=None)
    parser.add_argument("--keep", default=None)
    parser.add_argument("--set", action="append", default=[],
                        help="config override, e.g. worker.cpu_priority=normal (repeatable)")
    options = parser.parse_args(argv)
    options.redaction = options.redaction == "on"
    results: list[Any] = [run(options, n) for n in options.instances]
    print(f"{'instances':>9} {'mails':>6} {'accepted/s':>11} {'processed/s':>12} "
          f"{'CPU ms/mail':>12} {'DB ms/mail':>11} {'extra tickets':>13} {'doubled':>8}")
    for r in results:
        print(f"{r.instances:>9} {r.mails:>6} {r.accepted_per_s:>11.1f} "
              f"{r.processed_per_s:>12.1f} {r.cpu_ms_per_mail:>12.1f} "
              f"{r.db_cpu_ms_per_mail:>11.1f} "
              f"{r.new_tickets_from_replies:>13} {r.duplicates:>8}")


if __name__ == "__main__":
    main()
