"""Prometheus metrics of `postdesk serve`, gathered across its three processes.

serve runs the SMTP intake; the pipeline runs in a worker process, and the worker's PREPARE
stages in a child of that. A metric lives where its facts live:

- What the database knows (queue depths and the age of the oldest row per state, quarantined
  mails, unassigned tickets) is read from it at scrape time by `StateCollector`: always true,
  whichever process or instance wrote the rows, and nothing to carry between processes. A
  scrape costs a few grouped queries.
- What files on disk say (rules and templates valid, and their version) is read at scrape time
  too, and so is mailbox poll health: from the database, where the leader that polled last
  recorded it, else from the files the pollers write to `data_dir/health/`.
- Events in the worker and prepare processes (time per stage, mails processed by outcome,
  redactions by entity) are prometheus-client counters and histograms in its multi-process
  mode: each process writes them to small mmap'ed files in `data_dir/metrics/`, and the scrape
  in serve adds them up (`MultiProcessCollector`). Files of a worker that died stay and keep
  counting, so counters only go up across worker restarts; serve empties the folder at start.
  Multi-process mode is switched on in those child processes only (`for_child_process`), never
  in serve, whose own metrics (SMTP replies by code, worker restarts) are ordinary in-memory
  ones; so tests that run serve in a thread need no process-wide switch.
- With `worker.mode: thread` the pipeline runs inside serve and counts into serve's registry.

Labels hold only fixed vocabularies (reply codes, stage, state, entity, mailbox kind) and
content hashes: never an address, a name or a subject.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from gateway import clusterview, validity
from gateway.config import Settings
from storage import spool
from storage.assignment import unassigned_before
from storage.engine import Database
from storage.models import utcnow

STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
FINAL_STATES = ("done", "sent")  # rows that stay forever: the age of the oldest means nothing


def multiprocess_dir(settings: Settings) -> Path:
    return settings.data_dir / "metrics"


class PipelineMetrics:
    """What the pipeline counts, in whichever process runs it."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stage_seconds = Histogram(
            "postdesk_stage_duration_seconds",
            "Run time of one pipeline stage for one mail (its _count: mails per stage).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.processed = Counter(
            "postdesk_mails_processed",
            "Mails the worker finished: done, quarantined or requeued, and the stage it ended in.",
            ["outcome", "stage"],
            registry=registry,
        )
        self.redactions = Counter(
            "postdesk_redactions",
            "Personal data replaced by placeholders in stored mail, by entity.",
            ["entity"],
            registry=registry,
        )

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def finished(self, outcome: str, stage: str, redactions: Mapping[str, int]) -> None:
        """One mail's outcome, once its transaction is committed."""
        self.processed.labels(outcome, stage or "-").inc()
        for entity, count in redactions.items():
            self.redactions.labels(entity).inc(count)


def for_child_process(settings: Settings) -> PipelineMetrics | None:
    """In the worker or prepare process: pipeline metrics that serve can read, or None when
    metrics are off. Switches prometheus-client to multi-process mode for this process; must
    run before the process creates any other metric."""
    if settings.metrics is None:
        return None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(multiprocess_dir(settings))
    from prometheus_client import values

    # The value class is chosen when prometheus_client is first imported, which in a spawned
    # child may have happened before the variable above was set: choose it again now.
    values.ValueClass = values.MultiProcessValue()
    return PipelineMetrics(CollectorRegistry())


def reset_multiprocess_dir(settings: Settings) -> Path:
    """An empty, private folder for the children's metric files (a new serve starts at 0)."""
    folder = multiprocess_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return folder


class WorkerProbe(Protocol):
    """What serve knows of its worker: whether it runs now, how often it was restarted."""

    restarts: int

    def alive(self) -> bool: ...


def _gauge(name: str, documentation: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _age(now: datetime, at: datetime) -> float:
    return max(0.0, (now - at).total_seconds())


class StateCollector(Collector):
    """Reads, at each scrape, what the database, the files and the worker say now."""

    def __init__(
        self, settings: Settings, db: Database, worker: WorkerProbe, checks: validity.Checks
    ) -> None:
        self.settings = settings
        self.db = db
        self.worker = worker
        self.checks = checks

    def describe(self) -> list[Metric]:
        return []  # nothing to query when registered

    def collect(self) -> Iterator[Metric]:
        yield from self._database()
        yield from self._files()
        yield from self._mailboxes()
        up = _gauge("postdesk_worker_up", "1 while the pipeline worker process runs.")
        up.add_metric([], 1.0 if self.worker.alive() else 0.0)
        yield up
        restarts = CounterMetricFamily(
            "postdesk_worker_restarts", "Times serve restarted a worker process that had died."
        )
        restarts.add_metric([], float(self.worker.restarts))
        yield restarts

    def _database(self) -> Iterator[Metric]:
        from gateway.cli.report import UNASSIGNED_AFTER

        now = utcnow()
        up = _gauge("postdesk_database_up", "1 if the database answered this scrape.")
        try:
            with self.db.reading() as session:
                (inbox, outbox) = spool.queue_depths(session)
                (inbox_oldest, outbox_oldest) = spool.oldest_by_state(session)
                unassigned = unassigned_before(session, now - UNASSIGNED_AFTER)
        except SQLAlchemyError:
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        boxes = (
            ("inbox", spool.INBOX_STATES, inbox, inbox_oldest),
            ("outbox", spool.OUTBOX_STATES, outbox, outbox_oldest),
        )
        for box, states, depths, oldest in boxes:
            depth = _gauge(f"postdesk_{box}_mails", f"Rows in the {box} by state.", ["state"])
            age = _gauge(
                f"postdesk_{box}_oldest_age_seconds",
                f"Age of the oldest {box} row by state (0 when none; not for done/sent).",
                ["state"],
            )
            for state in states:
                depth.add_metric([state], float(depths.get(state, 0)))
                if state not in FINAL_STATES:
                    at = oldest.get(state)
                    age.add_metric([state], _age(now, at) if at is not None else 0.0)
            yield depth
            yield age
        quarantined = _gauge(
            "postdesk_quarantined_mails", "Mails waiting for a person (`inbox retry`).", ["box"]
        )
        quarantined.add_metric(["inbox"], float(inbox.get("quarantined", 0)))
        yield quarantined
        nobody = _gauge(
            "postdesk_unassigned_tickets",
            "Open tickets without owner created more than an hour ago.",
        )
        nobody.add_metric([], float(unassigned.count))
        yield nobody

    def _files(self) -> Iterator[Metric]:
        for kind, result in self.checks.both():
            valid = _gauge(f"postdesk_{kind}_valid", f"1 if the {kind} files on disk are valid.")
            valid.add_metric([], 1.0 if result.valid else 0.0)
            yield valid
            info = _gauge(
                f"postdesk_{kind}_info", f"Version (content hash) of valid {kind}.", ["version"]
            )
            if result.version is not None:
                info.add_metric([result.version], 1.0)
            yield info

    def _mailboxes(self) -> Iterator[Metric]:
        up = _gauge("postdesk_mailbox_up", "1 if the last mailbox poll succeeded.", ["source"])
        failures = _gauge(
            "postdesk_mailbox_failures", "Failed polls in a row.", ["source"]
        )
        success = _gauge(
            "postdesk_mailbox_last_success_timestamp_seconds",
            "Unix time of the last successful poll (0: none yet).",
            ["source"],
        )
        try:  # as the leader that polled last recorded it (any instance), and this host's files
            with self.db.reading() as session:
                boxes = clusterview.mailbox_health(session, self.settings.data_dir)
        except SQLAlchemyError:
            boxes = clusterview.mailbox_health(None, self.settings.data_dir)
        for box in boxes:
            source = str(box.get("source"))
            up.add_metric([source], 1.0 if box.get("state") == "ok" else 0.0)
            failures.add_metric([source], float(box.get("failures") or 0))
            last = box.get("last_success_at")
            stamp = datetime.fromisoformat(last).timestamp() if isinstance(last, str) else 0.0
            success.add_metric([source], stamp)
        yield up
        yield failures
        yield success


class ServeMetrics:
    """serve's registry: its own counters, the state read at scrape time, and (process mode)
    the counters the worker and prepare processes wrote."""

    def __init__(
        self, settings: Settings, db: Database, worker: WorkerProbe, checks: validity.Checks
    ) -> None:
        self.registry = CollectorRegistry()
        self.smtp_replies = Counter(
            "postdesk_smtp_replies",
            "Replies the SMTP listener sent, by reply code.",
            ["code"],
            registry=self.registry,
        )
        self.registry.register(StateCollector(settings, db, worker, checks))
        self.pipeline: PipelineMetrics | None = None
        if settings.worker.mode == "thread":
            self.pipeline = PipelineMetrics(self.registry)
        else:
            MultiProcessCollector(self.registry, path=str(reset_multiprocess_dir(settings)))

    def smtp_reply(self, reply: str) -> None:
        code = reply[:3]
        self.smtp_replies.labels(code if code.isdigit() else "other").inc()
