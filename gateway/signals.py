"""A set/clear flag shared between serve and its worker process that survives a killed peer.

`multiprocessing.Event` does not: its `set()` waits until every process sleeping in `wait()`
has woken up, and a worker killed while it slept (its normal idle state) never does, so after a
`kill -9` of the worker the next `set()` blocks forever — the SMTP intake's wake-up call after
storing a mail, or serve's stop. Here the flag is a byte of shared memory and the wake-up a
semaphore, whose `release()` never waits for anyone.
"""

from __future__ import annotations

from multiprocessing.context import SpawnContext


class ProcessFlag:
    """Same methods as threading.Event (the worker's `Signal` protocol). Meant for one waiting
    process at a time: `set()` wakes one waiter; others see the flag when their timeout ends."""

    def __init__(self, context: SpawnContext) -> None:
        self._flag = context.RawValue("b", 0)
        self._wakeup = context.Semaphore(0)

    def is_set(self) -> bool:
        return bool(self._flag.value)

    def set(self) -> None:
        self._flag.value = 1
        self._wakeup.release()

    def clear(self) -> None:
        self._flag.value = 0
        while self._wakeup.acquire(False):  # forget wake-ups of earlier set() calls
            pass

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag.value:
            return True
        self._wakeup.acquire(True, timeout)
        return bool(self._flag.value)
