"""A free-space floor for the filesystems postdesk writes to, so intake can refuse new mail early
(452 at MAIL FROM) instead of taking a whole transfer and then failing the commit on a full disk.

The answer is cached for a second: intake asks on every MAIL FROM, on its event loop, and a
statvfs per command would be a syscall there (a network round trip on NFS) for no gain.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

CACHE_SECONDS = 1.0


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on `path`'s filesystem, or None if unknown.

    A path that does not exist yet (a fresh data dir) is measured at its nearest existing
    ancestor: that is the filesystem it will be created on."""
    for candidate in (path, *path.parents):
        try:
            stat = os.statvfs(candidate)
        except FileNotFoundError:
            continue
        except OSError:
            return None
        return stat.f_bavail * stat.f_frsize
    return None


class FreeSpaceFloor:
    """`low()` is True while any watched filesystem has fewer than `floor` bytes free.

    A floor of 0 disables the check. A filesystem that cannot be measured does not count as
    low: refusing all mail because statvfs failed would turn a monitoring gap into an outage,
    and a commit that really fails still answers 451."""

    def __init__(self, paths: Iterable[Path], floor: int, cache_seconds: float = CACHE_SECONDS):
        self.paths = tuple(dict.fromkeys(Path(p) for p in paths))
        self.floor = floor
        self._cache_seconds = cache_seconds
        self._checked_at = -math.inf
        self._low = False

    def low(self) -> bool:
        if self.floor <= 0:
            return False
        now = time.monotonic()
        if now - self._checked_at >= self._cache_seconds:
            self._checked_at = now
            self._low = any(self._below(path) for path in self.paths)
        return self._low

    def _below(self, path: Path) -> bool:
        free = free_bytes(path)
        return free is not None and free < self.floor
