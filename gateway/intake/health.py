"""Mailbox poller health shared with `postdesk status`: the serve process writes one small JSON
file per mailbox intake under `data_dir/health/` (and, for every instance to see, the job's row
in the database: gateway.jobs), the CLI reads them (no mail content in them)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, cast

from gateway.intake.poller import PollHealth
from storage import private


def _folder(data_dir: Path) -> Path:
    return data_dir / "health"


def as_json(health: PollHealth) -> dict[str, Any]:
    """The health as plain JSON values (times as text), with the line `status` prints."""
    return cast(dict[str, Any], json.loads(json.dumps(
        {**asdict(health), "line": health.line()}, default=str
    )))


def write(data_dir: Path, health: PollHealth) -> None:
    folder = _folder(data_dir)
    private.make_dirs(folder)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(as_json(health), handle)
    os.replace(tmp, folder / f"{health.source}.json")


def read_all(data_dir: Path) -> list[dict[str, Any]]:
    folder = _folder(data_dir)
    if not folder.is_dir():
        return []
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
