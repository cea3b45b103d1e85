"""Core statements on a session's connection, for the stores that write rows nobody reads back
in the same transaction (see storage.tickets): running them on the connection skips the ORM's
per-statement work and its autoflush. On SQLite the writes the worker makes for every mail go
further (storage.direct)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Executable, Table
from sqlalchemy.orm import Session

from storage.direct import Direct, execute
from storage.spool import insert_unless_present


@functools.cache
def _add_if_new(dialect: str, table: Table) -> Direct:
    return Direct(insert_unless_present(dialect, table))


class Statements:
    """A session and the Core statements run on its connection."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._connection: Connection | None = None
        self._dialect: str | None = None

    def _run(self, statement: Executable | Direct, params: Any = None) -> Any:
        """Run a Core statement on the session's connection (a `Direct` one directly where
        it can)."""
        connection = self._connection
        if connection is None or connection.closed or not connection.in_transaction():
            # the session's current transaction (a store may outlive one of them)
            connection = self._connection = self.session.connection()
        return execute(connection, statement, params)

    def _add_if_new(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """`INSERT … ON CONFLICT DO NOTHING` for `rows` (nothing for none)."""
        if not rows:
            return
        if self._dialect is None:
            self._dialect = self.session.get_bind().dialect.name
        self._run(_add_if_new(self._dialect, table), rows)


class HeldRows:
    """Rows a store holds back while a `deferred()` block runs, written with one statement
    when it ends: the mails one incoming mail causes (notifications, acknowledgement) cost
    one INSERT, not one each. The store writes them first (`flush`) before it reads the same
    table in the block; if the block raises, they are dropped with its transaction."""

    def __init__(self, write: Callable[[list[dict[str, Any]]], None]) -> None:
        self._write = write
        self._holding = False
        self._rows: list[dict[str, Any]] = []

    @contextmanager
    def deferred(self) -> Iterator[None]:
        if self._holding:  # nested: the outer block writes
            yield
            return
        self._holding = True
        try:
            yield
            self._holding = False
            self.flush()
        finally:
            self._holding = False
            self._rows = []

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Hold `rows` inside a `deferred()` block; write them at once outside one."""
        if self._holding:
            self._rows.extend(rows)
        elif rows:
            self._write(rows)

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if rows:
            self._write(rows)
