"""Outbox rows as mail is made: queue a composed mail for delivery (or record one that could not
be made), and read back what was sent to agents. Delivery itself (claim, mark sent, retry) is in
storage.spool; making the mail is gateway.outgoing.letters, the only writer of these rows."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from storage.direct import Direct
from storage.models import OutboxItem
from storage.statements import HeldRows, Statements

_OUTBOX = cast(Table, OutboxItem.__table__)
_QUEUE = Direct(insert(_OUTBOX))
_AGENT_MAILS = (
    select(_OUTBOX.c.raw)
    .where(_OUTBOX.c.ticket_id == bindparam("ticket_id"), _OUTBOX.c.kind.like("agent-%"))
    .order_by(_OUTBOX.c.id.desc())
    .limit(bindparam("limit"))
)


class Outbox(Statements):
    """The outbox rows written in one transaction (one Session)."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._held = HeldRows(lambda rows: self._run(_QUEUE, rows))

    def deferred(self) -> AbstractContextManager[None]:
        """Hold the rows queued in the block and write them with one statement when it ends
        (storage.statements.HeldRows)."""
        return self._held.deferred()

    def queue(
        self,
        *,
        ticket_id: int | None,
        kind: str,
        message_id: str,
        envelope_from: str,
        envelope_to: list[str],
        raw: bytes,
        now: datetime,
        quarantined: str | None = None,
    ) -> None:
        """Queue a composed mail for delivery now; inside `deferred()` the row is held. With
        `quarantined` (the reason), the row records a mail that could not be made: it is
        listed, never delivered."""
        row = {
            "ticket_id": ticket_id,
            "kind": kind,
            "message_id": message_id,
            "envelope_from": envelope_from,
            "envelope_to": envelope_to,
            "raw": raw,
            "state": "queued" if quarantined is None else "quarantined",
            "last_error": quarantined,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        self._held.add([row])

    def agent_mails(self, ticket_id: int, limit: int = 20) -> list[bytes]:
        """The raw mails sent to agents about the ticket (kind `agent-*`), newest first: what
        an agent's reply may quote and must not pass on to the requester."""
        self._held.flush()
        rows = self._run(_AGENT_MAILS, {"ticket_id": ticket_id, "limit": limit}).scalars()
        return [bytes(raw) for raw in rows if raw]
