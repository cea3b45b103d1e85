"""Keep something loaded from admin-edited files (rules, templates) in force while `serve` runs:
look for changed files at most every `check_seconds`, load and check a change as a whole, put it
in force if it is good, else refuse it and keep the last good one. Either outcome is logged once
per change (`<what>.reloaded` / `<what>.refused` with file:line), not once per check."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Any, Generic, TypeVar

from gateway import logs
from gateway.errors import PostdeskError

T = TypeVar("T")
State = tuple[Hashable, T]


def files_fingerprint(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detection: name, size and mtime of each file (one that vanished in between
    is left out; the next look sees the change)."""
    entries = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)


class Reloading(Generic[T]):
    """The value in force. Subclasses say how to load it, how to see that its files changed,
    and how to describe it and its errors in the log. The first load happens in `__init__` and
    raises: at start a broken state is an error, not a fallback."""

    what = "files"  # the log events' prefix

    def __init__(self, check_seconds: float = 1.0, start: State[T] | None = None) -> None:
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._refused: Hashable | None = None
        self._refused_errors: list[str] | None = None
        self._checked = time.monotonic()
        self.value: T
        if start is not None:  # what another process checked (see state())
            self._fingerprint, self.value = start
        else:
            self._fingerprint = self.fingerprint()
            self.value = self.load()

    def state(self) -> State[T]:
        """The value in force and the fingerprint of its files: a new worker process starts
        from what serve checked, and follows edits from there (a file broken meanwhile does
        not keep it from starting)."""
        with self._lock:
            return self._fingerprint, self.value

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
        """Look for changed files now and load a change; True if that put a new version in
        force (or ended a refusal). A change is logged once even if the files were caught
        half-written (an editor's save, seen twice): the same version or the same errors
        again are not logged again."""
        with self._lock:
            self._checked = time.monotonic()
            fingerprint = self.fingerprint()
            if fingerprint == self._refused or (
                fingerprint == self._fingerprint and self._refused is None
            ):
                return False
            try:
                value = self.value if fingerprint == self._fingerprint else self.load()
            except PostdeskError as exc:
                self._refuse(fingerprint, exc)
                return False
            ended_refusal = self._refused is not None
            new = self._version(value) != self._version(self.value)
            self._fingerprint, self._refused, self._refused_errors = fingerprint, None, None
            self.value = value
        if new or ended_refusal:  # after a refusal, say what is in force
            logs.event(f"{self.what}.reloaded", **self.describe(value))
        return new or ended_refusal

    def _version(self, value: T) -> Any:
        return self.describe(value).get("version")

    def _refuse(self, fingerprint: Hashable, exc: PostdeskError) -> None:
        errors = self.errors(exc)
        if errors is None:
            raise exc
        self._refused = fingerprint  # log a broken state once, not on every check
        if errors == self._refused_errors:
            return
        self._refused_errors = errors
        active = self._version(self.value)
        for error in errors:
            logs.event(f"{self.what}.refused", logging.ERROR, error=error, active=active)
