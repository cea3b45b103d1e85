"""The states a ticket, an inbox row or an outbox row can be in; a module of its own so that the
CLI can name them without importing SQLAlchemy."""

from __future__ import annotations

INBOX_STATES = ("queued", "processing", "done", "quarantined")
INBOX_WAITING = ("queued", "processing")
"""Not settled yet: a later mail of the same conversation waits for such a row (storage.spool);
every other state (done, quarantined) lets it go on."""
OUTBOX_STATES = ("queued", "sending", "sent", "failed", "quarantined")
"""`quarantined`: a mail that could not be rendered (a broken template); never delivered."""
TICKET_STATUSES = ("new", "open", "pending", "resolved", "closed")
