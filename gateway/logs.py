"""One-line structured log events; they carry ticket refs and message hashes, never mail content.

Callers pass only identifiers (refs, hashes, ids, counts). Anything else is the caller's bug,
so there is deliberately no helper that formats a mail or an address.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_logger = logging.getLogger("postdesk")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and daemons replace it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def setup(level: str = "INFO") -> None:
    """Log to stderr as `event key=value …`; silence libraries that log addresses."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiosmtpd logs every command with the peer's addresses at INFO: personal data.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("mail.debug").setLevel(logging.WARNING)
    # mail-parser logs header contents at DEBUG/WARNING; APScheduler is chatty at INFO.
    logging.getLogger("mailparser").setLevel(logging.CRITICAL)  # its ERRORs quote headers
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)


def _fmt(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event as a single line: `name k=v k=v`."""
    if not _logger.isEnabledFor(level):
        return
    parts = [name, *(f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None)]
    _logger.log(level, " ".join(parts))
