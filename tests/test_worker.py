"""The worker: claim/finish, crash recovery, poison mail → quarantine with stage, retry by hand."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import event, select

from gateway import pipeline
from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline import worker
from gateway.pipeline.context import Context, PreparedMail
from gateway.pipeline.prepare import InlinePreparer
from storage import spool
from storage.models import InboxItem, Ticket
from tests.helpers import make_mail


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def enqueue(app: App, raw: bytes, key: str) -> int:
    with app.db.session() as session:
        [item_id] = spool.add_inbox_items(
            session,
            [
                spool.NewInboxItem(
                    source="smtp",
                    source_key=key,
                    raw=raw,
                    envelope_from="erika@example.net",
                    envelope_to=("servicedesk@example.org",),
                )
            ],
        )
    return item_id


def row(app: App, item_id: int) -> InboxItem:
    with app.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert item is not None
        return item


def test_a_queued_mail_becomes_a_ticket_and_the_row_is_done(app: App) -> None:
    item_id = enqueue(app, make_mail().as_bytes(), "a")
    [outcome] = app.worker.drain()
    assert outcome.state == "done" and outcome.ticket_id is not None
    item = row(app, item_id)
    assert item.state == "done" and item.attempts == 1 and item.ticket_id == outcome.ticket_id


def test_the_same_key_is_stored_once(app: App) -> None:
    raw = make_mail().as_bytes()
    assert enqueue(app, raw, "same") == enqueue(app, raw, "same")


def test_a_failing_stage_quarantines_with_stage_and_reason_and_rolls_back(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(ctx: Context) -> None:
        raise ValueError("template exploded")

    stages = tuple(
        (name, explode if name == "notify" else stage) for name, stage in pipeline.STAGES
    )
    monkeypatch.setattr(pipeline, "STAGES", stages)
    item_id = enqueue(app, make_mail().as_bytes(), "poison")
    [outcome] = app.worker.drain()
    assert outcome.state == "quarantined"
    item = row(app, item_id)
    assert (item.state, item.stage) == ("quarantined", "notify")
    assert item.reason == "ValueError: template exploded"
    with app.db.session() as session:  # the record stage's work was rolled back with it
        assert session.scalars(select(Ticket)).all() == []

    monkeypatch.undo()  # "the fix is deployed"
    with app.db.session() as session:
        assert spool.retry_inbox(session, item_id)
    [outcome] = app.worker.drain()
    assert outcome.state == "done" and row(app, item_id).ticket_id is not None


def test_rows_left_processing_by_a_crash_are_taken_up_again(app: App) -> None:
    first = enqueue(app, make_mail().as_bytes(), "crash-1")
    second = enqueue(app, make_mail().as_bytes(), "crash-2")
    with app.db.session() as session:  # as a kill -9 would leave them
        session.get(InboxItem, first).state = "processing"  # type: ignore[union-attr]
        session.get(InboxItem, first).attempts = 1  # type: ignore[union-attr]
        session.get(InboxItem, second).state = "processing"  # type: ignore[union-attr]
        session.get(InboxItem, second).attempts = 3  # type: ignore[union-attr]
    app.worker.recover()
    assert row(app, first).state == "queued"
    assert row(app, second).state == "quarantined"
    assert "interrupted 3 times" in (row(app, second).reason or "")
    app.worker.drain()
    assert row(app, first).state == "done" and row(app, first).attempts == 2


def test_retry_refuses_rows_that_are_not_quarantined(app: App) -> None:
    item_id = enqueue(app, make_mail().as_bytes(), "x")
    with app.db.session() as session:
        assert not spool.retry_inbox(session, item_id)
        assert not spool.retry_inbox(session, 9999)


def test_the_next_row_is_claimed_and_counted_before_its_processing_starts(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [enqueue(app, make_mail().as_bytes(), f"ahead-{n}") for n in range(3)]
    seen: list[tuple[int, str, int]] = []

    def look(ctx: Context) -> None:  # what another connection sees while a mail is worked on
        with app.db.reading() as session:
            stored = session.get(InboxItem, ctx.inbox.id)
            assert stored is not None
            seen.append((stored.id, stored.state, stored.attempts))

    monkeypatch.setattr(pipeline, "STAGES", (("look", look), *pipeline.STAGES))
    outcomes = app.worker.drain()
    assert [o.inbox_id for o in outcomes] == ids
    assert seen == [(i, "processing", 1) for i in ids]  # committed before the work began
    assert all(row(app, i).state == "done" and row(app, i).attempts == 1 for i in ids)


def test_a_row_claimed_ahead_goes_back_to_the_queue_when_the_worker_stops(app: App) -> None:
    first = enqueue(app, make_mail().as_bytes(), "stop-1")
    second = enqueue(app, make_mail().as_bytes(), "stop-2")
    stop = threading.Event()
    app.worker.process_some()  # its transaction also claimed the next row
    assert (row(app, second).state, row(app, second).attempts) == ("processing", 1)
    stop.set()
    app.worker.run_forever(stop)  # stops at once and gives the claimed row back
    assert row(app, first).state == "done"
    released = row(app, second)
    assert (released.state, released.attempts, released.claimed_by) == ("queued", 0, None)
    [outcome] = app.worker.drain()
    assert outcome.inbox_id == second and row(app, second).attempts == 1


def test_drain_with_a_limit_leaves_the_rest_queued(app: App) -> None:
    ids = [enqueue(app, make_mail().as_bytes(), f"limit-{n}") for n in range(3)]
    assert [o.inbox_id for o in app.worker.drain(limit=2)] == ids[:2]
    assert (row(app, ids[2]).state, row(app, ids[2]).attempts) == ("queued", 0)


class _AllReady(InlinePreparer):
    """As if the prepare process were far ahead: every submitted mail is ready at once."""

    ahead = 4

    def take_ready(self) -> PreparedMail | None:
        return self.take() if self._items else None


def test_mails_prepared_ahead_share_one_transaction_and_a_failing_one_is_rolled_back_alone(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.worker.preparer = _AllReady(app.settings)
    ids = [
        enqueue(app, make_mail(subject=f"Anfrage {n}").as_bytes(), f"batch-{n}") for n in range(3)
    ]

    def explode_on_the_second(ctx: Context) -> None:
        if ctx.mail is not None and ctx.mail.subject == "Anfrage 1":
            raise ValueError("template exploded")

    monkeypatch.setattr(pipeline, "STAGES", (*pipeline.STAGES, ("boom", explode_on_the_second)))
    monkeypatch.setattr(worker, "BATCH_SECONDS", 60.0)  # a slow test machine still batches
    commits: list[int] = []
    event.listen(app.db.engine, "commit", lambda _conn: commits.append(1))
    outcomes = app.worker.process_some()
    assert [o.state for o in outcomes] == ["done", "quarantined", "done"]
    assert len(commits) == 2  # one claiming all three, one processing all three
    assert (row(app, ids[1]).state, row(app, ids[1]).stage) == ("quarantined", "boom")
    with app.db.reading() as session:  # the second mail's ticket was rolled back with it
        subjects = sorted(session.scalars(select(Ticket.subject)).all())
    assert subjects == ["Anfrage 0", "Anfrage 2"]
