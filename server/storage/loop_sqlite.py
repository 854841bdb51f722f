"""SQLite on the event loop: the driver under SQLAlchemy's async engine for SQLite.

aiosqlite runs every call (cursor, execute, fetch, close...) on a worker thread
and waits for the answer: about fifty thread hand-offs per message sent, each
costing far more than the statement itself. Here the same calls run at once
on the loop's thread. A statement on a WAL database touches only the page
cache and takes microseconds; what can take milliseconds is handed off:

- the ``COMMIT`` of a transaction that wrote (the fsync of ``synchronous=FULL``)
  runs on a thread, while the loop serves other requests; with group commit
  that is one hand-off per group, however many sends it holds;
- ``BEGIN IMMEDIATE`` is tried with no busy wait; only if another process
  holds the write lock (``parley admin enroll``) is it retried on a thread
  with the usual busy timeout, so the loop never sleeps on a lock.

Read transactions never wait for a lock in WAL mode, so they stay on the loop.
The object returned by `connect` has the interface SQLAlchemy's aiosqlite
dialect expects of an ``aiosqlite.Connection`` (its ``async_creator``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

BUSY_TIMEOUT_MS = 10_000


class LoopCursor:
    """An aiosqlite-shaped cursor whose coroutines finish without suspending."""

    def __init__(self, owner: LoopConnection) -> None:
        self._owner = owner
        self._cursor = owner.raw.cursor()

    async def __aenter__(self) -> LoopCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        """The DB-API description of the last statement's columns."""
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        """Rows the last statement changed."""
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid of the last inserted row."""
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        """Rows per fetchmany."""
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> LoopCursor:
        """Run one statement (``BEGIN IMMEDIATE`` may wait on a thread, see the module)."""
        if sql.startswith("BEGIN"):
            await self._owner.begin(sql)
        elif parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> LoopCursor:
        """Run one statement for each parameter row."""
        self._cursor.executemany(sql, rows)
        return self

    async def fetchone(self) -> Any:
        """The next row or None."""
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to `size` rows."""
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        """Every remaining row."""
        return self._cursor.fetchall()

    async def close(self) -> None:
        """Close the cursor."""
        self._cursor.close()

    async def setinputsizes(self, *_sizes: Any) -> None:
        """A DB-API no-op."""

    async def nextset(self) -> None:
        """SQLite has one result set per statement."""


class LoopConnection:
    """An aiosqlite-shaped connection running sqlite3 on the loop's thread."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        # SQLAlchemy's adapter reads aiosqlite's `_connection` (None once closed).
        self._connection: sqlite3.Connection | None = raw
        self._changes_at_begin = raw.total_changes
        self._writing = False

    @property
    def isolation_level(self) -> str | None:
        """Always None: SQLAlchemy's begin hook emits BEGIN itself."""
        return self.raw.isolation_level

    def cursor(self) -> LoopCursor:
        """A new cursor."""
        return LoopCursor(self)

    async def begin(self, sql: str) -> None:
        """Begin a transaction; wait for another process's write lock on a thread."""
        self._changes_at_begin = self.raw.total_changes
        self._writing = "IMMEDIATE" in sql or "EXCLUSIVE" in sql
        try:
            self.raw.execute(sql)
        except sqlite3.OperationalError as exc:
            if not self._writing or "locked" not in str(exc):
                raise
            await asyncio.to_thread(self._begin_waiting, sql)

    def _begin_waiting(self, sql: str) -> None:
        self.raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            self.raw.execute(sql)
        finally:
            self.raw.execute("PRAGMA busy_timeout=0")

    async def commit(self) -> None:
        """Commit; the fsync of a transaction that wrote runs on a thread."""
        if not self.raw.in_transaction:
            return
        wrote = self._writing or self.raw.total_changes != self._changes_at_begin
        self._writing = False
        if wrote:
            await asyncio.to_thread(self.raw.commit)
        else:
            self.raw.commit()

    async def rollback(self) -> None:
        """Roll back (no fsync: the WAL's uncommitted frames are just dropped)."""
        self._writing = False
        self.raw.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register an SQL function (SQLAlchemy's ``regexp``)."""
        self.raw.create_function(*args, **kwargs)

    async def close(self) -> None:
        """Close the connection."""
        self._connection = None
        self.raw.close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        self._connection = None
        self.raw.close()


async def connect(path: str) -> LoopConnection:
    """Open `path` in WAL mode with ``synchronous=FULL`` and no busy wait on the loop."""
    return LoopConnection(await asyncio.to_thread(_open, path))


def _open(path: str) -> sqlite3.Connection:
    # Opened on a thread (once per pooled connection): switching to WAL may wait for a lock.
    raw = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000
    )
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("PRAGMA busy_timeout=0")
    return raw
