"""`parley audit ...` as a user runs it: a subprocess against the app served over TCP.

The app of the `app` fixture is served by uvicorn inside the test's event loop (`live`),
so the test keeps its database and services at hand while the `parley`
subprocess talks HTTP to it; profiles are enrolled in process, with that URL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from client_sdk.audit import fetch_checkpoint, keystore_witness, register_witness, write_bundle
from client_sdk.audit.archive import is_tiled
from client_sdk.client import ParleyClient
from client_sdk.keystore import Keystore, KeystoreState
from client_sdk.protocol.keys import SigningKey
from client_sdk.protocol.models import Role, Side
from server.services.identity import IdentityService
from tests.audit import synthetic
from tests.audit.conftest import account_id, change_leaf, grant_auditor, sqlite_only
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N, LiveServer
from tests.support.cli import CliProcess, cli_env, parley, run_parallel
from tests.support.server import free_port


@dataclass(frozen=True, slots=True)
class Scene:
    """A room with traffic on the live server; Audrey (auditor) has a profile for the CLI."""

    room_id: str
    mediator: ParleyClient
    alice: ParleyClient
    auditor: ParleyClient
    auditor_home: Path
    alice_home: Path

    def env(self, home: Path | None = None) -> dict[str, str]:
        """The environment of the auditor's (or another profile's) `parley` commands."""
        return cli_env(PARLEY_HOME=str(home or self.auditor_home), PARLEY_PASSPHRASE=PASSPHRASE)


@pytest.fixture
async def scene(app: FastAPI, live: LiveServer, tmp_path: Path) -> AsyncIterator[Scene]:
    """Mona's room with Alice and three messages, and auditor Audrey granted its log."""
    identity: IdentityService = app.state.services.identity
    clients: list[ParleyClient] = []

    async def enroll(role: Role, name: str) -> ParleyClient:
        ticket = await identity.create_enrollment(role=role, name=name)
        client = await ParleyClient.enroll(
            server=live.url,
            token=ticket.token,
            home=tmp_path / name.lower(),
            passphrase=PASSPHRASE,
            transport=httpx.ASGITransport(app=app),
            scrypt_n=TEST_SCRYPT_N,
        )
        clients.append(client)
        return client

    mediator = await enroll(Role.MEDIATOR, "Mona")
    alice = await enroll(Role.PARTY, "Alice")
    auditor = await enroll(Role.AUDITOR, "Audrey")
    room = await mediator.create_room("Exchange talks")
    await mediator.add_member(room.room_id, account_id(alice), Side.A)
    for text in ("One for one.", "Two for one.", "Let us talk."):
        await alice.send(room.room_id, text)
    await grant_auditor(app, room.room_id, account_id(auditor), by=account_id(mediator))
    yield Scene(room.room_id, mediator, alice, auditor, tmp_path / "audrey", tmp_path / "alice")
    for client in clients:
        await client.aclose()


async def test_verify_passes_on_a_room_and_the_directory(scene: Scene) -> None:
    room, directory = await asyncio.to_thread(
        run_parallel,
        [
            (["audit", "verify", scene.room_id], scene.env()),
            (["audit", "verify", "directory", "--json"], scene.env(scene.alice_home)),
        ],
    )
    assert f"verified log {scene.room_id}" in room.ok().stdout
    assert directory.json()["entries"] == {"registration": 3, "device": 3, "encryption-key": 3}


async def test_verify_names_a_leaf_changed_behind_the_servers_back(
    app: FastAPI, scene: Scene
) -> None:
    await change_leaf(app, scene.room_id, 4, with_hash=True, server_time=1)
    result = await parley(["audit", "verify", scene.room_id], env=scene.env())
    assert result.returncode == 1, result.describe()
    assert f"log {scene.room_id} index 4: the leaf was changed" in _oneline(result.stderr)


@sqlite_only
async def test_a_following_witness_cosigns_each_new_checkpoint(
    scene: Scene, tmp_path: Path
) -> None:
    follower = CliProcess(
        ["audit", "witness", scene.room_id, "--follow", "--interval", "0.1", "--json"],
        env=scene.env(),
        stderr_path=tmp_path / "witness.err",
    )
    try:
        first = await follower.next_json()
        await scene.alice.send(scene.room_id, "A fourth message.")
        second = await follower.next_json()
    finally:
        follower.stop()
    assert (first["size"], second["size"]) == (5, 6)
    note = await fetch_checkpoint(scene.auditor, scene.room_id, 6)
    assert second["root"] == note.splitlines()[2]  # the checkpoint's own encoding
    key = await parley(["audit", "witness-key"], env=scene.env())
    verified = await parley(
        ["audit", "verify", scene.room_id, "--witness", key.ok().stdout.strip(), "--quorum", "1"],
        env=scene.env(scene.alice_home),
    )
    assert "quorum       met at size 6" in verified.ok().stdout
    assert f"size 6, root {second['root']}" in verified.stdout


@sqlite_only
async def test_an_exported_bundle_verifies_with_no_server_running(
    scene: Scene, live: LiveServer, tmp_path: Path
) -> None:
    tiled, old = tmp_path / "room.parley-bundle", tmp_path / "room.json.gz"
    exported = await parley(["audit", "export", scene.room_id, "-o", str(tiled)], env=scene.env())
    assert "wrote 5 entries" in exported.ok().stdout
    as_json = ["audit", "export", scene.room_id, "-o", str(old), "--format", "json"]
    assert "wrote 5 entries" in (await parley(as_json, env=scene.env())).ok().stdout
    assert is_tiled(tiled.read_bytes()[:4096])
    assert not is_tiled(old.read_bytes()[:4096])
    refused = await parley(
        ["audit", "export", scene.room_id, "-o", str(tmp_path / "x"), "--gzip"], env=scene.env()
    )
    assert refused.returncode == 2
    assert not (tmp_path / "x").exists()
    online = await parley(["audit", "verify", scene.room_id, "--json"], env=scene.env())
    log_key = online.json()["log_vkey"]
    await live.stop()
    nobody = tmp_path / "nobody"  # no keystore, no server: the bundle alone
    for bundle in (tiled, old):  # told apart by content
        result = await parley(["audit", "verify", "--bundle", str(bundle)], env=scene.env(nobody))
        assert f"verified log {scene.room_id}" in result.ok().stdout
        assert "warning: no --log-key given" in _oneline(result.stderr)
        assert "the bundle's own (pin it with --log-key)" in _oneline(result.stdout)
    pinned, unpinned = await asyncio.to_thread(
        run_parallel,
        [
            (["audit", "verify", "--bundle", str(tiled), "--log-key", log_key, "--json"], env)
            for env in [scene.env(nobody)]
        ]
        + [(["audit", "verify", "--bundle", str(tiled), "--json"], scene.env(nobody))],
    )
    assert pinned.json()["log_key_from"] == "--log-key"
    assert pinned.json()["root"] == online.json()["root"]
    assert "warning" not in pinned.stderr
    assert unpinned.json()["log_key_from"] == "bundle"
    assert "warning: no --log-key given" in _oneline(unpinned.stderr)
    other_key = await fetch_log_key_of_directory(scene)
    refused = await parley(
        ["audit", "verify", "--bundle", str(tiled), "--log-key", other_key], env=scene.env(nobody)
    )
    assert refused.returncode == 1, refused.describe()
    assert "the bundle's log key is" in _oneline(refused.stderr)


def test_a_tampered_bundle_fails_naming_the_index(tmp_path: Path) -> None:
    talks = synthetic.room(messages=6)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    write_bundle(talks.bundle(), good)
    document = json.loads(good.read_text())
    document["entries"][7]["signed"]["header"]["sent_at"] += 1
    bad.write_text(json.dumps(document))
    env = cli_env(PARLEY_HOME=str(tmp_path / "nobody"))
    ok, failed = run_parallel(
        [(["audit", "verify", "--bundle", str(path), "--json"], env) for path in (good, bad)]
    )
    assert ok.json()["size"] == 9
    assert failed.returncode == 1, failed.describe()
    assert f"log {talks.log.log_id} index 7: " in _oneline(failed.stdout + failed.stderr)
    shown = failed.json_error()
    assert (shown["code"], shown["log_id"], shown["index"]) == (
        "verification-failed",
        talks.log.log_id,
        7,
    )
    assert "last" not in shown


async def test_a_failed_online_audit_names_the_first_failing_index_in_json(
    app: FastAPI, scene: Scene
) -> None:
    await change_leaf(app, scene.room_id, 3, with_hash=True, server_time=1)
    result = await parley(["audit", "verify", scene.room_id, "--json"], env=scene.env())
    assert result.returncode == 1, result.describe()
    shown = result.json_error()
    assert (shown["index"], shown["log_id"]) == (3, scene.room_id)
    assert "index 3: the leaf was changed" in shown["message"]


async def test_audit_logs_lists_each_readable_log_and_why(scene: Scene) -> None:
    own = keystore_witness(scene.auditor.keystore)
    await register_witness(scene.auditor, own)
    witnessed = await scene.mediator.create_room("Witnessed talks", witnesses=[own.vkey])
    as_auditor, as_alice, table = await asyncio.to_thread(
        run_parallel,
        [
            (["audit", "logs", "--json"], scene.env()),
            (["audit", "logs", "--json"], scene.env(scene.alice_home)),
            (["audit", "logs"], scene.env()),
        ],
    )
    listed = {(x["log_id"], x["kind"], x["access"]) for x in as_auditor.json()}
    assert listed == {
        ("directory", "directory", "everyone"),
        (scene.room_id, "room", "auditor"),
        (witnessed.room_id, "room", "witness"),
    }
    assert [(x["log_id"], x["access"]) for x in as_alice.json()] == [
        ("directory", "everyone"),
        (scene.room_id, "member"),
    ]
    rows = _oneline(table.ok().stdout)
    assert "granted to you" in rows
    assert "your witness: checkpoints only" in rows
    # The policy is the grant: the witness cosigns without one, and reads no entries.
    cosigned, audited = await asyncio.to_thread(
        run_parallel,
        [
            (["audit", "witness", witnessed.room_id, "--json"], scene.env()),
            (["audit", "verify", witnessed.room_id], scene.env()),
        ],
    )
    assert cosigned.json()["size"] == 1
    assert audited.returncode == 1, audited.describe()  # refused by the server
    assert "your witness key is in the room's policy" in _oneline(audited.stderr)


def test_usage_and_connection_errors_exit_2(tmp_path: Path) -> None:
    state = KeystoreState(
        servers=(f"http://127.0.0.1:{free_port()}",),
        account_id="audrey",
        device_id="device",
        role=Role.AUDITOR,
        name="Audrey",
        account_key=SigningKey.generate(),
        device_key=SigningKey.generate(),
    )
    Keystore.create(tmp_path / "audrey", PASSPHRASE, state, scrypt_n=TEST_SCRYPT_N)
    env = cli_env(PARLEY_HOME=str(tmp_path / "audrey"), PARLEY_PASSPHRASE=PASSPHRASE)
    results = run_parallel(
        [
            (["audit", "verify", "directory"], env),
            (["audit", "verify"], env),
            (["audit", "verify", "--bundle", str(tmp_path / "none.json"), "--quorum", "1"], env),
            (["audit", "logs"], env),
            (["audit", "logs", "--json"], env),
        ]
    )
    assert [r.returncode for r in results] == [2, 2, 2, 2, 2], [r.describe() for r in results]
    assert "cannot reach" in _oneline(results[0].stderr)
    assert "cannot reach" in _oneline(results[3].stderr)
    error = results[4].json_error()
    assert error["code"] == "connection"
    assert "cannot reach" in error["message"]


async def fetch_log_key_of_directory(scene: Scene) -> str:
    """A real log key, but another log's: a bundle must not verify against it."""
    return (await scene.auditor.logs.identity("directory")).key.to_text()


def _oneline(text: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(text.split())
