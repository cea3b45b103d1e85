"""The worker alone, in this process, under cProfile: where its CPU goes per mail.

bench/e2e.py shows that the worker (one process, serial) limits end-to-end speed without
redaction; this bench takes the network, the outbox and the other processes away. It builds the
same site as e2e (example config, SQLite, redaction off unless --redaction on), stores N corpus
mails in the inbox, prepares them inline and times the worker's drain, then prints ms per mail
(per stage, through the pipeline's stage observer) and the top functions of a cProfile.

    .venv/bin/python bench/worker_profile.py --mails 400 [--redaction on] [--top 40]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import build_corpus
from e2e import SERVICE, make_site

from gateway.app import App
from gateway.config import load_settings
from gateway.pipeline.prepare import InlinePreparer
from storage.spool import NewInboxItem, add_inbox_items, message_hash


class StageClock:
    """Seconds per stage (gateway.pipeline.counters.Counters, as the metrics count them)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def finished(self, outcome: str, stage: str, redactions: Mapping[str, int]) -> None:
        pass

    def total(self) -> float:
        return sum(self.seconds.values())

    def per_mail(self, count: int) -> str:
        return ", ".join(f"{name} {seconds / count * 1000:.2f}"
                         for name, seconds in self.seconds.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=400)
    parser.add_argument("--redaction", choices=["on", "off"], default="off")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    parser.add_argument("--no-profile", action="store_true", help="time only")
    options = parser.parse_args()
    logging.disable(logging.WARNING)  # the burst passes the notification cap: one line each
    with tempfile.TemporaryDirectory(prefix="worker-profile-") as tmp:
        folder = Path(tmp)
        config = make_site(folder, 2525, 2526, options.redaction == "on", [])
        settings = load_settings(config)
        app = App.build(settings)
        app.init_database()
        worker = app.worker
        prepare = InlinePreparer(settings)
        worker.preparer = prepare
        mails = build_corpus(options.mails + 20, 7, SERVICE)
        items = [NewInboxItem("smtp", message_hash(raw), raw, str(m["From"]), (SERVICE,))
                 for m in mails for raw in [m.as_bytes()]]
        with app.db.session() as session:
            add_inbox_items(session, items[:20])
        worker.drain()  # warm-up: templates compiled, rules loaded
        with app.db.session() as session:
            add_inbox_items(session, items[20:])
        # the pipeline's own stage observer (what metrics count): the worker's stages, and
        # PREPARE's, which run inline in the drain, apart
        stages, preparing = StageClock(), StageClock()
        worker.measure(stages)
        prepare.observe = preparing.observe_stage
        profile = None if options.no_profile else cProfile.Profile()
        begun = time.perf_counter()
        if profile:
            profile.enable()
        outcomes = worker.drain()
        if profile:
            profile.disable()
        wall = time.perf_counter() - begun
        count = len(outcomes)
        prepared, staged = preparing.total(), stages.total()
        print(f"{count} mails: {wall / count * 1000:.2f} ms/mail in all, prepare "
              f"{prepared / count * 1000:.2f}, worker {(wall - prepared) / count * 1000:.2f}"
              + (" (under cProfile)" if profile else ""))
        print(f"  prepare stages, ms/mail: {preparing.per_mail(count)}")
        print(f"  worker stages, ms/mail: {stages.per_mail(count)}")
        print(f"  worker outside its stages (claim, savepoints, commit): "
              f"{(wall - prepared - staged) / count * 1000:.2f}")
        if profile:
            pstats.Stats(profile).sort_stats(options.sort).print_stats(options.top)
        app.db.engine.dispose()


if __name__ == "__main__":
    main()
