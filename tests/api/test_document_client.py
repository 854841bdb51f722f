"""Documents through the SDK, in-process (docs/design.md §7): a file sent and downloaded
byte for byte, resumed after an interruption at every stage (mid-upload, after the
upload completed with its answer lost, after the message landed with its answer
lost) without a second message, and downloads refused when the server serves
tampered or swapped ciphertext, with nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.protocol.content import parse_content
from client_sdk.protocol.documents import DocumentContent
from client_sdk.protocol.errors import (
    ConflictError,
    NotFoundError,
    ProtocolError,
    TransportError,
    VerificationError,
)
from tests.conftest import OpenProfile
from tests.support.talks import Talks, open_talks, talks_fixtures, talks_scene

CHUNK = 1024
SIZE = 5 * CHUNK + 321


SCENE = talks_scene("document-talks", title="Document talks")
seed, talks_room = talks_fixtures(SCENE)


@pytest.fixture
async def talks(talks_room: str, open_profile: OpenProfile, tmp_path: Path) -> Talks:
    """The talks, built once per module and backend and copied for each test."""
    return open_talks(SCENE, talks_room, open_profile, tmp_path)


class LosesAnswers(httpx.AsyncBaseTransport):
    """The app, except that the answers to requests `lost` picks are dropped after the
    server handled them (a connection that broke on the way back)."""

    def __init__(self, app: FastAPI, lost: Callable[[httpx.Request], bool]) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.lost = lost

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.lost(request):
            await response.aread()
            raise httpx.ReadError("connection lost before the answer arrived")
        return response


class Interrupted(Exception):
    """A crash half-way through an upload."""


def a_file(directory: Path, size: int = SIZE, name: str = "terms.pdf") -> Path:
    path = directory / name
    path.write_bytes(os.urandom(size))
    return path


async def documents_in(client: ParleyClient, room_id: str) -> list[tuple[int, DocumentContent]]:
    found = []
    async for message in client.messages(room_id):
        content = parse_content(message.content)
        if isinstance(content, DocumentContent):
            found.append((message.seq, content))
    return found


def upload_files(app: FastAPI) -> list[Path]:
    root: Path = app.state.services.documents.settings.upload_dir()
    return list(root.iterdir()) if root.exists() else []


def blob_path(app: FastAPI, blob: str) -> Path:
    root: Path = app.state.services.documents.settings.blob_dir()
    return root / blob[:2] / blob


async def test_a_file_is_sent_and_downloaded_byte_for_byte_with_progress(
    talks: Talks, tmp_path: Path
) -> None:
    source = a_file(tmp_path)
    sent_progress: list[tuple[int, int]] = []
    got_progress: list[tuple[int, int]] = []

    sent = await talks.alice.documents.send_file(
        talks.room_id,
        source,
        channel="plenary",
        chunk_size=CHUNK,
        progress=lambda done, total: sent_progress.append((done, total)),
    )
    target = tmp_path / "out" / "terms.pdf"
    target.parent.mkdir()
    got = await talks.bob.documents.download(
        talks.room_id,
        sent.receipt.seq,
        target,
        progress=lambda done, total: got_progress.append((done, total)),
    )

    assert target.read_bytes() == source.read_bytes()
    assert got == sent.document
    assert sent.document.chunk_count == 6
    assert sent.document.media_type == "application/pdf"
    assert [done for done, _ in sent_progress] == [1024, 2048, 3072, 4096, 5120, SIZE]
    assert got_progress[-1] == (SIZE, SIZE)
    assert talks.alice.documents.pending_uploads() == []
    assert await documents_in(talks.mona, talks.room_id) == [(sent.receipt.seq, sent.document)]


async def test_an_empty_file_is_one_sealed_chunk_and_arrives_empty(
    talks: Talks, tmp_path: Path
) -> None:
    source = a_file(tmp_path, size=0, name="empty.txt")

    sent = await talks.alice.documents.send_file(talks.room_id, source, channel="plenary")
    await talks.bob.documents.download(talks.room_id, sent.receipt.seq, tmp_path / "got")

    assert (tmp_path / "got").read_bytes() == b""
    assert (sent.document.chunk_count, sent.document.media_type) == (1, "text/plain")


async def test_a_document_the_rules_would_refuse_is_refused_before_any_upload(
    talks: Talks, tmp_path: Path, app: FastAPI
) -> None:
    source = a_file(tmp_path)

    with pytest.raises(ConflictError, match="caucus-a is not open"):
        await talks.alice.documents.send_file(talks.room_id, source, channel="caucus-a")

    assert talks.alice.documents.pending_uploads() == []
    assert upload_files(app) == []


async def test_an_upload_interrupted_mid_way_resumes_from_the_servers_count(
    talks: Talks, tmp_path: Path
) -> None:
    source = a_file(tmp_path)

    def crash(done: int, _total: int) -> None:
        if done >= 2 * CHUNK:
            raise Interrupted

    with pytest.raises(Interrupted):
        await talks.alice.documents.send_file(
            talks.room_id, source, channel="plenary", chunk_size=CHUNK, progress=crash
        )
    [pending] = talks.alice.documents.pending_uploads()
    assert pending.document is None

    sent = await talks.alice.documents.send_file(talks.room_id, source, channel="plenary")
    target = tmp_path / "got"
    await talks.bob.documents.download(talks.room_id, sent.receipt.seq, target)

    assert sent.resumed_from_chunk == 2
    assert sent.document.chunk_size == CHUNK  # the interrupted run's layout, kept
    assert target.read_bytes() == source.read_bytes()
    assert talks.alice.documents.pending_uploads() == []


async def test_a_completed_upload_whose_answer_was_lost_is_not_uploaded_again(
    talks: Talks, tmp_path: Path, app: FastAPI, open_profile: OpenProfile
) -> None:
    source = a_file(tmp_path)
    flaky = open_profile(
        talks.homes["alice"],
        transport=LosesAnswers(app, lambda r: r.url.path.endswith("/complete")),
    )
    with pytest.raises(TransportError):
        await flaky.documents.send_file(talks.room_id, source, channel="plenary", chunk_size=CHUNK)
    talks.alice.keystore.refresh()

    sent = await talks.alice.documents.send_file(talks.room_id, source, channel="plenary")

    assert sent.resumed_from_chunk == 6
    assert [seq for seq, _ in await documents_in(talks.bob, talks.room_id)] == [sent.receipt.seq]


async def test_a_message_that_landed_with_its_answer_lost_is_not_sent_twice(
    talks: Talks, tmp_path: Path, app: FastAPI, open_profile: OpenProfile
) -> None:
    source = a_file(tmp_path)
    flaky = open_profile(
        talks.homes["alice"],
        transport=LosesAnswers(app, lambda r: r.url.path.endswith("/messages")),
    )
    with pytest.raises(TransportError):
        await flaky.documents.send_file(talks.room_id, source, channel="plenary", chunk_size=CHUNK)
    talks.alice.keystore.refresh()
    [pending] = talks.alice.documents.pending_uploads()
    assert pending.envelope is not None

    sent = await talks.alice.documents.send_file(talks.room_id, source, channel="plenary")

    assert sent.receipt.message_id == pending.envelope.header.message_id
    assert [seq for seq, _ in await documents_in(talks.bob, talks.room_id)] == [sent.receipt.seq]
    assert talks.alice.documents.pending_uploads() == []


async def test_a_changed_file_abandons_the_old_upload_and_starts_again(
    talks: Talks, tmp_path: Path
) -> None:
    source = a_file(tmp_path)

    def crash(done: int, _total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await talks.alice.documents.send_file(
            talks.room_id, source, channel="plenary", chunk_size=CHUNK, progress=crash
        )
    [old] = talks.alice.documents.pending_uploads()
    source.write_bytes(os.urandom(SIZE + 1))

    sent = await talks.alice.documents.send_file(
        talks.room_id, source, channel="plenary", chunk_size=CHUNK
    )

    assert sent.resumed_from_chunk == 0
    assert sent.document.size == SIZE + 1
    assert talks.alice.documents.pending_uploads() == []
    with pytest.raises(NotFoundError):  # the old upload is gone from the server too
        await talks.alice.http.request("GET", f"/v1/rooms/{talks.room_id}/uploads/{old.upload_id}")


async def test_a_tampered_blob_is_refused_and_nothing_is_written(
    talks: Talks, tmp_path: Path, app: FastAPI
) -> None:
    sent = await talks.alice.documents.send_file(
        talks.room_id, a_file(tmp_path), channel="plenary", chunk_size=CHUNK
    )
    stored = blob_path(app, sent.document.blob)
    data = bytearray(stored.read_bytes())
    data[3 * (CHUNK + 16) + 5] ^= 0x01  # a byte of chunk 3, as a malicious server would
    stored.write_bytes(bytes(data))
    target = tmp_path / "target" / "terms.pdf"
    target.parent.mkdir()

    with pytest.raises(VerificationError, match="chunk 3 fails authentication"):
        await talks.bob.documents.download(talks.room_id, sent.receipt.seq, target)

    assert list(target.parent.iterdir()) == []


async def test_another_documents_ciphertext_served_in_its_place_is_refused(
    talks: Talks, tmp_path: Path, app: FastAPI
) -> None:
    first = await talks.alice.documents.send_file(
        talks.room_id, a_file(tmp_path, name="a.pdf"), channel="plenary", chunk_size=CHUNK
    )
    second = await talks.alice.documents.send_file(
        talks.room_id, a_file(tmp_path, name="b.pdf"), channel="plenary", chunk_size=CHUNK
    )
    # Same size and layout: only the keys and the bound file ids tell them apart.
    blob_path(app, first.document.blob).write_bytes(
        blob_path(app, second.document.blob).read_bytes()
    )
    target = tmp_path / "target"

    with pytest.raises(VerificationError, match="chunk 0 fails authentication"):
        await talks.bob.documents.download(talks.room_id, first.receipt.seq, target)

    assert not target.exists()


async def test_downloading_a_message_that_is_not_a_document_is_refused(
    talks: Talks, tmp_path: Path
) -> None:
    receipt = await talks.alice.send(talks.room_id, "no attachment here")

    with pytest.raises(ProtocolError, match="not a document"):
        await talks.bob.documents.download(talks.room_id, receipt.seq, tmp_path / "x")

    assert not (tmp_path / "x").exists()
