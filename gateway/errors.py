"""One documented error hierarchy; only the edges (SMTP, CLI, worker) translate it.

PostdeskError                 anything postdesk raises on purpose
├── ConfigError               invalid config file: key path and reason
│   ├── SecretMismatch           the server secret is not the one the database was set up with
│   └── InstanceIdInUse          instance.id is held by another running instance
├── RuleError(file, line)     invalid routing rule file
├── RulesetInvalid(errors)    a rules directory failed to load: every RuleError found
├── TemplateError(file, line) missing or unsafe mail template
├── TemplatesInvalid(errors)  a templates folder failed its check: every TemplateError found
├── IntakeError               a mail could not be taken in (SMTP -> 451)
├── ParseError                a stored mail cannot be parsed at all (worker quarantines it)
├── PrepareFailed             the prepare process died or ran out of time on a mail (retried)
│   └── RuleOverrun           the rules ran over their time budget on it (quarantined at once)
├── MailboxError              an EWS/Graph server call failed; str() is the admin's diagnosis
│   ├── MailboxAuthError         401/403, wrong password, missing permission: a person must act
│   ├── MailboxUnavailable       network, timeout, TLS, 5xx, 429: try again later (retry_after)
│   └── MailboxRequestError      this one request or item was refused (4xx, item gone)
├── DeliveryError             an outgoing mail could not be delivered
│   ├── TemporaryDeliveryError   4xx, network: retried with back-off
│   │   └── SmtpTemporaryError      from the SMTP relay (smtp_code, None for network failures)
│   └── PermanentDeliveryError   5xx: recorded on the ticket, not retried
│       └── SmtpPermanentError      from the SMTP relay (smtp_code)
├── NotFoundError             a ticket / inbox row named on the CLI does not exist
└── Stop(reason)              a pipeline stage ends the run on purpose (not a failure)

The storage side of the tree lives in storage/ (which imports nothing of gateway), as plain
Exceptions the CLI translates:

storage.sealing.SealError     a stored original cannot be opened (wrong or missing key)
storage.spool.LeaseLost       an inbox row's claim was taken over (its lease ran out): the
                              worker rolls back what it did for the row
storage.instances.InstanceInUse  an instance id's lock is held by another process
storage.retention.OriginalGone  an article's original was purged (or it never had one)
"""

from __future__ import annotations


class PostdeskError(Exception):
    """Base of every error postdesk raises on purpose."""


class ConfigError(PostdeskError):
    """The config file is missing or invalid; the message names the key path."""


class SecretMismatch(ConfigError):
    """The server secret's fingerprint differs from the one stored in the database."""


class InstanceIdInUse(ConfigError):
    """Another running process holds this instance id."""


class RuleError(PostdeskError):
    """A routing rule file is invalid; carries the file and line for `file:line: message`."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")


class RulesetInvalid(PostdeskError):
    """A rules directory failed to load as a whole; `errors` lists every problem, in order."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


class TemplateError(PostdeskError):
    """A mail template is missing, fails to render, or renders an unsafe subject. `file` and
    `line` say where, when known; `detail` is the message without the template's name."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None,
        detail: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.detail = detail or message
        super().__init__(message)

    def located(self) -> str:
        """`file:line: message` (as `rules check` prints rule errors)."""
        if self.file is None:
            return str(self)
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.detail}"


class TemplatesInvalid(PostdeskError):
    """A templates folder failed its check as a whole; `errors` lists every problem found."""

    def __init__(self, errors: list[TemplateError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(error.located() for error in self.errors))


class IntakeError(PostdeskError):
    """A mail could not be stored durably; the SMTP edge answers 451."""


class ParseError(PostdeskError):
    """A stored mail cannot be parsed at all (e.g. nested too deeply); the reason is generic."""


class DeliveryError(PostdeskError):
    """An outgoing mail could not be delivered."""


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later (4xx reply, connection refused, timeout)."""


class PermanentDeliveryError(DeliveryError):
    """Retrying will not help (5xx reply); recorded on the ticket."""


class PrepareFailed(PostdeskError):
    """The prepare process died or ran out of time on this mail."""

    stage = "prepare"  # the stage the mail is quarantined at
    transient = True  # worth another attempt


class RuleOverrun(PrepareFailed):
    """Evaluating the rules on this mail took more than its budget: it would again, so the
    mail is quarantined at once."""

    stage = "route"
    transient = False

    def __str__(self) -> str:
        return f"RuleOverrun: {self.args[0]}"


class MailboxError(PostdeskError):
    """A mailbox server call failed; the message is a one-line diagnosis without personal data."""


class MailboxAuthError(MailboxError):
    """Login refused or permission missing; retrying soon would only lock the account."""


class MailboxUnavailable(MailboxError):
    """The server cannot be reached or is overloaded; `retry_after` is its own hint in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MailboxRequestError(MailboxError):
    """The server refused this request (bad request, item gone, MIME not convertible)."""


class SmtpTemporaryError(TemporaryDeliveryError):
    """A 4xx reply or a network failure; `smtp_code` is None for network failures."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class SmtpPermanentError(PermanentDeliveryError):
    """A 5xx reply: the relay will not take this mail."""

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class NotFoundError(PostdeskError):
    """Something named by the user (ticket ref, inbox id) does not exist."""


class Stop(PostdeskError):
    """Raised by a pipeline stage to end the run with a recorded reason; not a failure."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
