"""Time per mail spent holding a row lock that every instance needs (issue 14: the serial
fraction of scale-out). Several workers (processes, each with its own engine, as separate
instances would have) drain one queue of new mails on PostgreSQL; every mail opens a ticket
routed to a round-robin team, so each takes a ticket number and a rotation position.

A shared lock counts from the end of the first statement that writes the `counters` table in
a transaction (time spent waiting for the lock is not counted) until that connection goes back
to the pool after its commit (the row lock is released by then). Ticket numbers from a
sequence take no row lock and are not counted.
Not a test; it only prints.

    .venv/bin/python bench/shared_locks.py --url postgresql+psycopg://postgres@127.0.0.1/bench
    PYTHONPATH=/path/to/older/checkout .venv/bin/python bench/shared_locks.py --url …

The database's public schema is dropped and migrated afresh (by the code on the path).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text

from gateway.app import App
from gateway.config import settings_from_dict
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.engine import open_database
from storage.migrate import upgrade

ROOT = Path(__file__).resolve().parent.parent
HELD = "bench_shared_lock_since"


class Held:
    """Seconds during which some connection held a counters row lock, summed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.transactions = 0
        self._lock = threading.Lock()

    def watch(self, engine: Engine) -> None:
        @event.listens_for(engine, "after_cursor_execute")  # the lock is ours from here
        def started(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            head = statement.lstrip()[:40].upper()
            if "COUNTERS" in head and head.startswith(("UPDATE", "INSERT")):
                conn.info.setdefault(HELD, time.perf_counter())

        @event.listens_for(engine.pool, "checkin")
        def released(dbapi_connection: Any, record: Any) -> None:
            since = record.info.pop(HELD, None) if record is not None else None
            if since is not None:
                with self._lock:
                    self.seconds += time.perf_counter() - since
                    self.transactions += 1


def mail(number: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"person{number}@example.net"
    message["To"] = "servicedesk@example.org"
    message["Subject"] = f"Drucker defekt {number}"  # the shipped rules: team it, round robin
    message["Message-ID"] = make_msgid(domain="example.net")
    message.set_content(f"Der Drucker {number} druckt nicht.\n")
    return bytes(message)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL database to empty and use")
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("POSTDESK_SECRET_KEY", "bench-secret-0123456789-abcdefghijklmnopqrst")
    db = open_database(args.url)
    with db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    upgrade(db)
    with db.session() as session:
        spool.add_inbox_items(
            session, [spool.NewInboxItem("smtp", f"bench-{n}", mail(n)) for n in range(args.mails)]
        )
    db.dispose()
    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        workers = [context.Process(target=work, args=(args.url, Path(folder) / f"w{n}", results))
                   for n in range(args.workers)]
        started = time.perf_counter()
        for process in workers:
            process.start()
        done = [results.get() for _ in workers]
        wall = time.perf_counter() - started
        for process in workers:
            process.join()
    mails = sum(mails for mails, _, _ in done)
    seconds = sum(seconds for _, seconds, _ in done)
    transactions = sum(count for _, _, count in done)
    print(f"{mails} mails, {args.workers} worker processes, {wall:.2f} s "
          f"({mails / wall:.1f} mails/s)")
    print(f"shared row lock held: {seconds * 1000:.1f} ms in {transactions} transactions = "
          f"{seconds / mails * 1e6:.0f} us per mail ({seconds / wall * 100:.1f} % of the wall "
          "time)")


def work(url: str, folder: Path, results: Any) -> None:
    """One instance's worker (a process of its own): drain the queue, report what it held."""
    settings = settings_from_dict({
        "service": {"address": "servicedesk@example.org", "ticket_prefix": "LDS"},
        "database": {"url": url},
        "data_dir": str(folder),
        "smtp": {"accept": ["servicedesk@example.org"]},
        "outgoing": {"transport": "maildir"},
        "agents": [{"email": "anna.schmidt@example.org", "name": "Anna", "teams": ["it"]},
                   {"email": "ben.mueller@example.org", "name": "Ben", "teams": ["it"]}],
        "teams": [{"name": "it"}, {"name": "fachverfahren"}],
        "rules_dir": str(ROOT / "rules"),
        "templates_dir": str(ROOT / "templates"),
        "log_level": "WARNING",
    }, base=folder)
    app = App.build(settings, sender=RecordingSender())
    held = Held()
    held.watch(app.db.engine)
    mails = len(app.worker.drain())
    app.db.dispose()
    results.put((mails, held.seconds, held.transactions))


if __name__ == "__main__":
    main()
