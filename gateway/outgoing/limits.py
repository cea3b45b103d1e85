"""Per-ticket and per-recipient caps on the mail postdesk sends on its own (`limits:` in the
config): two auto-responders — an agent's and a requester's — answering each other through the
service, or a forger sending the agent's address forty times, must not make it mail without end.

Counting reuses the acknowledgements' auto-reply log (`TicketStore.log_auto_reply_within`: the
count and the log row in one statement), under keys that name the kind of mail and the ticket
or the recipient, so they never mix with the acknowledgements' per-address count."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from gateway import logs
from gateway.config import Limit, Settings
from storage.models import Ticket
from storage.tickets import TicketStore

Kind = Literal["requester", "notification", "warning"]

EVENT = "rate-limited"
_KEY_LENGTH = 320  # the log's recipient column


def _limit(settings: Settings, kind: Kind) -> Limit:
    limits = settings.limits
    return {"requester": limits.requester, "notification": limits.notification,
            "warning": limits.warning}[kind]


def admit(
    settings: Settings,
    store: TicketStore,
    ticket: Ticket,
    kind: Kind,
    recipients: Sequence[str],
    *,
    mail: str,
    now: datetime,
) -> bool:
    """Count one mail of `kind` (template `mail`) on the ticket and for each recipient, and say
    whether it may be sent. At a cap nothing is counted and False comes back: the ticket gets an
    event naming the cap, the log a line without addresses; the caller does not queue the mail."""
    limit = _limit(settings, kind)
    since = now - timedelta(seconds=settings.limits.window_seconds)
    caps = [(f"{kind}:ticket:{ticket.id}", limit.per_ticket, "per-ticket")]
    caps += [(f"{kind}:{email.lower()}", limit.per_recipient, "per-recipient")
             for email in dict.fromkeys(recipients)]
    logged: list[int] = []
    for key, cap, scope in caps:
        log_id = store.log_auto_reply_within(key[:_KEY_LENGTH], now, since=since, limit=cap)
        if log_id is None:
            for taken in logged:  # the mail is not sent: it counts nowhere
                store.unlog_auto_reply(taken)
            which = f"{kind}-{scope}"
            store.add_event(ticket, actor="system", kind=EVENT, now=now, limit=which, mail=mail,
                            cap=cap, window_seconds=settings.limits.window_seconds)
            logs.event("mail.rate-limited", logging.WARNING, ticket=ticket.ref, limit=which,
                       template=mail)
            return False
        logged.append(log_id)
    return True
