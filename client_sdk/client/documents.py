"""Encrypted documents (docs/design.md §7): a file sealed in chunks, uploaded to a
resumable upload and sent as a message's ``document`` content; downloaded by room
and sequence number, every chunk checked before it is written.

`upload_document` is the reusable core: given a content key, a file and a
server upload, it seals and sends the chunks the server lacks and returns the
`DocumentContent` to put in the message sealed under that same key (an
agreement attaches its text this way). `Documents.send_file` adds what makes
it resumable across processes: the content key, file id and message id of an
upload in progress are kept in the encrypted keystore (`PendingUpload`, a
read-modify-write under the profile lock like every other change) until the
message is sent, so sending the same unchanged file to the same room and
channel again picks up where the interrupted run stopped.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.client.models import Message, Receipt
from client_sdk.keystore import Keystore, KeystoreState, PendingUpload, rules
from client_sdk.protocol.content import parse_content
from client_sdk.protocol.documents import (
    DEFAULT_CHUNK_SIZE,
    ChunkSealer,
    DocumentContent,
    DocumentLayout,
    DocumentOpener,
)
from client_sdk.protocol.encoding import b64e, sha256
from client_sdk.protocol.envelope import (
    Envelope,
    decrypt_content,
    new_content_key,
    new_message_id,
    unwrap_content_key,
)
from client_sdk.protocol.errors import NotFoundError, ProtocolError, VerificationError
from client_sdk.protocol.wire.documents import BlobOut, UploadOut
from client_sdk.protocol.wire.events import EventsPage

Progress = Callable[[int, int], None]
"""Called with (plaintext bytes done, plaintext bytes in all) as a transfer advances."""

SendSealed = Callable[[str, dict[str, object], str, str, bytes], Awaitable[Receipt]]
"""Seal and send content: (room, content, channel, message id, content key)."""

MessageAt = Callable[[str, int], Awaitable[Message]]
"""The verified, decrypted message at (room, seq)."""


@dataclass(frozen=True, slots=True)
class SentDocument:
    """A document sent as a message: where it landed and what it says."""

    receipt: Receipt
    document: DocumentContent
    resumed_from_chunk: int
    """0 for a fresh upload; else how many chunks an earlier run had already sent."""


def _noop(_done: int, _total: int) -> None:
    pass


async def create_upload(http: HttpSession, room_id: str, size: int, chunk_size: int) -> UploadOut:
    """Open an upload on the server for a document of `size` bytes in `chunk_size` chunks."""
    return await http.call(
        UploadOut,
        "POST",
        f"/v1/rooms/{room_id}/uploads",
        json={"size": size, "chunk_size": chunk_size},
    )


async def upload_document(
    http: HttpSession,
    path: Path,
    upload: UploadOut,
    *,
    content_key: bytes,
    file_id: str,
    name: str,
    media_type: str,
    progress: Progress = _noop,
) -> DocumentContent:
    """Seal the file at `path` chunk by chunk under `content_key` and send the server's
    `upload` every chunk it does not hold yet, then complete it; return the ``document``
    content that a message sealed under `content_key` carries.

    Chunks are sealed deterministically, so the ones already uploaded are sealed
    again only to be hashed. One chunk is in memory at a time.
    """
    layout = DocumentLayout(file_id, upload.size, upload.chunk_size)
    sealer = ChunkSealer(content_key, layout)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    base = f"/v1/rooms/{upload.room_id}/uploads/{upload.upload_id}"
    done = 0
    with path.open("rb") as file:
        for index in range(layout.chunk_count):
            plaintext = file.read(layout.plaintext_length(index))
            if len(plaintext) != layout.plaintext_length(index):
                raise ProtocolError(f"{path} changed while it was being sent")
            sealed = sealer.seal(index, plaintext)
            plain_hash.update(plaintext)
            cipher_hash.update(sealed)
            if index >= upload.received_chunks:
                await http.put_bytes(UploadOut, f"{base}/chunks/{index}", sealed)
            done += len(plaintext)
            progress(done, layout.size)
        if file.read(1):
            raise ProtocolError(f"{path} changed while it was being sent")
    blob = b64e(cipher_hash.digest())
    stored = await http.call(BlobOut, "POST", f"{base}/complete", json={"blob": blob})
    if stored.blob != blob or stored.size != layout.ciphertext_size:
        raise VerificationError("the server stored another blob than the one uploaded")
    return DocumentContent(
        file_id=file_id,
        name=name,
        media_type=media_type,
        size=layout.size,
        chunk_size=layout.chunk_size,
        chunk_count=layout.chunk_count,
        blob=blob,
        plaintext_sha256=b64e(plain_hash.digest()),
    )


class Documents:
    """Sending files as documents and downloading them."""

    def __init__(
        self,
        http: HttpSession,
        keystore: Keystore,
        clock: Clock,
        *,
        send: SendSealed,
        message_at: MessageAt,
    ) -> None:
        self._http = http
        self._keystore = keystore
        self._clock = clock
        self._send = send
        self._message_at = message_at

    async def send_file(
        self,
        room_id: str,
        path: Path,
        *,
        channel: str,
        name: str | None = None,
        media_type: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        progress: Progress = _noop,
    ) -> SentDocument:
        """Encrypt the file at `path`, upload it and send it to `channel` as a document.

        An earlier interrupted run for the same unchanged file, room and channel
        is resumed from the chunks the server already holds.
        """
        path = _resolved(path)
        stat = _stat(path)
        pending = self._pending(room_id, channel, path, stat.st_size, stat.st_mtime_ns // 1000)
        upload: UploadOut | None = None
        if pending is not None:
            try:
                upload = await self._http.call(
                    UploadOut, "GET", f"/v1/rooms/{room_id}/uploads/{pending.upload_id}"
                )
            except NotFoundError:  # expired or abandoned: start again
                self._forget(pending.upload_id)
                pending = None
        if pending is None or upload is None:
            upload = await create_upload(self._http, room_id, stat.st_size, chunk_size)
            pending = PendingUpload(
                upload_id=upload.upload_id,
                room_id=room_id,
                channel=channel,
                path=str(path),
                size=stat.st_size,
                mtime_us=stat.st_mtime_ns // 1000,
                file_id=b64e(secrets.token_bytes(16)),
                message_id=new_message_id(),
                content_key=new_content_key(),
                chunk_size=chunk_size,
                name=name or path.name,
                media_type=media_type or _guess_type(path.name),
                created_at=self._clock(),
            )
            self._keystore.update(lambda s: rules.add_pending_upload(s, pending))
        document = await upload_document(
            self._http,
            path,
            upload,
            content_key=pending.content_key,
            file_id=pending.file_id,
            name=pending.name,
            media_type=pending.media_type,
            progress=progress,
        )
        receipt = await self._send(
            room_id,
            document.model_dump(mode="json"),
            channel,
            pending.message_id,
            pending.content_key,
        )
        self._forget(pending.upload_id)
        return SentDocument(receipt, document, upload.received_chunks)

    def _pending(
        self, room_id: str, channel: str, path: Path, size: int, mtime_us: int
    ) -> PendingUpload | None:
        for pending in self._keystore.state.pending_uploads.values():
            if (pending.room_id, pending.channel, pending.path) == (room_id, channel, str(path)):
                if (pending.size, pending.mtime_us) == (size, mtime_us):
                    return pending
        return None

    def _forget(self, upload_id: str) -> None:
        self._keystore.update(lambda s: rules.drop_pending_upload(s, upload_id))

    def pending_uploads(self) -> list[PendingUpload]:
        """Uploads begun by this profile and not sent yet."""
        return list(self._keystore.state.pending_uploads.values())

    async def abandon(self, upload_id: str) -> None:
        """Drop an unfinished upload, on the server and in the keystore."""
        pending = self._keystore.state.pending_uploads.get(upload_id)
        if pending is not None:
            with contextlib.suppress(NotFoundError):
                await self._http.request(
                    "DELETE", f"/v1/rooms/{pending.room_id}/uploads/{upload_id}"
                )
        self._forget(upload_id)

    async def download(
        self, room_id: str, seq: int, output: Path, *, progress: Progress = _noop
    ) -> DocumentContent:
        """Fetch the document of message `seq`, check every chunk and its hashes, and
        write it to `output` atomically (nothing is left there if any check fails)."""
        message = await self._message_at(room_id, seq)
        content = parse_content(message.content)
        if not isinstance(content, DocumentContent):
            raise ProtocolError(f"room {room_id}: message #{seq} is not a document")
        content_key = await self._content_key(room_id, message)
        opener = DocumentOpener(content_key, content)
        output = _resolved(output)
        fd, temp_name = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".part"
        )
        try:
            with os.fdopen(fd, "wb") as temp:
                done = 0
                async with self._http.download(f"/v1/rooms/{room_id}/blobs/{content.blob}") as (
                    length,
                    pieces,
                ):
                    if length is not None and length != content.ciphertext_size:
                        raise VerificationError(
                            f"the server offers {length} bytes; the document is "
                            f"{content.ciphertext_size}"
                        )
                    async for piece in pieces:
                        for plaintext in opener.feed(piece):
                            temp.write(plaintext)
                            done += len(plaintext)
                            progress(done, content.size)
                opener.finish()
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, output)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
            raise
        return content

    async def _content_key(self, room_id: str, message: Message) -> bytes:
        """The verified message's content key: its envelope fetched again, bound to the
        message by the hash of what the sender signed, and unwrapped with this device's
        keys (the key commitment is checked by opening it)."""
        page = await self._http.call(
            EventsPage,
            "GET",
            f"/v1/rooms/{room_id}/events",
            params={"after": message.seq - 1, "limit": 1},
        )
        if not page.events or page.events[0].seq != message.seq:
            raise VerificationError(f"room {room_id}: event {message.seq} is missing")
        try:
            envelope = Envelope.model_validate(page.events[0].payload)
        except ValueError as exc:
            raise VerificationError(
                f"room {room_id}: event {message.seq} is not an envelope"
            ) from exc
        if b64e(sha256(envelope.signed_bytes())) != message.signed_sha256:
            raise VerificationError(
                f"room {room_id}: event {message.seq} is not the message verified before"
            )
        return _unwrap(self._keystore.state, envelope)


def _unwrap(state: KeystoreState, envelope: Envelope) -> bytes:
    failure: VerificationError | None = None
    for record in sorted(state.encryption_keys, key=lambda r: r.created_at, reverse=True):
        try:
            key = unwrap_content_key(
                envelope, recipient_device=state.device_id, recipient_key=record.private
            )
            decrypt_content(envelope, key)  # checks the key against the header's commitment
            return key
        except VerificationError as exc:
            failure = exc
    raise failure or VerificationError("no encryption key left to open the message")


def _resolved(path: Path) -> Path:
    return path.resolve()


def _stat(path: Path) -> os.stat_result:
    return path.stat()


def _guess_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
