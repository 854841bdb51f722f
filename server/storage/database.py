"""Engine and transactions. Services open one transaction per use case through
`Database.write()` or `Database.read()`; repositories take the connection and
never commit.

SQLite has one writer at a time, and each commit waits for an fsync
(``synchronous=FULL``: an acknowledged event survives a power cut, not just a
crash). So SQLite writes are **group-committed**: concurrent `write()` blocks
queue up, one leader transaction (``BEGIN IMMEDIATE``, so a second process
such as ``parley admin enroll`` waits instead of failing) runs each block in
turn inside its own SAVEPOINT — a block that raises rolls back alone — and one
commit makes the whole group durable before any block's caller continues.
PostgreSQL writers run concurrently and serialize per log on row locks.

SQLite connections come from `server.storage.loop_sqlite`: statements run on
the event loop's thread, and only a writing transaction's COMMIT (its fsync)
is handed to a thread, so a whole group costs one thread hand-off.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from server.storage import loop_sqlite
from server.storage.prepared import sqlite_handle

_BEGIN_OPTION = "parley_sqlite_begin"
_AFTER_COMMIT = "parley_after_commit"
MAX_GROUP = 128
"""Write blocks committed together at most."""


@dataclass(eq=False)
class _Ticket:
    """One queued write block's handshake with the group leader."""

    granted: asyncio.Future[AsyncConnection] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    finished: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    committed: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Database:
    """An async engine plus the write discipline the dialect needs."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._queue: deque[_Ticket] = deque()
        self._leader: asyncio.Task[None] | None = None
        self.group_committed: Callable[[int], None] = _ignore
        """Called with the number of write blocks each SQLite group commit made durable."""

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A read-write transaction; when the block exits without error, it is committed
        (durably) before this returns. If the block raises, nothing it wrote remains."""
        if not self.is_sqlite:
            callbacks: list[Callable[[], None]] = []
            async with self.engine.begin() as conn:
                conn.info[_AFTER_COMMIT] = callbacks
                try:
                    yield conn
                finally:
                    conn.info.pop(_AFTER_COMMIT, None)
            _run_all(callbacks)
            return
        ticket = _Ticket()
        self._queue.append(ticket)
        if self._leader is None or self._leader.done():
            self._leader = asyncio.create_task(self._lead())
        try:
            conn = await ticket.granted
        except BaseException:
            ticket.finished.cancel()
            raise
        block: list[Callable[[], None]] = []
        conn.info[_AFTER_COMMIT] = block
        try:
            async with _savepoint(conn):
                yield conn
        except BaseException:
            ticket.committed.cancel()
            ticket.finished.set_result(None)
            raise
        finally:
            conn.info.pop(_AFTER_COMMIT, None)
        ticket.finished.set_result(None)
        await ticket.committed
        _run_all(block)

    async def _lead(self) -> None:
        """Run queued write blocks in group transactions until the queue is empty."""
        while self._queue:
            group = [self._queue.popleft() for _ in range(min(MAX_GROUP, len(self._queue)))]
            try:
                await self._run_group(group)
            except BaseException as exc:  # BEGIN or COMMIT failed: no block in the group landed
                failure = exc if isinstance(exc, Exception) else RuntimeError("write cancelled")
                for ticket in group:
                    for future in (ticket.granted, ticket.committed):
                        if not future.done():
                            future.set_exception(failure)
                            break
                if not isinstance(exc, Exception):
                    raise

    async def _run_group(self, group: list[_Ticket]) -> None:
        blocks = 0
        async with self.engine.connect() as raw:
            conn = await raw.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            async with conn.begin():
                for ticket in group:
                    if ticket.granted.cancelled():
                        continue
                    ticket.granted.set_result(conn)
                    blocks += 1
                    with contextlib.suppress(asyncio.CancelledError):
                        await ticket.finished
        self.group_committed(blocks)
        for ticket in group:
            if not ticket.committed.done():
                ticket.committed.set_result(None)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction (a consistent snapshot)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def read_one(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a use case that runs **one** read statement, which sees a
        consistent snapshot by itself: on PostgreSQL it runs outside a transaction block
        (one round trip instead of three: BEGIN, the statement, COMMIT). SQLite: `read`."""
        if self.is_sqlite:
            async with self.read() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        if self._leader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._leader
        await self.engine.dispose()


def after_commit(conn: AsyncConnection, callback: Callable[[], None]) -> None:
    """Call `callback` once the write block running on `conn` is durably committed (never
    if it rolls back). Outside a write block (a read), it is called at once: what a
    read sees is committed already."""
    pending: list[Callable[[], None]] | None = conn.info.get(_AFTER_COMMIT)
    if pending is None:
        callback()
    else:
        pending.append(callback)


def _ignore(_blocks: int) -> None:
    pass


def _run_all(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        callback()


@asynccontextmanager
async def _savepoint(conn: AsyncConnection) -> AsyncIterator[None]:
    """One write block's savepoint: if the block raises, only its own writes roll back."""
    handle = sqlite_handle(conn)
    if handle is None:
        async with conn.begin_nested():
            yield
        return
    # Straight on the sqlite3 handle: SQLAlchemy's nested-transaction bookkeeping cost
    # more than the statements. The group's transaction stays SQLAlchemy's.
    handle.execute("SAVEPOINT parley_block")
    try:
        yield
    except BaseException:
        if handle.in_transaction:  # some errors end the whole transaction in SQLite
            handle.execute("ROLLBACK TO parley_block")
            handle.execute("RELEASE parley_block")
        raise
    handle.execute("RELEASE parley_block")


def _drop_closed(dbapi_connection: Any, _record: object, _proxy: object) -> None:
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection")


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_database(url: str) -> Database:
    """Build the engine for `url` (sqlite+aiosqlite or postgresql+asyncpg)."""
    if url.startswith("sqlite"):
        # The connections come from loop_sqlite (statements on the loop, fsyncs on a
        # thread); the aiosqlite dialect only names the SQL flavour and the adapters.
        path = make_url(url).database
        if not path or path == ":memory:":
            raise ValueError("Parley needs a SQLite database file, not :memory:")
        engine = create_async_engine(
            url, async_creator=partial(loop_sqlite.connect, path), pool_size=8, max_overflow=0
        )
        event.listen(engine.sync_engine, "begin", _sqlite_on_begin)
    else:
        # No pool_pre_ping: its round trip per checkout cost about a tenth of a send.
        # A connection the server closed (a restart) is noticed by asyncpg itself, and
        # _drop_closed makes the pool replace it before anyone uses it.
        engine = create_async_engine(url, pool_size=10, max_overflow=10)
        event.listen(engine.sync_engine, "checkout", _drop_closed)
    return Database(engine)
