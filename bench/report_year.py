"""A year of tickets for `postdesk report` (issue 17): generate N tickets of 2025 with their
statistics rows on SQLite by bulk inserts, time the report (JSON, CSV, HTML), run the real
deletion (`retention run` of the shipped queue policies: queue `personal` goes six months after
closing) and check that the report is the same afterwards.

    .venv/bin/python bench/report_year.py            # 100,000 tickets
    .venv/bin/python bench/report_year.py --tickets 20000 --keep /tmp/year

Prints the timings; exits 1 if a report differs after the deletion or takes 2 s or more."""

from __future__ import annotations

import argparse
import os
import random
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from gateway.app import open_blobs  # noqa: E402
from gateway.config import Settings, settings_from_dict  # noqa: E402
from gateway.lifecycle import retention  # noqa: E402
from gateway.lifecycle.policy import load_policies  # noqa: E402
from gateway.reports import build, output  # noqa: E402
from gateway.secrets import Keys  # noqa: E402
from storage.blobs import Blobs  # noqa: E402
from storage.engine import Database, open_database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Ticket, TicketStatistic  # noqa: E402

QUEUES = (("it", 0.6), ("fachverfahren", 0.35), (None, 0.05))
CHANNELS = (("smtp", 0.6), ("exchange", 0.2), ("graph", 0.1), ("import", 0.05), ("web", 0.05))
PRIORITIES = (("normal", 0.7), ("high", 0.15), ("low", 0.1), ("urgent", 0.05))
TAGS = ("drucker", "vpn", "passwort", "fachverfahren", "hardware", "escalated", "telefon")
MADE_AT = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


@dataclass
class Parts:
    settings: Settings
    db: Database
    blobs: Blobs


def pick(rng: random.Random, table: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def one(rng: random.Random, number: int, every: int
        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A closed ticket of 2025 and its statistics row (figures as tally would keep them)."""
    day = date(2025, 1, 1) + timedelta(days=rng.randrange(365))
    created = datetime(day.year, day.month, day.day, 7, tzinfo=UTC) + timedelta(
        minutes=rng.randrange(9 * 60))
    first_minutes = int(rng.lognormvariate(5, 1))
    resolution_minutes = first_minutes + int(rng.lognormvariate(7, 1))
    first = created + timedelta(minutes=first_minutes * 2)
    resolved = created + timedelta(minutes=resolution_minutes * 2)
    closed = resolved + timedelta(days=7)
    queue = "personal" if every and number % every == 0 else pick(rng, QUEUES)
    priority = pick(rng, PRIORITIES)
    tags = sorted(rng.sample(TAGS, rng.randrange(3)))
    outcome = {"first_response": "met" if first_minutes < 480 else "missed",
               "solution": "met" if resolution_minutes < 2400 else "missed"}
    ticket = {
        "number": number, "ref": f"LDS-{number}", "subject": f"Anliegen {number}",
        "status": "closed", "queue": queue, "priority": priority,
        "requester": f"person{number}@example.invalid", "language": "de", "tags": tags,
        "pseudonyms": {}, "created_at": created, "updated_at": closed,
        "resolved_at": resolved, "closed_at": closed, "first_responded_at": first,
        "solution_paused_minutes": 0, "sla_outcome": outcome, "status_changed_at": closed,
    }
    row = {
        "queue": queue, "priority": priority, "status": "closed",
        "channel": pick(rng, CHANNELS), "tags": tags, "created_at": created,
        "first_response_at": first, "resolved_at": resolved, "closed_at": closed,
        "first_response_minutes": first_minutes, "resolution_minutes": resolution_minutes,
        "reopens": 1 if rng.random() < 0.04 else 0, "articles": 0, "sla_outcome": outcome,
    }
    return ticket, row


def generate(app: Parts, count: int, seed: int, personal: int) -> None:
    rng = random.Random(seed)
    every = max(1, count // personal) if personal else 0  # every n-th ticket: personal
    batch = 10_000
    for start in range(1, count + 1, batch):
        pairs = [one(rng, n, every) for n in range(start, min(count + 1, start + batch))]
        with app.db.session() as session:
            session.execute(insert(Ticket), [t for t, _ in pairs])
            ids = dict(session.execute(select(Ticket.number, Ticket.id).where(
                Ticket.number >= start, Ticket.number < start + batch)).all())
            session.execute(insert(TicketStatistic), [
                {**row, "ticket_id": ids[ticket["number"]]} for ticket, row in pairs])


def timed_reports(app: Parts) -> tuple[dict[str, float], tuple[str, str, str]]:
    span = build.period(app.settings, "2025-01-01", "2025-12-31", None, today=date(2026, 9, 1))
    times: dict[str, float] = {}
    began = time.perf_counter()
    report = build.make(app.db, span)
    times["query+figures"] = time.perf_counter() - began
    began = time.perf_counter()
    as_json = output.as_json(report)
    times["json"] = time.perf_counter() - began
    began = time.perf_counter()
    as_csv = output.as_csv(report)
    times["csv"] = time.perf_counter() - began
    began = time.perf_counter()
    as_html = output.as_html(report, app.settings, made_at=MADE_AT).html
    times["html"] = time.perf_counter() - began
    return times, (as_json, as_csv, as_html)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--personal", type=int, default=300,
                        help="this many tickets in queue personal (deleted by the run; "
                             "each deletion costs about 10 ms among 100,000 tickets)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="report-year-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("POSTDESK_SECRET_KEY", secrets.token_hex(32))
    settings = settings_from_dict({
        "service": {"address": "servicedesk@example.org", "name": "IT-Servicedesk"},
        "database": {"url": f"sqlite:///{folder / 'year.db'}"},
        "data_dir": str(folder / "var"),
        "rules_dir": str(ROOT / "rules"), "templates_dir": str(ROOT / "templates"),
    }, base=folder)
    keys = Keys.load(settings)
    db = open_database(settings.database.url, keys.sealer)
    upgrade(db)
    app = Parts(settings, db, open_blobs(settings, db, keys))

    began = time.perf_counter()
    generate(app, args.tickets, args.seed, args.personal)
    print(f"generated {args.tickets:,} tickets with statistics rows: "
          f"{time.perf_counter() - began:.1f} s")
    before_times, before = timed_reports(app)
    total = sum(before_times.values())
    print("report before deletion: " + ", ".join(
        f"{k} {v:.2f} s" for k, v in before_times.items()) + f"; all formats {total:.2f} s")

    began = time.perf_counter()
    deleted = retention.run(app.db, app.blobs, load_policies(settings), MADE_AT)
    print(f"retention run (queue personal, 6 months): {deleted.tickets:,} tickets deleted in "
          f"{time.perf_counter() - began:.1f} s")
    with app.db.reading() as session:
        left = session.scalar(select(func.count(Ticket.id)))
        kept = session.scalar(select(func.count(TicketStatistic.id)).where(
            TicketStatistic.deleted_at.is_not(None)))
    print(f"tickets left {left:,}; statistics rows of deleted tickets {kept:,}")

    after_times, after = timed_reports(app)
    total_after = sum(after_times.values())
    print("report after deletion:  " + ", ".join(
        f"{k} {v:.2f} s" for k, v in after_times.items()) + f"; all formats {total_after:.2f} s")
    same = before == after
    print(f"same JSON, CSV and HTML before and after the deletion: {same}")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    slowest = max(before_times["query+figures"] + before_times["html"],
                  after_times["query+figures"] + after_times["html"])
    print(f"slowest single report (query, figures, HTML): {slowest:.2f} s (limit 2 s)")
    return 0 if same and slowest < 2.0 and deleted.tickets > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
