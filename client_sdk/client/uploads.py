"""The reusable core of sending a document (docs/design.md §7): seal a file chunk by
chunk under a content key, send an upload the chunks it lacks, complete it, and
return the ``document`` content that a message sealed under the same key carries.

`Documents.send_file` uses it for `parley send --file`; an agreement attaches
its text the same way. One chunk is in memory at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from client_sdk.client.http import HttpSession
from client_sdk.protocol.documents import ChunkSealer, DocumentContent, DocumentLayout
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.wire.documents import BlobOut, UploadOut

Progress = Callable[[int, int], None]
"""Called with (plaintext bytes done, plaintext bytes in all) as a transfer advances."""


def noop(_done: int, _total: int) -> None:
    pass


async def create_upload(
    http: HttpSession, room_id: str, size: int, chunk_size: int, *, channel: str | None = None
) -> UploadOut:
    """Open an upload on the server for a document of `size` bytes in `chunk_size` chunks,
    to be posted on `channel` (refused at once if the room's rules would refuse that;
    None for a document attached to an instrument act)."""
    return await http.call(
        UploadOut,
        "POST",
        f"/v1/rooms/{room_id}/uploads",
        json={"size": size, "chunk_size": chunk_size, "channel": channel},
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
    progress: Progress = noop,
) -> DocumentContent:
    """Seal the file at `path` chunk by chunk under `content_key` and send the server's
    `upload` every chunk it does not hold yet, then complete it; return the ``document``
    content that a message sealed under `content_key` carries.

    Chunks are sealed deterministically, so the ones already uploaded are sealed
    again only to be hashed. One chunk is in memory at a time.
    """
    base = f"/v1/rooms/{upload.room_id}/uploads/{upload.upload_id}"

    async def send(index: int, sealed: bytes) -> None:
        if index >= upload.received_chunks:
            await http.put_bytes(UploadOut, f"{base}/chunks/{index}", sealed)

    layout = DocumentLayout(file_id, upload.size, upload.chunk_size)
    document = await seal_file(
        path, layout, content_key, name=name, media_type=media_type, each=send, progress=progress
    )
    stored = await http.call(BlobOut, "POST", f"{base}/complete", json={"blob": document.blob})
    if stored.blob != document.blob or stored.size != layout.ciphertext_size:
        raise VerificationError("the server stored another blob than the one uploaded")
    return document


async def seal_file(
    path: Path,
    layout: DocumentLayout,
    content_key: bytes,
    *,
    name: str,
    media_type: str,
    each: Callable[[int, bytes], Awaitable[None]] | None = None,
    progress: Progress = noop,
) -> DocumentContent:
    """Seal the file at `path` chunk by chunk, handing each sealed chunk to `each`, and
    return its ``document`` content (both hashes computed on the way)."""
    sealer = ChunkSealer(content_key, layout)
    plain_hash, cipher_hash = hashlib.sha256(), hashlib.sha256()
    done = 0
    with path.open("rb") as file:
        for index in range(layout.chunk_count):
            plaintext = file.read(layout.plaintext_length(index))
            if len(plaintext) != layout.plaintext_length(index):
                raise ProtocolError(f"{path} changed while it was being sent")
            sealed = sealer.seal(index, plaintext)
            plain_hash.update(plaintext)
            cipher_hash.update(sealed)
            if each is not None:
                await each(index, sealed)
            done += len(plaintext)
            progress(done, layout.size)
        if file.read(1):
            raise ProtocolError(f"{path} changed while it was being sent")
    return DocumentContent(
        file_id=layout.file_id,
        name=name,
        media_type=media_type,
        size=layout.size,
        chunk_size=layout.chunk_size,
        chunk_count=layout.chunk_count,
        blob=b64e(cipher_hash.digest()),
        plaintext_sha256=b64e(plain_hash.digest()),
    )
