"""Statements built once, for the hot paths (a send, a login check, a stream read).

Building a SQLAlchemy statement and computing its cache key on every call cost
more than running it. A `Prepared` statement is built once, at import, with
named bind parameters. On PostgreSQL it runs through SQLAlchemy (whose cache
key is then memoized on the statement). On SQLite it is compiled once to SQL
text and run on the connection's sqlite3 handle (`loop_sqlite`), inside the
transaction or savepoint SQLAlchemy opened: no statement building, no result
processing, and sqlite3 reuses its prepared statement for the same text.

Rows come back as plain tuples in the order of the selected columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Delete, Insert, Select, Update
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.loop_sqlite import LoopConnection

_SQLITE = SQLiteDialect_pysqlite(paramstyle="qmark")


def sqlite_handle(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn`, if it is one of `loop_sqlite`'s."""
    sync = conn.sync_connection
    if sync is None or sync.dialect.name != "sqlite":
        return None
    driver = sync.connection.driver_connection
    return driver.raw if isinstance(driver, LoopConnection) else None


class Prepared:
    """One statement, built once; `rows`/`run` bind it by parameter name."""

    def __init__(self, statement: Select[Any] | Insert | Update | Delete) -> None:
        self.statement = statement
        compiled = statement.compile(dialect=_SQLITE)
        self.sqlite_sql = str(compiled)
        self._order: Sequence[str] = tuple(compiled.positiontup or ())
        # Parameters the compiler added itself, with their values (SQLite's OFFSET 0).
        self._fixed = {
            name: bind.value for name, bind in compiled.binds.items() if not bind.required
        }

    def _args(self, params: dict[str, Any]) -> list[Any]:
        fixed = self._fixed
        return [params[name] if name not in fixed else fixed[name] for name in self._order]

    def _error(self, exc: sqlite3.Error, params: Any) -> StatementError:
        # The same exception types as through SQLAlchemy (IntegrityError, ...).
        return DBAPIError.instance(self.sqlite_sql, params, exc, sqlite3.Error)

    async def rows(self, conn: AsyncConnection, **params: Any) -> list[tuple[Any, ...]]:
        """Every row the statement returns."""
        raw = sqlite_handle(conn)
        if raw is not None:
            try:
                return raw.execute(self.sqlite_sql, self._args(params)).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc, params) from exc
        return [tuple(r) for r in await conn.execute(self.statement, params)]

    async def first(self, conn: AsyncConnection, **params: Any) -> tuple[Any, ...] | None:
        """The first row, or None."""
        raw = sqlite_handle(conn)
        if raw is not None:
            try:
                row: tuple[Any, ...] | None = raw.execute(
                    self.sqlite_sql, self._args(params)
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._error(exc, params) from exc
            return row
        found = (await conn.execute(self.statement, params)).first()
        return None if found is None else tuple(found)

    async def run(self, conn: AsyncConnection, **params: Any) -> int:
        """Execute an INSERT/UPDATE/DELETE; return how many rows it changed."""
        raw = sqlite_handle(conn)
        if raw is not None:
            try:
                return raw.execute(self.sqlite_sql, self._args(params)).rowcount
            except sqlite3.Error as exc:
                raise self._error(exc, params) from exc
        result = await conn.execute(self.statement, params)
        return int(getattr(result, "rowcount", 0))

    async def run_many(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        """Execute once per parameter set."""
        if not rows:
            return
        raw = sqlite_handle(conn)
        if raw is not None:
            try:
                raw.executemany(self.sqlite_sql, [self._args(r) for r in rows])
            except sqlite3.Error as exc:
                raise self._error(exc, rows) from exc
            return
        await conn.execute(self.statement, rows)
