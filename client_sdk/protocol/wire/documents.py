"""Uploads and blobs: the encrypted documents' storage (docs/design.md §7)."""

from __future__ import annotations

from pydantic import Field

from client_sdk.protocol.documents import (
    MAX_CHUNK_SIZE,
    MAX_DOCUMENT_SIZE,
    MIN_CHUNK_SIZE,
    Sha256B64,
)
from client_sdk.protocol.models import Ident, Int, WireModel
from client_sdk.protocol.wire.base import Answer


class CreateUploadRequest(WireModel):
    """A new upload of one document's ciphertext, described by its plaintext layout
    (`protocol.documents.DocumentLayout`): the server derives each chunk's exact
    ciphertext length from it."""

    size: Int = Field(ge=0, le=MAX_DOCUMENT_SIZE)
    """Plaintext bytes."""
    chunk_size: Int = Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE)
    """Plaintext bytes per chunk (the last may be shorter)."""
    channel: Ident | None = None
    """Where the message carrying the document will be posted: an upload the room's
    rules would not let the caller post there now is refused before any byte is sent.
    None for a document that goes with an instrument act (an agreement), whose own
    rules are judged when the act arrives: then only the room's status is checked."""


class UploadOut(Answer):
    """An upload's state: what was received, for resuming it."""

    upload_id: Ident
    room_id: Ident
    size: Int
    chunk_size: Int
    chunk_count: Int
    ciphertext_size: Int
    received_chunks: Int
    """Chunks ``0..received_chunks-1`` are stored; the next to send is this one."""
    received_bytes: Int
    created_at: Int
    expires_at: Int
    """Unless another chunk arrives first, the server removes the upload then."""


class CompleteUploadRequest(WireModel):
    """Finish an upload: the SHA-256 of the whole ciphertext, which the server checks."""

    blob: Sha256B64


class BlobOut(Answer):
    """A stored blob of a room."""

    room_id: Ident
    blob: Sha256B64
    size: Int
    created_at: Int
