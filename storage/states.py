"""The states a ticket, an inbox row or an outbox row can be in; a module of its own so that the
CLI can name them without importing SQLAlchemy."""

from __future__ import annotations

INBOX_STATES = ("queued", "processing", "done", "quarantined")
OUTBOX_STATES = ("queued", "sending", "sent", "failed", "quarantined")
"""`quarantined`: a mail that could not be rendered (a broken template); never delivered."""
TICKET_STATUSES = ("new", "open", "pending", "resolved", "closed")
