"""Reports (issue 17, part 2): four tickets made by the worker from mails of four channels, then
changed at fixed moments the way the actions change them (snapshot, change, tally.keep), so the
business-hour figures can be worked out by hand (default calendar: Mon–Fri 08:00–16:00
Europe/Berlin, Saxony's holidays: Wednesday 18 Nov 2026 is Buß- und Bettag). The report is
the same before and after `retention run` deleted the closed tickets, in every format, and
names no person, subject or reference."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.lifecycle import clocks, retention, tally
from gateway.lifecycle.policy import load_policies
from gateway.outgoing.senders import RecordingSender
from gateway.reports import figures
from gateway.web import reports
from gateway.web.app import WebParts, internal_app, public_app
from storage import spool
from storage.models import Ticket, TicketStatistic
from storage.tickets import TicketStore
from tests.helpers import make_mail, write_config

MONDAY = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
PEOPLE = [("Erika Musterfrau", "erika.musterfrau@example.net", "Drucker im 3. OG", "smtp"),
          ("Bert Keller", "bert.keller@example.net", "VPN bricht ab", "exchange"),
          ("Carla Diaz", "carla.diaz@example.net", "Passwort vergessen", "graph"),
          ("Dora Lenz", "dora.lenz@example.net", "Monitor flackert", "import")]
PERIOD = ["--from", "2026-11-16", "--to", "2026-11-22"]


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[App]:
    settings = make_settings(web={"public_url": "https://service.example.org"})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


class Desk:
    """Changes a ticket at a given moment as an action would, keeping its statistics row."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lifecycle = app.worker.lifecycle

    def change(self, ref: str, when: datetime, what: Callable[[TicketStore, Ticket], None]
               ) -> None:
        with self.app.db.session() as session:
            store = TicketStore(session)
            ticket = store.by_ref(ref)
            assert ticket is not None
            before = tally.snapshot(ticket)
            what(store, ticket)
            clocks.refresh(self.lifecycle, ticket, when)
            tally.keep(session, self.lifecycle, ticket, before)

    def status(self, ref: str, status: str, when: datetime) -> None:
        self.change(ref, when, lambda s, t: s.set_status(t, status, actor="cli:test", now=when))

    def answered(self, ref: str, when: datetime, outcome: str) -> None:
        def answer(_store: TicketStore, ticket: Ticket) -> None:
            ticket.first_responded_at = when
            clocks.record(ticket, "first_response", outcome)
        self.change(ref, when, answer)

    def outcome(self, ref: str, clock: str, outcome: str) -> None:
        self.change(ref, MONDAY, lambda _s, t: clocks.record(t, clock, outcome))

    def tag(self, ref: str, tag: str) -> None:
        self.change(ref, MONDAY, lambda _s, t: setattr(t, "tags", [*t.tags, tag]))


def tickets(app: App) -> list[str]:
    """The four tickets, one per channel, created Monday 09:00 (Berlin)."""
    for number, (name, address, subject, source) in enumerate(PEOPLE):
        raw = make_mail(sender=f"{name} <{address}>", subject=subject,
                        body=f"Guten Tag,\n{subject}.\nGruss\n{name}\n").as_bytes()
        with app.db.session() as session:
            spool.add_inbox_items(session, [spool.NewInboxItem(
                source=source, source_key=f"k{number}", raw=raw)])
        app.worker.drain()
    with app.db.session() as session:
        rows = list(session.scalars(select(Ticket).order_by(Ticket.id)))
        # The worker's clock is the real one: move them to Monday 09:00, and drop the tags
        # routing gave them by the real time (the example rules tag mail that arrives outside
        # office hours), so the figures do not depend on when the test runs.
        for ticket in rows:
            ticket.created_at = MONDAY
            ticket.tags = []
        session.flush()
        for ticket in rows:
            tally.keep(session, app.worker.lifecycle, ticket, None)
        return [ticket.ref for ticket in rows]


def history(app: App) -> list[str]:
    desk = Desk(app)
    one, two, three, four = tickets(app)
    desk.answered(one, at(2), "met")  # 120 business minutes
    desk.status(one, "resolved", at(6))  # 360
    desk.outcome(one, "solution", "met")
    desk.answered(two, at(24), "met")  # Mon 09-16 (420) + Tue 09-10 wait: Tue 08-09 → 480
    desk.status(two, "resolved", at(72))  # Thu 09:00: 420 + 480 + holiday 0 + 60 = 960
    desk.outcome(two, "solution", "missed")
    desk.answered(three, at(1), "missed")  # 60
    desk.status(three, "resolved", at(4))  # 240 ...
    desk.status(three, "open", at(5))  # ... reopened ...
    desk.status(three, "resolved", at(7))  # ... and resolved again at 16:00: 420
    desk.tag(one, "drucker")
    desk.tag(two, "drucker")
    desk.tag(two, "vpn")
    for ref in (one, two, three):
        desk.status(ref, "closed", at(4 * 24 + 2))  # Friday
    return [one, two, three, four]


def report(app: App, tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str]) -> str:
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "report", *PERIOD, "--format", form]) == 0
    return capsys.readouterr().out


def test_figures_by_hand_and_the_same_after_the_deletion(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    refs = history(app)
    data = json.loads(report(app, tmp_path, "json", capsys))
    assert data["tickets"] == 4 and data["resolved"] == 3
    assert data["first_response_hours"] == {"tickets": 3, "median": 2.0, "p90": 8.0}
    assert data["resolution_hours"] == {"tickets": 3, "median": 7.0, "p90": 16.0}
    assert data["sla"]["first_response"] == {"met": 2, "missed": 1, "share": 0.6667}
    # the solution clock records "met" itself when a ticket is resolved in time (three)
    assert data["sla"]["solution"] == {"met": 2, "missed": 1, "share": 0.6667}
    assert data["sla"]["overall"] == {"met": 1, "counted": 3, "share": 0.3333}
    assert (data["reopened"], data["reopens"], data["reopen_rate"]) == (1, 1, 0.25)
    assert data["channels"] == [{"channel": c, "tickets": 1}
                                for c in ("Exchange", "Graph", "Import", "SMTP")]
    assert data["tags"][:2] == [{"tag": "drucker", "tickets": 2}, {"tag": "vpn", "tickets": 1}]
    assert data["weeks"] == [{"week": "2026-W47", "monday": "2026-11-16", "in": 4, "out": 3,
                              "backlog": 1}]
    with app.db.reading() as session:  # what a new ticket's row cost: one per ticket
        assert len(list(session.scalars(select(TicketStatistic)))) == 4

    before = {form: report(app, tmp_path, form, capsys) for form in ("json", "csv", "html")}
    later = at(4 * 24 + 2) + timedelta(days=2 * 365 + 3)
    done = retention.run(app.db, app.blobs, load_policies(app.settings), later)
    assert sorted(done.refs) == sorted(refs[:3])
    with app.db.reading() as session:
        rows = list(session.scalars(select(TicketStatistic)))
        assert sorted(r.ticket_id is None for r in rows) == [False, True, True, True]
    after = {form: report(app, tmp_path, form, capsys) for form in ("json", "csv", "html")}
    made = re.compile(r"erstellt am [0-9., :]+ Uhr")
    assert after["json"] == before["json"] and after["csv"] == before["csv"]
    assert made.sub("", after["html"]) == made.sub("", before["html"])

    for text in after.values():  # no person, subject or reference in any format
        lowered = text.lower()
        for name, address, subject, _ in PEOPLE:
            assert address not in lowered and subject.lower() not in lowered
            assert name.split()[1].lower() not in lowered
        assert "lds-" not in lowered


def test_formats_and_the_file_option(app: App, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    history(app)
    csv_text = report(app, tmp_path, "csv", capsys)
    assert csv_text.startswith("section,key,value\n")
    assert "sla,first_response.share,0.6667\n" in csv_text and "channel,SMTP,1\n" in csv_text
    html = report(app, tmp_path, "html", capsys)
    assert html.startswith("<!DOCTYPE html>") and '<html lang="de">' in html
    assert "<script" not in html and "http://" not in html.replace(
        "http://www.w3.org", "")  # self-contained: no script, nothing fetched
    assert html.count('role="img"') == 4 and "<caption" in html
    assert "2,0 Std." in html and "66,7 %" in html
    config = write_config(tmp_path / "config.yaml", app.settings)
    out = tmp_path / "report.html"
    assert main(["--config", str(config), "report", *PERIOD, "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    capsys.readouterr()
    assert main(["--config", str(config), "report", "--format", "pdf"]) == 1
    assert main(["--config", str(config), "report", "--from", "2026-13-01"]) == 1
    assert "--from" in capsys.readouterr().err


def test_rebuild_writes_the_rows_of_existing_tickets(
    app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    history(app)
    expected = json.loads(report(app, tmp_path, "json", capsys))
    with app.db.session() as session:
        session.execute(TicketStatistic.__table__.delete())
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "report", "rebuild"]) == 0
    assert "statistics rows written: 4" in capsys.readouterr().out
    assert json.loads(report(app, tmp_path, "json", capsys)) == expected
    with app.db.session() as session:  # init (every start of serve) fills in missing rows
        session.execute(TicketStatistic.__table__.delete())
    app.init_database()
    assert app.backfill_statistics() == 0  # nothing missing any more: one query
    assert json.loads(report(app, tmp_path, "json", capsys)) == expected


def test_reports_on_the_internal_listener_only(app: App) -> None:
    history(app)
    now = lambda: at(24 * 7)  # noqa: E731
    internal = TestClient(internal_app(app.db, [reports.mount(app.settings, app.db, now)]))
    page = internal.get("/reports/", params={"from": "2026-11-16", "to": "2026-11-22"})
    assert page.status_code == 200 and page.text.startswith("<!DOCTYPE html>")
    policy = page.headers["content-security-policy"]
    assert "script-src 'none'" in policy and "'sha256-" in policy
    assert "unsafe-inline" not in policy
    assert internal.get("/reports/report.json", params={"from": "2026-11-16"}).json()[
        "tickets"] == 4
    assert internal.get("/reports/report.csv").text.startswith("section,key,value")
    assert internal.get("/reports/", params={"from": "gestern"}).status_code == 400
    parts = WebParts(app.settings, app.db, app.keys.status_link,
                     renderer=lambda: app.renderer)
    public = TestClient(public_app(parts))
    assert public.get("/reports/").status_code == 404
    assert public.get("/reports/report.json").status_code == 404


def test_percentiles_by_nearest_rank() -> None:
    spread = figures.spread([60 * n for n in range(1, 11)])  # 1 … 10 hours
    assert (spread.count, spread.median, spread.p90) == (10, 5.5, 9.0)
    assert figures.spread([None]) == figures.Spread(0, None, None)
