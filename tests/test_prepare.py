"""PREPARE ahead of the transaction: in a real child process, in order, and a child that dies
or hangs on a mail costs that mail an attempt, never the worker or the mails behind it."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.errors import PrepareFailed
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline.context import IncomingMail, PreparedMail
from gateway.pipeline.prepare import InlinePreparer, ProcessPreparer, prepare, shared_redactor
from storage import spool
from storage.models import Article, InboxItem, utcnow
from tests.helpers import eml, make_mail


def item(number: int, raw: bytes | None) -> IncomingMail:
    return IncomingMail(id=number, source="smtp", raw=raw, received_at=utcnow())


def mail(number: int) -> bytes:
    return make_mail(
        subject=f"Anfrage {number}",
        body=f"Guten Tag,\nFrau Mareike Sommerfeld (geb. 14.07.1988) braucht Zugang {number}.\n",
    ).as_bytes()


@pytest.fixture
def preparer(settings: Settings) -> Iterator[ProcessPreparer]:
    process = ProcessPreparer(settings)
    yield process
    process.close()


@pytest.fixture
def light(make_settings: Callable[..., Settings]) -> Iterator[ProcessPreparer]:
    """A child without Presidio: starts in well under a second."""
    process = ProcessPreparer(make_settings(redaction={"enabled": False}))
    yield process
    process.close()


def test_the_child_hands_back_every_mail_prepared_in_the_order_given(
    preparer: ProcessPreparer, settings: Settings
) -> None:
    raws = [mail(n) for n in range(6)]
    for number, raw in enumerate(raws):
        preparer.submit(item(number, raw))
    results = [preparer.take() for _ in raws]
    assert [r.inbox_id for r in results] == list(range(6))
    for number, result in enumerate(results):
        assert result.error is None and result.stop_reason is None
        assert result.mail is not None and result.mail.subject == f"Anfrage {number}"
        assert result.analysis is not None
        found = {f.entity for f in result.analysis.bodies["full"].findings}
        assert {"PERSON", "DATE_OF_BIRTH"} <= found
        # the same as preparing in this process
        inline = prepare(item(number, raws[number]), settings, shared_redactor(settings))
        assert result.analysis.bodies["full"].findings == inline.analysis.bodies["full"].findings  # type: ignore[union-attr]


def test_a_mail_the_parser_rejects_comes_back_with_stage_and_reason(
    light: ProcessPreparer,
) -> None:
    preparer = light
    preparer.submit(item(1, None))  # original purged meanwhile
    result = preparer.take()
    assert (result.stage, result.stop_reason, result.error) == (
        "parse", "raw mail no longer stored", None
    )


def test_a_child_that_dies_fails_that_mail_and_a_new_child_takes_the_rest(
    light: ProcessPreparer,
) -> None:
    preparer = light
    preparer.submit(item(1, mail(1)))
    assert preparer._process is not None
    os.kill(preparer._process.pid, signal.SIGKILL)  # before it could finish: it is still starting
    preparer.submit(item(2, mail(2)))
    with pytest.raises(PrepareFailed, match="died on this mail"):
        preparer.take()
    assert preparer.take().inbox_id == 2  # the mail behind it, by a new child


def test_a_child_that_hangs_is_replaced_after_the_timeout(
    make_settings: Callable[..., Settings],
) -> None:
    hung = ProcessPreparer(
        make_settings(redaction={"enabled": False}, worker={"prepare_timeout_seconds": 3})
    )
    try:
        hung.submit(item(1, mail(1)))
        assert hung.take().inbox_id == 1  # started (slow start-up never counts) and working
        assert hung._process is not None
        stuck = hung._process
        os.kill(stuck.pid, signal.SIGSTOP)  # as if a regular expression never returned
        hung.submit(item(2, mail(2)))
        hung.submit(item(3, mail(3)))
        with pytest.raises(PrepareFailed, match="longer than 3 s"):
            hung.take()
        assert not stuck.is_alive()  # killed, not left behind
        assert hung.take().inbox_id == 3
    finally:
        hung.close()


def test_results_of_mails_given_back_are_skipped(light: ProcessPreparer) -> None:
    preparer = light
    preparer.submit(item(1, mail(1)))
    preparer.submit(item(2, mail(2)))
    preparer.discard()  # the worker stopped and gave both rows back
    preparer.submit(item(3, mail(3)))
    assert preparer.take().inbox_id == 3


def test_an_agent_reply_keeps_its_commands_through_the_process(
    light: ProcessPreparer,
) -> None:
    preparer = light
    raw = make_mail(
        sender="Anna Schmidt <anna.schmidt@example.org>",
        subject="AW: [LDS-1] Drucker",
        body="#prioritaet hoch\n#intern\nIch kümmere mich.\n",
    ).as_bytes()
    preparer.submit(item(7, raw))
    result = preparer.take()
    assert result.commands is not None
    assert [c.kind for c in result.commands.commands] == ["priority", "note"]
    assert result.texts["relay"].strip() == "Ich kümmere mich."


class _DyingPreparer(InlinePreparer):
    """Fails every mail as a child process that died would."""

    def take(self) -> PreparedMail:
        self._items.popleft()
        raise PrepareFailed("the prepare process died on this mail (exit code -9)")


def test_the_worker_counts_a_dead_prepare_as_an_attempt_then_quarantines(
    settings: Settings,
) -> None:
    app = App.build(settings, sender=RecordingSender())
    app.init_database()
    app.worker.preparer = _DyingPreparer(settings)
    try:
        with app.db.session() as session:
            [item_id] = spool.add_inbox_items(
                session, [spool.NewInboxItem("smtp", "dies", eml("plain-de.eml"))]
            )
        for attempt in range(1, settings.worker.max_attempts + 1):
            [outcome] = app.worker.drain(limit=1)
            expected = "quarantined" if attempt == settings.worker.max_attempts else "requeued"
            assert outcome.state == expected
        with app.db.reading() as session:
            row = session.get(InboxItem, item_id)
            assert row is not None
            assert (row.state, row.stage, row.attempts) == ("quarantined", "prepare", 3)
            assert row.reason == "the prepare process died on this mail (exit code -9)"
            assert session.scalars(select(Article)).all() == []
        app.worker.preparer = InlinePreparer(settings)  # "fixed": retried by hand, it goes through
        with app.db.session() as session:
            assert spool.retry_inbox(session, item_id)
        [outcome] = app.worker.drain()
        assert outcome.state == "done"
    finally:
        app.db.dispose()
