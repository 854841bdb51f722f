"""Log heads and entries. Entries are append-only: the database refuses UPDATE
and DELETE on them (triggers created by the migrations)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, FunctionElement, and_, bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles

from server.storage.prepared import Prepared, sqlite_handle
from server.storage.rows import from_row
from server.storage.tables import (
    checkpoints,
    cosignatures,
    log_entries,
    log_nodes,
    logs,
    witnesses,
)


@dataclass(frozen=True, slots=True)
class LogHead:
    """A log's identity and current size."""

    id: str
    origin: str
    size: int
    created_at: int
    version: int | None = None
    """PostgreSQL, read with `head_version()`: the id of the transaction that wrote this
    version of the head row (its ``xmin``). Equal to the version a write returned
    only if that write's transaction committed and nothing wrote the head since."""


class head_version(FunctionElement[int]):
    """The ``logs`` head row's version in a query that selects it (see
    `LogHead.version`); NULL on SQLite."""

    type = BigInteger()
    name = "head_version"
    inherit_cache = True


@compiles(head_version)
def _head_version_default(_element: head_version, _compiler: Any, **_kw: Any) -> str:
    return "NULL"


@compiles(head_version, "postgresql")
def _head_version_postgresql(_element: head_version, _compiler: Any, **_kw: Any) -> str:
    # xmin is the 32-bit id of the transaction that wrote the row version read; a
    # locked row is read at its newest version.
    return "CAST(CAST(logs.xmin AS TEXT) AS BIGINT)"


WRITE_VERSION = "txid_current() & 4294967295"
"""SQL for the version that rows written by the current transaction carry (PostgreSQL):
compare with `LogHead.version`."""


@dataclass(frozen=True, slots=True)
class LogEntryRow:
    """One leaf of a log."""

    log_id: str
    idx: int
    leaf: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A signed checkpoint."""

    log_id: str
    size: int
    root: bytes
    note: str
    created_at: int


@dataclass(frozen=True, slots=True)
class AppendWrites:
    """The rows one append stores: its entry, the subtree hashes it completes as
    ``(level, index, hash)``, and the checkpoint of the new size."""

    entry: LogEntryRow
    nodes: list[tuple[int, int, bytes]]
    checkpoint: CheckpointRow

    def params(self) -> dict[str, object]:
        """Bind parameters of `APPEND_CTES` (PostgreSQL)."""
        entry, checkpoint = self.entry, self.checkpoint
        return {
            "log_id": entry.log_id,
            "idx": entry.idx,
            "leaf": entry.leaf,
            "leaf_hash": entry.leaf_hash,
            "size": checkpoint.size,
            "levels": [n[0] for n in self.nodes],
            "indexes": [n[1] for n in self.nodes],
            "hashes": [n[2] for n in self.nodes],
            "root": checkpoint.root,
            "note": checkpoint.note,
            "checkpoint_at": checkpoint.created_at,
        }


APPEND_CTES = """\
entry AS (
  INSERT INTO log_entries (log_id, idx, leaf, leaf_hash)
  VALUES (:log_id, :idx, :leaf, :leaf_hash)
), head AS (
  UPDATE logs SET size = :size WHERE id = :log_id
), nodes AS (
  INSERT INTO log_nodes (log_id, level, idx, hash)
  SELECT :log_id, n.level, n.idx, n.hash
  FROM unnest(CAST(:levels AS INTEGER[]), CAST(:indexes AS BIGINT[]), CAST(:hashes AS BYTEA[]))
    AS n(level, idx, hash)
), checkpoint AS (
  INSERT INTO checkpoints (log_id, size, root, note, created_at)
  VALUES (:log_id, :size, :root, :note, :checkpoint_at)
)"""
"""An append's writes as data-modifying CTEs (PostgreSQL): one statement, one round trip,
with `AppendWrites.params`. Statements built from it add their own CTEs and a SELECT."""

_APPEND_PG = text(f"WITH {APPEND_CTES} SELECT 1")


@dataclass(frozen=True, slots=True)
class CosignatureRow:
    """A witness's cosignature of one checkpoint."""

    log_id: str
    size: int
    witness: str
    line: str
    timestamp: int
    created_at: int


@dataclass(frozen=True, slots=True)
class WitnessRow:
    """A registered witness key."""

    name: str
    vkey: str
    account_id: str
    created_at: int


_HEAD = Prepared(
    select(logs.c.id, logs.c.origin, logs.c.size, logs.c.created_at).where(
        logs.c.id == bindparam("log_id")
    )
)
_HEAD_FOR_UPDATE = Prepared(
    select(logs.c.id, logs.c.origin, logs.c.size, logs.c.created_at)
    .where(logs.c.id == bindparam("log_id"))
    .with_for_update()
)
_ADD_ENTRY = Prepared(
    log_entries.insert().values(
        log_id=bindparam("log_id"),
        idx=bindparam("idx"),
        leaf=bindparam("leaf"),
        leaf_hash=bindparam("leaf_hash"),
    )
)
_SET_SIZE = Prepared(
    update(logs).where(logs.c.id == bindparam("log_id")).values(size=bindparam("size"))
)
_ADD_NODE = Prepared(
    log_nodes.insert().values(
        log_id=bindparam("log_id"),
        level=bindparam("level"),
        idx=bindparam("idx"),
        hash=bindparam("hash"),
    )
)
_ADD_CHECKPOINT = Prepared(
    checkpoints.insert().values(
        log_id=bindparam("log_id"),
        size=bindparam("size"),
        root=bindparam("root"),
        note=bindparam("note"),
        created_at=bindparam("created_at"),
    )
)
_CHECKPOINT_COLUMNS = (
    checkpoints.c.log_id,
    checkpoints.c.size,
    checkpoints.c.root,
    checkpoints.c.note,
    checkpoints.c.created_at,
)
_NEWEST_CHECKPOINT = Prepared(
    select(*_CHECKPOINT_COLUMNS)
    .where(checkpoints.c.log_id == bindparam("log_id"))
    .order_by(checkpoints.c.size.desc())
    .limit(1)
)
_CHECKPOINT_AT = Prepared(
    select(*_CHECKPOINT_COLUMNS).where(
        checkpoints.c.log_id == bindparam("log_id"), checkpoints.c.size == bindparam("size")
    )
)
_ENTRIES = Prepared(
    select(log_entries.c.log_id, log_entries.c.idx, log_entries.c.leaf, log_entries.c.leaf_hash)
    .where(
        log_entries.c.log_id == bindparam("log_id"),
        log_entries.c.idx >= bindparam("start"),
        log_entries.c.idx < bindparam("end"),
    )
    .order_by(log_entries.c.idx)
)


class LogRepository:
    """Log heads (locked while appending) and their entries."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def create(self, *, log_id: str, origin: str, now: int) -> None:
        """Create an empty log."""
        await self.conn.execute(
            logs.insert().values(id=log_id, origin=origin, size=0, created_at=now)
        )

    async def head(self, log_id: str, *, for_update: bool = False) -> LogHead | None:
        """A log's head row; `for_update` locks it until the transaction ends."""
        query = _HEAD_FOR_UPDATE if for_update else _HEAD
        row = await query.first(self.conn, log_id=log_id)
        return None if row is None else LogHead(*row)

    async def heads(self, log_ids: list[str]) -> list[LogHead]:
        """The head rows of these logs (those that exist), ordered by creation."""
        if not log_ids:
            return []
        rows = await self.conn.execute(
            select(logs.c.id, logs.c.origin, logs.c.size, logs.c.created_at)
            .where(logs.c.id.in_(log_ids))
            .order_by(logs.c.created_at, logs.c.id)
        )
        return [LogHead(*r) for r in rows]

    async def write_append(self, writes: AppendWrites) -> None:
        """Store an append's rows and advance the head (caller holds the head lock): one
        statement on PostgreSQL, one per row on SQLite (each takes microseconds there)."""
        if self.conn.dialect.name == "postgresql":
            await self.conn.execute(_APPEND_PG, writes.params())
            return
        await self.append(writes.entry)
        await self.add_nodes(writes.entry.log_id, writes.nodes)
        await self.add_checkpoint(writes.checkpoint)

    async def append(self, entry: LogEntryRow) -> None:
        """Insert one entry and advance the head (caller holds the head lock)."""
        await _ADD_ENTRY.run(
            self.conn,
            log_id=entry.log_id,
            idx=entry.idx,
            leaf=entry.leaf,
            leaf_hash=entry.leaf_hash,
        )
        await _SET_SIZE.run(self.conn, log_id=entry.log_id, size=entry.idx + 1)

    async def entries(self, log_id: str, *, start: int, end: int) -> list[LogEntryRow]:
        """Entries with ``start <= idx < end``, in order."""
        rows = await _ENTRIES.rows(self.conn, log_id=log_id, start=start, end=end)
        return [LogEntryRow(*r) for r in rows]

    async def entry_by_hash(self, log_id: str, leaf_hash: bytes) -> LogEntryRow | None:
        """The first entry with this leaf hash."""
        row = (
            await self.conn.execute(
                select(log_entries)
                .where(log_entries.c.log_id == log_id, log_entries.c.leaf_hash == leaf_hash)
                .order_by(log_entries.c.idx)
                .limit(1)
            )
        ).first()
        return None if row is None else from_row(LogEntryRow, row)

    async def nodes(self, log_id: str, keys: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored subtree hashes by (level, index); missing keys are absent."""
        if not keys:
            return {}
        found: dict[tuple[int, int], bytes] = {}
        ordered = sorted(keys)
        raw = sqlite_handle(self.conn)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            # Grouped by level so that SQLite seeks the primary key; it cannot use it for
            # `(level, idx) IN (VALUES ...)` and would scan every node of the log.
            by_level: dict[int, list[int]] = {}
            for level, idx in chunk:
                by_level.setdefault(level, []).append(idx)
            if raw is not None:
                found.update(_sqlite_nodes(raw, log_id, by_level))
                continue
            rows = await self.conn.execute(
                select(log_nodes.c.level, log_nodes.c.idx, log_nodes.c.hash).where(
                    or_(
                        *(
                            and_(
                                log_nodes.c.log_id == log_id,
                                log_nodes.c.level == level,
                                log_nodes.c.idx.in_(indexes),
                            )
                            for level, indexes in by_level.items()
                        )
                    )
                )
            )
            for level, idx, hashed in rows:
                found[(int(level), int(idx))] = bytes(hashed)
        return found

    async def node_range(self, log_id: str, level: int, start: int, end: int) -> list[bytes]:
        """Hashes at `level` with ``start <= index < end``, in order."""
        rows = await self.conn.execute(
            select(log_nodes.c.hash)
            .where(
                log_nodes.c.log_id == log_id,
                log_nodes.c.level == level,
                log_nodes.c.idx >= start,
                log_nodes.c.idx < end,
            )
            .order_by(log_nodes.c.idx)
        )
        return [bytes(r[0]) for r in rows]

    async def add_nodes(self, log_id: str, nodes: list[tuple[int, int, bytes]]) -> None:
        """Store newly completed subtree hashes."""
        await _ADD_NODE.run_many(
            self.conn,
            [{"log_id": log_id, "level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes],
        )

    async def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint (one per size, ever)."""
        await _ADD_CHECKPOINT.run(
            self.conn,
            log_id=row.log_id,
            size=row.size,
            root=row.root,
            note=row.note,
            created_at=row.created_at,
        )

    async def checkpoint(self, log_id: str, size: int | None = None) -> CheckpointRow | None:
        """The checkpoint at `size`, or the newest one."""
        if size is None:
            row = await _NEWEST_CHECKPOINT.first(self.conn, log_id=log_id)
        else:
            row = await _CHECKPOINT_AT.first(self.conn, log_id=log_id, size=size)
        return None if row is None else CheckpointRow(*row)

    async def add_cosignature(self, row: CosignatureRow) -> None:
        """Store a witness's cosignature."""
        await self.conn.execute(
            cosignatures.insert().values(
                log_id=row.log_id,
                size=row.size,
                witness=row.witness,
                line=row.line,
                timestamp=row.timestamp,
                created_at=row.created_at,
            )
        )

    async def cosignatures(self, log_id: str, size: int) -> list[CosignatureRow]:
        """Every cosignature of the checkpoint at `size`."""
        rows = await self.conn.execute(
            select(cosignatures)
            .where(cosignatures.c.log_id == log_id, cosignatures.c.size == size)
            .order_by(cosignatures.c.witness)
        )
        return [from_row(CosignatureRow, r) for r in rows]

    async def cosigned_sizes(self, log_id: str) -> list[int]:
        """Sizes that have at least one cosignature, newest first."""
        rows = await self.conn.execute(
            select(cosignatures.c.size)
            .where(cosignatures.c.log_id == log_id)
            .distinct()
            .order_by(cosignatures.c.size.desc())
        )
        return [int(r[0]) for r in rows]

    async def add_witness(self, row: WitnessRow) -> None:
        """Register a witness key."""
        await self.conn.execute(
            witnesses.insert().values(
                name=row.name, vkey=row.vkey, account_id=row.account_id, created_at=row.created_at
            )
        )

    async def witness(self, name: str) -> WitnessRow | None:
        """A witness by key name."""
        row = (await self.conn.execute(select(witnesses).where(witnesses.c.name == name))).first()
        return None if row is None else from_row(WitnessRow, row)

    async def witness_list(self) -> list[WitnessRow]:
        """Every registered witness."""
        rows = await self.conn.execute(select(witnesses).order_by(witnesses.c.name))
        return [from_row(WitnessRow, r) for r in rows]


def _sqlite_nodes(
    raw: sqlite3.Connection, log_id: str, by_level: dict[int, list[int]]
) -> dict[tuple[int, int], bytes]:
    # One seek of the primary key per level, as the SQLAlchemy form below does.
    clauses = " OR ".join(
        f"(log_id = ? AND level = ? AND idx IN ({', '.join('?' * len(indexes))}))"
        for indexes in by_level.values()
    )
    args: list[object] = []
    for level, indexes in by_level.items():
        args += [log_id, level, *indexes]
    # Only placeholders are interpolated into the text.
    sql = f"SELECT level, idx, hash FROM log_nodes WHERE {clauses}"  # noqa: S608
    rows = raw.execute(sql, args)
    return {(int(level), int(idx)): bytes(hashed) for level, idx, hashed in rows}
