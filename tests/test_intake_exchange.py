"""EWS intake and sending against a local EWS endpoint (tests/fakes/ews.py) with the real
exchangelib: items are stored before they are moved or marked read, faults lose nothing and
duplicate nothing, auth failures are diagnosed without a retry storm, MIME is sent intact."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import exchangelib
import pytest
from sqlalchemy import text

from gateway.app import App
from gateway.config import Settings
from gateway.errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from gateway.intake import exchange
from gateway.intake.exchange import EwsPoller
from gateway.mailboxes.common import ItemRef
from gateway.mailboxes.ews import EwsClient, ExchangeSender
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.engine import Database
from tests.fakes.ews import FakeEws, server_error, soap_error
from tests.fakes.https import FakeServer, ManualClock, Response, TestCA, make_test_ca
from tests.helpers import articles, eml, tickets

MAILBOX = "servicedesk@example.org"
USER = "LANDKREIS\\svc-postdesk"
PASSWORD = "Sommer2026!"
PASSWORD_ENV = "POSTDESK_TEST_EWS_PASSWORD"
POLL = 30.0
MAILS = ("plain-de.eml", "alternative-de.eml", "outlook-reply-aw.eml")


@pytest.fixture
def ews() -> FakeEws:
    fake = FakeEws(mailbox=MAILBOX, username=USER, password=PASSWORD)
    fake.add_folder("Erledigt")
    return fake


@pytest.fixture
def server(ews: FakeEws) -> Iterator[FakeServer]:
    with FakeServer(ews) as running:
        yield running
    exchangelib.close_connections()  # exchangelib caches protocols per endpoint


@pytest.fixture
def config(make_settings: Callable[..., Settings], server: FakeServer,
           monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)

    def build(**exchange_options: Any) -> Settings:
        options: dict[str, Any] = {
            "mailbox": MAILBOX, "username": USER, "password_env": PASSWORD_ENV,
            "service_endpoint": f"{server.url}/EWS/Exchange.asmx", "processed_folder": "Erledigt",
            "poll_seconds": POLL, "timeout_seconds": 5, "backoff_max_seconds": 600,
            "auth_backoff_seconds": 900, **exchange_options}
        return make_settings(exchange=options)

    return build


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def rows(db: Database) -> list[Any]:
    with db.session() as session:
        return sorted(spool.list_inbox(session), key=lambda row: row.id)


def test_new_items_are_stored_then_moved(config: Callable[..., Settings], db: Database,
                                         ews: FakeEws, clock: ManualClock) -> None:
    for name in MAILS:
        ews.deliver(eml(name))
    poller = EwsPoller(config(), db, clock=clock)

    report = poller.poll_once()

    assert (report.fetched, report.stored, report.moved, report.errors) == (3, 3, 3, 0)
    stored = rows(db)
    assert [row.raw for row in stored] == [eml(name) for name in MAILS]  # byte-exact, in order
    assert {row.source for row in stored} == {"exchange"}
    assert all(row.envelope_to == [MAILBOX] and row.source_key.startswith("mid:")
               for row in stored)
    assert ews.in_folder("inbox") == []
    assert [item.mime for item in ews.in_folder("Erledigt")] == [eml(name) for name in MAILS]
    assert poller.health.state == "ok" and poller.health.last_success_at is not None
    assert poller.poll_once().fetched == 0  # nothing left, nothing stored twice
    assert len(rows(db)) == 3


def test_mailbox_items_become_tickets_and_an_smtp_copy_is_not_a_second_article(
        config: Callable[..., Settings], db: Database, ews: FakeEws, clock: ManualClock) -> None:
    settings = config()
    ews.deliver(eml("plain-de.eml"))
    with db.session() as session:  # the same mail also arrived by SMTP (e.g. a Cc via MX)
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key="copy", raw=eml("plain-de.eml"),
            envelope_from="juergen.mueller@landkreis-beispiel.de", envelope_to=(MAILBOX,))])
    assert EwsPoller(settings, db, clock=clock).poll_once().stored == 1
    app = App.build(settings, sender=RecordingSender())
    try:
        app.worker.drain()
        made = tickets(app)
        received = [a for a in articles(app) if a.direction == "in"]
    finally:
        app.db.dispose()

    assert len(made) == 1 and "Drucker" in made[0].subject
    assert len(received) == 1  # the guard drops the second copy by Message-ID


def test_commit_failure_leaves_items_in_the_folder(config: Callable[..., Settings],
                                                   db: Database, ews: FakeEws,
                                                   clock: ManualClock) -> None:
    if not db.is_sqlite:
        pytest.skip("the failure is injected with a SQLite trigger")
    for name in MAILS[:2]:
        ews.deliver(eml(name))
    with db.engine.begin() as conn:  # the database refuses every new inbox row
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON inbox "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    poller = EwsPoller(config(), db, clock=clock)

    report = poller.poll_once()

    assert (report.stored, report.moved) == (0, 0)
    assert ews.count("MoveItem") == 0 and len(ews.in_folder("inbox")) == 2
    assert poller.health.state == "unavailable"
    assert "could not store" in poller.health.diagnosis
    with db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse"))
    clock.advance(POLL)
    report = poller.poll_once()
    assert (report.stored, report.moved) == (2, 2)
    assert len(rows(db)) == 2 and ews.in_folder("inbox") == []


def test_failed_move_after_commit_creates_no_duplicate(config: Callable[..., Settings],
                                                       db: Database, ews: FakeEws,
                                                       clock: ManualClock) -> None:
    for name in MAILS[:2]:
        ews.deliver(eml(name))
    ews.fail("MoveItem", server_error(503))
    poller = EwsPoller(config(), db, clock=clock)

    first = poller.poll_once()

    assert (first.stored, first.moved) == (2, 0)
    assert len(ews.in_folder("inbox")) == 2 and poller.health.state == "unavailable"
    clock.advance(POLL)
    second = poller.poll_once()
    assert (second.fetched, second.stored, second.moved) == (2, 0, 2)
    assert len(rows(db)) == 2
    assert ews.in_folder("inbox") == [] and len(ews.in_folder("Erledigt")) == 2


class KilledAfterCommit(EwsClient):
    """The process dies right after the inbox commit, before anything is moved."""

    def finish(self, ref: ItemRef) -> None:
        raise SystemExit("killed")


def test_crash_between_commit_and_move_then_restart(config: Callable[..., Settings],
                                                    db: Database, ews: FakeEws,
                                                    clock: ManualClock) -> None:
    for name in MAILS:
        ews.deliver(eml(name))
    settings = config()
    assert settings.exchange is not None
    with pytest.raises(SystemExit):
        EwsPoller(settings, db, KilledAfterCommit(settings.exchange), clock=clock).poll_once()
    assert len(rows(db)) == 3 and len(ews.in_folder("inbox")) == 3

    restarted = EwsPoller(settings, db, clock=ManualClock())  # a new process: new client
    report = restarted.poll_once()

    assert (report.fetched, report.stored, report.moved) == (3, 0, 3)
    assert len(rows(db)) == 3 and ews.in_folder("inbox") == []


def test_mark_read_mode_takes_unread_items_only(config: Callable[..., Settings], db: Database,
                                                ews: FakeEws, clock: ManualClock) -> None:
    ews.deliver(eml("plain-de.eml"))
    ews.deliver(eml("alternative-de.eml"), is_read=True)  # a person read it: not ours
    ews.deliver(eml("outlook-reply-aw.eml"))
    poller = EwsPoller(config(processed_folder=None, mark_read=True), db, clock=clock)

    report = poller.poll_once()

    assert (report.stored, report.moved) == (2, 2)
    assert all(item.is_read for item in ews.in_folder("inbox"))
    assert [row.raw for row in rows(db)] == [eml("plain-de.eml"), eml("outlook-reply-aw.eml")]
    assert poller.poll_once().fetched == 0


def test_backlog_larger_than_a_page_is_taken_in_one_poll(config: Callable[..., Settings],
                                                         db: Database, ews: FakeEws,
                                                         clock: ManualClock) -> None:
    for number in range(5):
        ews.deliver(f"Message-ID: <m{number}@example.net>\r\nSubject: Nr. {number}\r\n\r\n"
                    f"Text {number}\r\n".encode())
    report = EwsPoller(config(batch_size=2), db, clock=clock).poll_once()

    assert (report.fetched, report.stored, report.moved) == (5, 5, 5)
    assert ews.count("FindItem") == 3  # 2 + 2 + 1, each asked from the start


def test_same_message_id_is_one_row_and_missing_id_is_hashed(
        config: Callable[..., Settings], db: Database, ews: FakeEws, clock: ManualClock) -> None:
    ews.deliver(eml("plain-de.eml"))
    ews.deliver(eml("plain-de.eml"))  # e.g. To and Cc of the same mail both reached the box
    ews.deliver(eml("missing-message-id.eml"))

    report = EwsPoller(config(), db, clock=clock).poll_once()

    assert (report.fetched, report.stored, report.moved) == (3, 2, 3)
    assert sorted(row.source_key[:4] for row in rows(db)) == ["mid:", "sha:"]


def test_wrong_password_is_diagnosed_without_a_retry_storm(
        config: Callable[..., Settings], db: Database, ews: FakeEws, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ews.deliver(eml("plain-de.eml"))
    settings = config()
    monkeypatch.setenv(PASSWORD_ENV, "Winter2025!")
    poller = EwsPoller(settings, db, clock=clock)

    report = poller.poll_once()

    assert report.errors == 1 and poller.health.state == "auth"
    assert "401" in poller.health.diagnosis and "password" in poller.health.diagnosis
    assert PASSWORD not in poller.health.line() and "Winter" not in poller.health.line()
    requests_after_failure = len(ews.calls)
    for _ in range(5):  # the scheduler keeps calling; the server is left alone
        assert poller.poll_once().skipped
    clock.advance(899)
    assert poller.poll_once().skipped
    assert len(ews.calls) == requests_after_failure
    clock.advance(2)
    assert not poller.poll_once().skipped
    assert len(ews.calls) > requests_after_failure and len(ews.in_folder("inbox")) == 1


@pytest.mark.parametrize(("answer", "expected"), [
    (soap_error("FindItem", "ErrorAccessDenied", "Access is denied."), "FullAccess"),
    (Response(403, b"Forbidden", {"Content-Type": "text/html"}), "HTTP 403"),
])
def test_access_denied_is_an_auth_failure(config: Callable[..., Settings], db: Database,
                                          ews: FakeEws, clock: ManualClock, answer: Response,
                                          expected: str) -> None:
    ews.deliver(eml("plain-de.eml"))
    ews.fail("FindItem", answer)
    poller = EwsPoller(config(), db, clock=clock)

    poller.poll_once()

    assert poller.health.state == "auth" and expected in poller.health.diagnosis
    clock.advance(POLL)
    assert poller.poll_once().skipped  # auth back-off is long, not the poll interval


def test_server_errors_back_off_exponentially_and_lose_nothing(
        config: Callable[..., Settings], db: Database, ews: FakeEws, clock: ManualClock) -> None:
    for name in MAILS:
        ews.deliver(eml(name))
    ews.outage = server_error(503)
    poller = EwsPoller(config(), db, clock=clock)

    assert poller.poll_once().errors == 1
    assert poller.health.state == "unavailable"
    asked = len(ews.calls)
    assert poller.poll_once().skipped and len(ews.calls) == asked
    clock.advance(POLL)  # first back-off: one poll interval
    assert not poller.poll_once().skipped and len(ews.calls) > asked
    asked = len(ews.calls)
    clock.advance(POLL)  # second back-off: twice as long
    assert poller.poll_once().skipped and len(ews.calls) == asked
    clock.advance(POLL)
    assert not poller.poll_once().skipped
    assert poller.health.failures == 3 and poller.health.retry_at is not None
    ews.outage = None
    clock.advance(4 * POLL)
    report = poller.poll_once()
    assert (report.stored, report.moved) == (3, 3)
    assert poller.health.state == "ok" and poller.health.failures == 0


def test_timeout_backs_off_and_loses_nothing(config: Callable[..., Settings], db: Database,
                                             ews: FakeEws, clock: ManualClock) -> None:
    ews.deliver(eml("plain-de.eml"))
    ews.fail("FindItem", Response(200, b"", delay=1.0))
    poller = EwsPoller(config(timeout_seconds=0.3), db, clock=clock)

    assert poller.poll_once().errors == 1
    assert poller.health.state == "unavailable" and "timeout" in poller.health.diagnosis
    clock.advance(POLL)
    assert poller.poll_once().stored == 1


def test_check_reports_a_missing_processed_folder_and_creates_it(
        config: Callable[..., Settings], ews: FakeEws) -> None:
    ews.deliver(eml("plain-de.eml"))
    settings = config(processed_folder="inbox/Erledigt 2026")

    missing = exchange.check(settings)
    created = exchange.check(settings, create_folder=True)

    assert not missing.ok and "does not exist" in missing.message
    assert "--create-folder" in missing.message
    assert created.ok and "1 item(s), 1 unread" in created.message
    assert ews.folder("Erledigt 2026").parent == ews.folder("inbox").id


def test_check_names_a_wrong_password_and_a_missing_secret(
        config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config()
    monkeypatch.setenv(PASSWORD_ENV, "falsch")
    wrong = exchange.check(settings)
    monkeypatch.delenv(PASSWORD_ENV)
    unset = exchange.check(settings)

    assert not wrong.ok and "wrong user name or password" in wrong.message
    assert not unset.ok and f"{PASSWORD_ENV} is not set" in unset.message


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


def test_untrusted_certificate_is_diagnosed_and_ca_bundle_fixes_it(
        make_settings: Callable[..., Settings], ews: FakeEws, test_ca: TestCA,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    with FakeServer(ews, test_ca.server_context()) as tls_server:
        options = {"mailbox": MAILBOX, "username": USER, "password_env": PASSWORD_ENV,
                   "service_endpoint": f"{tls_server.url}/EWS/Exchange.asmx",
                   "processed_folder": "Erledigt", "timeout_seconds": 5}
        untrusted = exchange.check(make_settings(exchange=options))
        trusted = exchange.check(make_settings(exchange={**options,
                                                         "ca_bundle": str(test_ca.ca_file)}))
    exchangelib.close_connections()

    assert not untrusted.ok and "certificate" in untrusted.message
    assert "ca_bundle" in untrusted.message
    assert trusted.ok, trusted.message


def reply_mime() -> bytes:
    """A German reply as the outbox would send it: UTF-8 8bit body, encoded subject, threading."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"IT-Servicedesk <{MAILBOX}>"
    message["To"] = "Jürgen Müller <juergen.mueller@landkreis-beispiel.de>"
    message["Subject"] = "[LDS-1042] Drucker im 2. OG druckt keine Umlaute mehr (äöü)"
    message["Message-ID"] = "<lds-1042.3@example.org>"
    message["In-Reply-To"] = "<8d2f6b1e-3c4a-4e7b-9f21-0a5c7d9e1b23@landkreis-beispiel.de>"
    message["References"] = "<8d2f6b1e-3c4a-4e7b-9f21-0a5c7d9e1b23@landkreis-beispiel.de>"
    message["Auto-Submitted"] = "auto-replied"
    message.set_content("Guten Tag Herr Müller,\n\nwir kümmern uns darum. Grüße\n", cte="8bit")
    return message.as_bytes()


def test_sending_uses_create_item_with_the_mime_intact(config: Callable[..., Settings],
                                                       ews: FakeEws) -> None:
    settings = config()
    assert settings.exchange is not None
    sender = ExchangeSender.from_settings(settings.exchange)
    raw = reply_mime()

    sender.send(MAILBOX, ["juergen.mueller@landkreis-beispiel.de"], raw, "<lds-1042.3@example.org>")
    sender.send(MAILBOX, ["anna.schmidt@example.org"], raw, "<lds-1042.3@example.org>")

    first, second = ews.sent
    assert (first.disposition, first.saved_folder) == ("SendAndSaveCopy", "sentitems")
    assert first.mime == raw  # byte-exact: umlauts, Message-ID, In-Reply-To, References
    parsed = message_from_bytes(first.mime, policy=policy.default)
    assert "Grüße" in parsed.get_content() and "(äöü)" in parsed["Subject"]
    assert b"<t:MimeContent" in first.xml and b"MessageDisposition=\"SendAndSaveCopy\"" in first.xml
    assert second.mime == b"Bcc: anna.schmidt@example.org\r\n" + raw  # envelope-only recipient
    assert len(ews.in_folder("sentitems")) == 2


@pytest.mark.parametrize(("answer", "error"), [
    (server_error(503), TemporaryDeliveryError),
    (soap_error("CreateItem", "ErrorServerBusy", "The server cannot service this request "
                                                 "right now."), TemporaryDeliveryError),
    (soap_error("CreateItem", "ErrorInvalidRecipients", "At least one recipient isn't valid."),
     PermanentDeliveryError),
    (soap_error("CreateItem", "ErrorMimeContentConversionFailed",
                "MIME content conversion failed."), PermanentDeliveryError),
])
def test_send_failures_are_classified(config: Callable[..., Settings], ews: FakeEws,
                                      answer: Response, error: type[Exception]) -> None:
    settings = config()
    assert settings.exchange is not None
    sender = ExchangeSender.from_settings(settings.exchange)
    ews.fail("CreateItem", answer)

    with pytest.raises(error) as caught:
        sender.send(MAILBOX, ["juergen.mueller@landkreis-beispiel.de"], reply_mime(), "<x@y>")

    assert "juergen" not in str(caught.value) and "Müller" not in str(caught.value)


def test_refused_login_while_sending_is_temporary(config: Callable[..., Settings],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = config()
    assert settings.exchange is not None
    monkeypatch.setenv(PASSWORD_ENV, "abgelaufen")
    sender = ExchangeSender.from_settings(settings.exchange)

    with pytest.raises(TemporaryDeliveryError, match="401"):
        sender.send(MAILBOX, ["juergen.mueller@landkreis-beispiel.de"], reply_mime(), "<x@y>")


@pytest.mark.parametrize(("options", "message"), [
    ({}, "exactly one of service_endpoint, server or autodiscover"),
    ({"server": "mail.example.org", "autodiscover": True}, "exactly one"),
    ({"server": "mail.example.org", "processed_folder": None, "mark_read": False},
     "processed_folder or mark_read"),
    ({"server": "mail.example.org", "ca_bundle": "/nonexistent/ca.pem"}, "file not found"),
    ({"server": "mail.example.org", "processed_folder": "Inbox/"}, "must differ from folder"),
])
def test_exchange_config_errors_name_the_key(make_settings: Callable[..., Settings],
                                             options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(exchange={"mailbox": MAILBOX, "password_env": PASSWORD_ENV, **options})


def test_poller_needs_an_exchange_section(settings: Settings, db: Database) -> None:
    with pytest.raises(ConfigError, match="exchange: not configured"):
        EwsPoller(settings, db)
    assert not exchange.check(settings).ok


def test_serve_polls_the_mailbox_beside_smtp_and_status_shows_its_health(
        config: Callable[..., Settings], ews: FakeEws, tmp_path: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from gateway.cli import main
    from tests.helpers import running, send, wait_for

    settings = config(poll_seconds=0.3)
    ews.deliver(eml("plain-de.eml"))
    app = App.build(settings, sender=RecordingSender())
    with running(app):
        same = message_from_bytes(eml("plain-de.eml"), policy=policy.default)
        send(settings, same)  # the same mail also reaches the SMTP listener
        wait_for(lambda: len(rows(app.db)) == 2
                 and all(row.state == "done" for row in rows(app.db)))
        assert ews.in_folder("inbox") == []
        assert len(tickets(app)) == 1
        assert len([a for a in articles(app) if a.direction == "in"]) == 1
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    assert main(["--config", str(path), "status"]) == 0
    assert "mailbox: exchange: ok" in capsys.readouterr().out


def test_cli_exchange_check_prints_one_line_and_exit_code(
        config: Callable[..., Settings], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    from gateway.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config().model_dump(mode="json")))
    assert main(["--config", str(path), "exchange", "check"]) == 0
    out, _ = capsys.readouterr()
    assert out.count("\n") == 1 and "Erledigt" in out
    monkeypatch.setenv(PASSWORD_ENV, "falsch")
    assert main(["--config", str(path), "exchange", "check"]) == 1
    _, err = capsys.readouterr()
    assert err.startswith("postdesk: error: ") and err.count("\n") == 1
    assert "falsch" not in err
