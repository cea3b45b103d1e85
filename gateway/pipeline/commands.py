"""Agent #commands (close, assign, priority, note) arrive with issue 5; until then this stage
acts on nothing, because no sender can yet be proven to be an agent."""

from __future__ import annotations

from gateway.pipeline.context import Context


def run(ctx: Context) -> None:
    return None
