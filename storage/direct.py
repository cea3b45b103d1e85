"""The direct path for the writes the worker makes for every mail, on SQLite: the SQL that
SQLAlchemy compiled once for a statement, handed with the values SQLAlchemy's types make to
sqlite3 on the session's own DB-API connection, in the session's transaction.

Why: SQLAlchemy's execution of an already compiled statement (execution context, parameter
processing, result set-up) costs 70-150 µs a statement on the 2-core machine, sqlite3's own
work 5-15 µs, and the worker, which limits end-to-end speed, runs about 15 such statements a
mail (bench/worker_profile.py, README "Benchmarks"). What is kept of SQLAlchemy: its compiler
(the SQL), its type processors (dates, JSON, sealed columns), its column defaults, its
exception classes (a locked or full database raises what `Connection.execute` raises) and its
cursor-execution events (bench/sqlcount counts these statements too). Other dialects,
executemany with RETURNING and rows of different keys go through SQLAlchemy as before; so does
everything on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Dialect, Executable
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound, StatementError

Row = TypeVar("Row")


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect and one set of parameter names: what the DB-API
    is handed, in its order, and how each value is made."""

    sql: str
    # per DB-API parameter: the bind's name and SQLAlchemy's type processor for it
    order: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    fixed: dict[str, Any]  # literal values of the statement, scalar column defaults
    computed: tuple[tuple[str, Callable[[Any], Any]], ...]  # callable defaults (utcnow, list)
    # RETURNING: each column's key and SQLAlchemy's result processor for it
    returning: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        merged = {**self.fixed, **params}
        for name, make in self.computed:
            if name not in params:
                merged[name] = make(None)  # SQLAlchemy wraps a column default as fn(context)
        return tuple(  # SQLAlchemy hands None to the processors too (JSON null, …)
            merged[name] if process is None else process(merged[name])
            for name, process in self.order
        )


class Direct:
    """A write statement that runs directly on SQLite (see the module's docstring), compiled
    once per database (its dialect object: the type processors close over it, the sealed
    columns' key among them) and set of parameter names."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Plan | None]] = (
            WeakKeyDictionary()
        )

    def plan(self, dialect: Dialect, names: tuple[str, ...]) -> _Plan | None:
        plans = self._plans.get(dialect)
        if plans is None:
            plans = self._plans[dialect] = {}
        if names not in plans:
            plans[names] = _compile(self.statement, dialect, names)
        return plans[names]


def _compile(statement: Executable, dialect: Dialect, names: tuple[str, ...]) -> _Plan | None:
    compile_ = statement.compile  # type: ignore[attr-defined]
    compiled = compile_(dialect=dialect, column_keys=list(names))
    if not compiled.positional:
        return None
    binds = compiled.binds
    if any(bind.expanding or bind.literal_execute for bind in binds.values()):
        return None
    fixed: dict[str, Any] = {}
    computed: list[tuple[str, Callable[[Any], Any]]] = []
    for name, bind in binds.items():
        if not bind.required and bind.callable is None:
            fixed[name] = bind.value
    for column, default in [
        *((c, c.default) for c in compiled.insert_prefetch),
        *((c, c.onupdate) for c in compiled.update_prefetch),
    ]:
        if default is None or column.key in names:
            continue
        if default.is_scalar:
            fixed[column.key] = default.arg
        elif default.is_callable:
            computed.append((column.key, default.arg))
        else:
            return None  # a default SQLAlchemy runs another way: leave it to SQLAlchemy
    order = tuple(
        (name, binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup
    )
    returning = tuple(
        (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for column in compiled.effective_returning or ()
    )
    return _Plan(compiled.string, order, fixed, tuple(computed), returning)


def _only(rows: list[Row]) -> Row:
    """The one row, or SQLAlchemy's error for none or several (as `Result.one()` raises)."""
    if len(rows) != 1:
        raise (
            NoResultFound("expected one row")
            if not rows
            else MultipleResultsFound("expected one row")
        )
    return rows[0]


class DirectResult:
    """What the stores read of a direct statement's result (the RETURNING rows, processed as
    SQLAlchemy would: dates, JSON, sealed columns opened)."""

    def __init__(self, rowcount: int, rows: list[tuple[Any, ...]], keys: tuple[str, ...]) -> None:
        self.rowcount = rowcount
        self._rows = rows
        self._keys = keys

    def mappings(self) -> DirectMappings:
        return DirectMappings([dict(zip(self._keys, row, strict=True)) for row in self._rows])

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return _only(self._rows)[0]

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


class DirectMappings:
    """The RETURNING rows as dicts (column key → value), like `Result.mappings()`."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def first(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> dict[str, Any]:
        return _only(self._rows)


def run_direct(
    connection: Connection, direct: Direct, params: Mapping[str, Any] | list[dict[str, Any]]
) -> DirectResult | None:
    """Run `direct` on SQLite's DB-API connection under `connection`'s transaction; None when
    it has to go through SQLAlchemy (another dialect, rows of different keys, …)."""
    dialect = connection.dialect
    if dialect.name != "sqlite":
        return None
    rows = params if isinstance(params, list) else [params]
    if not rows:
        return None
    names = tuple(rows[0])
    if any(tuple(row) != names for row in rows[1:]):
        return None
    plan = direct.plan(dialect, names)
    if plan is None or (plan.returning and len(rows) > 1):
        return None
    try:
        values = [plan.values(row) for row in rows]
    except Exception as exc:  # a type's processor refused a value (as SQLAlchemy wraps it)
        raise StatementError(str(exc), plan.sql, None, exc) from exc
    many = len(values) > 1
    parameters: Any = values if many else values[0]
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    listened = bool(
        connection.dispatch.before_cursor_execute or connection.dispatch.after_cursor_execute
    )
    if listened:
        connection.dispatch.before_cursor_execute(
            connection, cursor, plan.sql, parameters, None, many
        )
    try:
        if many:
            cursor.executemany(plan.sql, parameters)
        else:
            cursor.execute(plan.sql, parameters)
        fetched = list(cursor.fetchall()) if plan.returning else []
    except dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(  # without the values: they may be mail
            plan.sql,
            parameters,
            exc,
            dialect.loaded_dbapi.Error,
            hide_parameters=True,
            dialect=dialect,
        ) from exc
    finally:
        rowcount = cursor.rowcount
        cursor.close()
    if listened:
        connection.dispatch.after_cursor_execute(
            connection, cursor, plan.sql, parameters, None, many
        )
    processors = [process for _, process in plan.returning]
    if any(processors):
        fetched = [
            tuple(
                value if process is None else process(value)
                for process, value in zip(processors, row, strict=True)
            )
            for row in fetched
        ]
    return DirectResult(rowcount, fetched, tuple(key for key, _ in plan.returning))


def execute(connection: Connection, statement: Executable | Direct, params: Any) -> Any:
    """`connection.execute`, directly where it can for a `Direct` statement."""
    if isinstance(statement, Direct):
        result = run_direct(connection, statement, params)
        if result is not None:
            return result
        statement = statement.statement
    return connection.execute(statement, params)
