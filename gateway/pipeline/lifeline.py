"""Child processes that end with their parent: after a `kill -9` of serve, a worker (or its
prepare process) left behind would hold the SQLite write lock, or spin in a regular
expression, and a restarted serve would fail with "database is locked".

On Linux the kernel kills the child the moment its parent dies (PR_SET_PDEATHSIG); elsewhere,
or while the kernel has not scheduled the kill yet, the worker notices before its next claim (it
checks `os.getppid()` before every claim, so also between the mails of a burst) and claims
nothing more; a mail it was finishing is refused by the conditional finish once another
instance has taken its row back (storage.spool.LeaseLost)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; exit at once if the parent
    is gone already. True if the kernel takes care of it (Linux).

    The kernel ties this to the parent *thread* that started the child: start children from a
    thread that lives as long as they do (serve's worker supervisor, the worker's main thread)."""
    armed = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    if os.getppid() != parent_pid:  # died before we asked: no signal will come
        os._exit(0)
    return armed
