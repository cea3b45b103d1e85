"""`postdesk audit`: the events of all tickets for the data-protection officer — filtered by
ticket, actor, kind and time (in the service's zone, a date alone a whole day), newest first,
cut at --limit with a footer, as a table, JSON or CSV; unknown kinds, tickets and dates are
one-line errors. A requester export shows up in it, without the person's address."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.config import Settings
from storage.engine import Database
from storage.tickets import TicketStore
from tests.helpers import write_config

Run = Callable[..., tuple[int, str, str]]
ANNA, BEN = "anna.schmidt@example.org", "ben.mueller@example.org"
ERIKA = "erika.muster@example.net"
# 2026-03-10 in Berlin (UTC+1): 09:00 local is 08:00 UTC
DAY = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, settings: Settings) -> Run:
    config = write_config(tmp_path / "config.yaml", settings)

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main(["--config", str(config), *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert invoke("init")[0] == 0
    return invoke


@pytest.fixture
def trail(run: Run, db: Database) -> None:
    """Two tickets and what happened to them over three days, plus one event of no ticket."""
    with db.session() as session:
        store = TicketStore(session)
        one, two = (
            store.create_ticket(prefix="LDS", subject=f"Anliegen {n}", requester=ERIKA,
                                language="de", conversation=None, now=DAY)
            for n in (1, 2)
        )
        at = DAY.__add__
        store.add_event(one, actor="system", kind="created", now=at(timedelta(0)))
        store.add_event(one, actor=ANNA, kind="original-viewed", now=at(timedelta(hours=1)),
                        article=1, way="command", attachments=0)
        store.add_event(one, actor="cli:root", kind="status", now=at(timedelta(hours=2)),
                        old="new", new="open")
        store.add_event(two, actor=BEN, kind="original-viewed", now=at(timedelta(days=1)),
                        article=2, way="notification", attachments=1)
        store.add_event(two, actor="cli:root", kind="assigned", now=at(timedelta(days=2)),
                        old=None, new=BEN)
        store.add_event(None, actor="system", kind="retention-run", now=at(timedelta(days=2)),
                        deleted=0)


def rows(out: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(out)
    return data


@pytest.mark.usefixtures("trail")
def test_filters_narrow_by_ticket_actor_kind_and_time(run: Run) -> None:
    code, out, _ = run("audit", "--json")
    assert code == 0
    everything = rows(out)
    assert [e["kind"] for e in everything][:2] == ["retention-run", "assigned"]  # newest first
    assert len(everything) == 6 and everything[0]["ticket"] is None

    viewed = rows(run("audit", "--kind", "original-viewed", "--json")[1])
    assert [(e["ticket"], e["actor"], e["detail"]["way"]) for e in viewed] == [
        ("LDS-2", BEN, "notification"), ("LDS-1", ANNA, "command")]

    of_one = rows(run("audit", "--ticket", "lds-1", "--json")[1])
    assert {e["ticket"] for e in of_one} == {"LDS-1"} and len(of_one) == 3
    by_anna = rows(run("audit", "--actor", ANNA.upper(), "--json")[1])
    assert [e["kind"] for e in by_anna] == ["original-viewed"]
    two_kinds = rows(run("audit", "--kind", "status", "--kind", "assigned", "--json")[1])
    assert [e["kind"] for e in two_kinds] == ["assigned", "status"]

    # a date alone is the whole day in the service's zone; a time is to the minute
    first_day = rows(run("audit", "--since", "2026-03-10", "--until", "2026-03-10",
                         "--json")[1])
    assert [e["kind"] for e in first_day] == ["status", "original-viewed", "created"]
    later = rows(run("audit", "--since", "2026-03-10 10:00", "--json")[1])  # 09:00 UTC
    assert len(later) == 5 and later[-1]["kind"] == "original-viewed"
    later = rows(run("audit", "--since", "2026-03-10T10:01", "--json")[1])
    assert len(later) == 4 and later[-1]["kind"] == "status"


@pytest.mark.usefixtures("trail")
def test_text_table_csv_and_the_limit_footer(run: Run) -> None:
    code, out, _ = run("audit", "--kind", "original-viewed")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["TIME", "TICKET", "KIND", "ACTOR"]
    assert lines[1].startswith("2026-03-11 09:00  LDS-2") and BEN in lines[1]
    assert "way=notification" in lines[1]

    code, out, _ = run("audit", "--csv", "--ticket", "LDS-2")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["kind"] for r in table] == ["assigned", "original-viewed"]
    assert json.loads(table[1]["detail"]) == {"article": 2, "attachments": 1,
                                              "way": "notification"}

    code, out, err = run("audit", "--limit", "2", "--json")
    assert code == 0 and len(rows(out)) == 2 and "4 more" in err  # stdout stays JSON
    code, out, _ = run("audit", "--limit", "2")
    assert "4 more" in out.splitlines()[-1]
    assert run("audit", "--actor", "nobody@example.org")[1].strip() == (
        "no events match these filters")


@pytest.mark.usefixtures("trail")
def test_unknown_values_are_one_line_errors(run: Run) -> None:
    code, _, err = run("audit", "--kind", "original-seen")
    assert code == 1 and "unknown kind 'original-seen'" in err and "original-viewed" in err
    assert "retention-run" in err  # a kind only stored (a newer version wrote it) is known too
    assert run("audit", "--kind", "retention-run", "--json")[0] == 0
    code, _, err = run("audit", "--ticket", "LDS-99")
    assert code == 1 and "no ticket LDS-99" in err
    code, _, err = run("audit", "--since", "10.03.2026")
    assert code == 1 and "--since" in err
    assert run("audit", "--json", "--csv")[0] == 2


def test_a_requester_export_is_in_the_audit_without_the_address(
    run: Run, db: Database, tmp_path: Path
) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="Antrag", requester=ERIKA,
                                     language="de", conversation=None, now=DAY)
        store.add_participant(ticket, ERIKA, "requester")
        store.add_article(ticket, kind="requester", direction="in", from_addr=ERIKA,
                          to_addrs=["servicedesk@example.org"], subject="Antrag",
                          body="Guten Tag", created_at=DAY)
    code, _, err = run("requester", "export", ERIKA, "-o", str(tmp_path / "a.zip"))
    assert code == 0, err
    code, _, err = run("requester", "export", ERIKA.upper(), "-o", str(tmp_path / "b.zip"))
    assert code == 0, err

    code, out, _ = run("audit", "--kind", "requester-exported", "--json")
    events = rows(out)
    assert code == 0 and [e["ticket"] for e in events] == ["LDS-1", "LDS-1"]
    assert all(e["actor"].startswith("cli:") for e in events)
    assert events[0]["detail"]["subject"] == events[1]["detail"]["subject"]  # same person
    assert events[0]["detail"]["request"] != events[1]["detail"]["request"]
    assert events[0]["detail"]["articles"] == 1 and events[0]["detail"]["role"] == "requester"
    for shown in (out, run("audit")[1], run("audit", "--csv")[1]):
        assert "erika" not in shown.lower()
