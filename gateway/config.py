"""Load and validate the YAML config into typed settings, so a bad file fails at start-up with
the key path and the reason instead of surfacing later as a confusing runtime error."""

from __future__ import annotations

import os
import re
import secrets
import socket
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway import packaged
from gateway.errors import ConfigError

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Language = Literal["de", "en"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(_Strict):
    address: Email = "servicedesk@example.org"
    name: str = "IT-Servicedesk"
    ticket_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9]{1,9}$")] = "LDS"
    language: Language = "de"
    timezone: str = "Europe/Berlin"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def domain(self) -> str:
        """The service's own domain: Message-IDs we generate end in it."""
        return self.address.rsplit("@", 1)[1]


class DatabaseSettings(_Strict):
    url: str = "sqlite:///var/postdesk.db"


class SmtpSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    accept: list[Email] = Field(default_factory=lambda: ["servicedesk@example.org"])
    max_message_bytes: int = Field(26_214_400, ge=1024)
    max_recipients: int = Field(50, ge=1)
    max_connections: int = Field(100, ge=1)
    # Per-client limits (an MTA in front counts as one client), so that one address cannot hold
    # every connection; the errors and junk commands are counted since the last accepted mail.
    max_connections_per_client: int = Field(10, ge=1)
    max_errors: int = Field(20, ge=1)
    max_junk_commands: int = Field(20, ge=1)
    min_free_bytes: int = Field(104_857_600, ge=0)  # 0: no disk floor
    idle_timeout_seconds: float = Field(60, gt=0)
    session_timeout_seconds: float = Field(600, gt=0)
    data_timeout_seconds: float = Field(120, gt=0)


class OutgoingSettings(_Strict):
    transport: Literal["maildir", "smtp", "exchange", "graph"] = "maildir"
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout_seconds: float = Field(30, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff_seconds: float = Field(30, gt=0)
    backoff_max_seconds: float = Field(3600, gt=0)
    interval_seconds: float = Field(2, gt=0)

    def password(self) -> str | None:
        """The relay password, read from the environment variable the config names."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(
                f"outgoing.password_env: environment variable {self.password_env} is not set"
            )
        return value


class GuardSettings(_Strict):
    max_auto_replies_per_hour: int = Field(5, ge=0)


class Limit(_Strict):
    """At most this many mails of one kind per ticket and per recipient in the window."""

    per_ticket: int = Field(ge=0)
    per_recipient: int = Field(ge=0)


class RequesterLimit(Limit):
    """Agents' replies relayed to requesters and status mails (to the requester and each Cc)."""

    per_ticket: int = Field(20, ge=0)
    per_recipient: int = Field(30, ge=0)


class NotificationLimit(Limit):
    """Notifications to agents (a dispatcher hears of every new unassigned ticket)."""

    per_ticket: int = Field(20, ge=0)
    per_recipient: int = Field(200, ge=0)


class WarningLimit(Limit):
    """Mails to agents about their mail: unverified sender, commands rejected, reply held."""

    per_ticket: int = Field(3, ge=0)
    per_recipient: int = Field(10, ge=0)


class OriginalLimit(Limit):
    """Unredacted originals sent to agents on request (`#original`): each is a disclosure of
    personal data, so a stolen or looping mailbox cannot pull a ticket's history out in bulk."""

    per_ticket: int = Field(10, ge=0)
    per_recipient: int = Field(30, ge=0)


class LimitSettings(_Strict):
    """Caps on the mail postdesk sends on its own besides acknowledgements (those have
    `guard.max_auto_replies_per_hour`), so that two auto-responders — an agent's and a
    requester's — or a forger cannot make it send without end. A mail over a cap is not sent;
    the ticket gets a `rate-limited` event and `postdesk status` counts it."""

    window_seconds: float = Field(3600, gt=0)  # the rolling window all caps count in
    requester: RequesterLimit = RequesterLimit()
    notification: NotificationLimit = NotificationLimit()
    warning: WarningLimit = WarningLimit()
    original: OriginalLimit = OriginalLimit()


class TicketSettings(_Strict):
    """How tickets grow. People a requester copies in (Cc) become parties to the ticket: they
    get its mail and may reply on it. The caps keep one mail with thousands of Cc addresses
    from making the ticket a mass mailing; addresses beyond them stay on the stored mail only."""

    reopen_days: int = Field(14, ge=0)
    max_cc_per_mail: int = Field(20, ge=0)  # Cc'd addresses of one mail that become parties
    max_cc_per_ticket: int = Field(50, ge=0)  # Cc'd parties of one ticket in all


INSTANCE_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$"


def default_instance_id() -> str:
    """hostname-pid-random: unique per process, so a restarted instance is a new one (its old
    rows come back when their lease runs out, or at once once its lock is free)."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:60] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


class InstanceSettings(_Strict):
    """Who this instance is among several on one database. Claims of inbox rows record the id;
    a running instance's rows are never taken over before their lease runs out. Not set: a
    new id per start (hostname-pid-random). Set it (unique per instance, stable across
    restarts) to take the rows of the instance's previous run back at once on a restart."""

    id: str | None = Field(None, pattern=INSTANCE_ID)


class WorkerSettings(_Strict):
    mode: Literal["process", "thread"] = "process"
    interval_seconds: float = Field(0.2, gt=0)
    max_attempts: int = Field(3, ge=1)
    # How long a claimed inbox row stays this instance's without a renewal; the worker renews
    # its rows every quarter of this while it runs, so only a dead or cut-off instance's rows
    # ever run out. The instances' clocks must agree to well within it (NTP).
    lease_seconds: float = Field(60, ge=1)
    prepare_timeout_seconds: float = Field(120, gt=0)  # per mail, in the prepare process
    cpu_priority: Literal["idle", "low", "normal"] = "idle"  # of worker + prepare processes
    # A temporary fault (ENOSPC, EIO, …; see gateway.pipeline.faults): tried again after a back-off
    # doubling from the first to the second value, for as long as the waits add up to the window.
    retry_backoff_seconds: float = Field(15, gt=0)
    retry_backoff_max_seconds: float = Field(600, gt=0)
    retry_window_seconds: float = Field(3 * 24 * 3600, ge=0)
    # serve's SIGTERM: the worker gets this long to finish, then it and its prepare process are
    # killed, so serve ends in time whatever the worker does
    shutdown_timeout_seconds: float = Field(10, gt=0)


class JobSettings(_Strict):
    """The timed jobs that must run once per period among all instances on one database
    (retention, mailbox polls) run on one leader: the instance holding the `jobs` lease, which
    it renews every third of `leader_lease_seconds`. When the leader dies, another instance
    takes the lease once it has expired, so the jobs move within about 1 1/3 leases."""

    leader_lease_seconds: float = Field(30, gt=0, le=300)
    retention_interval_seconds: float = Field(3600, gt=0)  # how often retention runs
    sla_interval_seconds: float = Field(60, gt=0)  # SLA reminders/escalation, auto-close
    deletion_interval_seconds: float = Field(3600, gt=0)  # deletion periods (issue 16)

    @property
    def renew_seconds(self) -> float:
        """How often every instance beats its heartbeat and the leader renews its lease."""
        return self.leader_lease_seconds / 3


class BlobSettings(_Strict):
    """Where attachment bytes are stored: `filesystem` (data_dir/blobs, one host) or
    `database` (the `blobs` table: every instance on the database serves every attachment)."""

    store: Literal["filesystem", "database"] = "filesystem"


class AttachmentTextSettings(_Strict):
    """Text read from attachments (plain text, HTML, PDF, DOCX, ODT) in PREPARE, redacted like
    the body and stored searchable. The caps guard against huge or hostile files: a file over
    one of them is flagged `unreadable` (PDF pages and characters past theirs are cut)."""

    enabled: bool = True
    max_bytes: int = Field(10_000_000, ge=1)  # larger files are not read
    max_pages: int = Field(200, ge=1)  # PDF pages read
    max_unpacked_bytes: int = Field(50_000_000, ge=1)  # DOCX/ODT zip members together
    max_chars: int = Field(200_000, ge=1000)  # characters kept per file
    timeout_seconds: float = Field(20, gt=0)  # per file; the prepare time limit still applies


class Agent(_Strict):
    email: Email
    name: str
    teams: list[str] = Field(default_factory=list)
    language: Language | None = None
    digest: bool = True  # the morning digest (`digests:`); false: this agent gets none


class Team(_Strict):
    name: str
    lead: Email | None = None


_WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OPENING = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_CLOSED_DAY = re.compile(r"^(\d{4}-)?\d{2}-\d{2}$")


class HolidaySource(_Strict):
    """Public holidays from the `holidays` package: a country and a subdivision (a Land)."""

    country: str = "DE"
    subdivision: str | None = "SN"  # Saxony: Reformationstag and Buß- und Bettag included


class CalendarSettings(_Strict):
    """Business hours that SLA clocks and auto-close count in (gateway.lifecycle). Queues name
    a calendar in `rules/lifecycle/queues.yaml`; `default` is used where none is named."""

    timezone: str | None = None  # None: service.timezone
    # weekday (mon … sun) → "HH:MM-HH:MM"; a day not listed is closed
    hours: dict[str, str] = Field(default_factory=lambda: {
        day: "08:00-16:00" for day in ("mon", "tue", "wed", "thu", "fri")})
    holidays: HolidaySource | None = HolidaySource()  # None: no public holidays
    closed: list[str] = Field(default_factory=lambda: ["12-24", "12-31"])  # MM-DD or YYYY-MM-DD

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("hours")
    @classmethod
    def _opening_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in _WEEKDAY_KEYS:
                raise ValueError(f"unknown weekday {day!r} (use {', '.join(_WEEKDAY_KEYS)})")
            match = _OPENING.match(span.strip())
            if match is None:
                raise ValueError(f"{day}: expected HH:MM-HH:MM, got {span!r}")
            start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
            if not (start_h * 60 + start_m < end_h * 60 + end_m <= 24 * 60) or max(
                    start_m, end_m) > 59:
                raise ValueError(f"{day}: {span!r} is not a span within one day")
        return value

    @field_validator("closed")
    @classmethod
    def _closed_days(cls, value: list[str]) -> list[str]:
        for day in value:
            if not _CLOSED_DAY.match(day.strip()):
                raise ValueError(f"closed day {day!r}: expected MM-DD or YYYY-MM-DD")
        return value

    def opening(self) -> dict[int, tuple[int, int]]:
        """Weekday number (Monday 0) → (first minute, end minute) of the day's hours."""
        result = {}
        for day, span in self.hours.items():
            match = _OPENING.match(span.strip())
            assert match is not None  # validated above
            start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
            result[_WEEKDAY_KEYS.index(day)] = (start_h * 60 + start_m, end_h * 60 + end_m)
        return result


_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class DigestSettings(_Strict):
    """The morning digest (gateway.lifecycle.digest): one mail per agent on each business day
    of `calendar`, at `at` local time (the calendar's zone), listing their open tickets and, for
    a team lead, the team's backlog and escalations. The leader checks every `check_seconds`
    whether today's is due; after downtime it sends today's late, never an earlier day's."""

    enabled: bool = True  # the global switch (no `digests:` key at all: no digests either)
    at: str = "07:30"  # HH:MM
    calendar: str = "default"
    check_seconds: float = Field(300, gt=0)

    @field_validator("at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _CLOCK_TIME.match(value.strip()):
            raise ValueError(f"expected HH:MM, got {value!r}")
        return value.strip()

    def time_of_day(self) -> time:
        hours, minutes = self.at.split(":")
        return time(int(hours), int(minutes))


class AgentProofSettings(_Strict):
    """How an agent's mail proves it is theirs besides the token of a notification: the
    Authentication-Results of the MTA in front of postdesk, if the operator trusts it."""

    trusted_authserv_id: str | None = None  # e.g. mx.example.org; None: tokens only


class NotifySettings(_Strict):
    assigned_mail_to_requester: bool = False  # tell requesters who handles their ticket


class RoutingSettings(_Strict):
    """Where a ticket goes when no rule matches, and who hears of a new ticket that has neither
    an owner nor a team: the dispatchers (agents) and the members of `default_team`. Without
    them such a ticket notifies nobody and waits unseen (`postdesk status` counts it)."""

    default_queue: str = "allgemein"  # where a ticket goes when no rule matches (no owner)
    dispatchers: list[Email] = Field(default_factory=list)  # agents told of unassigned tickets
    default_team: str | None = None  # its members are told too
    # CPU seconds for evaluating the rules on one mail; over it, the mail is quarantined (stage
    # route, naming the rule) and the prepare process replaced (see gateway.pipeline.prepare)
    evaluation_budget_seconds: float = Field(2, gt=0)


Entity = Literal[
    "PERSON", "DATE_OF_BIRTH", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "DE_TAX_ID",
    "ID_DOCUMENT", "DE_HEALTH_INSURANCE", "STREET_ADDRESS",
]
DEFAULT_ENTITIES: list[Entity] = [
    "PERSON", "DATE_OF_BIRTH", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "DE_TAX_ID",
    "ID_DOCUMENT", "DE_HEALTH_INSURANCE",
]


AgentView = Literal["redacted", "original"]
QUEUE_NAME = r"^\w[\w.-]{0,63}$"  # the names routing rules and `#queue` accept


class RedactionSettings(_Strict):
    """What is redacted before storing, and what agents see. `agent_view` decides the agent
    notifications of a queue: `redacted` (the stored text; an agent asks for the original
    with `#original`) or `original` (the agents in charge get the unredacted text and the
    attachments up to `agent_view_max_bytes`); one word for every queue, or a mapping
    queue → word (queues not named: redacted). The stored ticket is redacted either way."""

    enabled: bool = True
    entities: list[Entity] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    queues: dict[str, list[Entity]] = Field(default_factory=dict)  # per-queue `entities`
    spacy_model: str | None = None  # an installed spaCy model adds statistical NER
    raw_retention_days: int = Field(14, ge=0)  # how long the encrypted original is kept
    # Each text (subject, body variant) is searched up to this many characters; the rest is
    # replaced by a notice, never stored unsearched (bounds one mail's time: ~0.7 s/100K).
    max_analysis_chars: int = Field(1_000_000, ge=1000)
    agent_view: AgentView | dict[str, AgentView] = "redacted"
    # attachments in a mail with an original (notification or `#original`) up to this many
    # bytes in all; the others are named in it but not attached
    agent_view_max_bytes: int = Field(10 * 1024 * 1024, ge=0)

    @field_validator("agent_view")
    @classmethod
    def _queue_names(
        cls, value: AgentView | dict[str, AgentView]
    ) -> AgentView | dict[str, AgentView]:
        if isinstance(value, dict):
            for queue in value:
                if not re.match(QUEUE_NAME, queue):
                    raise ValueError(f"{queue!r} is not a queue name")
        return value

    def agent_view_for(self, queue: str | None) -> AgentView:
        """What the agents of `queue` see in their notifications."""
        if isinstance(self.agent_view, str):
            return self.agent_view
        return self.agent_view.get(queue or "", "redacted")

    def entities_for(self, queue: str | None) -> list[str]:
        return list(self.queues.get(queue or "", self.entities))

    def all_entities(self) -> list[str]:
        """Every entity some queue wants: what the (expensive) analysis has to look for."""
        wanted = set(self.entities).union(*self.queues.values())
        return [e for e in [*DEFAULT_ENTITIES, "STREET_ADDRESS"] if e in wanted]


class MetricsSettings(_Strict):
    """The HTTP endpoint `serve` opens for monitoring: `/metrics` (Prometheus) and `/healthz`.
    It has no authentication: keep it on loopback or a management network."""

    host: str = "127.0.0.1"
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (tests)


class Listener(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535)  # 0: any free port (tests)


class WebRateLimit(_Strict):
    """Requests per minute to the status page (gateway.web.ratelimit), counted in the memory
    of each instance: behind a load balancer with N instances, up to N times as many."""

    per_token_per_minute: int = Field(30, ge=1)
    per_client_per_minute: int = Field(60, ge=1)
    posts_per_token_per_hour: int = Field(10, ge=1)  # "Nachricht ergänzen" and "erledigt"


class WebLook(_Strict):
    """How the pages look: an authority's name, logo and colours (contrast is the site's
    responsibility: keep text at 4.5:1 against its background, WCAG 2.1 AA)."""

    logo: Path | None = None  # a PNG or SVG file, served as /static/logo
    logo_alt: str = ""  # its text alternative (default: the service name)
    primary_colour: str = Field("#004b87", pattern=r"^#[0-9a-fA-F]{6}$")  # header, links
    header_text_colour: str = Field("#ffffff", pattern=r"^#[0-9a-fA-F]{6}$")


class WebSettings(_Strict):
    """The web surface of `serve` (off unless set): the requesters' status pages `/s/<token>`
    on the public listener, and an internal listener (`/healthz`; reports mount there) that
    must never face the internet. `public_url` is what links in mail point to."""

    public_url: Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    public: Listener = Listener(port=8080)
    internal: Listener = Listener(port=8081)
    # proxies whose X-Forwarded-For/-Proto are believed (addresses or "*"; none: not believed)
    trusted_proxies: list[str] = Field(default_factory=list)
    service_name: str | None = None  # None: service.name
    look: WebLook = WebLook()
    rate_limit: WebRateLimit = WebRateLimit()


class SecretSettings(_Strict):
    """The server secret (HMAC keys for placeholders and agent proof, the key that encrypts
    stored originals) comes from `key_env`; without it, from `key_file`, which `postdesk init`
    creates (mode 0600) for a first run — set the variable in production."""

    key_env: str = "POSTDESK_SECRET_KEY"
    key_file: Path = Path("var/secret.key")
    # Key rotation: secrets that were in force before, used only to OPEN what they sealed
    # (originals, attachments) and to accept the database's stored fingerprint of one of them.
    # Files (one secret each) and/or a variable holding secrets separated by commas.
    previous_key_files: list[Path] = Field(default_factory=list)
    previous_keys_env: str = "POSTDESK_PREVIOUS_SECRET_KEYS"


class Settings(_Strict):
    """The whole config. Relative paths are resolved against the config file's folder."""

    service: ServiceSettings = ServiceSettings()
    database: DatabaseSettings = DatabaseSettings()
    data_dir: Path = Path("var")
    smtp: SmtpSettings = SmtpSettings()
    outgoing: OutgoingSettings = OutgoingSettings()
    guard: GuardSettings = GuardSettings()
    limits: LimitSettings = LimitSettings()
    tickets: TicketSettings = TicketSettings()
    worker: WorkerSettings = WorkerSettings()
    instance: InstanceSettings = InstanceSettings()
    jobs: JobSettings = JobSettings()
    blobs: BlobSettings = BlobSettings()
    attachment_text: AttachmentTextSettings = AttachmentTextSettings()
    agents: list[Agent] = Field(default_factory=list)
    teams: list[Team] = Field(default_factory=list)
    routing: RoutingSettings = RoutingSettings()
    agent_proof: AgentProofSettings = AgentProofSettings()
    notify: NotifySettings = NotifySettings()
    # Not set: the defaults shipped in the package. Set: that folder, which must exist.
    rules_dir: Path = Field(default_factory=packaged.rules_dir)
    templates_dir: Path = Field(default_factory=packaged.templates_dir)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    redaction: RedactionSettings = RedactionSettings()
    secrets: SecretSettings = SecretSettings()
    exchange: ExchangeSettings | None = None  # EWS mailbox (Exchange Server on premises)
    graph: GraphSettings | None = None  # Microsoft Graph mailbox (Exchange Online)
    metrics: MetricsSettings | None = None  # off unless configured
    web: WebSettings | None = None  # status pages (gateway.web); off unless configured
    # business calendars by name (SLA, auto-close); `default` always exists
    calendars: dict[str, CalendarSettings] = Field(
        default_factory=lambda: {"default": CalendarSettings()})
    # queue policies (SLA, auto-close, deletion periods); None: <rules_dir>/lifecycle/queues.yaml
    # if that file exists, else the built-in defaults (no SLA, nothing closed or deleted)
    lifecycle_file: Path | None = None
    digests: DigestSettings | None = None  # None: no morning digests

    @model_validator(mode="after")
    def _digest_calendar_known(self) -> Settings:
        name = self.digests.calendar if self.digests is not None else "default"
        if name != "default" and name not in self.calendars:
            raise ValueError(f"digests.calendar: unknown calendar {name!r}")
        return self

    def with_instance_id(self) -> Settings:
        """These settings with `instance.id` fixed: the configured one, else a new default
        one. Done once per instance (gateway.app), so serve's worker process, which gets the
        settings, claims under the same id."""
        if self.instance.id is not None:
            return self
        return self.model_copy(update={"instance": InstanceSettings(id=default_instance_id())})

    @field_validator("rules_dir", "templates_dir")
    @classmethod
    def _folder_exists(cls, value: Path) -> Path:
        """A folder the config names must be there: falling back to the packaged defaults
        would hide a typo and run the site with rules and templates it did not choose."""
        if not value.is_dir():
            raise ValueError(f"folder not found: {value}")
        return value

    @model_validator(mode="after")
    def _service_address_accepted(self) -> Settings:
        if self.service.address not in self.smtp.accept:
            raise ValueError(
                f"smtp.accept must contain service.address ({self.service.address}), "
                "or replies to the central address would be refused"
            )
        return self

    @model_validator(mode="after")
    def _teams_known(self) -> Settings:
        declared = {team.name for team in self.teams}
        for index, agent in enumerate(self.agents):
            unknown = [t for t in agent.teams if declared and t not in declared]
            if unknown:
                raise ValueError(f"agents.{index}.teams: unknown team {unknown[0]!r}")
        for team in self.teams:
            if team.lead is not None and self.agent(team.lead) is None:
                raise ValueError(f"teams: lead {team.lead} of {team.name!r} is not an agent")
        return self

    @model_validator(mode="after")
    def _default_calendar(self) -> Settings:
        if "default" not in self.calendars:  # a site that names only its own calendars
            calendars = {"default": CalendarSettings(), **self.calendars}
            object.__setattr__(self, "calendars", calendars)
        return self

    @model_validator(mode="after")
    def _dispatchers_known(self) -> Settings:
        for index, email in enumerate(self.routing.dispatchers):
            if self.agent(email) is None:  # only agents can act on the notification by reply
                raise ValueError(f"routing.dispatchers.{index}: {email} is not an agent")
        team = self.routing.default_team
        if team is not None and team not in self.team_names():
            raise ValueError(f"routing.default_team: unknown team {team!r}")
        return self

    def dispatchers(self) -> list[str]:
        """Who is told of a new ticket without owner or team: `routing.dispatchers`, then the
        members of `routing.default_team`, each once."""
        team = self.routing.default_team
        members = [a.email for a in self.team_members(team)] if team is not None else []
        return list(dict.fromkeys([*self.routing.dispatchers, *members]))

    def team_names(self) -> set[str]:
        """Teams declared under `teams:` plus those only named on agents."""
        return {t.name for t in self.teams} | {t for a in self.agents for t in a.teams}

    def team_members(self, team: str) -> list[Agent]:
        return [a for a in self.agents if team in a.teams]

    def agent(self, email: str) -> Agent | None:
        """The agent with this address, or None for a requester."""
        email = email.lower()
        return next((a for a in self.agents if a.email == email), None)


def _resolve(base: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Make relative paths (and a relative SQLite file) relative to the config's folder."""
    for key in ("data_dir", "rules_dir", "templates_dir", "lifecycle_file"):
        value = data.get(key)
        if value is not None and not Path(str(value)).is_absolute():
            data[key] = str(base / str(value))
    web = data.get("web")
    look = web.get("look") if isinstance(web, dict) else None
    logo = look.get("logo") if isinstance(look, dict) else None
    if isinstance(web, dict) and isinstance(look, dict) and logo is not None \
            and not Path(str(logo)).is_absolute():
        data["web"] = {**web, "look": {**look, "logo": str(base / str(logo))}}
    secrets = data.get("secrets") or {}
    key_file = secrets.get("key_file", "var/secret.key")
    if not Path(str(key_file)).is_absolute():
        data["secrets"] = {**secrets, "key_file": str(base / str(key_file))}
    previous = secrets.get("previous_key_files")
    if isinstance(previous, list):
        data["secrets"] = {**data.get("secrets", secrets), "previous_key_files": [
            str(value) if Path(str(value)).is_absolute() else str(base / str(value))
            for value in previous
        ]}
    url = (data.get("database") or {}).get("url")
    prefix = "sqlite:///"
    if isinstance(url, str) and url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix) :]
        if path and path != ":memory:":
            data["database"] = {**data["database"], "url": prefix + str(base / path)}
    return data


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"{source}: {path}: {err['msg']}")
    return "\n".join(lines)


def load_settings(path: str | Path) -> Settings:
    """Read, validate and resolve a config file; raise ConfigError with key paths on failure."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file not found: {path} (`postdesk init --site DIR` creates a site with one)"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return settings_from_dict(data, base=path.resolve().parent, source=str(path))


def settings_from_dict(data: dict[str, Any], base: Path, source: str = "config") -> Settings:
    """Validate a config mapping (used by tests and `load_settings`)."""
    try:
        return Settings.model_validate(_resolve(base, dict(data)))
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from exc


def default_config_path() -> Path:
    """`./config.yaml`, else the file named by POSTDESK_CONFIG."""
    local = Path("config.yaml")
    if local.exists():
        return local
    env = os.environ.get("POSTDESK_CONFIG")
    return Path(env) if env else local


# --- mailbox intake (EWS, Microsoft Graph) --------------------------------------------------


def _env_secret(key: str, env: str) -> str:
    value = os.environ.get(env)
    if value is None:
        raise ConfigError(f"{key}: environment variable {env} is not set")
    return value


class MailboxSettings(_Strict):
    """What EWS and Graph intake share: which mailbox, which folders, how often, how to back off.

    Folders are paths of display names below the mailbox root (`Erledigt`, `inbox/Erledigt`);
    a first segment that is a well-known folder name (`inbox`, `sentitems`, …) means that folder.
    After an item is stored it is moved to `processed_folder`, or, without one, marked read."""

    mailbox: Email
    folder: str = "inbox"
    processed_folder: str | None = None
    mark_read: bool = True
    poll_seconds: float = Field(60, gt=0)
    batch_size: int = Field(50, ge=1, le=1000)
    timeout_seconds: float = Field(30, gt=0)
    backoff_max_seconds: float = Field(1800, gt=0)
    auth_backoff_seconds: float = Field(900, gt=0)  # 401/403: a person must act; do not hammer
    verify_tls: bool = True
    ca_bundle: Path | None = None  # PEM file of an internal CA

    @model_validator(mode="after")
    def _has_finish_action(self) -> MailboxSettings:
        if self.processed_folder is None and not self.mark_read:
            raise ValueError(
                "set processed_folder or mark_read: true, else each poll takes the mail again"
            )
        if self.processed_folder and (
            self.processed_folder.strip("/").lower() == self.folder.strip("/").lower()
        ):
            raise ValueError("processed_folder must differ from folder")
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise ValueError(f"ca_bundle: file not found: {self.ca_bundle}")
        return self


class ExchangeSettings(MailboxSettings):
    """Exchange Web Services (exchangelib): Exchange Server SE/2019 on premises."""

    username: str | None = None  # DOMAIN\\user or UPN; default: the mailbox address
    password_env: str
    service_endpoint: str | None = None  # https://mail.example.org/EWS/Exchange.asmx
    server: str | None = None  # host name only: https://<server>/EWS/Exchange.asmx
    autodiscover: bool = False
    auth_type: Literal["ntlm", "basic"] | None = None  # None: ask the server
    access_type: Literal["delegate", "impersonation"] = "delegate"

    @model_validator(mode="after")
    def _one_endpoint(self) -> ExchangeSettings:
        given = [bool(self.service_endpoint), bool(self.server), self.autodiscover]
        if sum(given) != 1:
            raise ValueError("set exactly one of service_endpoint, server or autodiscover: true")
        return self

    def password(self) -> str:
        return _env_secret("exchange.password_env", self.password_env)


class GraphSettings(MailboxSettings):
    """Microsoft Graph with an app registration (client credentials): Exchange Online."""

    tenant_id: str
    client_id: str
    client_secret_env: str | None = None
    certificate_path: Path | None = None  # PFX/P12 with the private key
    certificate_password_env: str | None = None
    base_url: str = "https://graph.microsoft.com/v1.0"
    authority: str = "https://login.microsoftonline.com"
    scope: str | None = None  # default: <base_url scheme://host>/.default

    @model_validator(mode="after")
    def _one_credential(self) -> GraphSettings:
        if (self.client_secret_env is None) == (self.certificate_path is None):
            raise ValueError("set exactly one of client_secret_env or certificate_path")
        return self

    def client_secret(self) -> str | None:
        if self.client_secret_env is None:
            return None
        return _env_secret("graph.client_secret_env", self.client_secret_env)

    def certificate_password(self) -> str | None:
        if self.certificate_password_env is None:
            return None
        return _env_secret("graph.certificate_password_env", self.certificate_password_env)


Settings.model_rebuild()
