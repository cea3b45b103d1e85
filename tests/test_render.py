"""Renderer: layered lookup, language fallback, strict and sandboxed rendering, safe subjects,
local time, caching; and the shipped German/English templates themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.errors import TemplateError
from gateway.outgoing.render import Renderer
from storage.models import Ticket
from tests.helpers import ROOT

SHIPPED = ROOT / "templates"
NAMES = ("requester-received", "requester-reopened", "requester-new-linked")
VIEW: dict[str, object] = {
    "ref": "LDS-1042",
    "subject": "Drucker im 3. OG defekt",
    "status": "new",
    "queue": None,
    "priority": "normal",
    "created_at": datetime(2024, 7, 1, 8, 5, tzinfo=UTC),
    "received_at": datetime(2024, 7, 1, 8, 5, tzinfo=UTC),
    "linked_ref": "LDS-1000",
    "requester_name": "Erika Muster",
    "service_name": "IT-Servicedesk",
    "service_address": "servicedesk@example.org",
}


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def mail_set(root: Path, folder: str, marker: str, html: bool = True) -> None:
    write(root, f"{folder}/ack.subject.j2", f"[{{{{ ref }}}}] {marker}")
    write(root, f"{folder}/ack.txt.j2", f"{marker} text {{{{ ref }}}}\n")
    if html:
        write(root, f"{folder}/ack.html.j2", f"<p>{marker} {{{{ subject }}}}</p>")


@pytest.fixture
def layered(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    mail_set(root, "de", "shipped-de")
    mail_set(root, "en", "shipped-en")
    mail_set(root, "site/de", "site-de", html=False)
    mail_set(root, "queues/it/de", "queue-it-de")
    return root


def test_lookup_order_queue_then_site_then_shipped(layered: Path) -> None:
    renderer = Renderer(layered, "de")
    assert renderer.render("ack", "de", VIEW, queue="it").subject == "[LDS-1042] queue-it-de"
    assert renderer.render("ack", "de", VIEW, queue="other").subject == "[LDS-1042] site-de"
    assert renderer.render("ack", "de", VIEW).text == "site-de text LDS-1042\n"
    assert renderer.render("ack", "en", VIEW, queue="it").subject == "[LDS-1042] shipped-en"


def test_html_comes_only_from_the_layer_that_holds_the_text(layered: Path) -> None:
    renderer = Renderer(layered, "de")
    # the site override has no HTML: a stale shipped HTML must not go out next to its text
    assert renderer.render("ack", "de", VIEW).html is None
    queue_mail = renderer.render("ack", "de", VIEW, queue="it")
    assert queue_mail.html == "<p>queue-it-de Drucker im 3. OG defekt</p>"


def test_missing_subject_in_override_falls_back_to_the_lookup(layered: Path) -> None:
    (layered / "queues/it/de/ack.subject.j2").unlink()
    renderer = Renderer(layered, "de")
    rendered = renderer.render("ack", "de", VIEW, queue="it")
    assert rendered.subject == "[LDS-1042] site-de" and rendered.text.startswith("queue-it-de")


def test_language_falls_back_to_the_default_language(tmp_path: Path) -> None:
    root = tmp_path / "t"
    mail_set(root, "de", "nur-deutsch")
    write(root, "de/lang.subject.j2", "{{ language }}")
    write(root, "de/lang.txt.j2", "{{ language }}")
    renderer = Renderer(root, "de")
    assert renderer.render("ack", "en", VIEW).subject == "[LDS-1042] nur-deutsch"
    assert renderer.render("lang", "en", VIEW).subject == "de"  # the language actually used


def test_missing_template_names_it(layered: Path) -> None:
    with pytest.raises(TemplateError, match="'nothing-here' not found"):
        Renderer(layered, "de").render("nothing-here", "de", VIEW)


def test_strict_undefined_is_an_error_naming_template_not_data(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "{{ ref }}")
    write(tmp_path, "de/x.txt.j2", "Hallo {{ no_such_variable }} {{ subject }}")
    with pytest.raises(TemplateError) as info:
        Renderer(tmp_path, "de").render("x", "de", VIEW)
    message = str(info.value)
    assert "'x'" in message and "no_such_variable" in message
    assert "Drucker" not in message


@pytest.mark.parametrize("expression", [
    "ref.__class__.__mro__",
    "''.__class__.__subclasses__()",
    "subject.format.__globals__",
    "cycler.__init__.__globals__",
])
def test_sandbox_blocks_unsafe_attribute_access(tmp_path: Path, expression: str) -> None:
    write(tmp_path, "de/x.subject.j2", "ok")
    write(tmp_path, "de/x.txt.j2", f"{{{{ {expression} }}}}")
    with pytest.raises(TemplateError, match=r"unsafe|undefined"):
        Renderer(tmp_path, "de").render("x", "de", VIEW)


def test_sandbox_forbids_mutating_the_view(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "ok")
    write(tmp_path, "de/x.txt.j2", "{{ tags.append('x') }}")
    with pytest.raises(TemplateError, match="unsafe"):
        Renderer(tmp_path, "de").render("x", "de", {**VIEW, "tags": ["a"]})


def test_view_must_hold_plain_values_only(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "ok")
    write(tmp_path, "de/x.txt.j2", "{{ ticket.ref }}")
    with pytest.raises(TemplateError, match="'ticket' is a Ticket"):
        Renderer(tmp_path, "de").render("x", "de", {"ticket": Ticket(ref="LDS-1")})


@pytest.mark.parametrize("subject", ["Drucker\nBcc: victim@example.org", "a\rb", "x\x00y"])
def test_line_break_in_subject_is_rejected(tmp_path: Path, subject: str) -> None:
    write(tmp_path, "de/x.subject.j2", "[{{ ref }}] {{ subject }}")
    write(tmp_path, "de/x.txt.j2", "text")
    with pytest.raises(TemplateError, match="line break") as info:
        Renderer(tmp_path, "de").render("x", "de", {**VIEW, "subject": subject})
    assert "victim" not in str(info.value)


def test_failure_inside_an_expression_reports_only_the_error_class(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "ok")
    write(tmp_path, "de/x.txt.j2", "{{ subject + 1 }}")
    with pytest.raises(TemplateError, match=r"rendering failed \(TypeError\)") as info:
        Renderer(tmp_path, "de").render("x", "de", VIEW)
    assert "Drucker" not in str(info.value)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "ok")
    write(tmp_path, "de/x.txt.j2", "eins\n{% if %}\n")
    with pytest.raises(TemplateError, match=r"\(de/x.txt.j2:2\): syntax error") as info:
        Renderer(tmp_path, "de").render("x", "de", VIEW)
    assert info.value.line == 2 and info.value.file == str(tmp_path / "de/x.txt.j2")


def test_autoescape_in_html_only(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "{{ subject }}")
    write(tmp_path, "de/x.txt.j2", "{{ subject }}")
    write(tmp_path, "de/x.html.j2", "<p>{{ subject }}</p>")
    rendered = Renderer(tmp_path, "de").render("x", "de", {"subject": "<b>A & B</b>"})
    assert rendered.subject == "<b>A & B</b>"
    assert rendered.text == "<b>A & B</b>\n"
    assert rendered.html == "<p>&lt;b&gt;A &amp; B&lt;/b&gt;</p>"


def test_localtime_shows_service_time_zone(tmp_path: Path) -> None:
    write(tmp_path, "de/t.subject.j2", "{{ at|localtime }}")
    write(tmp_path, "de/t.txt.j2", "{{ at|localtime('%H:%M') }}")
    write(tmp_path, "en/t.subject.j2", "{{ at|localtime }}")
    write(tmp_path, "en/t.txt.j2", "-")
    renderer = Renderer(tmp_path, "de")
    summer = datetime(2024, 7, 1, 8, 5, tzinfo=UTC)
    winter = datetime(2024, 1, 15, 23, 30, tzinfo=UTC)
    assert renderer.render("t", "de", {"at": summer}).subject == "01.07.2024, 10:05 Uhr"
    assert renderer.render("t", "de", {"at": winter}).subject == "16.01.2024, 00:30 Uhr"
    assert renderer.render("t", "de", {"at": summer.isoformat()}).text == "10:05\n"
    assert renderer.render("t", "en", {"at": summer}).subject == "2024-07-01 10:05"
    other = Renderer(tmp_path, "de", timezone="America/New_York")
    assert other.render("t", "de", {"at": summer}).subject == "01.07.2024, 04:05 Uhr"


def test_templates_are_compiled_once_until_reload(tmp_path: Path) -> None:
    write(tmp_path, "de/x.subject.j2", "erste Fassung")
    write(tmp_path, "de/x.txt.j2", "text")
    renderer = Renderer(tmp_path, "de")
    assert renderer.render("x", "de", {}).subject == "erste Fassung"
    write(tmp_path, "de/x.subject.j2", "zweite Fassung")
    assert renderer.render("x", "de", {}).subject == "erste Fassung"
    renderer.reload()
    assert renderer.render("x", "de", {}).subject == "zweite Fassung"


def test_site_layout_overrides_the_shared_layout(tmp_path: Path) -> None:
    write(tmp_path, "_layout.txt.j2", "{% block body %}{% endblock %}\n\nshipped footer")
    write(tmp_path, "de/x.subject.j2", "s")
    write(tmp_path, "de/x.txt.j2", '{% extends "_layout.txt.j2" %}{% block body %}B{% endblock %}')
    assert Renderer(tmp_path, "de").render("x", "de", {}).text == "B\nshipped footer\n"
    write(tmp_path, "site/_layout.txt.j2", "{% block body %}{% endblock %}\n\nsite footer")
    assert Renderer(tmp_path, "de").render("x", "de", {}).text == "B\nsite footer\n"


def test_names_cannot_escape_the_templates_folder(layered: Path) -> None:
    renderer = Renderer(layered, "de")
    with pytest.raises(TemplateError, match="invalid"):
        renderer.render("../de/ack", "de", VIEW)
    with pytest.raises(TemplateError, match="invalid"):
        renderer.render("ack", "../de", VIEW)
    # a queue whose name is no folder name simply has no override layer
    assert renderer.render("ack", "de", VIEW, queue="../queues/it").subject.endswith("site-de")
    assert renderer.render("ack", "de", VIEW, queue="IT/Netz").subject.endswith("site-de")


# --- the shipped templates ------------------------------------------------------------------


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", NAMES)
def test_every_shipped_template_exists_in_both_languages(name: str, language: str) -> None:
    for part in ("subject", "txt", "html"):
        assert (SHIPPED / language / f"{name}.{part}.j2").is_file()


@pytest.mark.parametrize("language", ["de", "en"])
@pytest.mark.parametrize("name", NAMES)
def test_shipped_templates_render_with_reference_and_signature(name: str, language: str) -> None:
    rendered = Renderer(SHIPPED, "de").render(name, language, VIEW)
    assert rendered.subject.startswith("[LDS-1042] ")
    assert "Drucker im 3. OG defekt" in rendered.subject
    assert "[LDS-1042]" in rendered.text and "IT-Servicedesk" in rendered.text
    assert rendered.html is not None and f'lang="{language}"' in rendered.html
    assert "[LDS-1042]" in rendered.html
    if name == "requester-new-linked":
        assert "LDS-1000" in rendered.text and "LDS-1000" in rendered.subject
    for line in rendered.text.splitlines():
        assert len(line) <= 80


def test_german_acknowledgement_reads_as_specified() -> None:
    rendered = Renderer(SHIPPED, "de").render("requester-received", "de", VIEW)
    assert rendered.subject == "[LDS-1042] Eingangsbestätigung: Drucker im 3. OG defekt"
    assert "01.07.2024, 10:05 Uhr" in rendered.text
    assert "antworten Sie bitte" in rendered.text and "Mit freundlichen Grüßen" in rendered.text


def test_shipped_subject_without_ticket_subject_uses_a_placeholder() -> None:
    rendered = Renderer(SHIPPED, "de").render("requester-received", "de", {**VIEW, "subject": ""})
    assert rendered.subject == "[LDS-1042] Eingangsbestätigung: (ohne Betreff)"
