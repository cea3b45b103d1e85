"""EWS intake (Exchange Server on premises): polls the configured mailbox folder through
`gateway.mailboxes.ews.EwsClient` under the durable contract of `gateway.intake.poller` — every item
is committed to the inbox before it is moved to the processed folder or marked read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config import ExchangeSettings, Settings
from gateway.errors import ConfigError
from gateway.intake.poller import MailboxPoller
from gateway.mailboxes.common import CheckResult, exchange_settings
from gateway.mailboxes.ews import EwsClient
from storage.engine import Database


class EwsPoller(MailboxPoller):
    """`EwsPoller(settings, db).poll_once() -> PollReport`; `health` for `postdesk status`."""

    def __init__(self, settings: Settings, db: Database, client: EwsClient | None = None,
                 **options: Any) -> None:
        exchange = exchange_settings(settings)
        super().__init__(exchange, db, client or EwsClient(exchange), **options)


def check(settings: Settings, *, create_folder: bool = False,
          client: Callable[[ExchangeSettings], EwsClient] = EwsClient) -> CheckResult:
    """`postdesk exchange check`: one line saying what works or what is wrong."""
    try:
        ews = client(exchange_settings(settings))
    except ConfigError as exc:
        text = str(exc)  # the settings' own errors already start with "exchange:"
        return CheckResult(False, text if text.startswith("exchange:") else f"exchange: {text}")
    try:
        return ews.check(create_folder=create_folder)
    finally:
        ews.close()
