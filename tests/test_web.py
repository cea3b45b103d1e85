"""The requester's status page (gateway.web) against the real app over a real SQLite file:
tokens (forged, another requester's, a deleted ticket's) get the same 404, the forms need a
valid signed form token and the right Origin, rate limits per token and per client, the
security headers, nothing private on the page, and the link in mail only without Cc."""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import select
from starlette.testclient import TestClient

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing import statuslink
from gateway.outgoing.senders import RecordingSender
from gateway.web import security
from gateway.web.app import WebParts, internal_app, metrics_route, public_app
from storage import spool
from storage.models import Article, Event, InboxItem, OutboxItem, Ticket
from storage.tickets import TicketStore
from tests.helpers import make_mail

PUBLIC = "https://service.example.org"
REQUESTER = "erika.muster@example.net"


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[App]:
    settings = make_settings(web={"public_url": PUBLIC, "rate_limit": {
        "per_token_per_minute": 1000, "per_client_per_minute": 1000,
        "posts_per_token_per_hour": 100}})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def deliver(app: App, raw: bytes, key: str) -> None:
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(source="import", source_key=key,
                                                           raw=raw)])
    app.worker.drain()


def client_for(app: App, **limits: Any) -> TestClient:
    settings = app.settings
    if limits:
        assert settings.web is not None
        web = settings.web.model_copy(update={"rate_limit": settings.web.rate_limit.model_copy(
            update=limits)})
        settings = settings.model_copy(update={"web": web})
    parts = WebParts(settings, app.db, app.keys.status_link, renderer=lambda: app.renderer,
                     lifecycle=lambda: app.worker.lifecycle)
    return TestClient(public_app(parts), base_url=PUBLIC)


def token_of(app: App, ref: str, requester: str = REQUESTER) -> str:
    return statuslink.token(app.keys.status_link, ref, requester)


def outbox(app: App) -> list[OutboxItem]:
    with app.db.reading() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def body_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.default)
    part = msg.get_body(("plain",))  # type: ignore[attr-defined]
    return str(part.get_content()) if part is not None else ""


@pytest.fixture
def ticket(app: App) -> str:
    deliver(app, make_mail(body="Guten Tag,\nder Drucker im 3. OG druckt nicht.\n"
                           "Rufen Sie mich an: 0371 1234567\n").as_bytes(), "1")
    with app.db.reading() as session:
        return session.scalars(select(Ticket.ref)).one()


def test_acknowledgement_carries_the_link(app: App, ticket: str) -> None:
    [ack] = [o for o in outbox(app) if o.kind == "requester-received"]
    link = f"{PUBLIC}/s/{token_of(app, ticket)}"
    assert link in body_of(ack.raw)
    for agent_mail in (o for o in outbox(app) if o.kind.startswith("agent-")):
        assert "/s/" not in body_of(agent_mail.raw)


def test_page_shows_status_and_public_conversation_only(app: App, ticket: str) -> None:
    with app.db.session() as session:  # an internal note with an agent's address in it
        store = TicketStore(session)
        row = store.by_ref(ticket)
        assert row is not None
        store.add_article(row, kind="note", direction="in", from_addr="anna.schmidt@example.org",
                          subject="x", body="GEHEIME NOTIZ an anna.schmidt@example.org")
        store.add_article(row, kind="agent", direction="in",
                          from_addr="anna.schmidt@example.org", subject="x",
                          body="Bitte starten Sie neu. Gruß, anna.schmidt@example.org")
        store.add_article(row, kind="requester", direction="in",
                          from_addr="kollege@example.net", subject="x", body="CC-PARTEI-MAIL")
    deliver(app, make_mail(sender="Max Other <max.other@example.net>",
                           subject="Anderes Anliegen").as_bytes(), "2")
    page = client_for(app).get(f"/s/{token_of(app, ticket)}")
    assert page.status_code == 200
    html = page.text
    assert ticket in html and "Drucker im 3. OG defekt" in html
    assert "Eingegangen – noch nicht in Bearbeitung" in html or "In Bearbeitung" in html
    assert 'lang="de"' in html
    assert "der Drucker im 3. OG druckt nicht." in html
    assert "0371 1234567" not in html  # stored redacted
    assert "Bitte starten Sie neu." in html and "Anna Schmidt (IT-Servicedesk)" in html
    assert "GEHEIME NOTIZ" not in html and "CC-PARTEI-MAIL" not in html
    assert "anna.schmidt@example.org" not in html and "max.other" not in html
    other = token_of(app, f"{ticket[:-1]}2", "max.other@example.net")
    assert other not in html and other.split(".")[1] not in html
    assert "<script" not in html and "style=" not in html


def test_wrong_tokens_get_the_same_404(app: App, ticket: str) -> None:
    client = client_for(app)
    good = token_of(app, ticket)
    missing = client.get("/nothing/here")
    assert missing.status_code == 404
    for bad in (good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # forged MAC
                token_of(app, ticket, "someone.else@example.net"),  # another address
                token_of(app, "LDS-999"),  # no such ticket
                "not-a-token", good.lower()):
        answer = client.get(f"/s/{bad}")
        assert answer.status_code == 404, bad
        assert answer.text == missing.text
    assert client.post(f"/s/{good}").status_code == 404  # a method that does not exist


def test_other_requesters_token_opens_only_their_ticket(app: App, ticket: str) -> None:
    deliver(app, make_mail(sender="max.other@example.net", subject="Zweites").as_bytes(), "2")
    client = client_for(app)
    theirs = token_of(app, "LDS-2", "max.other@example.net")
    assert "Zweites" in client.get(f"/s/{theirs}").text
    mixed = f"{ticket}.{theirs.split('.')[1]}"  # their MAC on our reference
    assert client.get(f"/s/{mixed}").status_code == 404


def test_rotated_secret_or_deleted_ticket_revokes(app: App, ticket: str) -> None:
    token = token_of(app, ticket)
    client = client_for(app)
    assert client.get(f"/s/{token}").status_code == 200
    assert statuslink.verify(b"another-secret-key-of-32-bytes!!", token, REQUESTER) is False
    with app.db.session() as session:
        row = TicketStore(session).by_ref(ticket)
        session.delete(row)
    assert client.get(f"/s/{token}").status_code == 404


def page_form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_resolve_needs_a_valid_form_token_and_origin(app: App, ticket: str) -> None:
    client = client_for(app)
    token = token_of(app, ticket)
    ft = page_form_token(client.get(f"/s/{token}").text)
    forged = client.post(f"/s/{token}/resolve", data={"form_token": "1." + "0" * 32})
    assert forged.status_code == 403
    missing = client.post(f"/s/{token}/resolve", data={})
    assert missing.status_code == 403
    expired = security.form_token(app.keys.status_link, token, now=0)
    assert client.post(f"/s/{token}/resolve", data={"form_token": expired}).status_code == 403
    other_page = security.form_token(app.keys.status_link, token_of(app, "LDS-77"))
    assert client.post(f"/s/{token}/resolve", data={"form_token": other_page}).status_code == 403
    cross = client.post(f"/s/{token}/resolve", data={"form_token": ft},
                        headers={"Origin": "https://evil.example.com"})
    assert cross.status_code == 403
    cross = client.post(f"/s/{token}/resolve", data={"form_token": ft},
                        headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and "Formular abgelaufen" in cross.text
    with app.db.reading() as session:
        assert session.scalars(select(Ticket.status)).one() == "new"
    done = client.post(f"/s/{token}/resolve", data={"form_token": ft}, follow_redirects=False,
                       headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"})
    assert done.status_code == 303 and done.headers["location"].endswith("?done=resolved")
    with app.db.reading() as session:
        assert session.scalars(select(Ticket.status)).one() == "resolved"
        kinds = list(session.scalars(select(Event.kind)))
    assert "requester-resolved" in kinds
    solved = [o for o in outbox(app) if o.kind == "requester-solved"]
    assert len(solved) == 1 and solved[0].envelope_to == [REQUESTER]
    assert f"/s/{token}" in body_of(solved[0].raw)
    page = client.get(f"/s/{token}?done=resolved").text
    assert "als erledigt markiert" in page and "/resolve" not in page


def test_message_goes_through_the_intake_and_pipeline(app: App, ticket: str) -> None:
    client = client_for(app)
    token = token_of(app, ticket)
    ft = page_form_token(client.get(f"/s/{token}").text)
    empty = client.post(f"/s/{token}/message", data={"form_token": ft, "message": "  "})
    assert empty.status_code == 400 and 'aria-invalid="true"' in empty.text
    sent = client.post(f"/s/{token}/message", follow_redirects=False, data={
        "form_token": ft,
        "message": "Der Drucker steht bei Herrn Zschoche, Tel. 0371 7654321.\nDanke"})
    assert sent.status_code == 303
    with app.db.reading() as session:
        row = session.scalars(select(InboxItem).where(InboxItem.source == "web")).one()
        assert row.envelope_from == REQUESTER
    app.worker.drain()
    with app.db.reading() as session:
        bodies = [a.body for a in session.scalars(
            select(Article).where(Article.kind == "requester").order_by(Article.id))]
        assert session.scalar(select(Ticket.id).where(Ticket.ref != ticket)) is None  # threaded
    assert len(bodies) == 2
    assert "Der Drucker steht bei" in bodies[1]
    assert "Zschoche" not in bodies[1] and "7654321" not in bodies[1]
    page = client.get(f"/s/{token}").text
    assert "Der Drucker steht bei" in page and "Zschoche" not in page


def test_rate_limit_per_token_and_per_client(app: App, ticket: str) -> None:
    client = client_for(app, per_token_per_minute=3, per_client_per_minute=5)
    token = token_of(app, ticket)
    codes = [client.get(f"/s/{token}").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    codes = [client.get(f"/s/{token_of(app, 'LDS-5')}").status_code for _ in range(3)]
    assert codes == [404, 429, 429]  # the client's 6th request in the minute: refused
    posts = client_for(app, posts_per_token_per_hour=1)
    ft = page_form_token(posts.get(f"/s/{token}").text)
    assert posts.post(f"/s/{token}/message", data={"form_token": ft, "message": "a"},
                      follow_redirects=False).status_code == 303
    assert posts.post(f"/s/{token}/message", data={"form_token": ft, "message": "b"}
                      ).status_code == 429


def test_security_headers_and_static_css(app: App, ticket: str) -> None:
    client = client_for(app)
    for path in (f"/s/{token_of(app, ticket)}", "/s/forged", "/static/style.css"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
    assert client.get(f"/s/{token_of(app, ticket)}").headers["cache-control"] == "no-store"
    assert "--primary: #004b87" in client.get("/static/theme.css").text


def test_link_only_in_mail_without_cc(app: App, ticket: str) -> None:
    key = app.keys.status_link
    assert statuslink.for_mail(app.settings, key, ticket, REQUESTER, [REQUESTER])
    assert statuslink.for_mail(app.settings, key, ticket, REQUESTER,
                               [REQUESTER, "cc@example.net"]) is None
    deliver(app, make_mail(sender=f"Erika <{REQUESTER}>", subject="Mit Kopie",
                           headers={"Cc": "kollege@example.net"}).as_bytes(), "cc")
    with app.db.session() as session:  # a status mail goes to requester and the Cc'd party
        from gateway.web import actions

        store = TicketStore(session)
        row = store.by_ref("LDS-2")
        assert row is not None
        actions.resolve(app.settings, store, row, renderer=app.renderer, lifecycle=None,
                        status_key=key, now=row.created_at)
    [solved] = [o for o in outbox(app) if o.kind == "requester-solved"]
    assert "kollege@example.net" in solved.envelope_to
    assert "/s/" not in body_of(solved.raw)


def test_internal_listener_healthz(app: App) -> None:
    client = TestClient(internal_app(app.db))
    assert client.get("/healthz").text == "ok\n"
    assert client.get("/s/anything").status_code == 404


def test_internal_listener_serves_the_metrics_and_the_public_one_never(app: App) -> None:
    """With `metrics:` configured, serve hands its registry to the internal listener too."""
    registry = CollectorRegistry()
    Counter("postdesk_probe", "a probe", registry=registry).inc()
    internal = TestClient(internal_app(app.db, [metrics_route(registry)]))
    answer = internal.get("/metrics")
    assert answer.status_code == 200 and "postdesk_probe_total 1.0" in answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    assert client_for(app).get("/metrics").status_code == 404


def test_expected_answer_in_business_terms(app: App, ticket: str) -> None:
    from datetime import UTC, datetime

    from gateway.web import words

    due = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
    now = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    assert words.due(due, "de", "Europe/Berlin", now) == "bis Donnerstag, 19.11., 11:00 Uhr"
    assert words.due(due, "en", "Europe/Berlin", now) == "by Thursday, 19 Nov, 11:00"
    with app.db.session() as session:
        row = TicketStore(session).by_ref(ticket)
        assert row is not None
        row.status, row.first_response_due_at = "open", due
    html = client_for(app).get(f"/s/{token_of(app, ticket)}").text
    assert "Antwort voraussichtlich" in html and "Donnerstag, 19.11." in html
