"""Reading logs: checkpoints, tiles, entries and proofs; accepting cosignatures.

A room's log is readable by its members and by auditors a mediator granted
it; the directory log by any enrolled account. An auditor whose witness key the
room's signed policy names reads the room's checkpoints and consistency proofs,
and cosigns them, without a grant: what a witness needs, not the entries.
Everything served here is public-key verifiable, so the service only has to
decide who may see it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Role
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    parse_verifier_key,
    verify_cosignature,
)
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotAllowed, NotFound
from server.log.proofs import ProofReader
from server.log.signer import CheckpointSigner
from server.services.common import Clock, Principal
from server.storage.accounts import AccountRepository
from server.storage.database import Database
from server.storage.events import EventRepository
from server.storage.logs import (
    CheckpointRow,
    CosignatureRow,
    LogEntryRow,
    LogHead,
    LogRepository,
    WitnessRow,
)
from server.storage.rooms import RoomRepository

TILE_WIDTH = 256
TILE_HEIGHT = 8
MAX_ENTRIES_PAGE = 1000


@dataclass(frozen=True, slots=True)
class LogInfo:
    """What a verifier needs to know about a log."""

    head: LogHead
    vkey: str
    cosigned_size: int | None


class LogAccess(enum.StrEnum):
    """Why a caller may read a log: everyone reads the directory; a room's members and
    granted auditors read its whole log; a policy witness its checkpoints."""

    EVERYONE = "everyone"
    MEMBER = "member"
    AUDITOR = "auditor"
    WITNESS = "witness"


@dataclass(frozen=True, slots=True)
class LogListing:
    """A log the caller may read, and why (`LogAccess`)."""

    head: LogHead
    access: LogAccess


@dataclass(frozen=True, slots=True)
class Entry:
    """A leaf with what its actor signed (never content)."""

    entry: LogEntryRow
    signed: dict[str, Any] | None


class LogService:
    """Read access to logs and the witnesses' cosignatures."""

    def __init__(
        self, database: Database, settings: Settings, clock: Clock, signer: CheckpointSigner
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.signer = signer

    async def _head(
        self, conn: AsyncConnection, principal: Principal, log_id: str, *, witness: bool = False
    ) -> LogHead:
        """The log's head if the caller may read it (`witness`: a read a witness makes),
        else `NotFound`, as for a log that does not exist."""
        head = await LogRepository(conn).head(log_id)
        if head is None:
            raise NotFound("no such log")
        if log_id == DIRECTORY_LOG_ID:
            return head
        rooms = RoomRepository(conn)
        if await rooms.side_of(log_id, principal.account_id) is not None:
            return head
        if principal.role is Role.AUDITOR:
            if await rooms.is_auditor(log_id, principal.account_id):
                return head
            if witness and await rooms.is_policy_witness(log_id, principal.account_id):
                return head
        raise NotFound("no such log")

    async def readable(self, principal: Principal) -> list[LogListing]:
        """Every log the caller may read: the directory first, then its rooms' logs."""
        async with self.database.read() as conn:
            access = await RoomRepository(conn).log_access(principal.account_id)
            if principal.role is not Role.AUDITOR:  # only auditors audit or witness
                access = {k: v for k, v in access.items() if v == LogAccess.MEMBER}
            heads = await LogRepository(conn).heads([DIRECTORY_LOG_ID, *access])
        return [
            LogListing(head, LogAccess(access.get(head.id, LogAccess.EVERYONE)))
            for head in sorted(heads, key=lambda h: h.id != DIRECTORY_LOG_ID)
        ]

    async def info(self, principal: Principal, log_id: str) -> LogInfo:
        """Origin, verifier key, size, and the newest cosigned size."""
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id, witness=True)
            cosigned = await LogRepository(conn).cosigned_sizes(log_id)
        return LogInfo(
            head=head,
            vkey=self.signer.vkey(head.origin),
            cosigned_size=cosigned[0] if cosigned else None,
        )

    async def checkpoint(self, principal: Principal, log_id: str, size: int | None) -> str:
        """The signed checkpoint (newest, or at `size`) with every cosignature appended."""
        async with self.database.read() as conn:
            await self._head(conn, principal, log_id, witness=True)
            repo = LogRepository(conn)
            row = await repo.checkpoint(log_id, size)
            if row is None:
                raise NotFound("no checkpoint of that size" if size else "the log is empty")
            cosignatures = await repo.cosignatures(log_id, row.size)
        return row.note + "".join(c.line for c in cosignatures)

    async def tile(
        self, principal: Principal, log_id: str, level: int, index: int, width: int | None
    ) -> tuple[bytes, bool]:
        """A hash tile (c2sp.org/tlog-tiles) and whether it is full."""
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id)
            node_level = level * TILE_HEIGHT
            available = head.size >> node_level
            count = _tile_width(available, index, width)
            hashes = await LogRepository(conn).node_range(
                log_id, node_level, index * TILE_WIDTH, index * TILE_WIDTH + count
            )
        if len(hashes) != count:
            raise RuntimeError(f"log {log_id}: stored tree nodes are missing")
        return b"".join(hashes), count == TILE_WIDTH

    async def entry_bundle(
        self, principal: Principal, log_id: str, index: int, width: int | None
    ) -> tuple[bytes, bool]:
        """An entry bundle: each leaf as a big-endian uint16 length and its bytes."""
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id)
            count = _tile_width(head.size, index, width)
            start = index * TILE_WIDTH
            rows = await LogRepository(conn).entries(log_id, start=start, end=start + count)
        return b"".join(len(r.leaf).to_bytes(2, "big") + r.leaf for r in rows), count == TILE_WIDTH

    async def entries(self, principal: Principal, log_id: str, start: int, end: int) -> list[Entry]:
        """Leaves ``start <= index < end`` with the signed part of each (no content)."""
        if not 0 <= start <= end or end - start > MAX_ENTRIES_PAGE:
            raise InvalidInput(f"ask for at most {MAX_ENTRIES_PAGE} entries, start <= end")
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id)
            end = min(end, head.size)
            rows = await LogRepository(conn).entries(log_id, start=start, end=end)
            signed = await _signed_parts(conn, log_id, start, end)
        return [Entry(entry=r, signed=signed.get(r.idx)) for r in rows]

    async def inclusion(
        self,
        principal: Principal,
        log_id: str,
        *,
        size: int | None,
        index: int | None,
        leaf_hash: bytes | None,
    ) -> tuple[int, int, list[bytes]]:
        """(index, size, proof) for a leaf, by index or by leaf hash."""
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id)
            size = head.size if size is None else size
            if not 0 < size <= head.size:
                raise InvalidInput(f"size must be between 1 and {head.size}")
            if index is None:
                if leaf_hash is None:
                    raise InvalidInput("give index or leaf_hash")
                found = await LogRepository(conn).entry_by_hash(log_id, leaf_hash)
                if found is None:
                    raise NotFound("no leaf with that hash")
                index = found.idx
            proof = await ProofReader(conn, log_id).inclusion(index, size)
        return index, size, proof

    async def consistency(
        self, principal: Principal, log_id: str, size1: int, size2: int | None
    ) -> tuple[int, int, list[bytes]]:
        """(size1, size2, proof) between two sizes (size2 defaults to the current size)."""
        async with self.database.read() as conn:
            head = await self._head(conn, principal, log_id, witness=True)
            size2 = head.size if size2 is None else size2
            if not 0 <= size1 <= size2 <= head.size:
                raise InvalidInput(f"need 0 <= size1 <= size2 <= {head.size}")
            proof = await ProofReader(conn, log_id).consistency(size1, size2)
        return size1, size2, proof

    async def register_witness(self, principal: Principal, vkey: str) -> WitnessRow:
        """An auditor registers a cosigning key (type 0x04, c2sp.org/tlog-cosignature)."""
        if principal.role is not Role.AUDITOR:
            raise NotAllowed("only auditors run witnesses")
        try:
            key = parse_verifier_key(vkey)
        except ProtocolError as exc:
            raise InvalidInput(f"witness key: {exc}") from exc
        if key.sig_type != SIG_COSIGNATURE_V1:
            raise InvalidInput("a witness key must be a type 0x04 (cosignature/v1) key")
        row = WitnessRow(
            name=key.name, vkey=vkey, account_id=principal.account_id, created_at=self.clock()
        )
        async with self.database.write() as conn:
            repo = LogRepository(conn)
            existing = await repo.witness(key.name)
            if existing is not None:
                if existing.vkey == vkey and existing.account_id == principal.account_id:
                    return existing
                raise Conflict("a witness with this name is registered")
            await repo.add_witness(row)
        return row

    async def witnesses(self) -> list[WitnessRow]:
        """Every registered witness key."""
        async with self.database.read() as conn:
            return await LogRepository(conn).witness_list()

    async def add_cosignature(
        self, principal: Principal, log_id: str, size: int, line: str
    ) -> CosignatureRow:
        """Store a registered witness's cosignature of the checkpoint at `size`."""
        name, _, _ = line.removeprefix("\u2014 ").partition(" ")
        async with self.database.write() as conn:
            await self._head(conn, principal, log_id, witness=True)
            repo = LogRepository(conn)
            witness = await repo.witness(name)
            if witness is None or witness.account_id != principal.account_id:
                raise NotAllowed("not a witness key registered by this account")
            checkpoint = await repo.checkpoint(log_id, size)
            if checkpoint is None:
                raise NotFound(f"no checkpoint of size {size}")
            try:
                timestamp = verify_cosignature(
                    _note_text(checkpoint), line, parse_verifier_key(witness.vkey)
                )
            except VerificationError as exc:
                raise InvalidInput(f"cosignature: {exc}") from exc
            row = CosignatureRow(
                log_id=log_id,
                size=size,
                witness=name,
                line=line if line.endswith("\n") else line + "\n",
                timestamp=timestamp,
                created_at=self.clock(),
            )
            if any(c.witness == name for c in await repo.cosignatures(log_id, size)):
                raise Conflict("this witness already cosigned this checkpoint")
            await repo.add_cosignature(row)
        return row


def _note_text(row: CheckpointRow) -> str:
    """The checkpoint text of a stored signed note (everything before the blank line)."""
    text, _, _ = row.note.partition("\n\n")
    return text + "\n"


def _tile_width(available: int, index: int, width: int | None) -> int:
    """How many entries a (partial) tile request covers, or `NotFound`."""
    start = index * TILE_WIDTH
    complete = available - start
    if width is None:
        if complete < TILE_WIDTH:
            raise NotFound("that tile is not full yet")
        return TILE_WIDTH
    if not 0 < width < TILE_WIDTH:
        raise InvalidInput("a partial tile's width is 1 to 255")
    if complete < width:
        raise NotFound("the log is not that large")
    return width


async def _signed_parts(
    conn: AsyncConnection, log_id: str, start: int, end: int
) -> dict[int, dict[str, Any]]:
    """What each actor signed, by leaf index: statements, or envelopes without ciphertext."""
    if log_id == DIRECTORY_LOG_ID:
        rows = await AccountRepository(conn).directory_entries(start, end)
        return {r.idx: json.loads(r.statement) for r in rows}
    parts: dict[int, dict[str, Any]] = {}
    for event in await EventRepository(conn).by_leaf_range(log_id, start, end):
        if event.payload is None:
            continue
        payload = json.loads(event.payload)
        if event.kind == "message":
            payload.pop("ciphertext", None)
        parts[event.leaf_index] = payload
    return parts
