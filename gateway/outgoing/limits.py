"""Caps on the mail postdesk sends on its own, applied by gateway.outgoing.letters to every
letter it makes, so no caller can forget them.

- Acknowledgements: at most `guard.max_auto_replies_per_hour` per requester address in any
  rolling hour.
- Everything else (`limits:` in the config), per ticket and per recipient: two auto-responders
  — an agent's and a requester's — answering each other through the service, or a forger
  sending the agent's address forty times, must not make it mail without end; originals an
  agent asks for (`#original`) have their own cap, each being a disclosure.

Counting uses the auto-reply log (storage.autoreplies: the count and the log row in one
statement), under keys that name the kind of mail and the ticket or the recipient, so they
never mix with the acknowledgements' per-address count."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from gateway import logs
from gateway.config import Limit, Settings
from storage.autoreplies import AutoReplies
from storage.models import Ticket
from storage.tickets import TicketStore

Kind = Literal["requester", "notification", "warning", "original"]

EVENT = "rate-limited"
ACKNOWLEDGEMENT_WINDOW = timedelta(hours=1)
_KEY_LENGTH = 320  # the log's recipient column


def _limit(settings: Settings, kind: Kind) -> Limit:
    limits = settings.limits
    return {"requester": limits.requester, "notification": limits.notification,
            "warning": limits.warning, "original": limits.original}[kind]


def acknowledgement(
    settings: Settings, log: AutoReplies, email: str, now: datetime
) -> list[int] | None:
    """Count one acknowledgement to `email` against its hourly limit: the log rows (to take
    back with `take_back` if the mail is not sent after all), or None at the limit."""
    log_id = log.log_within(email, now, since=now - ACKNOWLEDGEMENT_WINDOW,
                            limit=settings.guard.max_auto_replies_per_hour)
    return None if log_id is None else [log_id]


def admit(
    settings: Settings,
    log: AutoReplies,
    store: TicketStore,
    ticket: Ticket,
    kind: Kind,
    recipients: Sequence[str],
    *,
    mail: str,
    now: datetime,
) -> list[int] | None:
    """Count one mail of `kind` (template `mail`) on the ticket and for each recipient: the log
    rows (for `take_back`) when it may be sent. At a cap nothing is counted and None comes back:
    the ticket gets an event naming the cap, the log a line without addresses; the mail is not
    queued."""
    limit = _limit(settings, kind)
    since = now - timedelta(seconds=settings.limits.window_seconds)
    caps = [(f"{kind}:ticket:{ticket.id}", limit.per_ticket, "per-ticket")]
    caps += [(f"{kind}:{email.lower()}", limit.per_recipient, "per-recipient")
             for email in dict.fromkeys(recipients)]
    logged: list[int] = []
    for key, cap, scope in caps:
        log_id = log.log_within(key[:_KEY_LENGTH], now, since=since, limit=cap)
        if log_id is None:
            take_back(log, logged)  # the mail is not sent: it counts nowhere
            which = f"{kind}-{scope}"
            store.add_event(ticket, actor="system", kind=EVENT, now=now, limit=which, mail=mail,
                            cap=cap, window_seconds=settings.limits.window_seconds)
            logs.event("mail.rate-limited", logging.WARNING, ticket=ticket.ref, limit=which,
                       template=mail)
            return None
        logged.append(log_id)
    return logged


def take_back(log: AutoReplies, logged: Sequence[int]) -> None:
    """Uncount a mail that was counted but could not be sent."""
    for log_id in logged:
        log.unlog(log_id)
