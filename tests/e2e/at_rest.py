"""What must hold of a server's database and data directory after any crash
(docs/design.md §8): read straight from the database, in one snapshot, while
the killed server is down, so what is checked is exactly what the crash left.

Every log's entries run 0..size-1 with their leaf hashes; every stored
subtree hash is the one the leaves give, and no completed one is missing; every
checkpoint is signed by the server's log key and its root is the tree of that
many leaves. Every room's events run 1..last_seq, each the log entry at
``seq - 1`` with the same type and payload hash; its rosters run 1..version,
each an event of its own, and its members are the newest roster's. Every
directory entry is a leaf of the directory log with the hash of what it holds;
every device and encryption key has its directory entry and every entry its
row (a key rotation is whole or absent). Every blob a room lists is a whole
file with that SHA-256; every unfinished upload's file holds at least what it
recorded.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID, parse_leaf
from client_sdk.protocol.merkle import CompactRange, leaf_hash
from client_sdk.protocol.note import parse_signer_key, parse_verifier_key, verify_checkpoint
from client_sdk.protocol.statements import Roster, SignedStatement, parse_statement
from server.log.signer import KEY_FILE, CheckpointSigner
from server.storage import tables as t
from server.storage.blobs import FileBlobStore, UploadFiles
from server.storage.database import create_database


@dataclass(slots=True)
class AtRest:
    """What the check found: sizes for the report, and every broken invariant."""

    log_sizes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def require(self, holds: bool, problem: str) -> None:
        """Record `problem` unless `holds`."""
        if not holds:
            self.problems.append(problem)


async def check_at_rest(database_url: str, data_dir: Path) -> AtRest:
    """Check every invariant above; the findings (empty `problems` when all hold)."""
    found = AtRest()
    # Read, never generated here: a missing or torn key file is itself a finding.
    signer = CheckpointSigner(
        parse_signer_key((data_dir / KEY_FILE).read_text().strip()).private_key
    )
    database = create_database(database_url)
    try:
        async with database.read() as conn:
            await _check_logs(conn, signer, found)
            await _check_rooms(conn, found)
            await _check_directory(conn, found)
            await _check_documents(conn, data_dir, found)
    finally:
        await database.dispose()
    return found


async def _rows(
    conn: AsyncConnection,
    *columns: ColumnElement[Any],
    where: ColumnElement[bool] | None = None,
    order_by: ColumnElement[Any] | None = None,
) -> Sequence[Row[Any]]:
    query = select(*columns)
    if where is not None:
        query = query.where(where)
    if order_by is not None:
        query = query.order_by(order_by)
    return (await conn.execute(query)).all()


async def _check_logs(conn: AsyncConnection, signer: CheckpointSigner, found: AtRest) -> None:
    for log in await _rows(conn, t.logs.c.id, t.logs.c.origin, t.logs.c.size):
        log_id, origin, size = log.id, log.origin, log.size
        found.log_sizes[log_id] = size
        columns = t.log_entries.c
        entries = await _rows(
            conn,
            columns.idx,
            columns.leaf,
            columns.leaf_hash,
            where=columns.log_id == log_id,
            order_by=columns.idx,
        )
        found.require(
            [e.idx for e in entries] == list(range(size)),
            f"log {log_id}: size {size}, entries {[e.idx for e in entries][-5:]} (last five)",
        )
        checkpoint_ = t.checkpoints.c
        checkpoints = {
            row.size: row
            for row in await _rows(
                conn,
                checkpoint_.size,
                checkpoint_.root,
                checkpoint_.note,
                where=checkpoint_.log_id == log_id,
            )
        }
        found.require(
            max(checkpoints, default=0) == size,
            f"log {log_id}: size {size}, newest checkpoint {max(checkpoints, default=0)}",
        )
        vkey = parse_verifier_key(signer.vkey(origin))
        tree, expected_nodes = CompactRange(), set[tuple[int, int, bytes]]()
        for entry in entries:
            found.require(
                entry.leaf_hash == leaf_hash(entry.leaf), f"log {log_id}: leaf {entry.idx} hash"
            )
            tree, completed = tree.append(leaf_hash(entry.leaf))
            expected_nodes.update((n.level, n.index, n.hash) for n in completed)
            checkpoint = checkpoints.get(tree.size)
            if checkpoint is None:
                continue
            found.require(
                checkpoint.root == tree.root(),
                f"log {log_id}: checkpoint {tree.size} has another root than its leaves",
            )
            signed = verify_checkpoint(checkpoint.note, origin, vkey)
            found.require(
                (signed.size, signed.root_hash) == (tree.size, tree.root()),
                f"log {log_id}: checkpoint note {tree.size} says another size or root",
            )
        node = t.log_nodes.c
        stored_nodes = {
            (row.level, row.idx, row.hash)
            for row in await _rows(
                conn, node.level, node.idx, node.hash, where=node.log_id == log_id
            )
        }
        found.require(
            stored_nodes == expected_nodes,
            f"log {log_id}: {len(stored_nodes - expected_nodes)} subtree hashes wrong or "
            f"beyond the log, {len(expected_nodes - stored_nodes)} missing",
        )


async def _leaves(conn: AsyncConnection, log_id: str) -> dict[int, bytes]:
    columns = t.log_entries.c
    rows = await _rows(conn, columns.idx, columns.leaf, where=columns.log_id == log_id)
    return {row.idx: row.leaf for row in rows}


async def _check_rooms(conn: AsyncConnection, found: AtRest) -> None:
    rooms, columns = t.rooms.c, t.events.c
    for room in await _rows(conn, rooms.id, rooms.last_seq, rooms.roster_version):
        room_id, last_seq = room.id, room.last_seq
        events = await _rows(
            conn,
            columns.seq,
            columns.kind,
            columns.message_id,
            columns.payload_hash,
            columns.leaf_index,
            where=columns.room_id == room_id,
            order_by=columns.seq,
        )
        found.require(
            [e.seq for e in events] == list(range(1, last_seq + 1)),
            f"room {room_id}: last_seq {last_seq}, events {[e.seq for e in events][-5:]}",
        )
        found.require(
            found.log_sizes.get(room_id) == len(events),
            f"room {room_id}: {len(events)} events, log size {found.log_sizes.get(room_id)}",
        )
        ids = [e.message_id for e in events if e.message_id is not None]
        found.require(len(ids) == len(set(ids)), f"room {room_id}: a message id twice")
        leaves = await _leaves(conn, room_id)
        for event in events:
            leaf = leaves.get(event.leaf_index)
            found.require(
                event.leaf_index == event.seq - 1 and leaf is not None,
                f"room {room_id}: event {event.seq} at leaf {event.leaf_index}",
            )
            if leaf is None:
                continue
            parsed = parse_leaf(leaf)
            found.require(
                (parsed.type, parsed.payload_sha256) == (event.kind, b64e(event.payload_hash)),
                f"room {room_id}: event {event.seq} is not what its leaf records",
            )
        logged = {e.seq: (e.kind, e.payload_hash) for e in events}
        await _check_rosters(conn, room_id, room.roster_version, logged, found)


async def _check_rosters(
    conn: AsyncConnection,
    room_id: str,
    version: int,
    events: dict[int, tuple[str, bytes]],
    found: AtRest,
) -> None:
    rosters = (
        await conn.execute(
            select(
                t.rosters.c.version, t.rosters.c.statement, t.rosters.c.body_hash, t.rosters.c.seq
            )
            .where(t.rosters.c.room_id == room_id)
            .order_by(t.rosters.c.version)
        )
    ).all()
    found.require(
        [r.version for r in rosters] == list(range(1, version + 1)),
        f"room {room_id}: roster version {version}, rows {[r.version for r in rosters]}",
    )
    for roster in rosters:
        found.require(
            events.get(roster.seq) == ("roster", roster.body_hash),
            f"room {room_id}: roster {roster.version} is not its event {roster.seq}",
        )
    if not rosters:
        return
    newest = parse_statement(SignedStatement.model_validate_json(rosters[-1].statement), Roster)
    member = t.room_members.c
    members = await _rows(conn, member.account_id, member.side, where=member.room_id == room_id)
    found.require(
        {(m.account_id, m.side) for m in members}
        == {(m.account_id, m.side.value) for m in newest.members},
        f"room {room_id}: the members are not those of roster {rosters[-1].version}",
    )


async def _check_directory(conn: AsyncConnection, found: AtRest) -> None:
    directory = t.directory_entries.c
    entries = await _rows(
        conn, directory.idx, directory.kind, directory.statement, order_by=directory.idx
    )
    size = found.log_sizes.get(DIRECTORY_LOG_ID, 0)
    found.require(
        [e.idx for e in entries] == list(range(size)),
        f"directory: log size {size}, {len(entries)} entries",
    )
    leaves = await _leaves(conn, DIRECTORY_LOG_ID)
    logged: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        signed = SignedStatement.model_validate_json(entry.statement)
        leaf = leaves.get(entry.idx)
        found.require(
            leaf is not None
            and (parse_leaf(leaf).type, parse_leaf(leaf).payload_sha256)
            == (entry.kind, b64e(signed.body_hash())),
            f"directory: entry {entry.idx} is not what its leaf records",
        )
        key = {"device": "device_id", "encryption-key": "key_id"}.get(entry.kind)
        if key is not None:
            logged[entry.kind].add(str(signed.body[key]))
    devices = {row.id for row in await _rows(conn, t.devices.c.id)}
    keys = {row.id for row in await _rows(conn, t.encryption_keys.c.id)}
    found.require(
        devices == logged["device"],
        f"directory: devices without an entry {devices - logged['device']}, "
        f"entries without a device {logged['device'] - devices}",
    )
    found.require(
        keys == logged["encryption-key"],
        f"directory: encryption keys without an entry {keys - logged['encryption-key']}, "
        f"entries without a key {logged['encryption-key'] - keys}",
    )


async def _check_documents(conn: AsyncConnection, data_dir: Path, found: AtRest) -> None:
    store = FileBlobStore(data_dir / "blobs")
    for blob in await _rows(conn, t.blobs.c.room_id, t.blobs.c.blob, t.blobs.c.size):
        path = store.path(blob.blob)
        content = path.read_bytes() if path.is_file() else None
        found.require(
            content is not None
            and len(content) == blob.size
            and b64e(hashlib.sha256(content).digest()) == blob.blob,
            f"room {blob.room_id}: blob {blob.blob} is not whole on disk",
        )
    files = UploadFiles(data_dir / "uploads")
    for upload in await _rows(conn, t.uploads.c.id, t.uploads.c.received_bytes):
        path = files.path(upload.id)
        held = path.stat().st_size if path.is_file() else 0
        found.require(
            held >= upload.received_bytes,
            f"upload {upload.id}: recorded {upload.received_bytes} bytes, the file holds {held}",
        )
