"""Uploads and blobs of encrypted documents (docs/design.md §7).

The server stores ciphertext it cannot read. An upload is declared with the
document's plaintext layout (size, chunk size), from which the exact length
of every sealed chunk follows (`protocol.documents.DocumentLayout`); chunks
arrive in order, each streamed to the upload's partial file and fsync'd
before it is recorded, so an interrupted upload resumes from
``received_chunks``. Completing checks the size and the SHA-256 and moves the
ciphertext into the `BlobStore` under that hash, as a blob of the room.

Limits: the document size (``PARLEY_MAX_DOCUMENT_BYTES``, of plaintext) and a
per-account quota over the ciphertext of its blobs and unfinished uploads
(``PARLEY_UPLOAD_QUOTA_BYTES``). An upload not touched for
``PARLEY_UPLOAD_EXPIRY_SECONDS`` is removed, its row and its file, by `sweep`.

Who: a member who may post on the upload's channel now (the room's rules, as
for the message itself) uploads; an upload is seen only by the account that
made it (anyone else gets 404); every member can download the room's blobs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from client_sdk.protocol.documents import DocumentLayout
from client_sdk.protocol.encoding import random_id
from client_sdk.protocol.errors import NotPermitted, ProtocolError
from client_sdk.protocol.mediation import Status
from server.config import Settings
from server.errors import Conflict, InvalidInput, NotFound, TooLarge
from server.services.common import Clock, Principal
from server.services.room_state import current_roster, load_state, refusal_error
from server.storage.blobs import BlobStore, ChunkLengthError, UploadFiles
from server.storage.database import Database
from server.storage.rooms import RoomRepository
from server.storage.uploads import BlobRow, UploadRepository, UploadRow

SWEEP_BATCH = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadView:
    """An upload as its owner sees it."""

    id: str
    room_id: str
    size: int
    chunk_size: int
    chunk_count: int
    ciphertext_size: int
    received_chunks: int
    received_bytes: int
    created_at: int
    expires_at: int

    @classmethod
    def of(cls, row: UploadRow) -> UploadView:
        """The view of a stored upload."""
        return cls(
            id=row.id,
            room_id=row.room_id,
            size=row.size,
            chunk_size=row.chunk_size,
            chunk_count=DocumentLayout("upload", row.size, row.chunk_size).chunk_count,
            ciphertext_size=row.ciphertext_size,
            received_chunks=row.received_chunks,
            received_bytes=row.received_bytes,
            created_at=row.created_at,
            expires_at=row.expires_at,
        )


@dataclass(frozen=True, slots=True)
class BlobRead:
    """A blob about to be streamed: its size and its bytes."""

    size: int
    body: AsyncIterator[bytes]


class DocumentService:
    """Creating, filling, completing and abandoning uploads; reading blobs."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock,
        store: BlobStore,
        files: UploadFiles,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.store = store
        self.files = files
        self._locks: dict[str, asyncio.Lock] = {}

    def _expiry(self, now: int) -> int:
        return now + self.settings.upload_expiry_seconds * 1000

    async def create_upload(
        self,
        principal: Principal,
        room_id: str,
        *,
        size: int,
        chunk_size: int,
        channel: str | None,
    ) -> UploadView:
        """Start an upload of a document of `size` plaintext bytes in `chunk_size` chunks,
        to be sent on `channel`: refused now if the room's rules would refuse the message.
        Without a channel (a document for an instrument act, judged by its own rules when
        it arrives) only the room's status is checked."""
        if size > self.settings.max_document_bytes:
            raise TooLarge(
                f"the document is {size} bytes; this server takes at most "
                f"{self.settings.max_document_bytes}"
            )
        if chunk_size > self.settings.max_chunk_bytes:
            raise TooLarge(f"chunks are at most {self.settings.max_chunk_bytes} bytes")
        try:
            layout = DocumentLayout("upload", size, chunk_size)
        except ProtocolError as exc:
            raise InvalidInput(str(exc)) from exc
        now = self.clock()
        row = UploadRow(
            id=random_id(16),
            room_id=room_id,
            account_id=principal.account_id,
            size=size,
            chunk_size=chunk_size,
            ciphertext_size=layout.ciphertext_size,
            received_chunks=0,
            received_bytes=0,
            created_at=now,
            expires_at=self._expiry(now),
        )
        async with self.database.write() as conn:
            rooms = RoomRepository(conn)
            room = await rooms.get(room_id)
            if room is None or await rooms.side_of(room_id, principal.account_id) is None:
                raise NotFound("no such room")
            state = await load_state(conn, room)
            if channel is not None:
                try:
                    roster = await current_roster(conn, room)
                    state.check_post(roster, principal.account_id, channel)
                except NotPermitted as exc:
                    raise refusal_error(exc) from exc
            elif state.status is not Status.OPEN:
                raise Conflict(f"the room is {state.status.value}")
            repository = UploadRepository(conn)
            await repository.lock_account(principal.account_id)
            used = await repository.used_bytes(principal.account_id)
            quota = self.settings.upload_quota_bytes
            if used + row.ciphertext_size > quota:
                raise TooLarge(
                    f"upload quota exceeded: this account stores {used} of its {quota} bytes "
                    f"and the upload needs {row.ciphertext_size}; abandon unfinished uploads "
                    "or ask the operator for more",
                    code="quota_exceeded",
                )
            await repository.add(row)
        return UploadView.of(row)

    async def upload(self, principal: Principal, room_id: str, upload_id: str) -> UploadView:
        """An upload of the caller's, for resuming it."""
        return UploadView.of(await self._read_own(principal, room_id, upload_id))

    async def _read_own(self, principal: Principal, room_id: str, upload_id: str) -> UploadRow:
        async with self.database.read() as conn:
            return await self._own(UploadRepository(conn), principal, room_id, upload_id)

    async def _own(
        self, repository: UploadRepository, principal: Principal, room_id: str, upload_id: str
    ) -> UploadRow:
        row = await repository.get(upload_id)
        if row is None or row.room_id != room_id or row.account_id != principal.account_id:
            raise NotFound("no such upload")
        if await RoomRepository(repository.conn).side_of(room_id, principal.account_id) is None:
            raise NotFound("no such upload")
        return row

    async def append_chunk(
        self,
        principal: Principal,
        room_id: str,
        upload_id: str,
        index: int,
        body: AsyncIterator[bytes],
        *,
        declared_length: int | None,
    ) -> UploadView:
        """Store chunk `index`, which must be the next one and exactly as long as its place
        requires; its bytes go to disk as they arrive. A refused chunk changes nothing."""
        # One chunk at a time per upload in this process; across replicas the
        # conditional update in `_append` decides, and `complete` checks the hash.
        async with self._locks.setdefault(upload_id, asyncio.Lock()):
            return await self._append(principal, room_id, upload_id, index, body, declared_length)

    async def _append(
        self,
        principal: Principal,
        room_id: str,
        upload_id: str,
        index: int,
        body: AsyncIterator[bytes],
        declared_length: int | None,
    ) -> UploadView:
        upload = await self._read_own(principal, room_id, upload_id)
        layout = DocumentLayout("upload", upload.size, upload.chunk_size)
        if index != upload.received_chunks:
            if index >= layout.chunk_count:
                raise Conflict(f"the upload has chunks 0..{layout.chunk_count - 1} only")
            raise Conflict(
                f"chunk {index} is out of order: the upload expects chunk "
                f"{upload.received_chunks} next"
            )
        length = layout.ciphertext_length(index)
        if declared_length is not None and declared_length != length:
            raise InvalidInput(f"chunk {index} must be {length} bytes, not {declared_length}")
        try:
            await self.files.write_chunk(upload_id, upload.received_bytes, length, body)
        except ChunkLengthError as exc:
            raise InvalidInput(
                f"chunk {index} must be {exc.expected} bytes; the body was "
                f"{'longer' if exc.received > exc.expected else 'shorter'}"
            ) from exc
        now = self.clock()
        async with self.database.write() as conn:
            advanced = await UploadRepository(conn).advance(
                upload_id, chunk=index, length=length, expires_at=self._expiry(now)
            )
            if not advanced:
                raise Conflict(f"chunk {index} was already stored")
        return await self.upload(principal, room_id, upload_id)

    async def complete(
        self, principal: Principal, room_id: str, upload_id: str, blob: str
    ) -> BlobRow:
        """Check the upload's size and hash and store it as the room's blob `blob`."""
        lock = self._locks.setdefault(upload_id, asyncio.Lock())
        async with lock:
            upload = await self._read_own(principal, room_id, upload_id)
            chunks = DocumentLayout("upload", upload.size, upload.chunk_size).chunk_count
            if upload.received_chunks != chunks:
                raise Conflict(
                    f"the upload is unfinished: {upload.received_chunks} of {chunks} chunks"
                )
            digest, size = await self.files.sha256(upload_id)
            if size != upload.ciphertext_size:
                raise Conflict(f"the stored upload is {size} bytes, not {upload.ciphertext_size}")
            if digest != blob:
                raise InvalidInput("the uploaded bytes do not have the declared SHA-256")
            await self.store.put(blob, self.files.path(upload_id))
            row = BlobRow(
                room_id=room_id,
                blob=blob,
                account_id=principal.account_id,
                size=size,
                created_at=self.clock(),
            )
            async with self.database.write() as conn:
                repository = UploadRepository(conn)
                existing = await repository.blob(room_id, blob)
                if existing is None:
                    await repository.add_blob(row)
                else:
                    row = existing
                await repository.remove(upload_id)
            self.files.remove(upload_id)
        self._locks.pop(upload_id, None)
        return row

    async def abandon(self, principal: Principal, room_id: str, upload_id: str) -> None:
        """Drop an unfinished upload and its bytes."""
        async with self.database.write() as conn:
            repository = UploadRepository(conn)
            await self._own(repository, principal, room_id, upload_id)
            await repository.remove(upload_id)
        self.files.remove(upload_id)
        self._locks.pop(upload_id, None)

    async def read_blob(self, principal: Principal, room_id: str, blob: str) -> BlobRead:
        """A blob of a room the caller is a member of (404 for anyone else)."""
        async with self.database.read() as conn:
            if await RoomRepository(conn).side_of(room_id, principal.account_id) is None:
                raise NotFound("no such blob")
            row = await UploadRepository(conn).blob(room_id, blob)
        if row is None or not await self.store.exists(blob):
            raise NotFound("no such blob")
        return BlobRead(size=row.size, body=self.store.read(blob))

    async def sweep(self) -> int:
        """Remove expired uploads, rows and files, and partial files no upload owns
        (left by a crash); return how many uploads were removed."""
        now = self.clock()
        removed = 0
        while True:
            async with self.database.write() as conn:
                repository = UploadRepository(conn)
                expired = await repository.expired(now, SWEEP_BATCH)
                if expired:
                    await repository.remove_many(expired)
            for upload_id in expired:
                self.files.remove(upload_id)
                self._locks.pop(upload_id, None)
            removed += len(expired)
            if len(expired) < SWEEP_BATCH:
                break
        async with self.database.read() as conn:
            known = await UploadRepository(conn).all_ids()
        cutoff_ns = (now - self.settings.upload_expiry_seconds * 1000) * 1_000_000
        for upload_id in list(self.files.stray(known, cutoff_ns)):
            self.files.remove(upload_id)
        return removed

    async def sweep_forever(self) -> None:
        """`sweep` every ``PARLEY_UPLOAD_SWEEP_SECONDS`` (the app's background task)."""
        while True:
            await asyncio.sleep(self.settings.upload_sweep_seconds)
            try:
                await self.sweep()
            except Exception:  # the next round tries again; the server keeps serving
                log.exception("sweeping expired uploads failed")
