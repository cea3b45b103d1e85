"""SMTP intake benchmark: start only the listener (no worker) on a fresh SQLite file in a temp
folder and print accepted mails/s and per-mail latency (MAIL FROM to "250 queued") over loopback.

    .venv/bin/python bench/intake_smtp.py --mails 2000 --connections 4

Each connection sends its share one transaction after another (aiosmtplib, in a separate
process so the client does not compete with the server for the GIL). The database runs
as in production (WAL, synchronous=FULL); the figure is bounded by the disk's fsync rate times
the group-commit batch size.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.config import settings_from_dict
from gateway.intake.smtp import SmtpIntake
from storage.engine import open_database
from storage.migrate import upgrade

SERVICE = "servicedesk@example.org"


def _mail(conn: int, n: int) -> bytes:
    body = "Guten Tag,\r\nder Drucker im 3. OG druckt nicht mehr.\r\nViele Grüße\r\n" * 20
    return (
        f"From: Erika Muster <erika{conn}@example.net>\r\nTo: {SERVICE}\r\n"
        f"Subject: Drucker defekt {conn}-{n}\r\nMessage-ID: <bench-{conn}-{n}@example.net>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}"
    ).encode()


async def _connection(port: int, conn: int, count: int, latencies: list[float]) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
        for n in range(count):
            started = time.perf_counter()
            await client.sendmail(f"erika{conn}@example.net", [SERVICE], _mail(conn, n))
            latencies.append(time.perf_counter() - started)


async def _run(port: int, mails: int, connections: int) -> list[float]:
    latencies: list[float] = []
    share = mails // connections
    await asyncio.gather(*(_connection(port, c, share, latencies) for c in range(connections)))
    return latencies


def _client(port: int, mails: int, connections: int) -> tuple[float, list[float]]:
    """Run in a child process: (elapsed seconds, per-mail latencies)."""
    started = time.perf_counter()
    latencies = asyncio.run(_run(port, mails, connections))
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings_from_dict(
            {
                "database": {"url": f"sqlite:///{tmp}/bench.db"},
                "data_dir": tmp,
                "smtp": {"port": 0, "accept": [SERVICE]},
                "service": {"address": SERVICE},
            },
            base=Path(tmp),
        )
        db = open_database(settings.database.url)
        upgrade(db)
        intake = SmtpIntake(settings, db)
        intake.start()
        try:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                elapsed, latencies = pool.apply(
                    _client, (intake.port, args.mails, args.connections)
                )
        finally:
            intake.stop()
            db.dispose()
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{len(ms)} mails over {args.connections} connections in {elapsed:.2f} s: "
        f"{len(ms) / elapsed:.0f} mails/s; latency p50 {statistics.median(ms):.1f} ms, "
        f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms; "
        f"{intake.writer.batches} commits ({intake.writer.stored / intake.writer.batches:.1f} "
        "mails per commit)"
    )


if __name__ == "__main__":
    main()
