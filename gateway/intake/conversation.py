"""Conversation keys for inbox rows about to be written (gateway.mail.conversation), so that a
claim on PostgreSQL never takes a reply while its original is still queued or in flight on
another instance (storage.spool). SQLite serves one instance, whose worker takes rows in inbox
order anyway: its rows get no keys, and its intake pays nothing for them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from gateway.mail.conversation import keys
from storage.engine import Database
from storage.spool import NewInboxItem


def keyed(db: Database, items: Sequence[NewInboxItem]) -> list[NewInboxItem]:
    """`items` with their conversation keys (PostgreSQL), or as they are (SQLite)."""
    if db.is_sqlite:
        return list(items)
    return [dataclasses.replace(item, conversation=keys(item.raw)) for item in items]
