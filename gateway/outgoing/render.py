"""Render the admin-edited mail templates safely: a Jinja2 sandbox, strict undefined variables, a
layered lookup (queue → site → shipped, requested language → default language) and a view of
plain values only, so a template can neither reach into the database nor inject mail headers.

Files: `<root>/<lang>/<name>.subject.j2`, `<name>.txt.j2` and optionally `<name>.html.j2`;
overrides in `<root>/queues/<queue>/<lang>/` and `<root>/site/<lang>/`. The layer that holds the
`.txt.j2` body decides the mail: its `.html.j2` is used only from that same layer (an override of
the text never goes out next to a stale shipped HTML version), and its `.subject.j2` is taken from
that layer when present, else by the normal lookup. Shared layouts (`_layout.txt.j2`,
`_layout.html.j2`) live in `<root>/`, with a copy in `<root>/site/` taking precedence.

A renderer reads every template file once, when it is made (or on `reload()`), and renders only from
that snapshot, compiling each file on first use: a file edited or broken later never reaches it
half-way. `gateway.outgoing.templateset` checks a snapshot before a running service puts it in
force."""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import BaseLoader, StrictUndefined, pass_context
from jinja2.runtime import Context as JinjaContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from gateway import packaged
from gateway.config import Settings
from gateway.errors import TemplateError

PLAIN_TYPES = (str, int, float, bool, type(None), datetime, date)
TIME_FORMATS = {"de": "%d.%m.%Y, %H:%M Uhr", "en": "%Y-%m-%d %H:%M"}
DEFAULT_TIME_FORMAT = "%Y-%m-%d %H:%M"
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")  # any below space but tab: no subject line
_SAFE_JINJA_ERRORS = (
    jinja2.UndefinedError,
    jinja2.TemplateSyntaxError,
    SecurityError,
    jinja2.TemplateNotFound,
)


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class _Resolved:
    language: str
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True, slots=True)
class Sources:
    """Every `*.j2` file below a templates root, read once: text by path relative to the root
    (`de/requester-received.txt.j2`), and the files that could not be read.

    A site's own templates folder (a copy made by `init --site`) lacks the mails a later
    version added; those files, and only those of the shipped layer (not `site/`, `queues/`),
    are taken from the shipped templates and listed in `borrowed`, so an upgrade starts with
    the site's edits kept and the new mails in the shipped wording."""

    root: Path
    files: Mapping[str, str]
    problems: tuple[TemplateError, ...] = ()
    borrowed: tuple[str, ...] = ()

    @classmethod
    def read(cls, root: Path, shipped: Path | None = None) -> Sources:
        """The files below `root`, plus the shipped layer's files it lacks from `shipped`
        (default: the packaged templates; none when `root` is that folder)."""
        own = cls._read_tree(root)
        shipped = packaged.templates_dir() if shipped is None else shipped
        if not root.is_dir() or _same_folder(root, shipped):
            return own
        extra = cls._read_tree(shipped)
        files = dict(own.files)
        borrowed = []
        for relative, text in extra.files.items():
            if relative not in files and relative.split("/", 1)[0] not in ("site", "queues"):
                files[relative] = text
                borrowed.append(relative)
        return cls(root, files, own.problems, tuple(borrowed))

    @classmethod
    def _read_tree(cls, root: Path) -> Sources:
        files: dict[str, str] = {}
        problems: list[TemplateError] = []
        for path in template_files(root):
            relative = path.relative_to(root).as_posix()
            try:
                raw = path.read_bytes()
                files[relative] = raw.decode("utf-8-sig")
            except OSError as exc:
                detail = f"cannot read: {exc.strerror}"
                problems.append(TemplateError(f"{relative}: {detail}", file=str(path),
                                              detail=detail))
            except UnicodeDecodeError as exc:
                line = raw.count(b"\n", 0, exc.start) + 1
                detail = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
                problems.append(TemplateError(f"{relative}: {detail}", file=str(path), line=line,
                                              detail=detail))
        return cls(root, files, tuple(problems))

    @property
    def version(self) -> str:
        """A short digest of every file's name and text: changes with any edit."""
        digest = hashlib.sha256()
        for relative in sorted(self.files):
            digest.update(f"{relative}\0{self.files[relative]}\0".encode())
        return digest.hexdigest()[:12]


def _same_folder(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


def template_files(root: Path) -> list[Path]:
    """Every `*.j2` file below `root`, skipping hidden files and folders (editor backups)."""
    if not root.is_dir():
        return []
    return sorted(
        path for path in root.rglob("*.j2")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


class _LayeredLoader(BaseLoader):
    """Loads by path relative to the templates root from the snapshot; bare names (shared
    layouts and partials, e.g. `_layout.txt.j2`) come from `site/` first, then from the root."""

    def __init__(self, sources: Sources) -> None:
        self._sources = sources

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        candidates = [template] if "/" in template else [f"site/{template}", template]
        for relative in candidates:
            text = self._sources.files.get(relative)
            if text is not None:
                return text, str(self._sources.root / relative), lambda: True
        raise jinja2.TemplateNotFound(template)


class Renderer:
    """Renders `<name>` mails in a language from a whitelisted view of plain values."""

    def __init__(
        self, templates_dir: Path, default_language: str, timezone: str = "Europe/Berlin",
        sources: Sources | None = None,
    ) -> None:
        self.root = Path(templates_dir)
        self.default_language = default_language
        self.zone = ZoneInfo(timezone)
        self.sources = sources if sources is not None else Sources.read(self.root)
        self._env = self._make_env()
        self._resolved: dict[tuple[str, str, str | None], _Resolved] = {}
        # compiled templates by path: Jinja's own cache lookup costs more than a dict's
        self._templates: dict[str, jinja2.Template] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its snapshot (for the worker process), compiled again where unpickled."""
        return (Renderer, (self.root, self.default_language, self.zone.key, self.sources))

    @classmethod
    def from_settings(cls, settings: Settings) -> Renderer:
        """A renderer for `settings.templates_dir`, the service language and time zone."""
        service = settings.service
        return cls(settings.templates_dir, service.language, service.timezone)

    def _make_env(self) -> ImmutableSandboxedEnvironment:
        # Immutable sandbox: besides blocking unsafe attributes it forbids mutating the view
        # (list.append, dict.update), so one template cannot change what another one sees.
        env = ImmutableSandboxedEnvironment(
            loader=_LayeredLoader(self.sources),
            undefined=StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2",), disabled_extensions=(), default=False,
                default_for_string=False,
            ),
            auto_reload=False,
            cache_size=-1,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["localtime"] = self._localtime_filter()
        return env

    @property
    def version(self) -> str:
        return self.sources.version

    def reload(self) -> None:
        """Read the files again and forget compiled templates and lookups (after an edit)."""
        self.sources = Sources.read(self.root)
        self._env = self._make_env()
        self._resolved.clear()
        self._templates.clear()

    # --- lookup ----------------------------------------------------------------------------

    def _layers(self, language: str, queue: str | None) -> list[tuple[str, str]]:
        """(language, folder relative to root) in lookup order."""
        languages = list(dict.fromkeys([language, self.default_language]))
        layers = []
        for lang in languages:
            if queue and _safe_part(queue):  # a queue named "IT/Netz" has no override folder
                layers.append((lang, f"queues/{queue}/{lang}"))
            layers.append((lang, f"site/{lang}"))
            layers.append((lang, lang))
        return layers

    def _exists(self, relative: str) -> bool:
        return relative in self.sources.files

    def _resolve(self, name: str, language: str, queue: str | None) -> _Resolved:
        key = (name, language, queue)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        _check_name(name, language)
        resolved = self._first(name, self._layers(language, queue))
        if resolved is None:
            raise TemplateError(
                f"template {name!r} not found for language {language!r} "
                f"(nor {self.default_language!r}) under {self.root}"
            )
        self._resolved[key] = resolved
        return resolved

    def _first(self, name: str, layers: list[tuple[str, str]]) -> _Resolved | None:
        """The mail `name` from the first layer that holds its `.txt.j2` body."""
        for lang, folder in layers:
            text = f"{folder}/{name}.txt.j2"
            if not self._exists(text):
                continue
            subject = f"{folder}/{name}.subject.j2"
            if not self._exists(subject):
                subject = next(
                    (f"{f}/{name}.subject.j2" for lg, f in layers
                     if lg == lang and self._exists(f"{f}/{name}.subject.j2")),
                    "",
                )
            if not subject:
                raise TemplateError(
                    f"template {name!r}: no subject file ({name}.subject.j2)",
                    file=str(self.root / text), detail=f"no subject file {name}.subject.j2 "
                    f"beside it (nor in another {lang!r} layer)",
                )
            html = f"{folder}/{name}.html.j2"
            return _Resolved(lang, subject, text, html if self._exists(html) else None)
        return None

    # --- rendering -------------------------------------------------------------------------

    def render(
        self, name: str, language: str, view: Mapping[str, Any], queue: str | None = None
    ) -> RenderedMail:
        """Subject, text and optional HTML of template `name`; TemplateError on any failure."""
        _check_view(name, view)
        return self._render_resolved(name, self._resolve(name, language, queue), view)

    def render_layer(
        self, name: str, folder: str, language: str, view: Mapping[str, Any]
    ) -> RenderedMail:
        """Render the mail whose body lies in `folder` (e.g. `site/de`), whether or not that
        layer is the one in force: the check renders every override, not only the winners."""
        _check_name(name, language)
        _check_view(name, view)
        resolved = self._first(name, [(language, folder), *self._layers(language, None)])
        if resolved is None:
            raise TemplateError(f"template {name!r}: no {folder}/{name}.txt.j2")
        return self._render_resolved(name, resolved, view)

    def _render_resolved(
        self, name: str, resolved: _Resolved, view: Mapping[str, Any]
    ) -> RenderedMail:
        values = {**view, "language": resolved.language}
        subject = self._render_file(name, resolved.subject, values).strip()
        where = str(self.root / resolved.subject)
        if _CONTROL.search(subject):
            detail = "the subject contains a line break or control character"
            raise TemplateError(f"template {name!r}: {detail}", file=where, detail=detail)
        if not subject:
            raise TemplateError(f"template {name!r}: the subject is empty", file=where,
                                detail="the subject is empty")
        text = self._render_file(name, resolved.text, values)
        html = self._render_file(name, resolved.html, values) if resolved.html else None
        return RenderedMail(subject=subject, text=_end_with_newline(text), html=html)

    def compile(self, path: str) -> None:
        """Parse and compile one file of the snapshot, as it is (a shared layout as well as the
        `site/` copy that shadows it); TemplateError with the line of a syntax error."""
        try:
            self._env.compile(self.sources.files[path], path, str(self.root / path))
        except jinja2.TemplateSyntaxError as exc:
            raise self._error(path, path, exc, _describe(exc)) from exc

    def _render_file(self, name: str, path: str, values: Mapping[str, Any]) -> str:
        try:
            template = self._templates.get(path)
            if template is None:
                template = self._templates[path] = self._env.get_template(path)
            return template.render(values)
        except _SAFE_JINJA_ERRORS as exc:
            # Jinja's own messages name variables, attributes and template lines: no mail data.
            raise self._error(name, path, exc, _describe(exc)) from exc
        except Exception as exc:  # a filter or operator failed on some value: name the class only
            raise self._error(name, path, exc, f"rendering failed ({type(exc).__name__})") from exc

    def _error(self, name: str, path: str, exc: Exception, detail: str) -> TemplateError:
        """A TemplateError naming the template, the file and line the error comes from (a layout
        or include may be to blame, not `path`) and what went wrong."""
        relative, line = self._location(exc, path)
        where = f"{relative}:{line}" if line is not None else relative
        return TemplateError(f"template {name!r} ({where}): {detail}",
                             file=str(self.root / relative), line=line, detail=detail)

    def _location(self, exc: Exception, path: str) -> tuple[str, int | None]:
        """The snapshot file and line of an error: a syntax error carries them; for a failure
        while rendering, Jinja rewrites the traceback so template frames show them."""
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return self._relative(exc.filename) or path, exc.lineno
        found: tuple[str, int | None] = (path, None)
        for frame, line in traceback.walk_tb(exc.__traceback__):
            relative = self._relative(frame.f_code.co_filename)
            if relative is not None:
                found = (relative, line)
        return found

    def _relative(self, filename: str | None) -> str | None:
        prefix = f"{self.root}/"
        if filename and filename.startswith(prefix):
            relative = filename.removeprefix(prefix)
            return relative if relative in self.sources.files else None
        return None

    def _localtime_filter(self) -> Callable[..., str]:
        zone = self.zone

        @pass_context
        def localtime(context: JinjaContext, value: datetime | str, fmt: str | None = None) -> str:
            """A stored UTC time shown in the service's time zone, formatted per language."""
            moment = datetime.fromisoformat(value) if isinstance(value, str) else value
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            language = context.get("language", "")
            pattern = fmt or TIME_FORMATS.get(language, DEFAULT_TIME_FORMAT)
            return moment.astimezone(zone).strftime(pattern)

        return localtime


def _describe(exc: Exception) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"syntax error: {exc.message}"  # the line is in the location
    if isinstance(exc, jinja2.TemplateNotFound):
        return f"included template not found: {exc.name}"
    return str(exc)


def _safe_part(part: str) -> bool:
    """True if `part` is usable as one folder or file name below the templates root."""
    return bool(part) and not any(ch in part for ch in "/\\\0") and not part.startswith(".")


def _check_name(name: str, language: str) -> None:
    for part in (name, language):
        if not _safe_part(part):
            raise TemplateError(f"invalid template name or language {part!r}")


def _check_view(name: str, view: Mapping[str, Any]) -> None:
    """Only plain values (and lists/dicts of them) may reach a template."""
    for key, value in view.items():
        if not _is_plain(value):
            raise TemplateError(
                f"template {name!r}: view value {key!r} is a {type(value).__name__}, "
                "not a plain value"
            )


def _is_plain(value: Any, depth: int = 0) -> bool:
    if depth > 5:
        return False
    if isinstance(value, PLAIN_TYPES):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v, depth + 1) for k, v in value.items())
    return False


def _end_with_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
