"""Personal-data redaction with Presidio arrives with issue 4; it must run here, before `record`
writes anything for the long term. Until then text is stored as received."""

from __future__ import annotations

from gateway.pipeline.context import Context


def run(ctx: Context) -> None:
    return None
