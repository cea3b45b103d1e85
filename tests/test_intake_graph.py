"""Graph intake and sending against a local Graph and Entra ID endpoint over TLS
(tests/fakes/graph.py) with the real msal and httpx: messages are stored before they are moved or
marked read, pages are re-queried instead of skipped, throttling honours Retry-After, auth and
permission failures are diagnosed without a retry storm, MIME is sent intact."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.config import Settings
from gateway.errors import ConfigError, PermanentDeliveryError, TemporaryDeliveryError
from gateway.intake import graph
from gateway.intake.graph import GraphPoller
from gateway.mailboxes.common import ItemRef
from gateway.mailboxes.graph import GraphClient, GraphSender, retry_after
from storage import spool
from storage.engine import Database
from tests.fakes.graph import FakeGraph, graph_error, throttled
from tests.fakes.https import FakeServer, ManualClock, Response, TestCA, make_test_ca
from tests.helpers import eml

MAILBOX = "servicedesk@example.org"
SECRET_ENV = "POSTDESK_TEST_GRAPH_SECRET"
POLL = 30.0
MAILS = ("plain-de.eml", "alternative-de.eml", "outlook-reply-aw.eml")


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def fake() -> FakeGraph:
    mailbox = FakeGraph(mailbox=MAILBOX)
    mailbox.add_folder("Erledigt")
    return mailbox


@pytest.fixture
def server(fake: FakeGraph, test_ca: TestCA) -> Iterator[FakeServer]:
    with FakeServer(fake, test_ca.server_context()) as running:
        fake.base = running.url
        yield running


@pytest.fixture
def config(make_settings: Callable[..., Settings], server: FakeServer, fake: FakeGraph,
           test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    monkeypatch.setenv(SECRET_ENV, fake.client_secret)

    def build(**graph_options: Any) -> Settings:
        options: dict[str, Any] = {
            "mailbox": MAILBOX, "tenant_id": fake.tenant, "client_id": fake.client_id,
            "client_secret_env": SECRET_ENV, "base_url": f"{server.url}/v1.0",
            "authority": server.url, "ca_bundle": str(test_ca.ca_file),
            "processed_folder": "Erledigt", "poll_seconds": POLL, "timeout_seconds": 5,
            "auth_backoff_seconds": 900, **graph_options}
        return make_settings(graph=options)

    return build


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def rows(db: Database) -> list[Any]:
    with db.session() as session:
        return sorted(spool.list_inbox(session), key=lambda row: row.id)


def test_new_messages_are_stored_then_moved(config: Callable[..., Settings], db: Database,
                                            fake: FakeGraph, clock: ManualClock) -> None:
    for name in MAILS:
        fake.deliver(eml(name))
    poller = GraphPoller(config(), db, clock=clock)

    report = poller.poll_once()

    assert (report.fetched, report.stored, report.moved, report.errors) == (3, 3, 3, 0)
    stored = rows(db)
    assert [row.raw for row in stored] == [eml(name) for name in MAILS]
    assert {row.source for row in stored} == {"graph"}
    assert all(row.envelope_to == [MAILBOX] for row in stored)
    assert fake.in_folder("inbox") == [] and len(fake.in_folder("Erledigt")) == 3
    assert fake.count("token") == 1 and "me" not in fake.calls  # app-only: /users/{mailbox}
    assert poller.poll_once().fetched == 0 and fake.count("token") == 1  # token is cached


def test_backlog_is_requeried_from_the_start_not_skipped(
        config: Callable[..., Settings], db: Database, fake: FakeGraph,
        clock: ManualClock) -> None:
    for number in range(7):
        fake.deliver(f"Message-ID: <m{number}@example.net>\r\nSubject: Nr. {number}\r\n\r\n"
                     f"Text {number}\r\n".encode())

    report = GraphPoller(config(batch_size=3), db, clock=clock).poll_once()

    assert (report.fetched, report.stored, report.moved) == (7, 7, 7)
    assert len(fake.queries) == 3  # 3 + 3 + 1
    assert all("$skip" not in query and query["$top"] == "3"
               and query["$orderby"] == "receivedDateTime asc" for query in fake.queries)


def test_mark_read_mode_filters_unread_in_a_form_graph_accepts(
        config: Callable[..., Settings], db: Database, fake: FakeGraph, server: FakeServer,
        test_ca: TestCA, clock: ManualClock) -> None:
    fake.deliver(eml("plain-de.eml"))
    fake.deliver(eml("alternative-de.eml"), is_read=True)
    fake.deliver(eml("outlook-reply-aw.eml"))
    poller = GraphPoller(config(processed_folder=None), db, clock=clock)

    report = poller.poll_once()

    assert (report.stored, report.moved) == (2, 2) and fake.count("patch") == 2
    assert all(m.is_read for m in fake.in_folder("inbox"))
    assert poller.poll_once().fetched == 0
    # The naive filter is refused by Graph ($orderby property must lead the $filter).
    token = next(iter(fake.tokens))
    naive = httpx.get(f"{server.url}/v1.0/users/{MAILBOX}/mailFolders/inbox/messages",
                      params={"$filter": "isRead eq false", "$orderby": "receivedDateTime asc"},
                      headers={"Authorization": f"Bearer {token}"},
                      verify=ssl.create_default_context(cafile=str(test_ca.ca_file)))
    assert naive.status_code == 400 and naive.json()["error"]["code"] == "InefficientFilter"


def test_commit_failure_leaves_messages_in_the_folder(config: Callable[..., Settings],
                                                      db: Database, fake: FakeGraph,
                                                      clock: ManualClock) -> None:
    if not db.is_sqlite:
        pytest.skip("the failure is injected with a SQLite trigger")
    for name in MAILS[:2]:
        fake.deliver(eml(name))
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON inbox "
                          "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
    poller = GraphPoller(config(), db, clock=clock)

    report = poller.poll_once()

    assert (report.stored, report.moved) == (0, 0) and fake.count("move") == 0
    assert len(fake.in_folder("inbox")) == 2 and "could not store" in poller.health.diagnosis
    with db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse"))
    clock.advance(POLL)
    assert (poller.poll_once().stored, len(fake.in_folder("inbox"))) == (2, 0)


def test_failed_move_after_commit_creates_no_duplicate(config: Callable[..., Settings],
                                                       db: Database, fake: FakeGraph,
                                                       clock: ManualClock) -> None:
    for name in MAILS[:2]:
        fake.deliver(eml(name))
    fake.fail("move", graph_error(503, "ServiceUnavailable", "Service unavailable."))
    poller = GraphPoller(config(), db, clock=clock)

    first = poller.poll_once()
    clock.advance(POLL)
    second = poller.poll_once()

    assert (first.stored, first.moved) == (2, 0)
    assert (second.fetched, second.stored, second.moved) == (2, 0, 2)
    assert len(rows(db)) == 2 and fake.in_folder("inbox") == []


class KilledAfterCommit(GraphClient):
    def finish(self, ref: ItemRef) -> None:
        raise SystemExit("killed")


def test_crash_between_commit_and_move_then_restart(config: Callable[..., Settings],
                                                    db: Database, fake: FakeGraph,
                                                    clock: ManualClock) -> None:
    for name in MAILS:
        fake.deliver(eml(name))
    settings = config()
    assert settings.graph is not None
    with pytest.raises(SystemExit):
        GraphPoller(settings, db, KilledAfterCommit(settings.graph), clock=clock).poll_once()
    assert len(rows(db)) == 3 and len(fake.in_folder("inbox")) == 3

    report = GraphPoller(settings, db, clock=ManualClock()).poll_once()

    assert (report.fetched, report.stored, report.moved) == (3, 0, 3)
    assert len(rows(db)) == 3


def test_throttling_honours_retry_after(config: Callable[..., Settings], db: Database,
                                        fake: FakeGraph, clock: ManualClock) -> None:
    for name in MAILS:
        fake.deliver(eml(name))
    fake.fail("value", None, throttled(7))  # the second download is throttled
    poller = GraphPoller(config(), db, clock=clock)

    first = poller.poll_once()

    assert (first.stored, first.moved) == (1, 1)  # what was fetched is kept and finished
    assert poller.health.state == "unavailable" and "429" in poller.health.diagnosis
    asked = len(fake.calls)
    clock.advance(6.9)
    assert poller.poll_once().skipped and len(fake.calls) == asked
    clock.advance(0.2)
    second = poller.poll_once()
    assert (second.stored, second.moved) == (2, 2) and fake.in_folder("inbox") == []


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), ("0", 0.0), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_reads_seconds_and_dates(header: str, seconds: float | None) -> None:
    response = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(response) == seconds


def test_server_errors_and_timeouts_back_off_and_lose_nothing(
        config: Callable[..., Settings], db: Database, fake: FakeGraph,
        clock: ManualClock) -> None:
    for name in MAILS:
        fake.deliver(eml(name))
    fake.outage = graph_error(503, "ServiceUnavailable", "Service unavailable.")
    poller = GraphPoller(config(timeout_seconds=0.3), db, clock=clock)

    assert poller.poll_once().errors == 1 and "503" in poller.health.diagnosis
    clock.advance(POLL)
    assert poller.poll_once().errors == 1
    clock.advance(POLL)
    assert poller.poll_once().skipped  # second back-off is twice the interval
    fake.outage = None
    fake.fail("list", Response(200, b"{}", {"Content-Type": "application/json"}, delay=1.0))
    clock.advance(POLL)
    assert poller.poll_once().errors == 1 and "timeout" in poller.health.diagnosis
    clock.advance(8 * POLL)
    report = poller.poll_once()
    assert (report.stored, report.moved) == (3, 3) and poller.health.state == "ok"


def test_wrong_secret_is_diagnosed_without_a_retry_storm(
        config: Callable[..., Settings], db: Database, fake: FakeGraph, clock: ManualClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake.deliver(eml("plain-de.eml"))
    settings = config()
    monkeypatch.setenv(SECRET_ENV, "old~secret")
    poller = GraphPoller(settings, db, clock=clock)

    poller.poll_once()

    assert poller.health.state == "auth" and "AADSTS7000215" in poller.health.diagnosis
    assert "old~secret" not in poller.health.line()
    tokens_asked = fake.count("token")
    for _ in range(5):
        clock.advance(POLL)
        assert poller.poll_once().skipped
    assert fake.count("token") == tokens_asked and len(fake.in_folder("inbox")) == 1


def test_missing_permission_names_it(config: Callable[..., Settings], db: Database,
                                     fake: FakeGraph, clock: ManualClock) -> None:
    fake.roles = ("Mail.Read",)  # read-only: cannot move or mark read, nor even list here
    fake.deliver(eml("plain-de.eml"))
    poller = GraphPoller(config(), db, clock=clock)

    poller.poll_once()
    checked = graph.check(config())

    assert poller.health.state == "auth" and "Mail.ReadWrite" in poller.health.diagnosis
    assert "403" in poller.health.diagnosis and len(fake.in_folder("inbox")) == 1
    assert not checked.ok and "Mail.ReadWrite" in checked.message
    assert "Mail.Send" not in checked.message  # outgoing mail does not go through Graph here


def test_check_notes_a_send_role_the_token_does_not_show(config: Callable[..., Settings],
                                                        fake: FakeGraph) -> None:
    fake.roles = ("Mail.ReadWrite",)  # Mail.Send may be granted by RBAC for Applications

    settings = config()
    sending = settings.outgoing.model_copy(update={"transport": "graph"})

    result = graph.check(settings.model_copy(update={"outgoing": sending}))

    assert result.ok and "no Mail.Send role" in result.message


def test_check_creates_a_missing_processed_folder(config: Callable[..., Settings],
                                                  fake: FakeGraph) -> None:
    fake.deliver(eml("plain-de.eml"))
    settings = config(processed_folder="inbox/Erledigt 2026")

    missing = graph.check(settings)
    created = graph.check(settings, create_folder=True)

    assert not missing.ok and "--create-folder" in missing.message
    assert created.ok and "1 item(s), 1 unread" in created.message
    assert fake.folder("Erledigt 2026").parent == fake.folder("inbox").id


@pytest.mark.parametrize(("options", "expected"), [
    ({"tenant_id": "00000000-0000-0000-0000-000000000000"}, "tenant_id"),
    ({"client_id": "11111111-1111-1111-1111-111111111111"}, "AADSTS700016"),
    ({"ca_bundle": None}, "certificate error"),
])
def test_check_diagnoses_setup_errors(config: Callable[..., Settings], options: dict[str, Any],
                                      expected: str) -> None:
    result = graph.check(config(**options))
    assert not result.ok and expected in result.message


def reply_mime() -> bytes:
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = f"IT-Servicedesk <{MAILBOX}>"
    message["To"] = "Jürgen Müller <juergen.mueller@landkreis-beispiel.de>"
    message["Subject"] = "[LDS-1042] Drucker im 2. OG druckt keine Umlaute mehr (äöü)"
    message["Message-ID"] = "<lds-1042.3@example.org>"
    message["In-Reply-To"] = "<8d2f6b1e-3c4a-4e7b-9f21-0a5c7d9e1b23@landkreis-beispiel.de>"
    message["References"] = "<8d2f6b1e-3c4a-4e7b-9f21-0a5c7d9e1b23@landkreis-beispiel.de>"
    message.set_content("Guten Tag Herr Müller,\n\nwir kümmern uns darum. Grüße\n", cte="8bit")
    return message.as_bytes()


def test_sending_posts_the_mime_base64_to_sendmail(config: Callable[..., Settings],
                                                   fake: FakeGraph) -> None:
    settings = config()
    assert settings.graph is not None
    sender = GraphSender.from_settings(settings.graph)
    raw = reply_mime()

    sender.send(MAILBOX, ["juergen.mueller@landkreis-beispiel.de"], raw, "<lds-1042.3@example.org>")
    sender.send(MAILBOX, ["anna.schmidt@example.org"], raw, "<lds-1042.3@example.org>")

    assert fake.sent[0] == raw and fake.count("sendMail") == 2
    parsed = message_from_bytes(fake.sent[0], policy=policy.default)
    assert "Grüße" in parsed.get_content() and "(äöü)" in parsed["Subject"]
    assert parsed["In-Reply-To"] and parsed["References"]
    assert fake.sent[1] == b"Bcc: anna.schmidt@example.org\r\n" + raw  # envelope-only rcpt


@pytest.mark.parametrize(("answer", "error", "words"), [
    (throttled(3), TemporaryDeliveryError, "429"),
    (graph_error(503, "ServiceUnavailable", "Unavailable."), TemporaryDeliveryError, "503"),
    (graph_error(403, "ErrorAccessDenied", "Access is denied."), TemporaryDeliveryError,
     "Mail.Send"),
    (graph_error(400, "ErrorMimeContentInvalidBase64String",
                 "Invalid base64 string for MIME content."), PermanentDeliveryError,
     "ErrorMimeContentInvalidBase64String"),
])
def test_send_failures_are_classified(config: Callable[..., Settings], fake: FakeGraph,
                                      answer: Response, error: type[Exception],
                                      words: str) -> None:
    settings = config()
    assert settings.graph is not None
    fake.fail("sendMail", answer)

    with pytest.raises(error, match=words) as caught:
        GraphSender.from_settings(settings.graph).send(
            MAILBOX, ["juergen.mueller@landkreis-beispiel.de"], reply_mime(), "<x@y>")

    assert "juergen" not in str(caught.value)


@pytest.mark.parametrize(("options", "message"), [
    ({}, "exactly one of client_secret_env or certificate_path"),
    ({"client_secret_env": "X", "certificate_path": "/etc/app.pfx"}, "exactly one"),
    ({"client_secret_env": "X", "processed_folder": None, "mark_read": False},
     "processed_folder or mark_read"),
])
def test_graph_config_errors_name_the_key(make_settings: Callable[..., Settings],
                                          options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(graph={"mailbox": MAILBOX, "tenant_id": "t", "client_id": "c", **options})


def test_poller_needs_a_graph_section(settings: Settings, db: Database) -> None:
    with pytest.raises(ConfigError, match="graph: not configured"):
        GraphPoller(settings, db)
    assert not graph.check(settings).ok
