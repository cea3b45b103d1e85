"""Build every part of postdesk once, from the settings: database (with the sealing key), keys,
rules and templates in force, blobs, sender and worker. Running them together is
gateway.serve; the CLI and the tests use the parts directly."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.outgoing.render import Renderer
from gateway.outgoing.senders import Sender, make_sender
from gateway.outgoing.templateset import ActiveTemplates
from gateway.pipeline.prepare import Preparer
from gateway.pipeline.worker import RELOAD_SECONDS, Checked, Worker
from gateway.routing.active import ActiveRuleset
from gateway.secrets import Keys
from storage import private
from storage.blobs import Blobs, open_store
from storage.engine import Database, open_database


@dataclass(frozen=True)
class Parts:
    """What the pipeline is given, opened once per process: keys (the secret is created if
    missing), the database that seals stored mail with them, and the blob store."""

    settings: Settings
    db: Database
    keys: Keys
    blobs: Blobs

    @classmethod
    def open(cls, settings: Settings) -> Parts:
        private.make_dirs(settings.data_dir)
        keys = Keys.load(settings, create=True)
        db = open_database(settings.database.url, keys.sealer)
        return cls(settings, db, keys, open_blobs(settings, db))

    def worker(self, preparer: Preparer | None = None, start: Checked | None = None) -> Worker:
        """A worker on these parts, with the rules and templates in force: `start` as checked
        by serve (for its worker process), else loaded and checked now (a broken set raises)."""
        rules, templates = start or (None, None)
        return Worker(
            self.settings, self.db, self.blobs, self.keys,
            ActiveRuleset(self.settings, RELOAD_SECONDS, rules),
            ActiveTemplates(self.settings, RELOAD_SECONDS, templates),
            preparer=preparer,
        )


@dataclass
class App:
    settings: Settings
    db: Database
    keys: Keys
    blobs: Blobs
    sender: Sender
    worker: Worker
    stop_event: threading.Event = field(default_factory=threading.Event)  # ends serve and jobs

    @classmethod
    def build(cls, settings: Settings, sender: Sender | None = None) -> App:
        parts = Parts.open(settings)
        return cls(settings, parts.db, parts.keys, parts.blobs, sender or make_sender(settings),
                   parts.worker())

    @property
    def renderer(self) -> Renderer:
        """The templates in force."""
        return self.worker.templates.value

    def init_database(self) -> None:
        from storage.migrate import upgrade  # Alembic: only where the schema is upgraded

        upgrade(self.db)


def open_blobs(settings: Settings, db: Database) -> Blobs:
    """The attachment store `blobs.store` names: files under data_dir/blobs, or the database."""
    return open_store(settings.blobs.store, settings.data_dir / "blobs", db)


def build_worker(settings: Settings, preparer: Preparer, start: Checked | None) -> Worker:
    """The worker of serve's worker process, on parts of its own (run_worker_process)."""
    return Parts.open(settings).worker(preparer, start)
