"""The pipeline: one visible tuple of small named stages, run in order over one Context.

A stage may end the run on purpose by raising `Stop(reason)`; any other exception fails the
mail, and the worker quarantines it with the stage's name.
"""

from __future__ import annotations

import time
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

# Work that needs nothing but the raw mail: the worker runs it before the write transaction,
# so no lock is held while mail is parsed and searched for personal data.
PREPARE: tuple[tuple[str, Stage], ...] = (
    ("parse", parse.run),
    ("quotes", quotes.prepare),
    ("analyse", redact.prepare),
)

# One transaction per mail. Routing comes before redaction so that a queue's own choice of
# redacted entities applies to a new ticket; rules read the mail but store nothing of it.
STAGES: tuple[tuple[str, Stage], ...] = (
    ("guard", guard.run),
    ("thread", thread.run),
    ("identify", identify.run),
    ("commands", commands.run),
    ("quotes", quotes.run),
    ("route", route.run),
    ("redact", redact.run),
    ("record", record.run),
    ("notify", notify.run),
)


Observer = Callable[[str, float], None]
"""Told each stage's name and run time in seconds (the metrics), also when it raised."""


def run(
    ctx: Context,
    stages: Sequence[tuple[str, Stage]] = PREPARE + STAGES,
    observe: Observer | None = None,
) -> None:
    """Run `stages` in order; `ctx.stage` names the one running if it raises."""
    for name, stage in stages:
        ctx.stage = name
        if observe is None:
            stage(ctx)
            continue
        began = time.perf_counter()
        try:
            stage(ctx)
        finally:
            observe(name, time.perf_counter() - began)
