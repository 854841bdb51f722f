"""The process's cache of committed tree nodes (server/log/proofs.py `NodeCache`): an
append that commits shares its nodes; one that rolls back leaves nothing behind, and
the appends after it still build the right tree."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from client_sdk.protocol import merkle
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from server.log.appender import LogWriter
from server.log.proofs import ProofReader
from server.storage.database import Database, after_commit
from server.storage.logs import WRITE_VERSION, LogHead, LogRepository, head_version
from server.storage.tables import logs


class Refused(Exception):
    """A use case that fails after it appended."""


async def _note_then_fail(database: Database, seen: list[str]) -> None:
    async with database.write() as conn:
        after_commit(conn, lambda: seen.append("rolled back"))
        raise Refused


async def _append(log: LogWriter, database: Database, n: int, *, then_fail: bool = False) -> None:
    async with database.write() as conn:
        await log.append(
            conn,
            DIRECTORY_LOG_ID,
            type="test",
            actor_device="device",
            payload_hash=bytes([n]) * 32,
            signature=bytes(64),
            server_time=n,
        )
        if then_fail:
            raise Refused


async def _stored_root(database: Database) -> tuple[int, bytes, bytes]:
    """The log's size, the root recomputed from every stored leaf, and the root the
    stored nodes give."""
    async with database.read() as conn:
        repo = LogRepository(conn)
        head = await repo.head(DIRECTORY_LOG_ID)
        assert head is not None
        entries = await repo.entries(DIRECTORY_LOG_ID, start=0, end=head.size)
        from_nodes = await ProofReader(conn, DIRECTORY_LOG_ID).root(head.size)
    leaves = merkle.CompactRange()
    for entry in entries:
        leaves, _ = leaves.append(entry.leaf_hash)
    return head.size, leaves.root(), from_nodes


async def test_only_committed_nodes_are_shared(app: FastAPI) -> None:
    log: LogWriter = app.state.services.messages.log
    database: Database = app.state.services.messages.database
    await _append(log, database, 1)
    shared = dict(log.nodes.of(DIRECTORY_LOG_ID))
    assert shared, "a committed append shares the nodes it read and wrote"

    with pytest.raises(Refused):
        await _append(log, database, 2, then_fail=True)

    assert dict(log.nodes.of(DIRECTORY_LOG_ID)) == shared
    for n in range(3, 12):  # every append after the rollback builds on the stored tree
        await _append(log, database, n)
    size, root, from_nodes = await _stored_root(database)
    assert root == from_nodes
    assert size >= 10


async def test_after_commit_waits_for_the_commit(app: FastAPI) -> None:
    database: Database = app.state.services.messages.database
    seen: list[str] = []
    async with database.write() as conn:
        after_commit(conn, lambda: seen.append("written"))
        assert seen == []
    assert seen == ["written"]
    with pytest.raises(Refused):
        await _note_then_fail(database, seen)
    async with database.read() as conn:
        after_commit(conn, lambda: seen.append("read"))
    assert seen == ["written", "read"]


async def _append_proven(
    log: LogWriter, database: Database, n: int, *, then_fail: bool = False
) -> None:
    """An append as the PostgreSQL send path makes it: the head read under its lock with
    its version, the write's version handed to `LogWriter.written`."""
    async with database.write() as conn:
        row = (
            await conn.execute(
                select(logs.c.id, logs.c.origin, logs.c.size, logs.c.created_at, head_version())
                .where(logs.c.id == DIRECTORY_LOG_ID)
                .with_for_update()
            )
        ).one()
        planned = await log.plan(
            conn,
            LogHead(*row),
            type="test",
            actor_device="device",
            payload_hash=bytes([n]) * 32,
            signature=bytes(64),
            server_time=n,
        )
        await LogRepository(conn).write_append(planned.writes)
        version = (await conn.execute(text(f"SELECT {WRITE_VERSION}"))).scalar_one()
        log.written(planned, version=int(version))
        if then_fail:
            raise Refused


async def _newest_checkpoint_root(database: Database) -> bytes:
    async with database.read() as conn:
        checkpoint = await LogRepository(conn).checkpoint(DIRECTORY_LOG_ID)
    assert checkpoint is not None
    return checkpoint.root


async def test_an_append_is_assumed_only_while_the_head_carries_its_version(
    app: FastAPI,
) -> None:
    """A rolled-back append, then another replica's append at the same size: the next
    append here must not build on the rolled-back nodes (the size matches, the head's
    version does not)."""
    database: Database = app.state.services.messages.database
    if database.is_sqlite:
        pytest.skip("head versions are PostgreSQL's (xmin)")
    log: LogWriter = app.state.services.messages.log
    other = LogWriter(log.signer)  # another replica: its own caches, the same database
    await _append_proven(log, database, 1)
    await _append_proven(log, database, 2)  # built on the first one's nodes, before publishing
    with pytest.raises(Refused):
        await _append_proven(log, database, 3, then_fail=True)
    await _append_proven(other, database, 4)  # the same index the rolled-back leaf had
    for n in (5, 6, 7):
        await _append_proven(log, database, n)
        size, root, from_nodes = await _stored_root(database)
        assert root == from_nodes == await _newest_checkpoint_root(database), size
