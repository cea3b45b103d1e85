"""The log of mail postdesk sends on its own (acknowledgements, and the kinds capped by
`limits:`), counted per key in a rolling window: the count and the log row in one statement,
so two workers cannot both pass the last free place."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select

from storage.direct import Direct
from storage.models import AutoReplyLog
from storage.statements import Statements

_AUTO_REPLIES = cast(Table, AutoReplyLog.__table__)
_SINCE = (
    select(func.count())
    .select_from(_AUTO_REPLIES)
    .where(
        _AUTO_REPLIES.c.recipient == bindparam("recipient"),
        _AUTO_REPLIES.c.created_at >= bindparam("since"),
    )
)
# Log an automatic reply only while the recipient is under the limit: the count and the insert
# in one statement (INSERT … SELECT … WHERE, the same SQL on SQLite and PostgreSQL).
_ADD_UNDER_LIMIT = Direct(
    insert(_AUTO_REPLIES)
    .from_select(
        ["recipient", "created_at"],
        select(
            bindparam("recipient", type_=_AUTO_REPLIES.c.recipient.type),
            bindparam("created_at", type_=_AUTO_REPLIES.c.created_at.type),
        ).where(_SINCE.scalar_subquery() < bindparam("limit")),
    )
    .returning(_AUTO_REPLIES.c.id)
)
_REMOVE = Direct(_AUTO_REPLIES.delete().where(_AUTO_REPLIES.c.id == bindparam("id")))


class AutoReplies(Statements):
    """The automatic-reply log inside one transaction (one Session)."""

    def log_within(
        self, recipient: str, now: datetime, *, since: datetime, limit: int
    ) -> int | None:
        """Log an automatic reply to `recipient` (an address or a key) only if fewer than
        `limit` were logged since `since`, checked and logged in one statement. Returns the
        log row's id (for `unlog`), or None when the recipient is at the limit and nothing
        was logged."""
        logged = self._run(
            _ADD_UNDER_LIMIT,
            {"recipient": recipient.lower(), "created_at": now, "since": since, "limit": limit},
        ).scalar()
        return None if logged is None else int(logged)

    def unlog(self, log_id: int) -> None:
        """Take back a logged automatic reply that was not sent after all."""
        self._run(_REMOVE, {"id": log_id})
