"""Documents sealed in chunks (docs/design.md §7): round trips of any size and chunking,
and every attack on the chunk stream (reorder, truncate, splice, flip, wrong key)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.protocol.content import parse_content
from client_sdk.protocol.documents import (
    CHUNK_OVERHEAD,
    MIN_CHUNK_SIZE,
    ChunkSealer,
    DocumentContent,
    DocumentLayout,
    DocumentOpener,
    chunk_count,
    ciphertext_size,
    open_document,
    seal_document,
)
from client_sdk.protocol.envelope import (
    Recipient,
    decrypt_content,
    new_content_key,
    seal_envelope,
    unwrap_content_key,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.keys import EncryptionKey, SigningKey

KEY = bytes(range(32))
CHUNK = 64


def sealed(
    data: bytes, *, key: bytes = KEY, file_id: str = "f1", chunk_size: int = CHUNK
) -> tuple[DocumentContent, bytes]:
    return seal_document(
        key,
        data,
        file_id=file_id,
        name="terms.pdf",
        media_type="application/pdf",
        chunk_size=chunk_size,
    )


def chunks_of(document: DocumentContent, ciphertext: bytes) -> list[bytes]:
    layout = DocumentLayout(document.file_id, document.size, document.chunk_size)
    out, at = [], 0
    for i in range(layout.chunk_count):
        n = layout.plaintext_length(i) + CHUNK_OVERHEAD
        out.append(ciphertext[at : at + n])
        at += n
    return out


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=2000),
    chunk_size=st.integers(min_value=MIN_CHUNK_SIZE, max_value=300),
    piece=st.integers(min_value=1, max_value=500),
)
def test_any_file_round_trips_whatever_the_chunking_and_arrival(
    data: bytes, chunk_size: int, piece: int
) -> None:
    document, ciphertext = sealed(data, chunk_size=chunk_size)
    opener = DocumentOpener(KEY, document)
    plain = b"".join(
        b"".join(opener.feed(ciphertext[i : i + piece])) for i in range(0, len(ciphertext), piece)
    )
    opener.finish()

    assert plain == data
    assert len(ciphertext) == ciphertext_size(len(data), chunk_size) == document.ciphertext_size
    assert document.chunk_count == chunk_count(len(data), chunk_size)


def test_an_empty_file_is_one_authenticated_chunk() -> None:
    document, ciphertext = sealed(b"")

    assert document.chunk_count == 1
    assert len(ciphertext) == CHUNK_OVERHEAD
    assert open_document(KEY, document, ciphertext) == b""
    with pytest.raises(VerificationError, match="truncated"):
        open_document(KEY, document, b"")


def test_sealing_is_deterministic_so_an_upload_can_resume() -> None:
    data = os.urandom(300)
    assert sealed(data)[1] == sealed(data)[1]


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=2 * CHUNK + 1, max_size=8 * CHUNK), pick=st.data())
def test_reordered_chunks_fail(data: bytes, pick: st.DataObject) -> None:
    document, ciphertext = sealed(data)
    chunks = chunks_of(document, ciphertext)
    # Two full-size chunks swapped (equal lengths, so only the crypto can tell).
    i = pick.draw(st.integers(0, len(chunks) - 3))
    j = pick.draw(st.integers(i + 1, len(chunks) - 2))
    chunks[i], chunks[j] = chunks[j], chunks[i]
    with pytest.raises(VerificationError, match=f"chunk {i} fails"):
        open_document(KEY, document, b"".join(chunks))


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=CHUNK + 1, max_size=8 * CHUNK), cut=st.data())
def test_a_truncated_stream_fails_even_if_the_content_is_edited_to_match(
    data: bytes, cut: st.DataObject
) -> None:
    document, ciphertext = sealed(data)
    chunks = chunks_of(document, ciphertext)
    keep = cut.draw(st.integers(1, len(chunks) - 1))
    with pytest.raises(VerificationError, match="truncated"):
        open_document(KEY, document, b"".join(chunks[:keep]))
    # An attacker who could also change the content's size to the shorter length still
    # fails: the kept last chunk was sealed with the "not last" flag and other AAD.
    forged = document.model_copy(update={"size": keep * CHUNK, "chunk_count": keep})
    with pytest.raises(VerificationError, match="fails authentication"):
        open_document(KEY, forged, b"".join(chunks[:keep]))


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=CHUNK, max_size=6 * CHUNK), index=st.data())
def test_a_chunk_spliced_from_another_file_under_the_same_key_fails(
    data: bytes, index: st.DataObject
) -> None:
    mine, ciphertext = sealed(data, file_id="f1")
    theirs, other = sealed(data, file_id="f2")  # same key, same plaintext, same length
    i = index.draw(st.integers(0, mine.chunk_count - 1))
    chunks = chunks_of(mine, ciphertext)
    chunks[i] = chunks_of(theirs, other)[i]
    with pytest.raises(VerificationError, match=f"chunk {i} fails"):
        open_document(KEY, mine, b"".join(chunks))


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=6 * CHUNK), flip=st.data())
def test_a_flipped_bit_anywhere_fails(data: bytes, flip: st.DataObject) -> None:
    document, ciphertext = sealed(data)
    at = flip.draw(st.integers(0, len(ciphertext) - 1))
    bit = flip.draw(st.integers(0, 7))
    tampered = bytearray(ciphertext)
    tampered[at] ^= 1 << bit
    with pytest.raises(VerificationError, match="fails authentication"):
        open_document(KEY, document, bytes(tampered))


def test_the_wrong_key_fails_on_the_first_chunk() -> None:
    document, ciphertext = sealed(os.urandom(200))
    with pytest.raises(VerificationError, match="chunk 0 fails"):
        open_document(bytes(32), document, ciphertext)


def test_trailing_bytes_after_the_last_chunk_fail() -> None:
    document, ciphertext = sealed(os.urandom(100))
    with pytest.raises(VerificationError, match="after its last chunk"):
        open_document(KEY, document, ciphertext + b"x")


def test_a_content_naming_another_plaintext_hash_fails_at_the_end() -> None:
    document, ciphertext = sealed(os.urandom(100))
    other = document.model_copy(update={"plaintext_sha256": sealed(b"other")[0].plaintext_sha256})
    with pytest.raises(VerificationError, match="plaintext does not match"):
        open_document(KEY, other, ciphertext)


def test_a_content_naming_another_blob_fails_at_the_end() -> None:
    document, ciphertext = sealed(os.urandom(100))
    other = document.model_copy(update={"blob": sealed(b"other")[0].blob})
    with pytest.raises(VerificationError, match="blob hash"):
        open_document(KEY, other, ciphertext)


def test_a_sealer_refuses_a_chunk_of_the_wrong_length() -> None:
    sealer = ChunkSealer(KEY, DocumentLayout("f1", 100, CHUNK))
    with pytest.raises(ProtocolError, match="must hold 64 bytes"):
        sealer.seal(0, b"short")
    with pytest.raises(ProtocolError, match="outside"):
        sealer.seal(2, b"")


def test_the_document_content_parses_and_refuses_inconsistent_or_unsafe_fields() -> None:
    document, _ = sealed(os.urandom(100))
    body: dict[str, Any] = document.model_dump(mode="json")

    assert parse_content(body) == document
    for bad in (
        {"chunk_count": 5},
        {"name": "../etc/passwd"},
        {"name": "a\\b"},
        {"media_type": "pdf"},
        {"blob": "abc"},
        {"chunk_size": 1},
        {"size": "100"},
        {"extra": 1},
    ):
        with pytest.raises(ProtocolError, match="malformed document"):
            parse_content(body | bad)


def test_the_envelope_seals_under_a_given_content_key_and_it_opens_the_document() -> None:
    device = EncryptionKey.generate()
    sender = SigningKey.generate()
    key = new_content_key()
    document, ciphertext = sealed(os.urandom(500), key=key)
    envelope = seal_envelope(
        content=document.model_dump(mode="json"),
        room_id="room-1",
        channel="plenary",
        roster_version=1,
        sender_device="laptop",
        sender_key=sender,
        recipients=[Recipient("phone", device.public_bytes())],
        sent_at=1,
        content_key=key,
    )
    unwrapped = unwrap_content_key(envelope, recipient_device="phone", recipient_key=device)

    assert unwrapped == key
    assert parse_content(decrypt_content(envelope, unwrapped)) == document
    assert open_document(unwrapped, document, ciphertext)
    with pytest.raises(ProtocolError, match="32 bytes"):
        seal_envelope(
            content={"type": "text", "text": "x"},
            room_id="room-1",
            channel="plenary",
            roster_version=1,
            sender_device="laptop",
            sender_key=sender,
            recipients=[Recipient("phone", device.public_bytes())],
            sent_at=1,
            content_key=b"short",
        )
