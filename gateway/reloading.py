"""Keep something loaded from admin-edited files (rules, templates) in force while `serve` runs:
look for changed files at most every `check_seconds`, load and check a change as a whole, put it
in force if it is good, else refuse it and keep the last good one. Either outcome is logged once
per change (`<what>.reloaded` / `<what>.refused` with file:line), not once per check."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from gateway import logs
from gateway.errors import PostdeskError

T = TypeVar("T")


class Reloading(Generic[T]):
    """The value in force. Subclasses say how to load it, how to see that its files changed,
    and how to describe it and its errors in the log. The first load happens in `__init__` and
    raises: at start a broken state is an error, not a fallback."""

    what = "files"  # the log events' prefix

    def __init__(self, check_seconds: float = 1.0) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._fingerprint = self.fingerprint()
        self._refused: Hashable | None = None
        self._checked = time.monotonic()
        self.value: T = self.load()

    # --- what a subclass provides -------------------------------------------------------------

    def load(self) -> T:
        raise NotImplementedError

    def fingerprint(self) -> Hashable:
        """Cheap change detection (names, sizes, mtimes); equal means unchanged."""
        raise NotImplementedError

    def describe(self, value: T) -> dict[str, Any]:
        """Log fields of a loaded value: its version and size, no content."""
        raise NotImplementedError

    def errors(self, exc: PostdeskError) -> list[str] | None:
        """The `file:line: message` lines of a refused change, or None if `exc` is not a
        refusal (then it propagates)."""
        raise NotImplementedError

    # --- in force -----------------------------------------------------------------------------

    def current(self) -> T:
        """The value in force, after a look for changes if the last one is `check_seconds` old."""
        if time.monotonic() - self._checked >= self.check_seconds:
            self.refresh()
        return self.value

    def refresh(self) -> bool:
        """Look for changed files now; load a change. True if a new value is in force."""
        with self._lock:
            self._checked = time.monotonic()
            fingerprint = self.fingerprint()
            if fingerprint in (self._fingerprint, self._refused):
                return False
            try:
                value = self.load()
            except PostdeskError as exc:
                errors = self.errors(exc)
                if errors is None:
                    raise
                self._refused = fingerprint  # log a broken state once, not on every check
                active = self.describe(self.value).get("version")
                for error in errors:
                    logs.event(f"{self.what}.refused", logging.ERROR, error=error, active=active)
                return False
            self._fingerprint, self._refused = fingerprint, None
            self.value = value
        logs.event(f"{self.what}.reloaded", **self.describe(value))
        return True
