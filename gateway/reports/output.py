"""A Report as JSON, CSV or one self-contained HTML page (inline CSS and SVG, no script, no
request to anywhere), in the look of the status page: the service name, logo and colours of
`web.look`, the status page's stylesheet.

Only figures leave here: counts, durations, queue names, tags and channels — never a ticket
reference, subject, name or address (the statistics rows hold none)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import mimetypes
import re
from dataclasses import dataclass
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from gateway.config import Settings
from gateway.reports import charts
from gateway.reports.figures import CLOCKS, Report, Spread

HERE = Path(__file__).resolve().parent
# the status page's stylesheet (gateway.web), read as a file: one look for both surfaces
STATUS_CSS = HERE.parent / "web" / "static" / "style.css"
CLOCK_NAMES = {"first_response": "Erste Antwort", "update": "Zwischenbescheid",
               "solution": "Lösung"}
FORMATS = ("html", "csv", "json")


def as_json(report: Report) -> str:
    return json.dumps(as_data(report), ensure_ascii=False, indent=2) + "\n"


def as_data(report: Report) -> dict[str, Any]:
    period = report.period
    return {
        "period": {"from": period.first.isoformat(), "to": period.last.isoformat(),
                   "timezone": str(period.zone), "queue": period.queue},
        "tickets": report.tickets,
        "resolved": report.resolved,
        "first_response_hours": _spread(report.first_response),
        "resolution_hours": _spread(report.resolution),
        "sla": {**report.sla, "overall": report.sla_overall},
        "reopened": report.reopened, "reopens": report.reopens,
        "reopen_rate": report.reopen_rate,
        "tags": [{"tag": tag, "tickets": n} for tag, n in report.tags],
        "channels": [{"channel": name, "tickets": n} for name, n in report.channels],
        "weeks": [{"week": w.week, "monday": w.monday.isoformat(), "in": w.tickets_in,
                   "out": w.tickets_out, "backlog": w.backlog} for w in report.weeks],
        "queues": report.queues,
    }


def as_csv(report: Report) -> str:
    """One table of `section,key,value` rows: every figure of the JSON, flat, for a
    spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "key", "value"])
    data = as_data(report)
    for key, value in data["period"].items():
        writer.writerow(["period", key, "" if value is None else value])
    for key in ("tickets", "resolved", "reopened", "reopens", "reopen_rate"):
        writer.writerow(["summary", key, _cell(data[key])])
    for name in ("first_response_hours", "resolution_hours"):
        for key, value in data[name].items():
            writer.writerow([name, key, _cell(value)])
    for clock, values in data["sla"].items():
        for key, value in values.items():
            writer.writerow(["sla", f"{clock}.{key}", _cell(value)])
    for week in data["weeks"]:
        for key in ("in", "out", "backlog"):
            writer.writerow(["week", f"{week['week']}.{key}", week[key]])
    for row in data["queues"]:
        for key in ("in", "out"):
            writer.writerow(["queue_week", f"{row['week']}.{row['queue']}.{key}", row[key]])
    for item in data["tags"]:
        writer.writerow(["tag", item["tag"], item["tickets"]])
    for item in data["channels"]:
        writer.writerow(["channel", item["channel"], item["tickets"]])
    return out.getvalue()


@dataclass(frozen=True)
class Page:
    html: str
    csp: str  # the Content-Security-Policy that lets exactly this page's styles apply


def as_html(report: Report, settings: Settings, *, made_at: datetime) -> Page:
    look = settings.web.look if settings.web is not None else None
    primary = look.primary_colour if look is not None else "#004b87"
    header_text = look.header_text_colour if look is not None else "#ffffff"
    service_name = ((settings.web.service_name if settings.web is not None else None)
                    or settings.service.name)
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    weeks = [w.week for w in report.weeks]
    svg = {
        "inout": charts.bars_by_week(
            "chart-inout", "Eingang und Erledigung je Woche",
            "Säulen: neue und erledigte Anliegen je Kalenderwoche; die Zahlen stehen in der "
            "Tabelle darunter.", weeks,
            [("Eingang", [w.tickets_in for w in report.weeks]),
             ("Erledigt", [w.tickets_out for w in report.weeks])], primary),
        "backlog": charts.line_by_week(
            "chart-backlog", "Offene Anliegen am Ende jeder Woche",
            "Linie: Zahl der offenen Anliegen am Sonntagabend jeder Woche; die Zahlen stehen "
            "in der Tabelle darunter.", weeks, "Offen", [w.backlog for w in report.weeks],
            primary),
        "channels": charts.horizontal_bars(
            "chart-channels", "Eingangswege", "Balken: Anliegen je Eingangsweg; die Zahlen "
            "stehen in der Tabelle daneben.", report.channels, "Anliegen", primary),
        "tags": charts.horizontal_bars(
            "chart-tags", "Häufigste Schlagwörter", "Balken: Anliegen je Schlagwort; die "
            "Zahlen stehen in der Tabelle daneben.", report.tags, "Anliegen", primary),
    }
    logo = _logo(look.logo) if look is not None and look.logo is not None else None
    html = environment.get_template("report.html.j2").render(
        r=report, d=as_data(report), svg={k: Markup(v) for k, v in svg.items()},
        clocks=CLOCKS, clock_names=CLOCK_NAMES, service_name=service_name,
        logo=logo, logo_alt=(look.logo_alt if look is not None else "") or service_name,
        css=Markup(STATUS_CSS.read_text(encoding="utf-8")),
        theme=Markup(f":root {{ --primary: {primary}; --header-text: {header_text}; }}"),
        made_at=made_at.astimezone(report.period.zone).strftime("%d.%m.%Y, %H:%M"),
        hours=_hours, percent=_percent, number=_number,
    )
    return Page(html=html, csp=content_security_policy(html))


def content_security_policy(html: str) -> str:
    """No script, nothing loaded from anywhere but images inline; the page's <style> blocks
    (its own and each chart's) allowed by their hashes (of the text as parsed: a chart's
    style sits in SVG, where the parser decodes `&gt;`)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(unescape(block).encode()).digest())
        .decode() + "'"
        for block in re.findall(r"<style[^>]*>(.*?)</style>", html, re.DOTALL))
    return ("default-src 'none'; img-src data:; style-src " + hashes + "; script-src 'none'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _logo(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def _spread(value: Spread) -> dict[str, Any]:
    return {"tickets": value.count, "median": value.median, "p90": value.p90}


def _cell(value: Any) -> Any:
    return "" if value is None else value


def _hours(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}".replace(".", ",") + " Std."


def _percent(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.1f}".replace(".", ",") + " %"


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")
