"""Load and validate the YAML config into typed settings, so a bad file fails at start-up with
the key path and the reason instead of surfacing later as a confusing runtime error."""

from __future__ import annotations

import os
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
    idle_timeout_seconds: float = Field(60, gt=0)
    session_timeout_seconds: float = Field(600, gt=0)
    data_timeout_seconds: float = Field(120, gt=0)


class OutgoingSettings(_Strict):
    transport: Literal["maildir", "smtp"] = "maildir"
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
            raise ConfigError(f"outgoing.password_env: environment variable {self.password_env} is not set")
        return value


class GuardSettings(_Strict):
    max_auto_replies_per_hour: int = Field(5, ge=0)


class TicketSettings(_Strict):
    reopen_days: int = Field(14, ge=0)


class WorkerSettings(_Strict):
    interval_seconds: float = Field(0.2, gt=0)
    max_attempts: int = Field(3, ge=1)
    lease_seconds: float = Field(300, gt=0)


class Agent(_Strict):
    email: Email
    name: str
    teams: list[str] = Field(default_factory=list)
    language: Language | None = None


class Settings(_Strict):
    """The whole config. Relative paths are resolved against the config file's folder."""

    service: ServiceSettings = ServiceSettings()
    database: DatabaseSettings = DatabaseSettings()
    data_dir: Path = Path("var")
    smtp: SmtpSettings = SmtpSettings()
    outgoing: OutgoingSettings = OutgoingSettings()
    guard: GuardSettings = GuardSettings()
    tickets: TicketSettings = TicketSettings()
    worker: WorkerSettings = WorkerSettings()
    agents: list[Agent] = Field(default_factory=list)
    rules_dir: Path = Path("rules")
    templates_dir: Path = Path("templates")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _service_address_accepted(self) -> Settings:
        if self.service.address not in self.smtp.accept:
            raise ValueError(
                f"smtp.accept must contain service.address ({self.service.address}), "
                "or replies to the central address would be refused"
            )
        return self

    def agent(self, email: str) -> Agent | None:
        """The agent with this address, or None for a requester."""
        email = email.lower()
        return next((a for a in self.agents if a.email == email), None)


def _resolve(base: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Make relative paths (and a relative SQLite file) relative to the config's folder."""
    for key in ("data_dir", "rules_dir", "templates_dir"):
        value = data.get(key)
        if value is not None and not Path(str(value)).is_absolute():
            data[key] = str(base / str(value))
    url = (data.get("database") or {}).get("url")
    prefix = "sqlite:///"
    if isinstance(url, str) and url.startswith(prefix) and not url.startswith(prefix + "/"):
        path = url[len(prefix):]
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
        raise ConfigError(f"config file not found: {path}") from exc
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
