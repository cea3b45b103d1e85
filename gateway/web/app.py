"""The ASGI apps of the web surface (Starlette): `public_app` with the requesters' status pages,
`internal_app` with `/healthz` and whatever internal routes are handed to it (the place where
`/reports` is mounted: `internal_app(parts, extra=[Mount("/reports", reports_app)])`).

Every answer for a token that opens nothing — not shaped like one, no such ticket (deleted), a
MAC that does not match (another requester, a rotated secret) — is the same plain 404 as a
path that does not exist, so the page is no oracle for references or addresses."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway import logs
from gateway.config import Settings
from gateway.intake import webform
from gateway.lifecycle.clocks import Lifecycle
from gateway.outgoing.letters import Renderer
from gateway.web import actions, page, security, words
from gateway.web.ratelimit import Window
from storage.engine import Database
from storage.models import utcnow
from storage.tickets import TicketStore

HERE = Path(__file__).resolve().parent
NOT_FOUND = ("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
             "<title>Nicht gefunden – Not found</title></head><body><main>"
             "<h1>Nicht gefunden – Not found</h1>"
             "<p>Diese Seite gibt es nicht. – This page does not exist.</p>"
             "</main></body></html>\n")

ERRORS = {code: ("<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">"
                 f"<title>{title}</title></head><body><main><h1>{title}</h1><p>{text}</p>"
                 "</main></body></html>\n")
          for code, title, text in (
              (403, "Formular abgelaufen – Form expired",
               "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut und senden Sie das Formular "
               "noch einmal. – Please open the link from your email again and resend the form."),
              (429, "Zu viele Anfragen – Too many requests",
               "Bitte versuchen Sie es in einer Minute noch einmal. – Please try again in a "
               "minute."))}


@dataclass
class WebParts:
    """What the web surface is given by serve: settings, database, the status-link key, the
    templates and lifecycle in force, and how to wake the worker and the outbox."""

    settings: Settings
    db: Database
    status_key: bytes
    renderer: Callable[[], Renderer]
    lifecycle: Callable[[], Lifecycle | None] = lambda: None
    wake_worker: Callable[[], None] = lambda: None
    wake_outbox: Callable[[], None] = lambda: None
    now: Callable[[], datetime] = utcnow
    limits: Limits = field(init=False)

    def __post_init__(self) -> None:
        assert self.settings.web is not None
        self.limits = Limits.of(self.settings)


@dataclass
class Limits:
    per_token: Window
    per_client: Window
    posts: Window

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        assert settings.web is not None
        rate = settings.web.rate_limit
        return cls(Window(rate.per_token_per_minute, 60), Window(rate.per_client_per_minute, 60),
                   Window(rate.posts_per_token_per_hour, 3600))


def public_app(parts: WebParts) -> Starlette:
    """The public listener: `/s/<token>` (GET: the page; POST `/resolve`, `/message`) and
    `/static/…`; everything else is the plain 404."""
    site = _Site(parts)
    routes = [
        Route("/s/{token}", site.show, methods=["GET"]),
        Route("/s/{token}/resolve", site.resolve, methods=["POST"]),
        Route("/s/{token}/message", site.message, methods=["POST"]),
        Route("/static/style.css", site.stylesheet, methods=["GET"]),
        Route("/static/theme.css", site.theme, methods=["GET"]),
        Route("/static/logo", site.logo, methods=["GET"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(security.SecurityHeaders)],
                     exception_handlers={HTTPException: _plain_error})


def internal_app(db: Database, extra: Sequence[BaseRoute] = ()) -> Starlette:
    """The internal listener: `/healthz` (200 "ok" while the database answers), plus `extra`
    routes (e.g. a Mount of the reports). Never expose it to the internet."""

    def healthz(_request: Request) -> Response:
        try:
            with db.reading() as session:
                session.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return PlainTextResponse("database: unavailable\n", status_code=503)
        return PlainTextResponse("ok\n")

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"]), *extra]
    return Starlette(routes=routes, middleware=[Middleware(security.SecurityHeaders)],
                     exception_handlers={HTTPException: _plain_error})


def metrics_route(registry: CollectorRegistry) -> Route:
    """`/metrics` of the serve's registry (the `metrics:` listener's), for the internal
    listener: one internal port may serve reports, metrics and health."""

    def scrape(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", scrape, methods=["GET"])


async def _plain_error(_request: Request, exc: Exception) -> Response:
    """404 and 405 look the same (no oracle); other errors as short text."""
    code = exc.status_code if isinstance(exc, HTTPException) else 500
    if code in (404, 405):
        return HTMLResponse(NOT_FOUND, status_code=404)
    if code in ERRORS:
        headers = {"Retry-After": "60"} if code == 429 else None
        return HTMLResponse(ERRORS[code], status_code=code, headers=headers)
    return PlainTextResponse(f"{code}\n", status_code=code)


class _Site:
    """The status pages' handlers over one WebParts."""

    def __init__(self, parts: WebParts) -> None:
        self.parts = parts
        self.settings = parts.settings
        assert parts.settings.web is not None
        self.web = parts.settings.web
        self.templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        )
        self.css = (HERE / "static" / "style.css").read_bytes()
        look = self.web.look
        self.theme_css = (
            f":root {{ --primary: {look.primary_colour}; "
            f"--header-text: {look.header_text_colour}; }}\n"
        ).encode()
        self.logo_bytes = look.logo.read_bytes() if look.logo is not None else None

    # --- static -----------------------------------------------------------------------------

    async def stylesheet(self, _request: Request) -> Response:
        return Response(self.css, media_type="text/css; charset=utf-8")

    async def theme(self, _request: Request) -> Response:
        return Response(self.theme_css, media_type="text/css; charset=utf-8")

    async def logo(self, _request: Request) -> Response:
        look = self.web.look
        if self.logo_bytes is None or look.logo is None:
            raise HTTPException(404)
        kind = mimetypes.guess_type(look.logo.name)[0] or "application/octet-stream"
        return Response(self.logo_bytes, media_type=kind)

    # --- the page ---------------------------------------------------------------------------

    async def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        self._limit(request, token)
        view = await run_in_threadpool(self._view, token)
        done = request.query_params.get("done")
        return self._render(view, token, done=done if done in ("resolved", "message") else None)

    async def resolve(self, request: Request) -> Response:
        token = request.path_params["token"]
        await self._check_post(request, token)
        resolved = await run_in_threadpool(self._resolve, token)
        if resolved:
            self.parts.wake_outbox()
        return RedirectResponse(f"/s/{token}?done=resolved" if resolved else f"/s/{token}",
                                status_code=303)

    async def message(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await self._check_post(request, token)
        typed = str(form.get("message", ""))
        if not typed.strip():
            view = await run_in_threadpool(self._view, token)
            return self._render(view, token, error="empty", typed=typed, status_code=400)
        await run_in_threadpool(self._store_message, token, typed)
        self.parts.wake_worker()
        return RedirectResponse(f"/s/{token}?done=message", status_code=303)

    # --- parts ------------------------------------------------------------------------------

    def _limit(self, request: Request, token: str) -> None:
        limits = self.parts.limits
        client = request.client.host if request.client else "unknown"
        if not limits.per_client.allow(client) or not limits.per_token.allow(token):
            logs.event("web.rate-limited", kind="request")
            raise HTTPException(429)

    async def _check_post(self, request: Request, token: str) -> Any:
        """Rate limits, then the CSRF checks (Origin, the signed form token); the form."""
        self._limit(request, token)
        if not self.parts.limits.posts.allow(token):
            logs.event("web.rate-limited", kind="post")
            raise HTTPException(429)
        if not security.origin_allowed(request.headers.get("origin"),
                                       request.headers.get("sec-fetch-site"),
                                       self.web.public_url):
            logs.event("web.refused", reason="origin")
            raise HTTPException(403)
        form = await request.form(max_files=0, max_fields=10, max_part_size=64 * 1024)
        value = str(form.get("form_token", ""))
        if not security.form_token_valid(self.parts.status_key, token, value):
            # a forged or expired form, or a wrong page token: the page decides which answer
            await run_in_threadpool(self._view, token)  # 404 unless the token opens a page
            logs.event("web.refused", reason="form-token")
            raise HTTPException(403)
        return form

    def _view(self, token: str) -> page.StatusView:
        with self.parts.db.reading() as session:
            ticket = page.find_ticket(session, self.parts.status_key, token)
            if ticket is None:
                raise HTTPException(404)
            return page.build(session, self.settings, ticket, self.parts.now())

    def _resolve(self, token: str) -> bool:
        with self.parts.db.session() as session:
            ticket = page.find_ticket(session, self.parts.status_key, token)
            if ticket is None:
                raise HTTPException(404)
            return actions.resolve(
                self.settings, TicketStore(session), ticket, renderer=self.parts.renderer(),
                lifecycle=self.parts.lifecycle(), status_key=self.parts.status_key,
                now=self.parts.now(),
            )

    def _store_message(self, token: str, typed: str) -> None:
        with self.parts.db.reading() as session:
            ticket = page.find_ticket(session, self.parts.status_key, token)
            if ticket is None or ticket.status not in page.WRITABLE_STATUSES:
                raise HTTPException(404 if ticket is None else 403)
            raw = actions.message_mail(self.settings, ticket, typed, now=self.parts.now())
            requester, ref = ticket.requester, ticket.ref
        webform.store_message(self.parts.db, raw, sender=requester,
                              recipient=self.settings.service.address)
        logs.event("web.message", ticket=ref)

    def _render(self, view: page.StatusView, token: str, *, done: str | None = None,
                error: str | None = None, typed: str = "", status_code: int = 200) -> Response:
        look = self.web.look
        service_name = self.web.service_name or self.settings.service.name
        body = self.templates.get_template("status.html.j2").render(
            v=view, t=words.TEXTS[view.language], token=token,
            form_token=security.form_token(self.parts.status_key, token),
            service_name=service_name, service_address=self.settings.service.address,
            logo=look.logo is not None, logo_alt=look.logo_alt or service_name,
            done=done, error=error, typed=typed,
        )
        return HTMLResponse(body, status_code=status_code)
