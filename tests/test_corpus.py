"""Every real-world whole message we know of goes through the whole pipeline without crashing
the service: each ends as a ticket, a recorded duplicate, or a quarantined row with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.models import InboxItem
from tests.helpers import CORPUS, PY_EMAIL_DATA


def corpus_files() -> list[Path]:
    files = sorted(
        p
        for p in (CORPUS / "messages").rglob("*")
        if p.is_file() and p.name not in ("LICENSE", "README.md")
    )
    if PY_EMAIL_DATA.is_dir():
        files += sorted(PY_EMAIL_DATA.glob("msg_*.txt"))
    return files


@pytest.mark.skipif(not (CORPUS / "messages").is_dir(), reason="shared corpus not beside repo")
def test_every_corpus_message_becomes_a_ticket_or_a_quarantined_row(settings: Settings) -> None:
    files = corpus_files()
    assert len(files) > 60
    app = App.build(settings, sender=RecordingSender())
    app.init_database()
    with app.db.session() as session:
        spool.add_inbox_items(
            session,
            [
                spool.NewInboxItem(
                    source="smtp",
                    source_key=str(path),
                    raw=path.read_bytes(),
                    envelope_from="sender@example.net",
                    envelope_to=("servicedesk@example.org",),
                )
                for path in files
            ],
        )
    outcomes = app.worker.drain()
    assert len(outcomes) == len(files)
    with app.db.session() as session:
        rows = session.scalars(select(InboxItem)).all()
        for row in rows:
            assert row.state in ("done", "quarantined"), row.source_key
            if row.state == "quarantined":
                assert row.reason and row.stage, row.source_key
            elif row.ticket_id is None:  # several corpus files share a Message-ID
                assert (row.reason or "").startswith("duplicate"), row.source_key
        quarantined = [row.source_key for row in rows if row.state == "quarantined"]
    # Real mail is messy, but messiness alone must not keep a mail from becoming a ticket.
    assert quarantined == []
