"""Where document ciphertext lives on disk (docs/design.md §7): finished blobs in a
`BlobStore`, content-addressed by SHA-256, and unfinished uploads in `UploadFiles`.

`BlobStore` is the interface an operator could implement elsewhere (an object
store); `FileBlobStore` keeps each blob as one file under the data directory,
``blobs/ab/abcd…`` by its base64url SHA-256. Nothing here holds a whole file
in memory: chunks are written piece by piece as they arrive, hashes are read
in 1 MiB pieces, and blobs are read out the same way. Blocking work that may
take long (fsync, hashing, copying) runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Protocol

from client_sdk.protocol.encoding import b64e

READ_PIECE = 1 << 20


class BlobStore(Protocol):
    """Finished blobs by name (the base64url SHA-256 of their bytes)."""

    async def put(self, blob: str, source: Path) -> None:
        """Store the file at `source` as `blob` (idempotent; `source` is left in place)."""
        ...

    async def exists(self, blob: str) -> bool:
        """Whether `blob` is stored."""
        ...

    def read(self, blob: str) -> AsyncIterator[bytes]:
        """The bytes of `blob`, in pieces."""
        ...

    async def delete(self, blob: str) -> None:
        """Remove `blob` if it is stored."""
        ...


class FileBlobStore:
    """Blobs as files under `root` (``DATA_DIR/blobs``), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, blob: str) -> Path:
        """Where `blob` is kept (a base64url name: no separators, no dots)."""
        return self.root / blob[:2] / blob

    async def put(self, blob: str, source: Path) -> None:
        """Link `source` into place (same file system), or copy it; fsync'd either way."""
        await asyncio.to_thread(self._put, blob, source)

    def _put(self, blob: str, source: Path) -> None:
        target = self.path(blob)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{blob}.{secrets.token_hex(8)}.tmp")
        try:
            try:
                os.link(source, temporary)
            except OSError:
                with source.open("rb") as src, temporary.open("wb") as dst:
                    while piece := src.read(READ_PIECE):
                        dst.write(piece)
                    dst.flush()
                    os.fsync(dst.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_dir(target.parent)

    async def exists(self, blob: str) -> bool:
        """Whether `blob` is stored."""
        return self.path(blob).is_file()

    async def read(self, blob: str) -> AsyncIterator[bytes]:
        """The bytes of `blob`, 1 MiB at a time."""
        with self.path(blob).open("rb") as file:
            while piece := await asyncio.to_thread(file.read, READ_PIECE):
                yield piece

    async def delete(self, blob: str) -> None:
        """Remove `blob` if it is stored."""
        self.path(blob).unlink(missing_ok=True)


class UploadFiles:
    """The partial ciphertext of unfinished uploads, one file per upload under `root`
    (``DATA_DIR/uploads``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, upload_id: str) -> Path:
        """The partial file of an upload."""
        return self.root / f"{upload_id}.part"

    async def write_chunk(
        self, upload_id: str, offset: int, length: int, body: AsyncIterator[bytes]
    ) -> None:
        """Write exactly `length` bytes of `body` at `offset`, durably; raise
        `ChunkLengthError` if the body is longer or shorter. On any failure the file is
        cut back to `offset`, as if nothing was written."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(upload_id), os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(fd, "r+b") as file:
            try:
                file.seek(offset)
                file.truncate()
                written = 0
                async for piece in body:
                    written += len(piece)
                    if written > length:
                        raise ChunkLengthError(length, written)
                    file.write(piece)
                if written != length:
                    raise ChunkLengthError(length, written)
                file.flush()
                await asyncio.to_thread(os.fsync, file.fileno())
            except BaseException:
                file.truncate(offset)
                raise

    async def sha256(self, upload_id: str) -> tuple[str, int]:
        """The base64url SHA-256 and the size of an upload's partial file."""
        return await asyncio.to_thread(self._sha256, upload_id)

    def _sha256(self, upload_id: str) -> tuple[str, int]:
        digest, size = hashlib.sha256(), 0
        with contextlib.suppress(FileNotFoundError), self.path(upload_id).open("rb") as file:
            while piece := file.read(READ_PIECE):
                digest.update(piece)
                size += len(piece)
        return b64e(digest.digest()), size

    def remove(self, upload_id: str) -> None:
        """Delete an upload's partial file, if any."""
        self.path(upload_id).unlink(missing_ok=True)

    def stray(self, known: set[str], older_than_ns: int) -> Iterator[str]:
        """Upload ids whose partial file has no upload (left by a crash) and was last
        written before `older_than_ns`."""
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            if entry.suffix != ".part" or entry.stem in known:
                continue
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime_ns < older_than_ns:
                    yield entry.stem


class ChunkLengthError(Exception):
    """A chunk's body was not the length its place in the document requires."""

    def __init__(self, expected: int, received: int) -> None:
        super().__init__(f"expected {expected} bytes, received {received}")
        self.expected = expected
        self.received = received


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
