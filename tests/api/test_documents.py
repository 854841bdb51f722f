"""Uploads and blobs (docs/design.md §7): limits, order, resume, abandon, expiry and who
may download; every refusal leaves the database and the data directory as they were."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_sdk.protocol.documents import DocumentContent, open_document, seal_document
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import Action
from tests.api.authz import moderate
from tests.api.conftest import Api, MakeApi
from tests.api.factories import Actor, assert_error, nothing_written, publish_roster

CHUNK = 64
LIMITS: dict[str, Any] = {
    "max_document_bytes": 1000,
    "max_chunk_bytes": 256,
    "upload_quota_bytes": 4000,
    "upload_expiry_seconds": 60,
}


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.now


def files_under(api: Api) -> list[str]:
    root: Path = api.app.state.services.documents.settings.data_dir
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and p.parent != root  # the database and log key sit at the top
    )


@asynccontextmanager
async def nothing_changes(api: Api) -> AsyncIterator[None]:
    """No row and no stored file changes in the block."""
    before = files_under(api)
    async with nothing_written(api.app):
        yield
    assert files_under(api) == before


def sealed(size: int, *, key: bytes = bytes(32)) -> tuple[DocumentContent, bytes]:
    return seal_document(
        key,
        os.urandom(size),
        file_id="f1",
        name="a.pdf",
        media_type="application/pdf",
        chunk_size=CHUNK,
    )


def pieces(document: DocumentContent, ciphertext: bytes) -> list[bytes]:
    n = CHUNK + 16
    return [ciphertext[i : i + n] for i in range(0, len(ciphertext), n)] or [b""]


async def create(api: Api, actor: Actor, room_id: str, size: int) -> httpx.Response:
    return await api.http.post(
        f"/v1/rooms/{room_id}/uploads",
        json={"size": size, "chunk_size": CHUNK, "channel": "plenary"},
        headers=actor.headers,
    )


async def put(
    api: Api, actor: Actor, room_id: str, upload_id: str, index: int, body: bytes
) -> httpx.Response:
    return await api.http.put(
        f"/v1/rooms/{room_id}/uploads/{upload_id}/chunks/{index}",
        content=body,
        headers=actor.headers,
    )


async def upload_all(
    api: Api, actor: Actor, room_id: str, size: int
) -> tuple[DocumentContent, bytes, str]:
    document, ciphertext = sealed(size)
    response = await create(api, actor, room_id, size)
    assert response.status_code == 201, response.text
    upload_id = response.json()["upload_id"]
    for index, chunk in enumerate(pieces(document, ciphertext)):
        answer = await put(api, actor, room_id, upload_id, index, chunk)
        assert answer.status_code == 200, answer.text
    done = await api.http.post(
        f"/v1/rooms/{room_id}/uploads/{upload_id}/complete",
        json={"blob": document.blob},
        headers=actor.headers,
    )
    assert done.status_code == 201, done.text
    return document, ciphertext, upload_id


async def test_a_document_uploads_in_chunks_and_downloads_for_every_member(
    make_api: MakeApi,
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    document, ciphertext, _ = await upload_all(api, room.alice, room.room_id, 300)

    for member in (room.alice, room.bob, room.mediator):
        response = await api.http.get(
            f"/v1/rooms/{room.room_id}/blobs/{document.blob}", headers=member.headers
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.content == ciphertext
    assert open_document(bytes(32), document, ciphertext)
    assert not any(p.startswith("uploads/") for p in files_under(api))


async def test_an_upload_over_the_size_limit_is_refused_with_413(make_api: MakeApi) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    async with nothing_changes(api):
        response = await create(api, room.alice, room.room_id, 1001)
    assert_error(response, 413, "too_large", mentions="at most 1000")


async def test_an_upload_over_the_quota_is_refused_with_a_clear_error(make_api: MakeApi) -> None:
    api = await make_api(**(LIMITS | {"upload_quota_bytes": 1500}))
    room = await api.room()
    await upload_all(api, room.alice, room.room_id, 900)  # 900 + 15 chunks * 16 = 1140
    first = await create(api, room.alice, room.room_id, 200)  # an unfinished upload counts too
    assert first.status_code == 201, first.text

    async with nothing_changes(api):
        response = await create(api, room.alice, room.room_id, 100)
    message = assert_error(response, 413, "quota_exceeded", mentions="quota exceeded")
    # 900 + 15 * 16 stored, 200 + 4 * 16 reserved by the unfinished upload; 100 + 2 * 16 more.
    assert "stores 1404 of its 1500 bytes and the upload needs 132" in message
    # Another account's quota is its own.
    assert (await create(api, room.bob, room.room_id, 900)).status_code == 201


async def test_chunks_out_of_order_are_refused_with_409_and_change_nothing(
    make_api: MakeApi,
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    document, ciphertext = sealed(300)
    chunks = pieces(document, ciphertext)
    upload_id = (await create(api, room.alice, room.room_id, 300)).json()["upload_id"]
    assert (await put(api, room.alice, room.room_id, upload_id, 0, chunks[0])).status_code == 200

    for index, body in ((0, chunks[0]), (2, chunks[2]), (9, chunks[1])):
        async with nothing_changes(api):
            response = await put(api, room.alice, room.room_id, upload_id, index, body)
        assert_error(response, 409, "conflict")
    status = await api.http.get(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=room.alice.headers
    )
    assert status.json()["received_chunks"] == 1
    assert status.json()["received_bytes"] == CHUNK + 16


async def test_a_chunk_of_the_wrong_length_is_refused_and_changes_nothing(
    make_api: MakeApi,
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    upload_id = (await create(api, room.alice, room.room_id, 300)).json()["upload_id"]
    for body in (b"x" * (CHUNK + 15), b"x" * (CHUNK + 17), b""):
        async with nothing_changes(api):
            response = await put(api, room.alice, room.room_id, upload_id, 0, body)
        assert_error(response, 422, "invalid", mentions="must be 80 bytes")


async def test_an_interrupted_upload_resumes_from_its_status(make_api: MakeApi) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    document, ciphertext = sealed(500)
    chunks = pieces(document, ciphertext)
    upload_id = (await create(api, room.alice, room.room_id, 500)).json()["upload_id"]
    for index in range(3):
        await put(api, room.alice, room.room_id, upload_id, index, chunks[index])

    status = (
        await api.http.get(
            f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=room.alice.headers
        )
    ).json()
    assert status["received_chunks"] == 3
    assert status["chunk_count"] == len(chunks) == 8
    for index in range(status["received_chunks"], status["chunk_count"]):
        assert (
            await put(api, room.alice, room.room_id, upload_id, index, chunks[index])
        ).status_code == 200
    done = await api.http.post(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}/complete",
        json={"blob": document.blob},
        headers=room.alice.headers,
    )
    assert done.status_code == 201, done.text
    assert done.json()["size"] == len(ciphertext)


async def test_completing_early_or_with_another_hash_is_refused_and_changes_nothing(
    make_api: MakeApi,
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    document, ciphertext = sealed(100)
    other, _ = sealed(100)
    chunks = pieces(document, ciphertext)
    upload_id = (await create(api, room.alice, room.room_id, 100)).json()["upload_id"]
    path = f"/v1/rooms/{room.room_id}/uploads/{upload_id}/complete"
    await put(api, room.alice, room.room_id, upload_id, 0, chunks[0])
    async with nothing_changes(api):
        early = await api.http.post(path, json={"blob": document.blob}, headers=room.alice.headers)
    assert_error(early, 409, "conflict", mentions="1 of 2 chunks")
    await put(api, room.alice, room.room_id, upload_id, 1, chunks[1])
    async with nothing_changes(api):
        wrong = await api.http.post(path, json={"blob": other.blob}, headers=room.alice.headers)
    assert_error(wrong, 422, "invalid", mentions="SHA-256")
    assert (
        await api.http.post(path, json={"blob": document.blob}, headers=room.alice.headers)
    ).status_code == 201


async def test_an_abandoned_upload_leaves_nothing_behind(make_api: MakeApi) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    before = await api.snapshot()
    document, ciphertext = sealed(300)
    upload_id = (await create(api, room.alice, room.room_id, 300)).json()["upload_id"]
    await put(api, room.alice, room.room_id, upload_id, 0, pieces(document, ciphertext)[0])
    assert files_under(api) == [f"uploads/{upload_id}.part"]

    response = await api.http.delete(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=room.alice.headers
    )

    assert response.status_code == 204
    assert await api.snapshot() == before
    assert files_under(api) == []
    gone = await api.http.get(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=room.alice.headers
    )
    assert_error(gone, 404, "not_found")


async def test_expired_uploads_are_swept_rows_and_files(make_api: MakeApi) -> None:
    clock = Clock()
    api = await make_api(clock=clock, **LIMITS)
    room = await api.room()
    before = await api.snapshot()
    document, ciphertext = sealed(300)
    stale = (await create(api, room.alice, room.room_id, 300)).json()["upload_id"]
    await put(api, room.alice, room.room_id, stale, 0, pieces(document, ciphertext)[0])
    clock.now += 30_000
    fresh = (await create(api, room.bob, room.room_id, 300)).json()["upload_id"]
    await put(api, room.bob, room.room_id, fresh, 0, pieces(document, ciphertext)[0])
    clock.now += 31_000  # stale's last chunk is 61 s old, fresh's 31 s

    removed = await api.app.state.services.documents.sweep()

    assert removed == 1
    assert files_under(api) == [f"uploads/{fresh}.part"]
    gone = await api.http.get(
        f"/v1/rooms/{room.room_id}/uploads/{stale}", headers=room.alice.headers
    )
    assert_error(gone, 404, "not_found")
    clock.now += 60_000
    assert await api.app.state.services.documents.sweep() == 1
    assert files_under(api) == []
    assert await api.snapshot() == before


async def test_a_stray_partial_file_without_an_upload_is_swept(make_api: MakeApi) -> None:
    clock = Clock()
    api = await make_api(clock=clock, **LIMITS)
    settings = api.app.state.services.documents.settings
    stray = settings.upload_dir() / "left-by-a-crash.part"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x" * 10)
    os.utime(stray, ns=(0, (clock.now - 61_000) * 1_000_000))

    await api.app.state.services.documents.sweep()

    assert not stray.exists()


async def test_only_the_uploader_sees_an_upload_and_only_members_download(
    make_api: MakeApi,
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    eve = await api.actor(Role.PARTY, "Eve")
    document, _, _ = await upload_all(api, room.alice, room.room_id, 100)
    upload_id = (await create(api, room.alice, room.room_id, 100)).json()["upload_id"]

    async with nothing_changes(api):
        for actor in (room.bob, room.mediator, eve):
            status = await api.http.get(
                f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=actor.headers
            )
            assert_error(status, 404, "not_found")
            abandon = await api.http.delete(
                f"/v1/rooms/{room.room_id}/uploads/{upload_id}", headers=actor.headers
            )
            assert_error(abandon, 404, "not_found")
        outsider = await api.http.get(
            f"/v1/rooms/{room.room_id}/blobs/{document.blob}", headers=eve.headers
        )
        assert_error(outsider, 404, "not_found")
        unknown = await api.http.get(
            f"/v1/rooms/{room.room_id}/blobs/{sealed(10)[0].blob}", headers=room.bob.headers
        )
        assert_error(unknown, 404, "not_found")
        eve_upload = await create(api, eve, room.room_id, 100)
        assert_error(eve_upload, 404, "not_found")


async def test_a_removed_member_can_no_longer_download(make_api: MakeApi) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    document, _, _ = await upload_all(api, room.alice, room.room_id, 100)
    await publish_roster(api.http, room, [s for s in room.seated if s[0] is not room.bob])

    response = await api.http.get(
        f"/v1/rooms/{room.room_id}/blobs/{document.blob}", headers=room.bob.headers
    )

    assert_error(response, 404, "not_found")


async def test_a_large_chunk_is_streamed_past_the_request_size_limit(make_api: MakeApi) -> None:
    # Chunks may be larger than PARLEY_MAX_MESSAGE_BYTES: the upload sets their length.
    limit = 64 * 1024
    api = await make_api(
        max_message_bytes=limit, max_document_bytes=1 << 20, max_chunk_bytes=1 << 20
    )
    room = await api.room()
    document, ciphertext = seal_document(
        bytes(32),
        os.urandom(3 * limit),
        file_id="f",
        name="b.bin",
        media_type="application/octet-stream",
        chunk_size=2 * limit,
    )
    upload = await api.http.post(
        f"/v1/rooms/{room.room_id}/uploads",
        json={"size": 3 * limit, "chunk_size": 2 * limit, "channel": "plenary"},
        headers=room.alice.headers,
    )
    upload_id = upload.json()["upload_id"]
    first = 2 * limit + 16
    for index, body in enumerate((ciphertext[:first], ciphertext[first:])):
        answer = await put(api, room.alice, room.room_id, upload_id, index, body)
        assert answer.status_code == 200, answer.text
    # Other routes keep the request limit.
    too_big = await api.http.post(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}/complete",
        content=b"{" + b" " * limit + b"}",
        headers=room.alice.headers | {"content-type": "application/json"},
    )
    assert_error(too_big, 413, "too_large")
    done = await api.http.post(
        f"/v1/rooms/{room.room_id}/uploads/{upload_id}/complete",
        json={"blob": document.blob},
        headers=room.alice.headers,
    )
    assert done.status_code == 201, done.text


async def test_an_upload_for_an_instrument_names_no_channel_and_needs_an_open_room(
    make_api: MakeApi,
) -> None:
    # An agreement's document goes with an instrument act, judged by its own rules when
    # it arrives: the upload checks only that the room takes new events.
    api = await make_api(**LIMITS)
    room = await api.room()
    body = {"size": 10, "chunk_size": CHUNK}
    path = f"/v1/rooms/{room.room_id}/uploads"
    assert (await api.http.post(path, json=body, headers=room.alice.headers)).status_code == 201
    await moderate(api.http, room.mediator, room.room_id, Action.LOCK)

    async with nothing_changes(api):
        response = await api.http.post(path, json=body, headers=room.alice.headers)

    assert_error(response, 409, "conflict", mentions="locked")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"size": -1, "chunk_size": CHUNK, "channel": "plenary"}, 422, "invalid"),
        ({"size": 10, "chunk_size": 8, "channel": "plenary"}, 422, "invalid"),
        ({"size": 10, "chunk_size": 1000, "channel": "plenary"}, 413, "too_large"),
        ({"size": 10, "chunk_size": CHUNK, "channel": "caucus-a"}, 409, "conflict"),
        ({"size": 10, "chunk_size": CHUNK, "channel": "caucus-b"}, 409, "conflict"),
        ({"size": 10, "chunk_size": CHUNK, "channel": "backroom"}, 422, "invalid"),
        ({"size": "10", "chunk_size": CHUNK, "channel": "plenary"}, 422, "invalid"),
        ({"size": 10, "chunk_size": CHUNK, "channel": "plenary", "x": 1}, 422, "invalid"),
    ],
)
async def test_a_malformed_upload_is_refused_and_changes_nothing(
    make_api: MakeApi, body: dict[str, Any], status: int, code: str
) -> None:
    api = await make_api(**LIMITS)
    room = await api.room()
    async with nothing_changes(api):
        response = await api.http.post(
            f"/v1/rooms/{room.room_id}/uploads", json=body, headers=room.alice.headers
        )
    assert_error(response, status, code)
