"""The pipeline: one visible tuple of small named stages, run in order over one Context.

A stage may end the run on purpose by raising `Stop(reason)`; any other exception fails the
mail, and the worker quarantines it with the stage's name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.pipeline import (
    commands,
    guard,
    identify,
    notify,
    parse,
    quotes,
    record,
    redact,
    route,
    thread,
)
from gateway.pipeline.context import Context

Stage = Callable[[Context], None]

STAGES: tuple[tuple[str, Stage], ...] = (
    ("parse", parse.run),
    ("guard", guard.run),
    ("thread", thread.run),
    ("identify", identify.run),
    ("commands", commands.run),
    ("quotes", quotes.run),
    ("redact", redact.run),
    ("route", route.run),
    ("record", record.run),
    ("notify", notify.run),
)


# Stages before this index read nothing but the raw mail; the worker runs them outside the
# write transaction (they hold no lock), the rest inside one transaction per mail.
FIRST_STAGE_IN_TRANSACTION = 1


def run(ctx: Context, stages: Sequence[tuple[str, Stage]] = STAGES) -> None:
    """Run `stages` in order; `ctx.stage` names the one running if it raises."""
    for name, stage in stages:
        ctx.stage = name
        stage(ctx)
