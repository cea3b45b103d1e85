"""Microsoft Graph intake (Exchange Online): polls the configured mailbox folder through
`gateway.mailboxes.graph.GraphClient` under the durable contract of `gateway.intake.poller` — every
item is committed to the inbox before it is moved to the processed folder or marked read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config import GraphSettings, Settings
from gateway.errors import ConfigError
from gateway.intake.poller import MailboxPoller
from gateway.mailboxes.common import CheckResult, graph_settings
from gateway.mailboxes.graph import GraphClient
from storage.engine import Database


class GraphPoller(MailboxPoller):
    """`GraphPoller(settings, db).poll_once() -> PollReport`; `health` for `postdesk status`."""

    def __init__(self, settings: Settings, db: Database, client: GraphClient | None = None,
                 **options: Any) -> None:
        graph = graph_settings(settings)
        super().__init__(graph, db, client or GraphClient(graph), **options)


def check(settings: Settings, *, create_folder: bool = False,
          client: Callable[[GraphSettings], GraphClient] = GraphClient) -> CheckResult:
    """`postdesk graph check`: one line saying what works or what is wrong. Mail.Send is
    required only when outgoing mail goes through Graph."""
    try:
        graph = client(graph_settings(settings))
    except ConfigError as exc:
        text = str(exc)  # the settings' own errors already start with "graph:"
        return CheckResult(False, text if text.startswith("graph:") else f"graph: {text}")
    try:
        return graph.check(create_folder=create_folder,
                           sending=settings.outgoing.transport == "graph")
    finally:
        graph.close()
