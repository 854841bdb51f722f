"""Encrypted documents: a file sealed in chunks under its message's content key
(docs/design.md §7, "Documents"; the envelope is §5).

- **Key**: ``chunk key = HKDF-SHA256(content key, salt = none, info =
  "parley/v1/document" || 0x00 || file id)``, 32 bytes. The content key is
  the carrying envelope's, so whoever can open the message can open the file,
  and a content key revealed in a verifiable excerpt reveals this file too.
- **Chunks** (the STREAM construction of Hoang, Reyhanitabar, Rogaway and
  Vizár): the plaintext is cut into ``chunk_size`` pieces (the last may be
  shorter; an empty file is one empty chunk), each sealed with
  ChaCha20-Poly1305 under the chunk key with ``nonce = chunk index (11 bytes,
  big-endian) || last-chunk flag (1 byte: 1 on the last chunk, else 0)`` and
  ``AAD = "parley/v1/document-chunk" || 0x00 || canonical({file_id, index,
  chunk_count, size})``. A chunk moved to another place, a stream cut short
  (its new last chunk carries flag 0), a chunk of another file (another key,
  another AAD) or a flipped bit fails authentication.
- **Ciphertext**: the sealed chunks concatenated, each ``CHUNK_OVERHEAD``
  bytes longer than its plaintext. Its SHA-256 is the ``blob`` the server
  stores it under; the content also names the plaintext's SHA-256, checked
  after the last chunk.

Pure: bytes in, bytes out, no I/O. `ChunkSealer` and `DocumentOpener` work
chunk by chunk so a caller streams a file of any size in bounded memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import AfterValidator, Field, model_validator

from client_sdk.protocol.encoding import b64d, b64e, canonical_json
from client_sdk.protocol.envelope import CONTENT_KEY_LEN
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.models import B64, Ident, Int, WireModel

DOCUMENT: Final = "document"
KEY_INFO: Final = b"parley/v1/document\x00"
CHUNK_AAD: Final = b"parley/v1/document-chunk\x00"
CHUNK_OVERHEAD: Final = 16
"""The Poly1305 tag each sealed chunk adds."""
DEFAULT_CHUNK_SIZE: Final = 1 << 20
MIN_CHUNK_SIZE: Final = 16
MAX_CHUNK_SIZE: Final = 16 << 20
MAX_DOCUMENT_SIZE: Final = 1 << 40
"""What the format allows; a server's limit is far lower (PARLEY_MAX_DOCUMENT_BYTES)."""
_HASH_B64_LEN: Final = 43
_MT_PART = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"^{_MT_PART}/{_MT_PART}$")


def _file_name(value: str) -> str:
    if any(c in value for c in "/\\\x00") or value in (".", ".."):
        raise ValueError("a document name is a file name, not a path")
    return value


def _media_type(value: str) -> str:
    if not _MEDIA_TYPE.match(value):
        raise ValueError("not a media type (type/subtype)")
    return value


def _sha256_b64(value: str) -> str:
    if len(value) != _HASH_B64_LEN:
        raise ValueError("not a base64url SHA-256")
    return value


FileName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_file_name)]
MediaType = Annotated[str, AfterValidator(_media_type)]
Sha256B64 = Annotated[B64, AfterValidator(_sha256_b64)]


def chunk_count(size: int, chunk_size: int) -> int:
    """How many chunks a `size`-byte plaintext makes (at least one: an empty file is one
    empty chunk, so that even it has a last chunk to authenticate)."""
    return max(1, -(-size // chunk_size))


def ciphertext_size(size: int, chunk_size: int) -> int:
    """The sealed size of a `size`-byte plaintext."""
    return size + chunk_count(size, chunk_size) * CHUNK_OVERHEAD


class DocumentContent(WireModel):
    """The ``document`` content of a message: what a reader needs to fetch and check
    the file. The content key is the envelope's, never written here."""

    type: Literal["document"] = DOCUMENT
    file_id: Ident
    name: FileName
    media_type: MediaType
    size: Int = Field(ge=0, le=MAX_DOCUMENT_SIZE)
    chunk_size: Int = Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)
    chunk_count: Int = Field(ge=1)
    blob: Sha256B64
    """SHA-256 of the whole ciphertext: the server's name for it."""
    plaintext_sha256: Sha256B64

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.chunk_count != chunk_count(self.size, self.chunk_size):
            raise ValueError("chunk_count does not match size and chunk_size")
        return self

    @property
    def ciphertext_size(self) -> int:
        """The blob's size in bytes."""
        return ciphertext_size(self.size, self.chunk_size)


@dataclass(frozen=True, slots=True)
class DocumentLayout:
    """Where each chunk lies, in the plaintext and in the ciphertext."""

    file_id: str
    size: int
    chunk_size: int

    def __post_init__(self) -> None:
        if not MIN_CHUNK_SIZE <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise ProtocolError(
                f"chunk size must be between {MIN_CHUNK_SIZE} and {MAX_CHUNK_SIZE} bytes"
            )
        if not 0 <= self.size <= MAX_DOCUMENT_SIZE:
            raise ProtocolError("document size out of range")

    @property
    def chunk_count(self) -> int:
        """How many chunks."""
        return chunk_count(self.size, self.chunk_size)

    @property
    def ciphertext_size(self) -> int:
        """The sealed size."""
        return ciphertext_size(self.size, self.chunk_size)

    def plaintext_length(self, index: int) -> int:
        """The plaintext length of chunk `index`."""
        self._check_index(index)
        if index < self.chunk_count - 1:
            return self.chunk_size
        return self.size - index * self.chunk_size

    def ciphertext_length(self, index: int) -> int:
        """The sealed length of chunk `index`."""
        return self.plaintext_length(index) + CHUNK_OVERHEAD

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.chunk_count:
            raise ProtocolError(f"chunk {index} is outside 0..{self.chunk_count - 1}")

    def nonce(self, index: int) -> bytes:
        """STREAM nonce: 11-byte big-endian index, then the last-chunk flag."""
        self._check_index(index)
        last = b"\x01" if index == self.chunk_count - 1 else b"\x00"
        return index.to_bytes(11, "big") + last

    def aad(self, index: int) -> bytes:
        """What each chunk's tag binds besides its nonce: file, place, count and size."""
        return CHUNK_AAD + canonical_json(
            {
                "file_id": self.file_id,
                "index": index,
                "chunk_count": self.chunk_count,
                "size": self.size,
            }
        )


def chunk_key(content_key: bytes, file_id: str) -> bytes:
    """The file's chunk key, derived from the message's content key and the file id."""
    if len(content_key) != CONTENT_KEY_LEN:
        raise ProtocolError("a content key is 32 bytes")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_INFO + file_id.encode()
    ).derive(content_key)


class ChunkSealer:
    """Seals a file's chunks one at a time (deterministic: sealing chunk N twice gives the
    same bytes, which is what lets an interrupted upload resume)."""

    def __init__(self, content_key: bytes, layout: DocumentLayout) -> None:
        self.layout = layout
        self._aead = ChaCha20Poly1305(chunk_key(content_key, layout.file_id))

    def seal(self, index: int, plaintext: bytes) -> bytes:
        """Sealed chunk `index`; its plaintext must have exactly that chunk's length."""
        if len(plaintext) != self.layout.plaintext_length(index):
            raise ProtocolError(
                f"chunk {index} must hold {self.layout.plaintext_length(index)} bytes, "
                f"not {len(plaintext)}"
            )
        return self._aead.encrypt(self.layout.nonce(index), plaintext, self.layout.aad(index))


class DocumentOpener:
    """Opens a document's ciphertext as it arrives, in pieces of any size, checking each
    chunk before its plaintext is handed out; `finish` checks that nothing is missing
    and that the plaintext and ciphertext hashes are the ones the content names.
    Every failure is a `VerificationError`."""

    def __init__(self, content_key: bytes, document: DocumentContent) -> None:
        self.document = document
        self.layout = DocumentLayout(document.file_id, document.size, document.chunk_size)
        self._aead = ChaCha20Poly1305(chunk_key(content_key, document.file_id))
        self._buffer = bytearray()
        self._next = 0
        self._plain_hash = hashlib.sha256()
        self._cipher_hash = hashlib.sha256()

    @property
    def chunks_opened(self) -> int:
        """How many chunks were checked and opened so far."""
        return self._next

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of ciphertext; return the plaintext of every chunk they
        complete, in order."""
        self._cipher_hash.update(data)
        self._buffer += data
        opened = []
        while self._next < self.layout.chunk_count:
            want = self.layout.plaintext_length(self._next) + CHUNK_OVERHEAD
            if len(self._buffer) < want:
                break
            sealed = bytes(self._buffer[:want])
            del self._buffer[:want]
            opened.append(self._open(self._next, sealed))
            self._next += 1
        if self._next == self.layout.chunk_count and self._buffer:
            raise VerificationError("the document has bytes after its last chunk")
        return opened

    def _open(self, index: int, sealed: bytes) -> bytes:
        try:
            plaintext = self._aead.decrypt(self.layout.nonce(index), sealed, self.layout.aad(index))
        except InvalidTag as exc:
            raise VerificationError(
                f"document chunk {index} fails authentication (tampered, reordered, "
                "from another file, or the wrong key)"
            ) from exc
        self._plain_hash.update(plaintext)
        return plaintext

    def finish(self) -> None:
        """Check that the whole document arrived and matches the content's hashes."""
        if self._next < self.layout.chunk_count:
            raise VerificationError(
                f"the document is truncated: {self._next} of {self.layout.chunk_count} chunks"
            )
        if b64e(self._cipher_hash.digest()) != self.document.blob:
            raise VerificationError("the document's ciphertext does not match its blob hash")
        if b64e(self._plain_hash.digest()) != self.document.plaintext_sha256:
            raise VerificationError("the document's plaintext does not match its hash")


def seal_document(
    content_key: bytes,
    data: bytes,
    *,
    file_id: str,
    name: str,
    media_type: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[DocumentContent, bytes]:
    """A whole in-memory file sealed at once: its content and its ciphertext (for small
    files and tests; the SDK streams files through `ChunkSealer`)."""
    layout = DocumentLayout(file_id, len(data), chunk_size)
    sealer = ChunkSealer(content_key, layout)
    ciphertext = b"".join(
        sealer.seal(i, data[i * chunk_size : i * chunk_size + layout.plaintext_length(i)])
        for i in range(layout.chunk_count)
    )
    content = DocumentContent(
        file_id=file_id,
        name=name,
        media_type=media_type,
        size=len(data),
        chunk_size=chunk_size,
        chunk_count=layout.chunk_count,
        blob=b64e(hashlib.sha256(ciphertext).digest()),
        plaintext_sha256=b64e(hashlib.sha256(data).digest()),
    )
    return content, ciphertext


def open_document(content_key: bytes, document: DocumentContent, ciphertext: bytes) -> bytes:
    """A whole in-memory ciphertext opened and checked at once (see `DocumentOpener`)."""
    opener = DocumentOpener(content_key, document)
    plaintext = b"".join(opener.feed(ciphertext))
    opener.finish()
    return plaintext


def blob_digest(blob: str) -> bytes:
    """The 32 raw bytes of a ``blob`` hash (base64url); `ProtocolError` otherwise."""
    raw = b64d(blob)
    if len(raw) != 32:
        raise ProtocolError("a blob hash is 32 bytes")
    return raw
