"""The pipeline: two visible tuples of small named stages, each run in order over its state.

PREPARE's stages work on a `Preparing` (the raw mail and the settings) and make a
`PreparedMail` (gateway.pipeline.prepare); STAGES work on a `Context` (the services of the
worker's transaction, the PreparedMail, what they decide). A stage may end the run on purpose
by raising `Stop(reason)`; any other exception fails the mail, and the worker quarantines it
with the stage's name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from gateway.pipeline.context import Context, Preparing

Stage = Callable[["Context"], None]
PrepareStage = Callable[["Preparing"], None]

# PREPARE and STAGES are built on first use (module __getattr__ below): importing the stages
# brings in Presidio, Jinja2 and the mail parsers, which `gateway.pipeline.context`'s users
# (the CLI among them) must not pay for.
#
# PREPARE: work that needs nothing but the raw mail: the worker runs it before the write
# transaction, so no lock is held while mail is parsed and searched for personal data.
# STAGES: one transaction per mail. Routing comes before redaction so that a queue's own choice
# of redacted entities applies to a new ticket; rules read the mail but store nothing of it.
PREPARE: tuple[tuple[str, PrepareStage], ...]
STAGES: tuple[tuple[str, Stage], ...]


def _build() -> dict[str, tuple[tuple[str, Any], ...]]:
    from gateway.pipeline import (
        commands,
        extract,
        figures,
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

    return {
        "PREPARE": (
            ("parse", parse.run),
            ("quotes", quotes.prepare),
            ("extract", extract.prepare),
            ("analyse", redact.prepare),
        ),
        "STAGES": (
            ("guard", guard.run),
            ("thread", thread.run),
            ("identify", identify.run),
            ("commands", commands.run),
            ("quotes", quotes.run),
            ("route", route.run),
            ("redact", redact.run),
            ("record", record.run),
            ("notify", notify.run),
            ("figures", figures.run),
        ),
    }


def __getattr__(name: str) -> Any:
    if name in ("PREPARE", "STAGES"):
        for key, value in _build().items():
            globals().setdefault(key, value)  # a test may have replaced one already
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Observer = Callable[[str, float], None]
"""Told each stage's name and run time in seconds (the metrics), also when it raised."""


class _Staged(Protocol):
    stage: str  # the stage running now


State = TypeVar("State", bound=_Staged)


def run(
    ctx: State,
    stages: Sequence[tuple[str, Callable[[State], None]]],
    observe: Observer | None = None,
) -> None:
    """Run `stages` (PREPARE over a Preparing, or STAGES over a Context) in order; `ctx.stage`
    names the one running if it raises."""
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
