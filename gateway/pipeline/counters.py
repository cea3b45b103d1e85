"""What the pipeline tells whoever measures it (serve's metrics), as a Protocol: the pipeline
counts into what it is given and never imports the metrics of the service around it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from gateway.config import Settings


class Counters(Protocol):
    """Stage run times and finished mails; `gateway.metrics.PipelineMetrics` is one."""

    def observe_stage(self, stage: str, seconds: float) -> None: ...

    def finished(self, outcome: str, stage: str, redactions: Mapping[str, int]) -> None: ...


CountersForChild = Callable[[Settings], Counters | None]
"""Builds the counters of a child process (worker, prepare) from the settings, first thing
in that process; a module-level function, so it can be handed to a spawned process."""
