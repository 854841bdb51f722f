"""Encrypted documents end to end (docs/design.md §7): `parley send --file` and
`parley download` against a real `parley serve`, the file arriving byte for byte; an
upload interrupted half-way resumed by the next `parley send --file`; outsiders and
tampering refused on one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from client_sdk.protocol.documents import MIN_CHUNK_SIZE
from client_sdk.protocol.errors import NotFoundError
from tests.e2e.conftest import Negotiation
from tests.e2e.harness import Cast
from tests.support.cli import parley

pytestmark = pytest.mark.slow

SIZE = 2_500_000
"""Three chunks at the SDK's default 1 MiB."""


def hidden_files(directory: Path) -> list[Path]:
    return list(directory.glob(".*"))


class Interrupted(Exception):
    """Stands for a crash or a lost connection half-way through an upload."""


async def test_a_file_sent_with_the_cli_downloads_identical(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    source = tmp_path / "phase-1 terms.pdf"
    source.write_bytes(os.urandom(SIZE))
    room = negotiation.room_id

    sent = (await parley(["send", room, "--file", str(source), "--json"], env=cast.alice.env)).ok()
    seq = sent.json()["seq"]
    read = (await parley(["read", room, "--json"], env=cast.bob.env)).ok()
    plain = (await parley(["read", room], env=cast.bob.env)).ok()
    target = tmp_path / "received.pdf"
    got = (
        await parley(["download", room, str(seq), "-o", str(target), "--json"], env=cast.bob.env)
    ).ok()

    assert target.read_bytes() == source.read_bytes()
    assert sent.json()["document"]["name"] == "phase-1 terms.pdf"
    assert sent.json()["document"]["media_type"] == "application/pdf"
    assert sent.json()["resumed_from_chunk"] == 0
    [message] = [m for m in read.json_lines() if m["seq"] == seq]
    assert message["document"]["size"] == SIZE
    assert message["document"]["name"] == "phase-1 terms.pdf"
    assert "phase-1 terms.pdf (2.5 MB, application/pdf)" in plain.stdout
    assert f"parley download {room} {seq}" in plain.stdout
    assert got.json()["document"]["plaintext_sha256"] == sent.json()["document"]["plaintext_sha256"]
    assert not hidden_files(tmp_path)  # no partial download left behind


async def test_an_interrupted_upload_is_resumed_by_the_next_send(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    source = tmp_path / "annex.bin"
    source.write_bytes(os.urandom(40 * 1024 + 123))
    room = negotiation.room_id
    chunk = max(MIN_CHUNK_SIZE, 4096)

    def crash_after_three_chunks(done: int, _total: int) -> None:
        if done >= 3 * chunk:
            raise Interrupted

    with pytest.raises(Interrupted):
        await negotiation.alice.documents.send_file(
            room, source, channel="plenary", chunk_size=chunk, progress=crash_after_three_chunks
        )
    [pending] = [p for p in negotiation.alice.documents.pending_uploads() if p.room_id == room]

    resumed = (
        await parley(["send", room, "--file", str(source), "--json"], env=cast.alice.env)
    ).ok()
    target = tmp_path / "annex.out"
    (
        await parley(
            ["download", room, str(resumed.json()["seq"]), "-o", str(target)], env=cast.bob.env
        )
    ).ok()

    assert resumed.json()["resumed_from_chunk"] == 3
    assert target.read_bytes() == source.read_bytes()
    negotiation.alice.keystore.refresh()
    assert pending.upload_id not in negotiation.alice.keystore.state.pending_uploads


async def test_an_outsider_cannot_download_and_gets_one_line(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    source = tmp_path / "small.txt"
    source.write_bytes(b"for the room only")
    room = negotiation.room_id
    seq = (
        (await parley(["send", room, "--file", str(source), "--json"], env=cast.alice.env))
        .ok()
        .json()["seq"]
    )

    refused = await parley(
        ["download", room, str(seq), "-o", str(tmp_path / "stolen.txt")], env=cast.outsider.env
    )
    not_a_document = await parley(
        ["download", room, str(seq - 1), "-o", str(tmp_path / "x")], env=cast.bob.env
    )

    assert refused.returncode != 0
    assert len(refused.stderr.strip().splitlines()) == 1, refused.describe()
    assert not (tmp_path / "stolen.txt").exists()
    assert not_a_document.returncode != 0
    assert len(not_a_document.stderr.strip().splitlines()) == 1, not_a_document.describe()


async def test_a_bad_send_or_download_command_is_one_line(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    room = negotiation.room_id
    source = tmp_path / "x.txt"
    source.write_bytes(b"x")
    attempts = [
        ["send", room],
        ["send", room, "text", "--file", str(source)],
        ["send", room, "--file", str(tmp_path / "missing.pdf")],
        ["send", room, "--file", str(source), "--channel", "backroom"],
        ["download", room, "1", "-o", str(tmp_path)],
    ]
    for args in attempts:
        result = await parley(args, env=cast.alice.env)
        assert result.returncode != 0, result.describe()
        assert result.stdout == "", result.describe()
        assert len(result.stderr.strip().splitlines()) == 1, result.describe()
        assert result.stderr.startswith("error: "), result.describe()
    negotiation.alice.keystore.refresh()
    assert not [p for p in negotiation.alice.documents.pending_uploads() if p.room_id == room]


async def test_an_interrupted_upload_is_listed_and_can_be_abandoned(
    negotiation: Negotiation, cast: Cast, tmp_path: Path
) -> None:
    source = tmp_path / "draft.bin"
    source.write_bytes(os.urandom(20_000))
    room = negotiation.room_id

    def crash(_done: int, _total: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await negotiation.alice.documents.send_file(
            room, source, channel="plenary", chunk_size=4096, progress=crash
        )
    listed = (await parley(["uploads", "--json"], env=cast.alice.env)).ok().json()
    [entry] = [u for u in listed if u["room_id"] == room]
    abandoned = await parley(["uploads", "abandon", entry["upload_id"]], env=cast.alice.env)
    again = await parley(["uploads", "abandon", entry["upload_id"]], env=cast.alice.env)

    assert entry["path"] == str(source.resolve())
    assert entry["uploaded"] is False
    assert abandoned.ok().stdout == f"abandoned {entry['upload_id']}\n"
    assert again.returncode != 0
    assert len(again.stderr.strip().splitlines()) == 1, again.describe()
    with pytest.raises(NotFoundError):  # the server dropped it, bytes and all
        await negotiation.alice.http.request(
            "GET", f"/v1/rooms/{room}/uploads/{entry['upload_id']}"
        )
    negotiation.alice.keystore.refresh()
    assert entry["upload_id"] not in negotiation.alice.keystore.state.pending_uploads
