"""Check the mail templates as strictly as the routing rules, and keep the checked set in force.

`check()` reads every template file once and accepts the set only if every file parses, every
mail of every language and layer (shipped, `site/`, `queues/<queue>/`, with their layouts)
renders against sample views, and every mail the code sends exists in the default language.
Every problem is reported as `file:line: message`. `ActiveTemplates` puts a checked set in force
in `serve` and replaces it only by another checked set (a broken edit is refused as a whole and
the last good templates keep rendering), like `routing.ActiveRuleset` does for rules.

The sample views come from the same functions that build the real views (gateway.outgoing.views), so
a template that uses a value no real mail provides fails here, not in front of a requester.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.errors import PostdeskError, TemplateError, TemplatesInvalid
from gateway.mail.model import MailAttachment
from gateway.mail.original import Original
from gateway.outgoing import views
from gateway.outgoing.render import Renderer, Sources, template_files
from gateway.outgoing.views import (
    ACKNOWLEDGEMENTS,
    AGENT_REPLIES,
    NOTIFICATION,
    ORIGINAL,
    REQUESTER_MAILS,
)
from gateway.reloading import Reloading, State, files_fingerprint
from storage.models import Ticket

REQUIRED = (*ACKNOWLEDGEMENTS, NOTIFICATION, ORIGINAL, *AGENT_REPLIES, *REQUESTER_MAILS,
            *views.SLA_NOTICES, views.DIGEST)
"""The mails the code itself sends: each must exist in the default language."""

_SAMPLE_TIME = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def check(settings: Settings, directory: Path | None = None) -> Renderer:
    """A renderer over the templates in `directory` (default: `templates_dir`) once every one
    of them passed; raises TemplatesInvalid listing every problem otherwise."""
    root = Path(directory or settings.templates_dir)
    if not root.is_dir():
        problem = "templates directory not found" if not root.exists() else "not a directory"
        raise TemplatesInvalid([TemplateError(problem, file=str(root))])
    service = settings.service
    renderer = Renderer(root, service.language, service.timezone, sources=Sources.read(root))
    errors: dict[str, TemplateError] = {}
    for error in _problems(settings, renderer):
        errors.setdefault(error.located(), error)  # one mail's layout fails for every mail
    if errors:
        raise TemplatesInvalid(sorted(errors.values(), key=lambda e: (e.file or "", e.line or 0)))
    return renderer


def _problems(settings: Settings, renderer: Renderer) -> Iterator[TemplateError]:
    sources = renderer.sources
    yield from sources.problems
    unreadable = {Path(p.file).relative_to(renderer.root).as_posix()
                  for p in sources.problems if p.file}
    for relative in sorted(sources.files):
        try:
            renderer.compile(relative)
        except TemplateError as error:
            yield error
    for relative in sorted(sources.files):
        if not relative.endswith(".txt.j2") or Path(relative).name.startswith("_"):
            continue
        folder, _, filename = relative.rpartition("/")
        language = _layer_language(folder)
        if language is None:
            yield TemplateError(
                "not in a language folder: use <lang>/, site/<lang>/ or queues/<queue>/<lang>/",
                file=str(renderer.root / relative),
            )
            continue
        name = filename.removesuffix(".txt.j2")
        if any(f"{folder}/{name}.{part}.j2" in unreadable for part in ("subject", "html")):
            continue  # reported above; rendering would only add a confusing second error
        for view in sample_views(settings, name, language):
            try:
                renderer.render_layer(name, folder, language, view)
            except TemplateError as error:
                yield error
    default = settings.service.language
    for name in REQUIRED:
        if not any(f"{folder}/{name}.txt.j2" in sources.files
                   for folder in (f"site/{default}", default)):
            yield TemplateError(
                f"missing: postdesk sends this mail ({default}/{name}.txt.j2 with its "
                f"{name}.subject.j2)",
                file=str(renderer.root / default / f"{name}.txt.j2"),
            )


def _layer_language(folder: str) -> str | None:
    """The language of a layer folder (`de`, `site/de`, `queues/it/de`), else None."""
    parts = folder.split("/") if folder else []
    if len(parts) == 1 and parts[0] not in ("site", "queues"):
        return parts[0]
    if len(parts) == 2 and parts[0] == "site":
        return parts[1]
    if len(parts) == 3 and parts[0] == "queues":
        return parts[2]
    return None


def sample_views(settings: Settings, name: str, language: str) -> list[dict[str, Any]]:
    """Two views for mail `name`, built like the real ones: every optional value given, and
    every optional value left empty (so both branches of `{% if owner %}` are tried); the
    mails that may show an original get a third view with one."""
    agent = settings.agents[0].email if settings.agents else "agent@example.org"
    samples = []
    for full in (True, False):
        ticket = _sample_ticket(settings, language, full)
        if name == NOTIFICATION:
            view = views.notification_view(
                settings, ticket, agent, language, reason="new" if full else "assigned",
                text="Der Drucker druckt nicht.\n" if full else "",
                attachments=["foto.jpg", "fehler.pdf"] if full else [],
                article=1 if full else None,
            )
            if full:
                samples.append(views.notification_view(
                    settings, ticket, agent, language, reason="requester-replied",
                    text="", attachments=["foto.jpg"], article=3,
                    original=_sample_original(full=True)))
        elif name == ORIGINAL:
            view = views.original_view(settings, ticket, agent, language, article=2,
                                       original=_sample_original(full) if full else None)
            if full:
                samples.append(views.original_view(settings, ticket, agent, language,
                                                   article=1, original=_sample_original(False)))
        elif name in AGENT_REPLIES:
            extra: dict[str, object] = {}
            if name == "agent-command-error":
                extra["errors"] = [
                    {"line_no": 2, "line": "#status offen?", "message": "unknown"}
                ] if full else []
            elif name == "agent-reply-held":
                reasons = ["marker", "token", "agent-address", "help", "notification"]
                extra["reasons"] = reasons if full else []
            elif name == "agent-not-in-charge":
                extra["owner_name"] = "Ben Müller" if full else None
                extra["team"] = "it" if full else None
            view = views.agent_view(settings, ticket, agent, language, **extra)
        elif name in views.SLA_NOTICES:
            view = views.sla_view(settings, ticket, agent, language,
                                  clock="first_response" if full else "solution",
                                  due_at=_SAMPLE_TIME, owner_name="Ben Müller" if full else None)
        elif name == views.DIGEST:
            view = _sample_digest(settings, agent, language, full)
        elif name in REQUESTER_MAILS:
            view = views.requester_mail_view(
                settings, ticket, language, automatic=not full,
                agent_name="Anna Schmidt" if full else None,
                text="Bitte starten Sie das Gerät neu.\n" if full else None,
                status_note="solved" if full else None,
                status_url="https://service.example.org/s/LDS-1042.sample" if full else None,
            )
        else:  # the acknowledgements, and any template a rule names (`then: {template: …}`)
            view = views.acknowledgement_view(
                settings, ticket, language, received_at=_SAMPLE_TIME,
                linked_ref="LDS-1000" if full else None,
                requester_name="Erika Muster" if full else "",
                status_url="https://service.example.org/s/LDS-1042.sample" if full else None,
            )
        samples.append(view)
    return samples


def _sample_digest(settings: Settings, agent: str, language: str, full: bool
                   ) -> dict[str, Any]:
    """A lead's digest with every section and a cut-off list, or an agent's with one item
    without due time or owner."""
    item = {"ref": f"{settings.service.ticket_prefix}-1042",
            "subject": "Drucker im 3. OG defekt" if full else "", "status": "open",
            "priority": "high", "queue": "it" if full else None,
            "owner_name": "Ben Müller" if full else None,
            "due_at": _SAMPLE_TIME if full else None, "clock": "solution" if full else None}
    one = {"items": [item], "total": 3 if full else 1}
    none: dict[str, Any] = {"items": [], "total": 0}
    sections = {name: one if full or name == "open" else none
                for name in views.DIGEST_SECTIONS}
    return views.digest_view(settings, agent, language, day=_SAMPLE_TIME, sections=sections,
                             teams=["it"] if full else [])


def _sample_original(full: bool) -> Original:
    """An original with everything (an attachment sent, one over the cap) or nothing."""
    if not full:
        return Original(article=1, sender="requester@example.net", subject="", date=None,
                        text="")
    return Original(
        article=2, sender="Erika Muster <requester@example.net>",
        subject="Drucker im 3. OG defekt", date=_SAMPLE_TIME,
        text="Guten Tag,\nder Drucker im 3. OG druckt nicht.\n",
        attachments=(MailAttachment("foto.jpg", "image/jpeg", b"\xff\xd8"),),
        omitted=(("scan.pdf", 30_000_000),),
    )


def _sample_ticket(settings: Settings, language: str, full: bool) -> Ticket:
    """A ticket that is never stored: values shaped like real ones, none from a real mail."""
    return Ticket(
        ref=f"{settings.service.ticket_prefix}-1042",
        subject="Drucker im 3. OG defekt" if full else "",
        status="open" if full else "new",
        queue="it" if full else None,
        owner=(settings.agents[0].email if settings.agents else None) if full else None,
        priority="high" if full else "normal",
        requester="requester@example.net",
        language=language,
        created_at=_SAMPLE_TIME,
    )


class ActiveTemplates(Reloading[Renderer]):
    """The checked templates in force: `current()` is the renderer to use; a changed file is
    checked as part of the whole set and taken only if the set passes."""

    what = "templates"

    def __init__(
        self, settings: Settings, check_seconds: float = 1.0, start: State[Renderer] | None = None
    ) -> None:
        self.settings = settings
        super().__init__(check_seconds, start)

    def load(self) -> Renderer:
        return check(self.settings)

    def fingerprint(self) -> Hashable:
        return files_fingerprint(template_files(self.settings.templates_dir))

    def describe(self, value: Renderer) -> dict[str, Any]:
        return {"version": value.version, "files": len(value.sources.files)}

    def errors(self, exc: PostdeskError) -> list[str] | None:
        if isinstance(exc, TemplatesInvalid):
            return [error.located() for error in exc.errors]
        return None
