"""Instance identity and leases (issue 14, defects 1 and 2): a claim is an instance's lease;
recovery takes only rows of this instance, of instances that are gone, or whose lease ran out;
finishing a row whose claim was taken over raises and rolls the mail back; a worker whose
parent is gone claims nothing more."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from gateway import pipeline
from gateway.app import App
from gateway.config import Settings
from gateway.errors import InstanceIdInUse
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline.worker import Outcome
from storage import spool
from storage.engine import open_database
from storage.instances import InstanceLock
from storage.models import Article, Event, InboxItem, OutboxItem, Ticket, utcnow
from tests.helpers import make_mail


@pytest.fixture
def app(settings: Settings) -> Any:
    built = App.build(settings, sender=RecordingSender())
    built.init_database()
    yield built
    built.db.dispose()


def enqueue(app: App, key: str) -> int:
    with app.db.session() as session:
        [item_id] = spool.add_inbox_items(
            session, [spool.NewInboxItem("smtp", key, make_mail(subject=key).as_bytes(),
                                         envelope_from="erika.muster@example.net",
                                         envelope_to=("servicedesk@example.org",))]
        )
    return item_id


def row(app: App, item_id: int) -> InboxItem:
    with app.db.session() as session:
        item = session.get(InboxItem, item_id)
        assert item is not None
        session.expunge(item)
        return item


def count(app: App, model: Any) -> int:
    with app.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_finishing_a_row_whose_claim_was_taken_over_raises_and_writes_nothing(app: App) -> None:
    item_id = enqueue(app, "taken-over")
    app.worker.name = "instance-a"
    preparer = app.worker.preparer
    take = preparer.take

    def take_then_lose_the_lease() -> Any:
        prepared = take()
        # meanwhile instance b found a's lease run out, took the row back and claimed it
        with app.db.session() as session:
            session.execute(update(InboxItem).values(lease_until=utcnow() - timedelta(seconds=1)))
            [taken] = spool.recover_inbox(session, 3, me="instance-b")
            assert (taken.id, taken.why, taken.claimed_by) == (item_id, "expired", "instance-a")
            claim = spool.claim_inbox(session, "instance-b")
            assert claim is not None and claim.id == item_id
        return prepared

    preparer.take = take_then_lose_the_lease  # type: ignore[method-assign]
    assert app.worker.process_some() == [Outcome(item_id, "lost")]
    preparer.take = take  # type: ignore[method-assign]
    # a ran every stage, but its ticket, article, events and acknowledgement were rolled back
    assert [count(app, m) for m in (Ticket, Article, Event, OutboxItem)] == [0, 0, 0, 0]
    lost = row(app, item_id)
    assert (lost.state, lost.claimed_by) == ("processing", "instance-b")

    # the storage calls themselves: none of them touches a row that is not ours
    with app.db.session() as session, pytest.raises(spool.LeaseLost):
        spool.finish_inbox(session, item_id, worker="instance-a", ticket_id=None, stage=None,
                           reason=None)
    for settle in (
        lambda s: spool.quarantine_inbox(s, item_id, worker="instance-a", stage="x", reason="y"),
        lambda s: spool.requeue_inbox(s, item_id, worker="instance-a", reason="y"),
        lambda s: spool.defer_inbox(s, item_id, worker="instance-a", reason="y",
                                    not_before=utcnow()),
    ):
        with app.db.session() as session, pytest.raises(spool.LeaseLost):
            settle(session)
    assert row(app, item_id).state == "processing"

    # b (restarted with its stable id) takes its own row back and makes the one ticket
    app.worker.name = "instance-b"
    app.worker.recover()
    assert [o.state for o in app.worker.drain()] == ["done"]
    with app.db.session() as session:
        inbound = session.scalars(select(Article.inbox_id).where(Article.direction == "in"))
        assert list(inbound) == [item_id]
    assert count(app, Ticket) == 1 and count(app, OutboxItem) == 1  # one acknowledgement


def test_recovery_takes_own_gone_and_expired_rows_and_never_a_running_instances(
    app: App,
) -> None:
    ids = {who: enqueue(app, who) for who in ("me", "live", "gone", "expired", "old")}
    now = utcnow()
    with app.db.session() as session:
        for who, item_id in ids.items():
            values: dict[str, Any] = {"state": "processing", "attempts": 1, "claimed_by": who,
                                      "lease_until": now + timedelta(seconds=60)}
            if who == "expired":
                values["lease_until"] = now - timedelta(seconds=1)
            if who == "old":  # claimed before leases existed
                values.update(claimed_by=None, lease_until=None)
            session.execute(update(InboxItem).where(InboxItem.id == item_id).values(**values))
    with app.db.session() as session:
        assert sorted(spool.claimers(session, "me", now)) == ["gone", "live"]
        recovered = spool.recover_inbox(session, 3, me="me", gone=["gone"], now=now)
    assert {r.claimed_by: r.why for r in recovered} == {
        "me": "own", "gone": "gone", "expired": "expired", None: "expired"}
    assert row(app, ids["live"]).state == "processing"
    assert all(row(app, ids[w]).state == "queued" for w in ("me", "gone", "expired", "old"))
    # the periodic job (own=False) leaves this instance's running rows alone
    with app.db.session() as session:
        session.execute(update(InboxItem).where(InboxItem.id == ids["me"]).values(
            state="processing", claimed_by="me", lease_until=now + timedelta(seconds=60)))
        assert spool.recover_inbox(session, 3, now=now) == []


def test_the_worker_renews_the_lease_of_every_row_it_holds(app: App) -> None:
    first, second = enqueue(app, "renew-1"), enqueue(app, "renew-2")
    app.worker.name = "me"
    with app.db.session() as session:
        spool.claim_inbox(session, "me", timedelta(seconds=5))
        spool.claim_inbox(session, "someone-else", timedelta(seconds=5))
    before = row(app, first).lease_until
    assert before is not None
    assert app.worker.renew_leases() == 1
    renewed = row(app, first).lease_until
    assert renewed is not None and renewed > before + timedelta(seconds=30)  # 60 s lease
    other = row(app, second)
    assert other.claimed_by == "someone-else" and other.lease_until is not None
    assert other.lease_until < before + timedelta(seconds=30)


def test_a_mail_that_takes_longer_than_the_lease_keeps_its_claim(
    make_settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The renewer thread keeps the lease of a mail that takes 3 leases; another instance
    looking for expired rows all the while takes nothing, and the mail ends done once."""
    app = App.build(make_settings(worker={"lease_seconds": 1}), sender=RecordingSender())
    app.init_database()
    item_id = enqueue(app, "slow")

    def slow(_ctx: Any) -> None:
        time.sleep(3)

    monkeypatch.setattr(pipeline, "STAGES", (("slow", slow), *pipeline.STAGES))
    other = open_database(app.settings.database.url)  # another instance's connections
    taken: list[spool.Recovered] = []
    done = threading.Event()

    def look_for_expired_leases() -> None:
        while not done.is_set():
            with other.session() as session:
                taken.extend(spool.recover_inbox(session, 3, me="other"))
            time.sleep(0.2)

    looking = threading.Thread(target=look_for_expired_leases)
    looking.start()
    try:
        outcomes = app.worker.drain()
    finally:
        done.set()
        looking.join()
        other.dispose()
    assert outcomes == [Outcome(item_id, "done", 1)] and taken == []
    assert count(app, Ticket) == 1
    app.db.dispose()


def test_a_worker_whose_parent_is_gone_claims_nothing_more_even_mid_burst(app: App) -> None:
    ids = [enqueue(app, f"orphan-{n}") for n in range(3)]
    checks: list[bool] = []

    def alive() -> bool:  # the parent dies right after the worker looked the first time
        checks.append(not checks)
        return checks[-1]

    app.worker.run_forever(threading.Event(), alive=alive)
    assert [row(app, i).state for i in ids] == ["queued"] * 3  # not one was claimed


def test_an_instance_lock_tells_running_from_gone_and_an_id_in_use_is_refused(
    app: App, settings: Settings
) -> None:
    first = InstanceLock(app.db, "alpha")
    first.acquire()
    probe = InstanceLock(app.db, "beta")
    probe.acquire()
    try:
        assert probe.running("alpha")
        twin = App.build(settings.model_copy(update={"instance": settings.instance.model_copy(
            update={"id": "alpha"})}), sender=RecordingSender())
        with (pytest.raises(InstanceIdInUse, match=r"instance\.id: alpha is in use"),
              twin.running_instance()):
            pass
        twin.db.dispose()
        first.release()
        assert not probe.running("alpha")
        assert not probe.running("never-ran")
    finally:
        first.release()
        probe.release()
