"""Build every part of postdesk once, from the settings: database (with the sealing key), keys,
rules and templates in force, blobs, sender and worker. Running them together is
gateway.serve; the CLI and the tests use the parts directly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from gateway.config import Settings
from gateway.errors import InstanceIdInUse
from gateway.outgoing.render import Renderer
from gateway.outgoing.senders import Sender, make_sender
from gateway.outgoing.templateset import ActiveTemplates
from gateway.pipeline.prepare import Preparer
from gateway.pipeline.worker import RELOAD_SECONDS, Checked, Worker
from gateway.routing.active import ActiveRuleset
from gateway.secrets import Keys, check_secret
from storage import private, statistics
from storage.blobs import Blobs, open_store
from storage.engine import Database, open_database
from storage.instances import InstanceInUse, InstanceLock


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
        settings = settings.with_instance_id()  # serve's worker process: serve's id already
        private.make_dirs(settings.data_dir)
        keys = Keys.load(settings, create=True)
        db = open_database(settings.database.url, keys.sealer)
        return cls(settings, db, keys, open_blobs(settings, db, keys))

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
        return cls(parts.settings, parts.db, parts.keys, parts.blobs,
                   sender or make_sender(parts.settings), parts.worker())

    @property
    def renderer(self) -> Renderer:
        """The templates in force."""
        return self.worker.templates.value

    @property
    def instance_id(self) -> str:
        """This instance's id (`instance.id`, or the one made for this process)."""
        return self.worker.name

    def init_database(self, *, new_secret: bool = False) -> None:
        """Upgrade the schema, then check the secret against the database's (the first
        instance stores its fingerprint; `new_secret` replaces it on purpose)."""
        from storage.migrate import upgrade  # Alembic: only where the schema is upgraded

        upgrade(self.db)
        check_secret(self.db, self.settings, self.keys, replace=new_secret)
        self.backfill_statistics()

    def backfill_statistics(self) -> int:
        """Statistics rows for tickets that have none (those from before migration 0012):
        one query when there are none to write."""
        from gateway.lifecycle.clocks import Lifecycle
        from gateway.lifecycle.tally import rebuild

        with self.db.reading() as session:
            if not statistics.missing(session):
                return 0
        with self.db.session() as session:
            return rebuild(session, Lifecycle.load(self.settings), only_missing=True)

    @contextmanager
    def running_instance(self) -> Iterator[InstanceLock]:
        """Hold this instance's lock while the block runs (serve, import): other instances
        see it running and leave its rows alone until their lease runs out; the worker can
        tell which other instances are gone and take their rows back at once."""
        lock = InstanceLock(self.db, self.instance_id)
        try:
            lock.acquire()
        except InstanceInUse:
            raise InstanceIdInUse(
                f"instance.id: {self.instance_id} is in use by another running instance"
            ) from None
        self.worker.running = lock.running
        try:
            yield lock
        finally:
            self.worker.running = lambda _instance: True
            lock.release()


def open_blobs(settings: Settings, db: Database, keys: Keys) -> Blobs:
    """The attachment store `blobs.store` names: files under data_dir/blobs, or the database;
    sealed with the key of the originals, addressed by a keyed hash."""
    return open_store(settings.blobs.store, settings.data_dir / "blobs", db, keys.sealer,
                      keys.blob_address)


def build_worker(settings: Settings, preparer: Preparer, start: Checked | None) -> Worker:
    """The worker of serve's worker process, on parts of its own (run_worker_process)."""
    return Parts.open(settings).worker(preparer, start)
