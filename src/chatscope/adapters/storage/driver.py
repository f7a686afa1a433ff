"""The saved-turn statements on SQLite's driver connection: `execute_rows` and `first_row`.

On SQLite a statement costs more in SQLAlchemy's execution path (about 25 µs each) than in
SQLite itself, so an SQLite engine carries `DriverStatements` in its execution options: each
statement is compiled by SQLAlchemy once per engine, then runs on the driver connection
underneath, inside the transaction that connection is in. Other engines run Core, and so does
SQLite while anyone listens for the engine's cursor or error events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

__all__ = [
    "DRIVER_STATEMENTS",
    "DRIVER_TRANSACTIONS",
    "DriverStatements",
    "as_sqlalchemy_error",
    "execute_rows",
    "first_row",
    "statements_observed",
]

DRIVER_STATEMENTS = "chatscope_driver_statements"
"""The execution option of an SQLite engine that holds its `DriverStatements`."""
DRIVER_TRANSACTIONS = "chatscope_driver_transactions"
"""The execution option of a connection the event loop holds, set to its driver connection:
its SQLAlchemy transaction stands while it is held, beginning nothing, and each unit of work
begins and ends its own transaction on the driver (see `database.py`)."""

Parameters = Mapping[str, Any]


def execute_rows(
    connection: Connection, statement: Executable, rows: Parameters | Sequence[Parameters]
) -> None:
    """Run `statement` once, or once per row when `rows` is a list (an INSERT of many)."""
    driver = _driver_statements(connection)
    if driver is None:
        connection.execute(statement, rows)
    else:
        driver[0].execute(connection, driver[1], statement, rows)


def first_row(
    connection: Connection, statement: Executable, parameters: Parameters
) -> tuple[Any, ...] | None:
    """The first row `statement` returns, or None."""
    driver = _driver_statements(connection)
    if driver is None:
        row = connection.execute(statement, parameters).first()
        return None if row is None else tuple(row)
    return driver[0].first(connection, driver[1], statement, parameters)


def _driver_statements(connection: Connection) -> tuple[DriverStatements, Any] | None:
    """The engine's `DriverStatements` and the driver connection to run a statement on, for a
    statement inside a transaction, unless someone listens for the engine's statements or
    errors (OpenTelemetry's SQLAlchemy instrumentation, say): they then run through Core, seen.
    (Outside a transaction Core begins one itself, which the driver, in autocommit, would not.)
    A connection the loop holds was checked when its transaction began."""
    options = connection.get_execution_options()
    statements: DriverStatements | None = options.get(DRIVER_STATEMENTS)
    if statements is None:
        return None
    held = options.get(DRIVER_TRANSACTIONS)
    if held is not None:
        return statements, held
    if not connection.in_transaction() or statements_observed(connection):
        return None
    return statements, connection.connection.driver_connection


def statements_observed(target: Engine | Connection) -> bool:
    """Whether anyone listens for the statements or errors of an engine, or of a connection
    (its own listeners and its engine's)."""
    dispatch = target.dispatch
    if dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        return True
    return bool(target.dialect.dispatch.handle_error)


_Processor = Callable[[Any], Any]
_Step = tuple[str | None, Any, _Processor | None]
"""How one `?` is filled: (parameter name, None, its type's processor or None), or for a
constant (None, its value already processed, None)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as SQLite's driver takes it: SQL text with `?` markers, and how to fill them
    (`steps`, one per marker, in order; `fetch`, when every marker takes a parameter as it is)."""

    sql: str
    steps: tuple[_Step, ...]
    fetch: Callable[[Parameters], tuple[Any, ...]] | None

    def values(self, parameters: Parameters) -> tuple[Any, ...]:
        if self.fetch is not None:
            return self.fetch(parameters)
        return tuple(
            [
                constant
                if name is None
                else parameters[name]
                if processor is None
                else processor(parameters[name])
                for name, constant, processor in self.steps
            ]
        )


class DriverStatements:
    """The statements one SQLite engine has run, compiled by SQLAlchemy once each.

    A statement runs on the driver connection underneath the SQLAlchemy `Connection` it is given,
    in the transaction that connection began; its parameters pass through the same type
    processors SQLAlchemy applies (a `DateTime` becomes SQLite's text form), and a driver error
    becomes the SQLAlchemy exception Core would raise. Only plain statements qualify: bound
    parameters and constants, no expanding `IN`. Held by one engine and dropped with it.
    """

    __slots__ = ("_compiled",)

    def __init__(self) -> None:
        self._compiled: dict[Executable, _Compiled] = {}

    def execute(
        self,
        connection: Connection,
        driver: sqlite3.Connection,
        statement: Executable,
        rows: Parameters | Sequence[Parameters],
    ) -> None:
        """Run `statement` on `driver` (underneath `connection`), once or once per row."""
        compiled = self._compile(connection, statement)
        try:
            if type(rows) is dict or isinstance(rows, Mapping):
                driver.execute(compiled.sql, compiled.values(rows))
            else:
                driver.executemany(compiled.sql, [compiled.values(row) for row in rows])
        except sqlite3.Error as exc:
            raise as_sqlalchemy_error(connection, compiled.sql, exc) from None

    def first(
        self,
        connection: Connection,
        driver: sqlite3.Connection,
        statement: Executable,
        parameters: Parameters,
    ) -> tuple[Any, ...] | None:
        """The first row `statement` returns on `driver`, or None."""
        compiled = self._compile(connection, statement)
        try:
            cursor = driver.execute(compiled.sql, compiled.values(parameters))
            row: tuple[Any, ...] | None = cursor.fetchone()
            cursor.close()
        except sqlite3.Error as exc:
            raise as_sqlalchemy_error(connection, compiled.sql, exc) from None
        return row

    def _compile(self, connection: Connection, statement: Executable) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = self._compiled[statement] = _compile(connection, statement)
        return compiled


def _compile(connection: Connection, statement: Executable) -> _Compiled:
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ())
    steps = tuple(_step(name, compiled.binds[name], dialect) for name in names)
    return _Compiled(str(compiled), steps, _fetch(steps))


def _step(name: str, bind: Any, dialect: Dialect) -> _Step:
    """How the marker of the bound parameter `bind` is filled."""
    processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
    if bind.required:
        return (name, None, processor)
    return (None, bind.value if processor is None else processor(bind.value), None)


def _fetch(steps: tuple[_Step, ...]) -> Callable[[Parameters], tuple[Any, ...]] | None:
    """The values of `steps` in one C call, if each is a parameter taken as it is."""
    plain = all(name is not None and processor is None for name, _, processor in steps)
    if not plain or len(steps) < 2:
        return None
    return itemgetter(*(name for name, _, _ in steps))


def as_sqlalchemy_error(connection: Connection, sql: str, exc: sqlite3.Error) -> BaseException:
    """What SQLAlchemy raises for this driver error (an `IntegrityError`, say), without the
    statement's parameters."""
    return DBAPIError.instance(
        sql, None, exc, sqlite3.Error, hide_parameters=True, dialect=connection.dialect
    )
