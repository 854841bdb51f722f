"""Encrypted documents (docs/design.md §7): a file sealed in chunks, uploaded to a
resumable upload and sent as a message's ``document`` content; downloaded by room
and sequence number, every chunk checked before it is written.

`uploads.upload_document` is the reusable core (a content key, a file and an
upload in, the ``document`` content out). `Documents.send_file` adds what makes
it resumable across processes: the content key, file id and message id of an
upload in progress are kept in the encrypted keystore (`PendingUpload`, a
read-modify-write under the profile lock like every other change) until the
message is sent, so sending the same unchanged file to the same room and
channel again picks up where the interrupted run stopped. The message itself is
sealed once and its envelope kept there too, so a resumed run posts the very
same envelope and a message that landed before is not sent twice.
"""

from __future__ import annotations

import contextlib
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
from client_sdk.client.uploads import Progress, create_upload, noop, seal_file, upload_document
from client_sdk.keystore import Keystore, KeystoreState, PendingUpload, rules
from client_sdk.protocol.content import parse_content
from client_sdk.protocol.documents import (
    DEFAULT_CHUNK_SIZE,
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
from client_sdk.protocol.errors import (
    ConflictError,
    NotFoundError,
    ProtocolError,
    VerificationError,
)
from client_sdk.protocol.mediation import channel_sides
from client_sdk.protocol.wire.documents import UploadOut
from client_sdk.protocol.wire.events import EventsPage

Seal = Callable[[str, dict[str, object], str, str, bytes], Awaitable[Envelope]]
"""Seal content for the room's current roster: (room, content, channel, message id,
content key)."""

Post = Callable[[str, Envelope], Awaitable[Receipt]]
"""Post a sealed envelope and check its receipt."""

MessageAt = Callable[[str, int], Awaitable[Message]]
"""The verified, decrypted message at (room, seq)."""


@dataclass(frozen=True, slots=True)
class SentDocument:
    """A document sent as a message: where it landed and what it says."""

    receipt: Receipt
    document: DocumentContent
    resumed_from_chunk: int
    """0 for a fresh upload; else how many chunks an earlier run had already sent."""


async def fetch_document(
    http: HttpSession,
    room_id: str,
    document: DocumentContent,
    content_key: bytes,
    *,
    output: Path | None = None,
    progress: Progress = noop,
) -> None:
    """Download `document`'s blob and open it chunk by chunk under `content_key`,
    checking every chunk and both hashes; write the plaintext to `output` atomically
    if given (nothing is left there if any check fails), else only check it (an
    agreement's signer checks what it signs this way)."""
    opener = DocumentOpener(content_key, document)
    temp_name: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            sink = None
            if output is not None:
                output = _resolved(output)
                fd, temp_name = tempfile.mkstemp(
                    dir=output.parent, prefix=f".{output.name}.", suffix=".part"
                )
                sink = stack.enter_context(os.fdopen(fd, "wb"))
            done = 0
            async with http.download(f"/v1/rooms/{room_id}/blobs/{document.blob}") as (
                length,
                pieces,
            ):
                if length is not None and length != document.ciphertext_size:
                    raise VerificationError(
                        f"the server offers {length} bytes; the document is "
                        f"{document.ciphertext_size}"
                    )
                async for piece in pieces:
                    for plaintext in opener.feed(piece):
                        if sink is not None:
                            sink.write(plaintext)
                        done += len(plaintext)
                        progress(done, document.size)
            opener.finish()
            if sink is not None:
                sink.flush()
                os.fsync(sink.fileno())
        if output is not None and temp_name is not None:
            os.replace(temp_name, output)
    except BaseException:
        if temp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)
        raise


class Documents:
    """Sending files as documents and downloading them."""

    def __init__(
        self,
        http: HttpSession,
        keystore: Keystore,
        clock: Clock,
        *,
        seal: Seal,
        post: Post,
        message_at: MessageAt,
    ) -> None:
        self._http = http
        self._keystore = keystore
        self._clock = clock
        self._seal = seal
        self._post = post
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
        progress: Progress = noop,
    ) -> SentDocument:
        """Encrypt the file at `path`, upload it and send it to `channel` as a document.

        An earlier interrupted run for the same unchanged file, room and channel
        is resumed from the chunks the server already holds.
        """
        if channel_sides(channel) is None:  # before anything is uploaded
            raise ProtocolError(f"unknown channel {channel!r}: plenary, caucus-a or caucus-b")
        path = _resolved(path)
        stat = _stat(path)
        pending = await self._pending(
            room_id, channel, path, stat.st_size, stat.st_mtime_ns // 1000
        )
        resumed_from = 0
        if pending is not None and pending.document is not None:
            resumed_from = pending.document.chunk_count  # uploaded; only the message is left
        elif pending is not None:
            try:
                upload = await self._http.call(
                    UploadOut, "GET", f"/v1/rooms/{room_id}/uploads/{pending.upload_id}"
                )
            except NotFoundError:  # expired, abandoned, or completed with the answer lost
                pending = await self._completed_before(path, pending)
                if pending is not None and pending.document is not None:
                    resumed_from = pending.document.chunk_count
            else:
                resumed_from = upload.received_chunks
                document = await self._upload(path, upload, pending, progress)
                pending = self._remember(pending.model_copy(update={"document": document}))
        if pending is None:
            upload = await create_upload(
                self._http, room_id, stat.st_size, chunk_size, channel=channel
            )
            pending = self._remember(
                PendingUpload(
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
                    media_type=media_type or guess_type(path.name),
                    created_at=self._clock(),
                )
            )
            document = await self._upload(path, upload, pending, progress)
            pending = self._remember(pending.model_copy(update={"document": document}))
        assert pending.document is not None
        receipt = await self._post_document(pending)
        self._forget(pending.upload_id)
        return SentDocument(receipt, pending.document, resumed_from)

    async def _completed_before(self, path: Path, pending: PendingUpload) -> PendingUpload | None:
        """The pending record with its document, if its upload was completed before (the
        answer lost) and the blob is in the room; else None, the record forgotten."""
        layout = DocumentLayout(pending.file_id, pending.size, pending.chunk_size)
        document = await seal_file(
            path, layout, pending.content_key, name=pending.name, media_type=pending.media_type
        )
        try:
            async with self._http.download(f"/v1/rooms/{pending.room_id}/blobs/{document.blob}"):
                pass
        except NotFoundError:
            self._forget(pending.upload_id)
            return None
        return self._remember(pending.model_copy(update={"document": document}))

    async def _upload(
        self, path: Path, upload: UploadOut, pending: PendingUpload, progress: Progress
    ) -> DocumentContent:
        return await upload_document(
            self._http,
            path,
            upload,
            content_key=pending.content_key,
            file_id=pending.file_id,
            name=pending.name,
            media_type=pending.media_type,
            progress=progress,
        )

    async def _post_document(self, pending: PendingUpload) -> Receipt:
        """Seal the document's message once, keep the envelope, and post it; post the kept
        envelope again on a resumed run, so the server answers a message that landed
        before by its id instead of storing it twice.

        If the kept envelope is refused for a roster that changed since it was sealed,
        it was never stored (a stored one would have been answered by its id), and the
        same content is sealed again for the new roster under the same key and message
        id: the log still holds one message under that key.
        """
        assert pending.document is not None
        room_id, content = pending.room_id, pending.document.model_dump(mode="json")
        envelope = pending.envelope
        if envelope is None:
            envelope = await self._seal(
                room_id, content, pending.channel, pending.message_id, pending.content_key
            )
            pending = self._remember(pending.model_copy(update={"envelope": envelope}))
        try:
            return await self._post(room_id, envelope)
        except ConflictError:
            again = await self._seal(
                room_id, content, pending.channel, pending.message_id, pending.content_key
            )
            if again.header.roster_version == envelope.header.roster_version:
                raise
            self._remember(pending.model_copy(update={"envelope": again}))
            return await self._post(room_id, again)

    def _remember(self, pending: PendingUpload) -> PendingUpload:
        self._keystore.update(lambda s: rules.add_pending_upload(s, pending))
        return pending

    async def _pending(
        self, room_id: str, channel: str, path: Path, size: int, mtime_us: int
    ) -> PendingUpload | None:
        """The record of an earlier run for this file, room and channel, if the file has
        not changed since; records for an older version of the file are abandoned."""
        found = None
        for pending in list(self._keystore.state.pending_uploads.values()):
            if (pending.room_id, pending.channel, pending.path) != (room_id, channel, str(path)):
                continue
            if (pending.size, pending.mtime_us) == (size, mtime_us):
                found = pending
            else:  # that version of the file is gone: it cannot be resumed
                await self.abandon(pending.upload_id)
        return found

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
        self, room_id: str, seq: int, output: Path, *, progress: Progress = noop
    ) -> DocumentContent:
        """Fetch the document of message `seq`, check every chunk and its hashes, and
        write it to `output` atomically (nothing is left there if any check fails)."""
        message = await self._message_at(room_id, seq)
        content = parse_content(message.content)
        if not isinstance(content, DocumentContent):
            raise ProtocolError(f"room {room_id}: message #{seq} is not a document")
        content_key = await self._content_key(room_id, message)
        await fetch_document(
            self._http, room_id, content, content_key, output=output, progress=progress
        )
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
        return unwrap(self._keystore.state, envelope)


def unwrap(state: KeystoreState, envelope: Envelope) -> bytes:
    """The content key of an envelope sealed to this device, checked against the
    header's key commitment, with whichever of the device's keys opens it."""
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


def guess_type(name: str) -> str:
    """A media type for a file name (``application/octet-stream`` if unknown)."""
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
