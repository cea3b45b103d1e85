"""The shape of a routing rule as pydantic models: every key is known (a typo is an error, never
a silently disabled rule), every value is checked, and every agent, team and template a rule
names is resolved against the config at load time."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.mail.words import priority_word
from gateway.routing.backtracking import HINT, catastrophic

Priority = Literal["low", "normal", "high", "urgent"]


def _priority_word(value: Any) -> Any:
    """`hoch`, `dringend`, `niedrig` … as in the agents' `#priorität` command."""
    return (priority_word(value) or value) if isinstance(value, str) else value


PriorityWord = Annotated[Priority, BeforeValidator(_priority_word)]
AssignMode = Literal["round_robin", "least_open"]
NO_TEMPLATE = "none"  # `template: none`: send no acknowledgement
_SLUG = re.compile(r"[\w][\w.-]{0,63}")
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
_DOMAIN = re.compile(r"@[^@\s]+\.[^@\s]+")
_HEADER = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
_HOURS = re.compile(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")
_GLOB_CHARS = frozenset("*?[")

# Weekday names an admin may write (German first: the shipped rules use mo, di, …).
WEEKDAY_LABELS = ("mo", "di", "mi", "do", "fr", "sa", "so")
_DAY_NAMES = (
    ("mo", "mon", "montag", "monday"),
    ("di", "tue", "dienstag", "tuesday"),
    ("mi", "wed", "mittwoch", "wednesday"),
    ("do", "thu", "donnerstag", "thursday"),
    ("fr", "fri", "freitag", "friday"),
    ("sa", "sat", "samstag", "saturday"),
    ("so", "sun", "sonntag", "sunday"),
)
WEEKDAYS = {name: number for number, names in enumerate(_DAY_NAMES) for name in names}


@dataclass(frozen=True)
class Known:
    """What rules may refer to, from the config; passed as the pydantic validation context."""

    agents: frozenset[str]
    teams: frozenset[str]
    templates: frozenset[str]

    @classmethod
    def of(cls, agents: Collection[str], teams: Collection[str],
           templates: Collection[str]) -> Known:
        return cls(frozenset(a.strip().lower() for a in agents), frozenset(teams),
                   frozenset(templates))


def _known(info: ValidationInfo) -> Known | None:
    context = info.context
    return context.get("known") if isinstance(context, dict) else None


def _unknown(kind: str, value: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.75)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif not choices:
        hint = f"no {kind}s are configured"
    elif len(choices) <= 8:
        hint = "known: " + ", ".join(sorted(choices))
    else:
        hint = f"see the {kind}s in the config"
    return f"{value!r} is not a known {kind} ({hint})"


def _as_list(value: Any) -> Any:
    """Let a single value stand for a one-item list (`contains: Störung`)."""
    return [value] if isinstance(value, str | int | float | bool) else value


def _keyword(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty (it would match every mail)")
    return value


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name: use letters, digits, '-', '_' or '.', "
                         "no spaces, at most 64 characters")
    return value


def _address_pattern(value: str) -> str:
    value = value.strip().lower()
    if _GLOB_CHARS & set(value) and "@" in value:
        return value
    if value.startswith("@"):
        if _DOMAIN.fullmatch(value):
            return value
    elif _ADDRESS.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not an address (name@example.org), a domain (@example.org) "
                     "or a pattern (*@*.example.org)")


def _glob(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _regex(value: str) -> str:
    try:
        pattern = re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc.msg} at position {exc.pos}") from exc
    found = pattern.search("\x00")
    if found is not None and not found.group():
        raise ValueError(f"regular expression {value!r} matches empty text, so nearly every "
                         "mail (a stray '|'? to exclude words use not:)")
    if catastrophic(value):
        raise ValueError(f"regular expression {value!r}: {HINT}")
    return value


Regex = Annotated[str, AfterValidator(_regex)]
Slug = Annotated[str, AfterValidator(_slug)]
# Lists that may also be written as one value: `contains: Störung`.
Keywords = Annotated[list[Annotated[str, AfterValidator(_keyword)]] | None,
                     BeforeValidator(_as_list), Field(min_length=1)]
AddressPatterns = Annotated[list[Annotated[str, AfterValidator(_address_pattern)]] | None,
                            BeforeValidator(_as_list), Field(min_length=1)]
Globs = Annotated[list[Annotated[str, AfterValidator(_glob)]] | None,
                  BeforeValidator(_as_list), Field(min_length=1)]
Slugs = Annotated[list[Slug] | None, BeforeValidator(_as_list), Field(min_length=1)]


class _Strict(BaseModel):
    """Unknown keys are errors, and so is a key without a value (`subject:` alone would
    otherwise quietly drop the condition and make the rule match more mail)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _has_value(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name not in cls._nullable:
            raise ValueError("has no value (give one or remove the key)")
        return value


class TextTest(_Strict):
    """`{contains: [..]}` (any of, case-, umlaut- and spacing-insensitive) or `{matches: regex}`."""

    contains: Keywords = None
    matches: Regex | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TextTest:
        if (self.contains is None) == (self.matches is None):
            raise ValueError("give exactly one of contains, matches")
        return self


class HeaderTest(TextTest):
    name: str

    @field_validator("name")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not _HEADER.fullmatch(value.strip()):
            raise ValueError(f"{value!r} is not a header name")
        return value.strip().lower()


class AttachmentTest(_Strict):
    """`attachment: true|false` is short for `{present: true|false}`."""

    present: StrictBool | None = None
    filename: Globs = None
    content_type: Globs = None

    @model_validator(mode="after")
    def _consistent(self) -> AttachmentTest:
        globs = self.filename is not None or self.content_type is not None
        if self.present is None and not globs:
            raise ValueError("give present, filename or content_type")
        if self.present is False and globs:
            raise ValueError("present: false cannot be combined with filename or content_type")
        return self


class TimeTest(_Strict):
    """Local weekday and time of day in the service's time zone; end of `hours` is exclusive."""

    weekdays: tuple[int, ...] | None = None
    hours: tuple[int, int] | None = None

    @field_validator("weekdays", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if not isinstance(value, list | str):
            raise ValueError("expected a list of weekdays like [mo, di, mi, do, fr]")
        days: set[int] = set()
        for item in _as_list(value):
            days.update(_day_range(item))
        if not days:
            raise ValueError("must not be empty")
        return tuple(sorted(days))

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("expected a time range in quotes, like '07:00-18:00'")
        return _parse_hours(value)

    @model_validator(mode="after")
    def _something(self) -> TimeTest:
        if self.weekdays is None and self.hours is None:
            raise ValueError("give weekdays, hours or both")
        return self


def _day_range(item: Any) -> list[int]:
    """`mo` → [0]; `mo-fr` → [0..4]; `fr-mo` wraps over the weekend."""
    if not isinstance(item, str):
        raise ValueError(f"{item!r} is not a weekday (mo, di, mi, do, fr, sa, so)")
    ends = [part.strip().lower() for part in item.split("-")]
    if len(ends) > 2 or any(end not in WEEKDAYS for end in ends):
        raise ValueError(f"{item!r} is not a weekday (mo, di, mi, do, fr, sa, so) "
                         "or a range like mo-fr")
    first, last = WEEKDAYS[ends[0]], WEEKDAYS[ends[-1]]
    return [(first + step) % 7 for step in range((last - first) % 7 + 1)]


def _parse_hours(value: str) -> tuple[int, int]:
    """'07:00-18:00' → (420, 1080) minutes; '22:00-06:00' crosses midnight."""
    found = _HOURS.fullmatch(value.strip())
    if not found:
        raise ValueError(f"{value!r} is not a time range like '07:00-18:00'")
    h1, m1, h2, m2 = (int(part) for part in found.groups())
    bounds = []
    for hour, minute in ((h1, m1), (h2, m2)):
        if minute > 59 or hour > 24 or (hour == 24 and minute):
            raise ValueError(f"{value!r}: {hour:02d}:{minute:02d} is not a time of day")
        bounds.append(hour * 60 + minute)
    if bounds[0] % 1440 == bounds[1] % 1440:
        raise ValueError(f"{value!r}: start and end are the same")
    return bounds[0], bounds[1]


class Condition(_Strict):
    """One `when` mapping; several keys must all hold. Fields are in evaluation order (cheap
    first), which is also the order a miss reports the first failing condition."""

    language: Literal["de", "en"] | None = None
    sender_is_agent: StrictBool | None = None
    time: TimeTest | None = None
    from_: AddressPatterns = Field(default=None, alias="from")
    to: AddressPatterns = None
    cc: AddressPatterns = None
    attachment: AttachmentTest | None = None
    header: HeaderTest | None = None
    subject: TextTest | None = None
    body: TextTest | None = None
    all_: list[Condition] | None = Field(default=None, alias="all", min_length=1)
    any_: list[Condition] | None = Field(default=None, alias="any", min_length=1)
    not_: Condition | None = Field(default=None, alias="not")

    @field_validator("all_", "any_")
    @classmethod
    def _items_not_empty(cls, items: list[Condition]) -> list[Condition]:
        for index, item in enumerate(items):
            if not item.model_fields_set:
                raise ValueError(f"item {index + 1} is an empty condition")
        return items

    @field_validator("not_")
    @classmethod
    def _not_empty(cls, inner: Condition) -> Condition:
        if not inner.model_fields_set:
            raise ValueError("empty condition")
        return inner

    @field_validator("attachment", mode="before")
    @classmethod
    def _attachment_flag(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"present": value}
        if not isinstance(value, dict):
            raise ValueError("expected true, false or a mapping with filename / content_type")
        return value


class Actions(_Strict):
    """`then`: what a matching rule sets. `owner` XOR `team` (optionally with `assign`)."""

    queue: Slug | None = None
    owner: str | None = None
    team: str | None = None
    assign: AssignMode | None = None
    priority: PriorityWord | None = None
    tags: Slugs = None
    template: str | None = None

    @field_validator("owner")
    @classmethod
    def _agent(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip().lower()
        known = _known(info)
        if known is not None and value not in known.agents:
            raise ValueError(_unknown("agent", value, known.agents))
        return value

    @field_validator("team")
    @classmethod
    def _team(cls, value: str, info: ValidationInfo) -> str:
        known = _known(info)
        if known is not None and value not in known.teams:
            raise ValueError(_unknown("team", value, known.teams))
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str, info: ValidationInfo) -> str:
        known = _known(info)
        if known is not None and value != NO_TEMPLATE and value not in known.templates:
            raise ValueError(_unknown("template", value, {*known.templates, NO_TEMPLATE}))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Actions:
        if not self.model_fields_set:
            raise ValueError("give at least one of queue, owner, team, priority, tags, template")
        if self.owner is not None and self.team is not None:
            raise ValueError("give owner or team, not both")
        if self.assign is not None and self.team is None:
            raise ValueError("assign needs a team")
        return self


class Rule(_Strict):
    """One list item of a rule file."""

    _nullable = frozenset({"when"})  # `when:` with nothing after it matches every mail

    name: Annotated[str, AfterValidator(_slug)]
    description: str | None = None
    when: Condition | None = None  # absent or empty: matches every mail
    then: Actions
    stop: StrictBool = True


# --- turning pydantic errors into admin-readable messages -------------------------------------


def error_message(err: Mapping[str, Any]) -> str:
    """One pydantic error as a short sentence an admin understands."""
    kind, value = err["type"], err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key" + _suggest(tuple(err["loc"]))
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{_show(value)} is not one of {expected}"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    if kind == "too_short":
        return "must not be empty"
    if kind in _EXPECTED:
        hint = _quote_hint(value) if kind == "string_type" else ""
        return f"expected {_EXPECTED[kind]}, got {_kind(value)}{hint}"
    return str(err["msg"])


_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _quote_hint(value: Any) -> str:
    if isinstance(value, bool):
        return " (YAML reads yes/no/on/off as true/false: put it in quotes)"
    if isinstance(value, int | float):
        return " (put it in quotes)"
    return ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return _show(value)
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _suggest(loc: tuple[Any, ...]) -> str:
    """' (did you mean …?)' or the keys allowed where an unknown key was found."""
    allowed = _keys_at(loc[:-1])
    if not allowed:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return " (allowed here: " + ", ".join(allowed) + ")"


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = Rule
    for key in loc:
        if isinstance(key, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == key), None)
        model = _model_in(field.annotation) if field is not None else None
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
