"""The monitoring endpoint of `postdesk serve` (config `metrics: {host, port}`): `/metrics` in
Prometheus text format and `/healthz`, 200 only when the database answers, the worker process
runs, the rules and templates on disk are valid and the timed jobs have a leader, else 503 with
one short line per problem. `/healthz?format=json` says the same as one JSON object, with what
every instance on the database shares, read from it (gateway.clusterview): queue depths, the
oldest queued mail, quarantined mails, the leader of the timed jobs, every instance's heartbeat.

Everything is judged at request time (the worker's liveness from its process, not from a flag
the supervisor sets later), so a probe sees a killed worker at once. A small threaded WSGI
server from the standard library in a thread of serve; no authentication: bind it to loopback
or a management network."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway import clusterview, logs, validity
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.metrics import ServeMetrics, WorkerProbe
from storage import cluster
from storage.engine import Database
from storage.models import utcnow

StartResponse = Callable[..., Any]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a scrape every few seconds would drown the service's own lines."""


class Health:
    """The checks behind `/healthz`."""

    def __init__(
        self, db: Database, worker: WorkerProbe, checks: validity.Checks,
        settings: Settings | None = None, instance: str | None = None,
    ) -> None:
        self.db = db
        self.worker = worker
        self.checks = checks
        self.settings = settings
        self.instance = instance  # this instance's name among those on the database

    def problems(self) -> list[str]:
        """One short line per failed check; [] when healthy. No mail content, no addresses."""
        found = []
        try:
            with self.db.reading() as session:
                session.execute(text("SELECT 1 FROM inbox LIMIT 1"))
                found.extend(self._leaderless(session))
        except SQLAlchemyError as exc:
            found.append(f"database: {type(getattr(exc, 'orig', None) or exc).__name__}")
        if not self.worker.alive():
            found.append("worker: not running")
        for kind, result in self.checks.both():
            if not result.valid:
                found.append(f"{kind}: invalid ({len(result.errors)} errors)")
        return found

    def _leaderless(self, session: Session) -> list[str]:
        """The jobs lease ran out more than a lease ago and nobody took it: this instance,
        which would take it, cannot (before any leader, or after a graceful release: fine)."""
        if self.settings is None:
            return []
        lease = cluster.read_lease(session, cluster.JOBS_LEASE)
        seconds = self.settings.jobs.leader_lease_seconds
        now = cluster.database_now(session)
        if lease.expires_at is not None and lease.expires_at < now - timedelta(seconds=seconds):
            return [f"jobs: no leader for {(now - lease.expires_at).total_seconds():.0f} s"]
        return []

    def report(self) -> tuple[list[str], dict[str, Any]]:
        """The problems and the JSON object of `/healthz?format=json`."""
        problems = self.problems()
        report: dict[str, Any] = {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "instance": self.instance,
        }
        if self.settings is not None and not any(p.startswith("database:") for p in problems):
            try:
                with self.db.reading() as session:
                    report["cluster"] = clusterview.overview(session, self.settings, utcnow())
            except SQLAlchemyError as exc:
                problems.append(f"database: {type(getattr(exc, 'orig', None) or exc).__name__}")
                report["status"] = "unhealthy"
        return problems, report


class OpsServer:
    """Serves /metrics and /healthz in a thread; `port` is the bound port after `start()`."""

    def __init__(self, settings: Settings, metrics: ServeMetrics, health: Health) -> None:
        assert settings.metrics is not None
        self.host = settings.metrics.host
        self.port = settings.metrics.port
        self.metrics = metrics
        self.health = health
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def build(
        cls, settings: Settings, db: Database, worker: WorkerProbe, instance: str | None = None
    ) -> OpsServer:
        checks = validity.Checks(settings)
        return cls(
            settings, ServeMetrics(settings, db, worker, checks),
            Health(db, worker, checks, settings, instance),
        )

    def start(self) -> None:
        """Bind and serve; a ConfigError if the address cannot be bound."""
        try:
            server = make_server(
                self.host, self.port, self._app,
                server_class=ThreadingWSGIServer, handler_class=_Quiet,
            )
        except OSError as exc:
            raise ConfigError(
                f"metrics: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        logs.event("metrics.listening", host=self.host, port=self.port)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz" and "format=json" in environ.get("QUERY_STRING", ""):
            problems, report = self.health.report()
            status = "503 Service Unavailable" if problems else "200 OK"
            start_response(status, [("Content-Type", "application/json")])
            return [json.dumps(report, sort_keys=True).encode() + b"\n"]
        if path == "/healthz":
            problems = self.health.problems()
            body = ("\n".join(problems) if problems else "ok") + "\n"
            status = "503 Service Unavailable" if problems else "200 OK"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [body.encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: try /metrics or /healthz\n"]
