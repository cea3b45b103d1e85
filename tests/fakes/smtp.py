"""A real SMTP server on loopback that records what it receives: the requester's MTA, or the
relay the outbox delivers to (tests/conftest.py `sink` starts one on a free port)."""

from __future__ import annotations

from typing import Any


class Sink:
    """A real SMTP server on loopback that records what it receives (the requester's MTA)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content))
        )
        return "250 2.0.0 OK"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def parsed(self) -> list[Any]:
        from email import message_from_bytes, policy

        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.messages]
