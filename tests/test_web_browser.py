"""The status page in a real headless browser: Debian's chromium (/usr/bin/chromium, installed
by scripts/chromium-up) driven by Playwright, nothing downloaded at test time. The real service
runs (`serve` with `web:` on free ports, mail out over SMTP to a sink): a requester's mail, the
link from the acknowledgement, the page with status and conversation, a message added (it lands
on the ticket, redacted), "erledigt" (the status mail goes out), another requester's and a forged
token get 404. axe-core (bundled by axe-playwright-python) checks WCAG 2.1 A/AA on the page and
its forms. Screenshots go to the test's tmp_path; their paths are printed (pytest -s shows them).

Skipped, with the reason, when chromium or Playwright is missing, so `make test` passes on a
machine without a browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from storage.models import Article, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import free_port, make_mail, running, send, wait_for

CHROMIUM = Path("/usr/bin/chromium")
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

playwright_sync = pytest.importorskip("playwright.sync_api",
                                      reason="Playwright is not installed (the test extra)")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: run scripts/chromium-up (Debian's chromium package)",
                allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def web_service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    port = free_port()
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        agents=[{"email": "anna.schmidt@example.org", "name": "Anna Schmidt"}],
        web={"public_url": f"http://127.0.0.1:{port}", "service_name": "Bürgerservice Chemnitz",
             "public": {"host": "127.0.0.1", "port": port},
             "internal": {"host": "127.0.0.1", "port": free_port()}},
    )
    app = App.build(settings)
    with running(app):
        yield app


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                        args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def sent_to(sink: Sink, address: str, kind: str) -> list[EmailMessage]:
    return [m for m in sink.parsed() if address in str(m["To"]) and kind in str(m["Subject"])]


def link_in(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    found = re.search(r"http://127\.0\.0\.1:\d+/s/\S+", body.get_content())
    assert found, "no status link in the acknowledgement"
    return found.group(0)


def accessible(page: Any, where: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    assert results.violations_count == 0, f"{where}:\n{results.generate_report()}"


def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_requester_uses_the_status_page(web_service: App, sink: Sink, browser: Any,
                                        tmp_path: Path) -> None:
    app = web_service
    send(app.settings, make_mail(body="Guten Tag,\nder Drucker im 3. OG druckt nicht.\n"
                                 "Mit freundlichen Grüßen\nErika Muster\n"))
    send(app.settings, make_mail(sender="Max Other <max.other@example.net>",
                                 subject="Anderes Anliegen"))
    ack = wait_for(lambda: sent_to(sink, "erika.muster@example.net", "Eingangsbest"))[0]
    other_ack = wait_for(lambda: sent_to(sink, "max.other@example.net", "Eingangsbest"))[0]
    link, other_link = link_in(ack), link_in(other_ack)
    context = browser.new_context(locale="de-DE", viewport={"width": 1000, "height": 900})
    page = context.new_page()

    answer = page.goto(link)
    assert answer is not None and answer.status == 200
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.locator("html").get_attribute("lang") == "de"
    facts = page.locator("dl.facts").inner_text()
    assert "LDS-" in facts and "Drucker im 3. OG defekt" in facts
    assert "noch nicht in Bearbeitung" in facts
    assert "der Drucker im 3. OG druckt nicht." in page.locator("ol.conversation").inner_text()
    html = page.content()
    assert other_link.rsplit("/", 1)[1] not in html and "anna.schmidt" not in html
    shot(page, tmp_path, "status-page")
    accessible(page, "status page")

    # Nachricht ergänzen: through the intake and the pipeline, redacted on the ticket
    page.get_by_label("Ihre Nachricht").fill(
        "Der Drucker steht im Zimmer von Frau Zschoche, erreichbar unter 0371 7654321.")
    page.get_by_role("button", name="Nachricht senden").click()
    assert "Ihre Nachricht ist eingegangen" in page.locator("[role=status]").inner_text()
    shot(page, tmp_path, "message-sent")

    def stored() -> list[str]:
        with app.db.reading() as session:
            return [a.body for a in session.scalars(
                select(Article).where(Article.kind == "requester").order_by(Article.id))
                if "Zimmer von" in a.body]

    [body] = wait_for(stored)
    assert "Zschoche" not in body and "7654321" not in body
    page.goto(link)
    conversation = page.locator("ol.conversation").inner_text()
    assert "Zimmer von" in conversation and "Zschoche" not in conversation
    accessible(page, "status page after a message")

    # an empty message: the form says what is wrong, accessibly
    page.get_by_role("button", name="Nachricht senden").click()  # `required` stops the browser
    assert page.url == link

    # erledigt: the ticket is resolved and the status mail goes out
    page.get_by_role("button", name="Mein Anliegen hat sich erledigt").click()
    assert "als erledigt markiert" in page.locator("[role=status]").inner_text()
    assert "Erledigt" in page.locator("dl.facts").inner_text()
    shot(page, tmp_path, "resolved")
    accessible(page, "status page, resolved")
    wait_for(lambda: sent_to(sink, "erika.muster@example.net", "erledigt")
             or sent_to(sink, "erika.muster@example.net", "gelöst"))
    with app.db.reading() as session:
        statuses = dict(session.execute(select(Ticket.requester, Ticket.status)).all())
    assert statuses["erika.muster@example.net"] == "resolved"
    assert statuses["max.other@example.net"] != "resolved"

    # another requester's token on our reference, and a forged one: the same 404
    ref_part, _mac = link.rsplit("/", 1)[1].split(".")
    other_mac = other_link.rsplit(".", 1)[1]
    for bad in (f"{ref_part}.{other_mac}", f"{ref_part}.{'A' * 22}"):
        answer = page.goto(link.rsplit("/", 1)[0] + "/" + bad)
        assert answer is not None and answer.status == 404
    shot(page, tmp_path, "not-found")
    context.close()


def test_page_at_200_percent_zoom_and_without_css(web_service: App, sink: Sink, browser: Any,
                                                  tmp_path: Path) -> None:
    send(web_service.settings, make_mail(sender="Erika Muster <erika.muster@example.net>"))
    ack = wait_for(lambda: sent_to(sink, "erika.muster@example.net", "Eingangsbest"))[0]
    link = link_in(ack)
    zoomed = browser.new_context(viewport={"width": 640, "height": 800},
                                 device_scale_factor=2)  # a 1280 px window at 200 %
    page = zoomed.new_page()
    page.goto(link)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 640, "horizontal scrolling at 200 % zoom"
    shot(page, tmp_path, "zoom-200")
    accessible(page, "status page at 200 %")
    zoomed.close()
    bare = browser.new_context()
    page = bare.new_page()
    page.route("**/static/*.css", lambda route: route.abort())
    page.goto(link)
    assert page.get_by_role("button", name="Mein Anliegen hat sich erledigt").is_visible()
    assert page.get_by_label("Ihre Nachricht").is_visible()
    shot(page, tmp_path, "without-css")
    bare.close()


def test_report_page_in_the_browser(web_service: App, sink: Sink, browser: Any,
                                    tmp_path: Path) -> None:
    """The report under /reports on the internal listener (issue 17, part 2): its styles apply
    under its own CSP (style hashes, no script), no person is named, axe finds no WCAG 2.1
    A/AA violation; a screenshot goes to tmp_path."""
    app = web_service
    send(app.settings, make_mail(body="Guten Tag,\nder Drucker druckt nicht.\nErika Muster\n"))
    send(app.settings, make_mail(sender="Max Other <max.other@example.net>",
                                 subject="Anderes Anliegen"))
    wait_for(lambda: sent_to(sink, "max.other@example.net", "Eingangsbest"))
    assert app.settings.web is not None
    internal = f"http://127.0.0.1:{app.settings.web.internal.port}"
    context = browser.new_context(locale="de-DE", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    answer = page.goto(f"{internal}/reports/")
    assert answer is not None and answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "script-src 'none'" in policy and "'sha256-" in policy
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").inner_text().startswith("Bericht")
    # the inline styles apply under the hashes: the header has the service's colour
    header = page.locator("header.site").evaluate(
        "e => getComputedStyle(e).backgroundColor")
    assert header == "rgb(0, 75, 133)" or header.startswith("rgb(0, 75, 13")
    assert page.locator("svg[role=img]").count() >= 3  # tags' chart only with tags
    assert "Neue Anliegen" in page.locator("ul.figures").inner_text()
    html = page.content().lower()
    assert "erika" not in html and "max.other" not in html and "drucker" not in html
    assert "lds-" not in html
    shot(page, tmp_path, "report")
    accessible(page, "report")
    public = page.goto(f"{app.settings.web.public_url}/reports/")
    assert public is not None and public.status == 404
    context.close()
