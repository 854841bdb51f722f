"""Appending to a log inside the caller's transaction.

Appends to one log are serialized by the log head's row lock (PostgreSQL) or
the single SQLite writer. In the same transaction as the change it records,
the leaf is stored, the subtree hashes it completes are stored, the new root
is recomputed from stored hashes, and a checkpoint for the new size is
signed and stored (one per size, ever: the primary key forbids a second
root). So a proof exists the moment the caller commits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.leaf import MAX_LEAF_BYTES, LogLeaf
from client_sdk.protocol.merkle import leaf_hash
from client_sdk.protocol.note import Checkpoint
from server.errors import NotFound, TooLarge
from server.log.proofs import NodeCache, ProofReader
from server.log.signer import CheckpointSigner
from server.storage.database import after_commit
from server.storage.logs import AppendWrites, CheckpointRow, LogEntryRow, LogHead, LogRepository

_LAST_APPENDS = 1024
"""Logs whose newest append `LogWriter` remembers (see `LogWriter.written`)."""


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a leaf landed, and the proof that it is there."""

    log_id: str
    index: int
    leaf: bytes
    leaf_hash: bytes
    server_time: int
    checkpoint: str
    inclusion_proof: list[bytes]
    consistency_proof: list[bytes]
    """From the size before this leaf to the size with it (what a stream reader needs)."""


@dataclass(frozen=True, slots=True)
class PlannedAppend:
    """An append worked out under the head's lock, not yet stored (`LogWriter.plan`)."""

    writes: AppendWrites
    appended: Appended
    type: str
    reader: ProofReader


class LogWriter:
    """Appends leaves and signs the checkpoints that cover them."""

    def __init__(self, signer: CheckpointSigner) -> None:
        self.signer = signer
        self.nodes = NodeCache()
        """Committed subtree hashes: appends read the right edge from here."""
        self.leaf_committed: Callable[[str], None] = _ignore
        """Called with a leaf's type once the transaction that appended it commits."""
        self._last: OrderedDict[str, tuple[int, int, dict[tuple[int, int], bytes]]] = OrderedDict()
        """Per log, this process's newest append as (head version, size, nodes): its
        nodes are valid for the next append exactly when the head still carries that
        version, which proves the write committed (PostgreSQL, `LogHead.version`)."""

    async def create(self, conn: AsyncConnection, *, log_id: str, origin: str, now: int) -> None:
        """Create an empty log."""
        await LogRepository(conn).create(log_id=log_id, origin=origin, now=now)

    async def append(
        self,
        conn: AsyncConnection,
        log_id: str,
        *,
        type: str,
        actor_device: str,
        payload_hash: bytes,
        signature: bytes,
        server_time: int,
    ) -> Appended:
        """Append one leaf to `log_id` and sign the checkpoint of the new size."""
        repo = LogRepository(conn)
        head = await repo.head(log_id, for_update=True)
        if head is None:
            raise NotFound(f"no log {log_id}")
        planned = await self.plan(
            conn,
            head,
            type=type,
            actor_device=actor_device,
            payload_hash=payload_hash,
            signature=signature,
            server_time=server_time,
        )
        await repo.write_append(planned.writes)
        return self.written(planned)

    async def plan(
        self,
        conn: AsyncConnection,
        head: LogHead,
        *,
        type: str,
        actor_device: str,
        payload_hash: bytes,
        signature: bytes,
        server_time: int,
    ) -> PlannedAppend:
        """Everything appending one leaf after `head` writes, and its proofs, without
        writing: the caller holds the head's lock (`LogRepository.head(for_update=True)`
        or a statement that locks it with other rows), stores `PlannedAppend.writes` in
        the same transaction (`LogRepository.write_append`, or one statement with its
        own rows), then calls `written`. Reads only committed nodes, usually none."""
        leaf = LogLeaf(
            origin=head.origin,
            index=head.size,
            type=type,
            actor_device=actor_device,
            server_time=server_time,
            payload_sha256=b64e(payload_hash),
            signature=b64e(signature),
        ).to_bytes()
        if len(leaf) > MAX_LEAF_BYTES:
            raise TooLarge("log leaf larger than 64 KiB")
        hashed = leaf_hash(leaf)
        log_id = head.id
        reader = ProofReader(conn, log_id, shared=self.nodes)
        last = self._last.get(log_id)
        if last is not None and head.version is not None and last[:2] == (head.version, head.size):
            # This process's previous append, proven committed by the head's version: its
            # nodes may not be in the shared cache yet (its caller publishes them after
            # the COMMIT returns, which can be after this lock was granted).
            reader.assume(last[2])
        frontier = await reader.frontier(head.size)
        grown, completed = frontier.append(hashed)
        reader.remember(completed)
        size = head.size + 1
        root = await reader.root(size)
        if root != grown.root():
            raise RuntimeError(f"log {log_id}: stored hashes disagree with the new root")
        note = self.signer.sign(Checkpoint(head.origin, size, root))
        writes = AppendWrites(
            entry=LogEntryRow(log_id=log_id, idx=head.size, leaf=leaf, leaf_hash=hashed),
            nodes=[(n.level, n.index, n.hash) for n in completed],
            checkpoint=CheckpointRow(
                log_id=log_id, size=size, root=root, note=note, created_at=server_time
            ),
        )
        appended = Appended(
            log_id=log_id,
            index=head.size,
            leaf=leaf,
            leaf_hash=hashed,
            server_time=server_time,
            checkpoint=note,
            inclusion_proof=await reader.inclusion(head.size, size),
            consistency_proof=await reader.consistency(head.size, size),
        )
        return PlannedAppend(writes=writes, appended=appended, type=type, reader=reader)

    def written(self, planned: PlannedAppend, *, version: int | None = None) -> Appended:
        """Call once `planned.writes` are stored: its nodes enter the shared cache, and
        `leaf_committed` is called, when the caller's transaction commits. `version` is
        the head's version the write returned, if the backend has one (PostgreSQL):
        the next `plan` on this log may then use the nodes before they are published."""
        if version is not None:
            log_id = planned.appended.log_id
            self._last[log_id] = (version, planned.appended.index + 1, planned.reader.held())
            self._last.move_to_end(log_id)
            while len(self._last) > _LAST_APPENDS:
                self._last.popitem(last=False)
        planned.reader.publish()
        after_commit(planned.reader.conn, partial(self.leaf_committed, planned.type))
        return planned.appended


def _ignore(_type: str) -> None:
    pass
