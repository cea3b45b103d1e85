"""Wiring only: build every part from the settings and run them together in `postdesk serve`."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from types import FrameType

from gateway import logs
from gateway.config import Settings
from gateway.intake.smtp import SmtpIntake
from gateway.render import Renderer
from gateway.scheduler import build_scheduler
from gateway.senders import Sender, make_sender
from gateway.worker import Worker
from storage.blobs import BlobStore
from storage.engine import Database, open_database
from storage.migrate import upgrade


@dataclass
class App:
    settings: Settings
    db: Database
    renderer: Renderer
    blobs: BlobStore
    sender: Sender
    worker: Worker
    stop_event: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def build(cls, settings: Settings, sender: Sender | None = None) -> App:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(settings.database.url)
        renderer = Renderer.from_settings(settings)
        blobs = BlobStore(settings.data_dir / "blobs")
        worker = Worker(settings, db, renderer, blobs)
        return cls(settings, db, renderer, blobs, sender or make_sender(settings), worker)

    def init_database(self) -> None:
        upgrade(self.db)

    def serve(self, install_signals: bool = True) -> None:
        """Run intake, worker and scheduler until SIGTERM/SIGINT (or `stop_event`)."""
        self.init_database()
        self.worker.recover()
        intake = SmtpIntake(self.settings, self.db, on_stored=self.worker.wake.set)
        scheduler = build_scheduler(self)
        worker_thread = threading.Thread(
            target=self.worker.run_forever, args=(self.stop_event,), name="worker", daemon=True
        )
        if install_signals:

            def _stop(signum: int, _frame: FrameType | None) -> None:
                logs.event("serve.stopping", signal=signum)
                self.stop_event.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
        intake.start()
        worker_thread.start()
        scheduler.start()
        logs.event(
            "serve.started",
            smtp=f"{self.settings.smtp.host}:{intake.port}",
            transport=self.settings.outgoing.transport,
        )
        try:
            self.stop_event.wait()
        finally:
            intake.stop()  # stop taking mail first; what was accepted is already committed
            self.worker.wake.set()
            worker_thread.join(timeout=30)
            scheduler.shutdown(wait=True)
            self.db.dispose()
            logs.event("serve.stopped")
