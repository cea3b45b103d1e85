"""Which failures of a mail's processing are temporary faults of the environment (a full disk,
a read-only remount, no file handles left), so the mail waits and is tried again instead of
being quarantined, and how long it waits.

A temporary fault is not the mail's fault: it uses up none of the mail's attempts
(worker.max_attempts still stops a mail that crashes the worker), and the mail is tried again
after a back-off that doubles from worker.retry_backoff_seconds up to
worker.retry_backoff_max_seconds, until the waits add up to worker.retry_window_seconds; only
then is it quarantined (`postdesk inbox retry` brings it back).
"""

from __future__ import annotations

import errno
import os
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from gateway.config import WorkerSettings

TEMPORARY_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",  # no space left: the disk fills up, an operator (or retention) frees it
        "EDQUOT",  # over the disk quota: the same, for a quota
        "EIO",  # an I/O error of the device or a network file system that may come back
        "EROFS",  # a file system remounted read-only after an error, until it is repaired
        "EMFILE",  # no file handles left in this process (a burst), or system-wide:
        "ENFILE",
        "ENOMEM",  # the kernel could not allocate (fork, mmap)
        "EAGAIN",  # a resource temporarily unavailable, as the name says
        "EBUSY",
        "ETIMEDOUT",  # a network file system did not answer
        "ESTALE",  # a stale network file system handle (server restarted)
    )
    if hasattr(errno, name)
)
"""Not in the set, on purpose: EACCES/EPERM, ENOENT, ENOTDIR, EISDIR, ENAMETOOLONG and EINVAL
mean a mistake in the set-up (a data dir with the wrong owner) or a bug: they stay loud (the
mail is quarantined with the error at once) instead of keeping every mail waiting for days."""

_DISK_FULL_MESSAGES = ("database or disk is full", "disk full", "no space left")


def temporary(exc: BaseException) -> str | None:
    """The fault's class (an errno name such as "ENOSPC") if `exc`, or an exception it was
    raised from, is a temporary fault of the environment; None otherwise. SQLite reports a
    full disk as an OperationalError ("database or disk is full"): that is ENOSPC too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = current.errno if isinstance(current, OSError) else None
        if code is not None and code in TEMPORARY_ERRNOS:
            return errno.errorcode[code]
        if isinstance(current, OperationalError):
            message = str(current.orig).lower()
            if any(text in message for text in _DISK_FULL_MESSAGES):
                return "ENOSPC"
        current = current.__cause__ or current.__context__
    return None


def reason(fault: str) -> str:
    """The reason stored on the row: the class first (logs and `status` show only that), then
    the system's wording of the errno, never a path or anything of the mail."""
    code = getattr(errno, fault, None)
    text = os.strerror(code) if isinstance(code, int) else "temporary fault"
    return f"{fault}: {text} (temporary: tried again later)"


def backoff(settings: WorkerSettings, retries: int) -> timedelta:
    """The wait before the try after `retries` earlier temporary faults (0: the first)."""
    seconds = settings.retry_backoff_seconds * 2 ** min(retries, 30)
    return timedelta(seconds=min(seconds, settings.retry_backoff_max_seconds))


def window_used(settings: WorkerSettings, retries: int) -> bool:
    """True once the waits after `retries` faults add up to the retry window: give up."""
    waited = sum(backoff(settings, n).total_seconds() for n in range(min(retries, 100_000)))
    return waited >= settings.retry_window_seconds
