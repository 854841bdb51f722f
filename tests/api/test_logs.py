"""The log read API: checkpoints, C2SP tiles and entry bundles, JSON proofs, witnesses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from client_sdk.client import ParleyClient
from client_sdk.protocol import merkle
from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID, parse_leaf
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    cosign,
    format_verifier_key,
    parse_verifier_key,
    verify_checkpoint,
    verify_cosignature,
)
from server.api.logs import parse_tile_index
from server.errors import NotFound
from server.log.appender import LogWriter
from tests.conftest import EnrollFactory, OpenProfile, enroll_profile
from tests.support.scenes import Seed, scene_value


@dataclass
class Room:
    """A room with a mediator, a party, and an outsider."""

    room_id: str
    mediator: ParleyClient
    alice: ParleyClient
    outsider: ParleyClient


_HOMES = ("scene-mona", "scene-alice", "scene-eve")


async def _build_room(app: FastAPI, root: Path) -> str:
    mona, alice_home, eve = _HOMES
    mediator = await enroll_profile(app, root / mona, role=Role.MEDIATOR, name="Mona")
    alice = await enroll_profile(app, root / alice_home, name="Alice")
    outsider = await enroll_profile(app, root / eve, name="Eve")
    try:
        created = await mediator.create_room("Talks")
        await mediator.add_member(created.room_id, alice.whoami()["account_id"], Side.A)
        for i in range(3):
            await alice.send(created.room_id, f"message {i}")
    finally:
        for client in (mediator, alice, outsider):
            await client.aclose()
    return created.room_id


ROOM = Seed("logs-room", _build_room)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> Seed | None:
    return ROOM if "room_id" in request.fixturenames else None


@pytest.fixture
def room_id(request: pytest.FixtureRequest, database_url: str) -> str:
    value: str = scene_value(request)
    return value


@pytest.fixture
async def room(room_id: str, open_profile: OpenProfile, tmp_path: Path) -> Room:
    """Mona's room with Alice and three messages of hers; Eve is enrolled, in no room
    (built once per module and backend, copied for each test)."""
    return Room(room_id, *(open_profile(tmp_path / home) for home in _HOMES))


async def _get(http: httpx.AsyncClient, client: ParleyClient, path: str) -> httpx.Response:
    return await http.get(path, headers={"Authorization": f"Bearer {await client.token()}"})


async def test_log_info_gives_a_key_that_verifies_the_checkpoint(
    http: httpx.AsyncClient, room: Room
) -> None:
    info = (await _get(http, room.alice, f"/v1/logs/{room.room_id}")).json()
    note = (await _get(http, room.alice, f"/v1/logs/{room.room_id}/checkpoint")).text

    checkpoint = verify_checkpoint(note, info["origin"], parse_verifier_key(info["vkey"]))

    assert info["origin"].endswith(f"/rooms/{room.room_id}")
    assert checkpoint.size == info["size"] == 5  # two rosters and three messages


async def test_every_checkpoint_size_is_kept_and_served(
    http: httpx.AsyncClient, room: Room
) -> None:
    info = (await _get(http, room.alice, f"/v1/logs/{room.room_id}")).json()
    key = parse_verifier_key(info["vkey"])

    sizes = []
    for size in range(1, 6):
        note = (
            await _get(http, room.alice, f"/v1/logs/{room.room_id}/checkpoint?size={size}")
        ).text
        sizes.append(verify_checkpoint(note, info["origin"], key).size)

    assert sizes == [1, 2, 3, 4, 5]


async def test_partial_hash_tile_and_entry_bundle_rebuild_the_checkpoint_root(
    http: httpx.AsyncClient, room: Room
) -> None:
    info = (await _get(http, room.alice, f"/v1/logs/{room.room_id}")).json()
    checkpoint = verify_checkpoint(
        (await _get(http, room.alice, f"/v1/logs/{room.room_id}/checkpoint")).text,
        info["origin"],
        parse_verifier_key(info["vkey"]),
    )

    tile = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/0/000.p/5")
    bundle = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/entries/000.p/5")

    hashes = [tile.content[i : i + 32] for i in range(0, len(tile.content), 32)]
    leaves, rest = [], bundle.content
    while rest:
        length = int.from_bytes(rest[:2], "big")
        leaves.append(rest[2 : 2 + length])
        rest = rest[2 + length :]
    assert tile.headers["content-type"] == "application/octet-stream"
    assert [merkle.leaf_hash(leaf) for leaf in leaves] == hashes
    assert [parse_leaf(leaf).index for leaf in leaves] == [0, 1, 2, 3, 4]
    assert merkle.root_from_leaf_hashes(hashes) == checkpoint.root_hash


async def test_a_full_tile_is_served_with_long_lived_cache_headers(
    app: FastAPI, http: httpx.AsyncClient, room: Room
) -> None:
    writer: LogWriter = app.state.services.messages.log
    database = app.state.services.messages.database
    async with database.write() as conn:
        for i in range(256 * 2):  # past the first full level-0 tile and a level-1 node
            await writer.append(
                conn,
                room.room_id,
                type="message",
                actor_device="synthetic",
                payload_hash=merkle.leaf_hash(i.to_bytes(4, "big")),
                signature=bytes(64),
                server_time=i,
            )

    full = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/0/000")
    partial = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/0/002.p/5")
    level1 = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/1/000.p/2")
    missing = await _get(http, room.alice, f"/v1/logs/{room.room_id}/tile/0/002")

    assert len(full.content) == 256 * 32
    assert "immutable" in full.headers["cache-control"]
    assert len(partial.content) == 5 * 32
    assert "immutable" not in partial.headers["cache-control"]
    assert level1.content[:32] == merkle.root_from_leaf_hashes(
        [full.content[i : i + 32] for i in range(0, len(full.content), 32)]
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (["000"], (0, None)),
        (["067"], (67, None)),
        (["x001", "x234", "067"], (1234067, None)),
        (["001.p", "7"], (1, 7)),
    ],
)
def test_tile_indexes_parse_as_c2sp_paths(
    path: list[str], expected: tuple[int, int | None]
) -> None:
    assert parse_tile_index(path) == expected


@pytest.mark.parametrize(
    "path",
    [["1"], ["0067"], ["x01", "067"], ["067", "x001"], ["x000", "001"], ["001.p", "07"], []],
)
def test_malformed_tile_indexes_are_not_found(path: list[str]) -> None:
    with pytest.raises(NotFound):
        parse_tile_index(path)


async def test_json_proofs_verify_against_the_checkpoint(
    http: httpx.AsyncClient, room: Room
) -> None:
    info = (await _get(http, room.alice, f"/v1/logs/{room.room_id}")).json()
    key = parse_verifier_key(info["vkey"])
    note5 = (await _get(http, room.alice, f"/v1/logs/{room.room_id}/checkpoint")).text
    note2 = (await _get(http, room.alice, f"/v1/logs/{room.room_id}/checkpoint?size=2")).text
    head5 = verify_checkpoint(note5, info["origin"], key)
    head2 = verify_checkpoint(note2, info["origin"], key)
    entries = (
        await _get(http, room.alice, f"/v1/logs/{room.room_id}/entries?start=0&end=5")
    ).json()
    third = entries["entries"][3]

    by_index = (
        await _get(http, room.alice, f"/v1/logs/{room.room_id}/proof/inclusion?index=3&size=5")
    ).json()
    by_hash = (
        await _get(
            http,
            room.alice,
            f"/v1/logs/{room.room_id}/proof/inclusion?leaf_hash={third['leaf_hash']}",
        )
    ).json()
    consistency = (
        await _get(http, room.alice, f"/v1/logs/{room.room_id}/proof/consistency?size1=2&size2=5")
    ).json()

    leaf_hash = merkle.leaf_hash(b64d(third["leaf"]))
    for answer in (by_index, by_hash):
        proof = [b64d(h) for h in answer["proof"]]
        merkle.verify_inclusion(leaf_hash, answer["index"], 5, proof, head5.root_hash)
    merkle.verify_consistency(
        2, 5, [b64d(h) for h in consistency["proof"]], head2.root_hash, head5.root_hash
    )
    assert third["signed"]["header"]["room_id"] == room.room_id
    assert "ciphertext" not in third["signed"]


@pytest.mark.parametrize(
    "query",
    [
        "proof/inclusion?index=5&size=5",
        "proof/inclusion?index=0&size=6",
        "proof/consistency?size1=4&size2=3",
        "proof/consistency?size1=1&size2=9",
        "entries?start=3&end=2",
        # Found by schemathesis: a leaf hash that is no base64url SHA-256 got 400.
        "proof/inclusion?leaf_hash=0%F1%9A%91%88",
        "proof/inclusion?leaf_hash=" + "A" * 42 + "B",
        "proof/inclusion?leaf_hash=" + "A" * 44,
    ],
)
async def test_impossible_proof_requests_are_422(
    http: httpx.AsyncClient, room: Room, query: str
) -> None:
    response = await _get(http, room.alice, f"/v1/logs/{room.room_id}/{query}")

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


async def test_a_room_log_is_hidden_from_non_members(http: httpx.AsyncClient, room: Room) -> None:
    for path in ("", "/checkpoint", "/tile/0/000.p/1", "/entries", "/proof/consistency?size1=1"):
        response = await _get(http, room.outsider, f"/v1/logs/{room.room_id}{path}")
        assert response.status_code == 404, path


async def test_the_directory_log_is_readable_by_any_enrolled_account(
    http: httpx.AsyncClient, room: Room
) -> None:
    info = (await _get(http, room.outsider, f"/v1/logs/{DIRECTORY_LOG_ID}")).json()
    entries = (
        await _get(http, room.outsider, f"/v1/logs/{DIRECTORY_LOG_ID}/entries?start=0&end=3")
    ).json()
    anonymous = await http.get(f"/v1/logs/{DIRECTORY_LOG_ID}")

    assert info["size"] == 9  # three accounts: registration, device, encryption key each
    assert [e["signed"]["body"]["type"] for e in entries["entries"]] == [
        "registration",
        "device-cert",
        "encryption-key-cert",
    ]
    assert anonymous.status_code == 401


async def test_a_registered_witness_cosignature_is_served_with_its_checkpoint(
    identity_auditor: ParleyClient, http: httpx.AsyncClient, room: Room
) -> None:
    auditor = identity_auditor
    key = Ed25519PrivateKey.generate()
    vkey = format_verifier_key(
        "witness.test", key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1
    )
    headers = {"Authorization": f"Bearer {await auditor.token()}"}
    registered = await http.post("/v1/witnesses", json={"vkey": vkey}, headers=headers)
    note = (await _get(http, room.outsider, f"/v1/logs/{DIRECTORY_LOG_ID}/checkpoint")).text
    text = note.partition("\n\n")[0] + "\n"
    size = Checkpoint.parse(text).size
    line = cosign(text, "witness.test", key, timestamp=1_700_000_000)

    stored = await http.post(
        f"/v1/logs/{DIRECTORY_LOG_ID}/cosignatures",
        json={"size": size, "cosignature": line},
        headers=headers,
    )
    again = await http.post(
        f"/v1/logs/{DIRECTORY_LOG_ID}/cosignatures",
        json={"size": size, "cosignature": line},
        headers=headers,
    )
    served = (
        await _get(http, room.outsider, f"/v1/logs/{DIRECTORY_LOG_ID}/checkpoint?size={size}")
    ).text

    assert registered.status_code == 201
    assert stored.status_code == 201
    assert again.status_code == 409
    served_line = next(li for li in served.splitlines() if "witness.test" in li)
    assert verify_cosignature(text, served_line, parse_verifier_key(vkey)) == 1_700_000_000


async def test_a_forged_cosignature_is_refused(
    identity_auditor: ParleyClient, http: httpx.AsyncClient, room: Room
) -> None:
    key = Ed25519PrivateKey.generate()
    vkey = format_verifier_key(
        "witness.forged", key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1
    )
    headers = {"Authorization": f"Bearer {await identity_auditor.token()}"}
    await http.post("/v1/witnesses", json={"vkey": vkey}, headers=headers)
    note = (await _get(http, room.outsider, f"/v1/logs/{DIRECTORY_LOG_ID}/checkpoint")).text
    text = note.partition("\n\n")[0] + "\n"
    other = Checkpoint("elsewhere", 1, bytes(32)).to_text()
    line = cosign(other, "witness.forged", key, timestamp=1)

    response = await http.post(
        f"/v1/logs/{DIRECTORY_LOG_ID}/cosignatures",
        json={"size": Checkpoint.parse(text).size, "cosignature": line},
        headers=headers,
    )

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


async def test_only_auditors_register_witness_keys(http: httpx.AsyncClient, room: Room) -> None:
    vkey = format_verifier_key("witness.party", bytes(32), SIG_COSIGNATURE_V1)

    response = await http.post(
        "/v1/witnesses",
        json={"vkey": vkey},
        headers={"Authorization": f"Bearer {await room.alice.token()}"},
    )

    assert response.status_code == 403


@pytest.fixture
async def identity_auditor(enroll: EnrollFactory) -> ParleyClient:
    return await enroll(role=Role.AUDITOR, name="Audrey")


async def _witness_in_policy(
    http: httpx.AsyncClient, auditor: ParleyClient, room: Room
) -> tuple[Ed25519PrivateKey, dict[str, str]]:
    """The auditor registers a witness key and the mediator names it in the room's policy."""
    key = Ed25519PrivateKey.generate()
    vkey = format_verifier_key(
        "witness.policy", key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1
    )
    headers = {"Authorization": f"Bearer {await auditor.token()}"}
    assert (await http.post("/v1/witnesses", json={"vkey": vkey}, headers=headers)).is_success
    await room.mediator.set_policy(room.room_id, witnesses=[vkey], witness_quorum=1)
    return key, headers


async def test_a_witness_named_in_a_rooms_policy_reads_and_cosigns_its_checkpoints(
    identity_auditor: ParleyClient, http: httpx.AsyncClient, room: Room
) -> None:
    key, headers = await _witness_in_policy(http, identity_auditor, room)
    base = f"/v1/logs/{room.room_id}"

    info = await http.get(base, headers=headers)
    note = (await http.get(f"{base}/checkpoint", headers=headers)).text
    proof = await http.get(f"{base}/proof/consistency?size1=1", headers=headers)
    text = note.partition("\n\n")[0] + "\n"
    line = cosign(text, "witness.policy", key, timestamp=1_700_000_000)
    cosigned = await http.post(
        f"{base}/cosignatures",
        json={"size": Checkpoint.parse(text).size, "cosignature": line},
        headers=headers,
    )
    # A witness needs checkpoints, not the log's entries: those still take a grant.
    refused = [
        (await http.get(f"{base}{path}", headers=headers)).status_code
        for path in ("/entries", "/tile/0/000.p/1", "/tile/entries/000.p/1", "/proof/inclusion")
    ]

    assert info.status_code == 200
    assert Checkpoint.parse(text).size == info.json()["size"] == 6
    assert proof.status_code == 200
    assert cosigned.status_code == 201
    assert refused == [404, 404, 404, 404]


async def test_a_witness_dropped_from_the_policy_reads_the_room_no_more(
    identity_auditor: ParleyClient, http: httpx.AsyncClient, room: Room
) -> None:
    _, headers = await _witness_in_policy(http, identity_auditor, room)
    await room.mediator.set_policy(room.room_id, witnesses=[], witness_quorum=0)

    response = await http.get(f"/v1/logs/{room.room_id}/checkpoint", headers=headers)

    assert response.status_code == 404


async def test_each_account_lists_the_logs_it_may_read_and_why(
    identity_auditor: ParleyClient, http: httpx.AsyncClient, room: Room
) -> None:
    _, headers = await _witness_in_policy(http, identity_auditor, room)

    def listed(answer: httpx.Response) -> list[tuple[str, str, str, int]]:
        return [(x["log_id"], x["kind"], x["access"], x["size"]) for x in answer.json()]

    as_witness = listed(await http.get("/v1/logs", headers=headers))
    as_member = listed(await _get(http, room.alice, "/v1/logs"))
    as_outsider = listed(await _get(http, room.outsider, "/v1/logs"))

    directory = (DIRECTORY_LOG_ID, "directory", "everyone", 12)  # four accounts
    assert as_witness == [directory, (room.room_id, "room", "witness", 6)]
    assert as_member == [directory, (room.room_id, "room", "member", 6)]
    assert as_outsider == [directory]
