"""`/reports` on the internal listener (never on the public one): the report page of
gateway.reports for the period in the query string (`?from=YYYY-MM-DD&to=…&queue=…`), and the
same figures as `report.csv` and `report.json`. The page carries its own Content-Security-
Policy: no script, its inline styles allowed by hash (SecurityHeaders keeps it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.reports import build, output
from storage.engine import Database
from storage.models import utcnow


def mount(settings: Settings, db: Database, now: Callable[[], datetime] = utcnow) -> Mount:
    """The Mount to hand to `internal_app(db, extra=[…])`."""

    def make(request: Request) -> output.Report | str:
        query = request.query_params
        try:
            span = build.period(settings, query.get("from"), query.get("to"),
                                query.get("queue"), today=build.today_in(settings, now()))
        except ConfigError as error:
            return str(error)
        return build.make(db, span)

    async def page(request: Request) -> Response:
        made = await run_in_threadpool(make, request)
        if isinstance(made, str):
            return PlainTextResponse(made + "\n", status_code=400)
        rendered = await run_in_threadpool(output.as_html, made, settings, made_at=now())
        return HTMLResponse(rendered.html,
                            headers={"Content-Security-Policy": rendered.csp})

    async def as_csv(request: Request) -> Response:
        made = await run_in_threadpool(make, request)
        if isinstance(made, str):
            return PlainTextResponse(made + "\n", status_code=400)
        return Response(output.as_csv(made), media_type="text/csv; charset=utf-8")

    async def as_json(request: Request) -> Response:
        made = await run_in_threadpool(make, request)
        if isinstance(made, str):
            return PlainTextResponse(made + "\n", status_code=400)
        return Response(output.as_json(made), media_type="application/json")

    return Mount("/reports", routes=[
        Route("/", page, methods=["GET"]),
        Route("/report.csv", as_csv, methods=["GET"]),
        Route("/report.json", as_json, methods=["GET"]),
    ])
