"""Backups with real processes: `parley admin backup` copies a running SQLite server's
database, log key and blobs; a server started on a copy of the backup on another data
directory serves clients whose pinned checkpoints are consistent with it, and a
client that saw more than the backup holds catches the restored log as rolled back."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import RolledBackError
from client_sdk.protocol.models import Role, Side
from server.backup import PG_DUMP_FILE
from server.log.signer import KEY_FILE
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N
from tests.support.cli import CliResult, parley
from tests.support.databases import (
    create_database,
    drop_database,
    postgres_admin_url,
    with_database,
)
from tests.support.server import ServerProcess, server_env

pytestmark = pytest.mark.slow


async def _person(server: ServerProcess, role: Role, name: str, home: Path) -> ParleyClient:
    issued = await parley(
        ["admin", "enroll", "--role", role.value, "--name", name, "--json"], env=server.env
    )
    return await ParleyClient.enroll(
        server=server.url,
        token=issued.json()["token"],
        home=home,
        passphrase=PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
    )


async def _texts(client: ParleyClient, room_id: str) -> list[str]:
    return [m.text async for m in client.messages(room_id) if m.text is not None]


async def test_a_backup_restored_on_another_data_directory_serves_every_client(
    server: ServerProcess, tmp_path: Path
) -> None:
    mediator = await _person(server, Role.MEDIATOR, "Mona", tmp_path / "mona")
    alice = await _person(server, Role.PARTY, "Alice", tmp_path / "alice")
    clients = [mediator, alice]
    try:
        kept = (await mediator.create_room("Kept")).room_id
        later = (await mediator.create_room("Sent to after the backup")).room_id
        for room in (kept, later):
            await mediator.add_member(room, alice.whoami()["account_id"], Side.A)
            await alice.send(room, f"before the backup in {room}")
        document = tmp_path / "terms.txt"
        document.write_bytes(os.urandom(50_000))
        sent = await alice.documents.send_file(kept, document, channel="plenary")
        for client in clients:  # each pins the newest checkpoint of both rooms
            for room in (kept, later):
                assert f"before the backup in {room}" in await _texts(client, room)

        backup = tmp_path / "backup"
        made = await parley(["admin", "backup", str(backup), "--json"], env=server.env)
        summary = made.json()
        assert summary["database"] == "sqlite"
        assert summary["blobs"] == 1
        assert (backup / KEY_FILE).read_text() == (tmp_path / "data" / KEY_FILE).read_text()
        assert os.stat(backup / KEY_FILE).st_mode & 0o777 == 0o600
        assert json.loads((backup / "backup.json").read_text())["log_key"] == summary["log_key"]

        # Alice sees one more message in `later` than the backup holds.
        await alice.send(later, "after the backup")
        assert "after the backup" in await _texts(alice, later)

        server.stop()
        restored = tmp_path / "restored"
        shutil.copytree(backup, restored)
        again = ServerProcess(
            server_env(restored, None), tmp_path / "restored.log", port=server.port
        )
        again.start()
        try:
            # Every client's pinned checkpoints are consistent with the restored logs.
            await alice.send(kept, "after the restore")
            assert (await _texts(mediator, kept))[-1] == "after the restore"
            output = tmp_path / "downloaded"
            await mediator.documents.download(kept, sent.receipt.seq, output)
            assert output.read_bytes() == document.read_bytes()
            assert (await _texts(mediator, later))[-1] == f"before the backup in {later}"
            # What Alice saw after the backup is gone: her client says the log rolled back.
            with pytest.raises(RolledBackError):
                await _texts(alice, later)
        finally:
            again.stop()
    finally:
        for client in clients:
            await client.aclose()


def _refused(result: CliResult, code: int, phrase: str) -> None:
    assert result.returncode == code, result.describe()
    (line,) = result.stderr.strip().splitlines()
    assert phrase in line, result.describe()


async def test_a_backup_needs_an_empty_destination_and_the_log_key(
    server: ServerProcess, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("")
    _refused(
        await parley(["admin", "backup", str(taken)], env=server.env),
        1,
        "is not an empty directory",
    )
    env = server_env(tmp_path / "empty", None)
    _refused(await parley(["admin", "backup", str(tmp_path / "b")], env=env), 2, "no log key at")


@pytest.mark.postgres
async def test_a_postgres_backup_restores_with_pg_restore_and_the_key(tmp_path: Path) -> None:
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("PostgreSQL half skipped: set PARLEY_TEST_POSTGRES_URL to run it")
    if shutil.which("pg_restore") is None:
        pytest.skip("pg_restore is not installed")
    source, target = await create_database(admin), await create_database(admin)
    try:
        server = ServerProcess(
            server_env(tmp_path / "data", with_database(admin, source)), tmp_path / "server.log"
        )
        server.start()
        try:
            mediator = await _person(server, Role.MEDIATOR, "Mona", tmp_path / "mona")
            room = (await mediator.create_room("Kept")).room_id
            await mediator.send(room, "before the backup")
            backup = tmp_path / "backup"
            made = await parley(["admin", "backup", str(backup), "--json"], env=server.env)
            assert made.json()["database"] == "postgresql"
            assert (backup / "blobs").is_dir()  # empty, but there for the restore's cp
        finally:
            server.stop()
        # The README's restore recipe: pg_restore into an empty database, the key beside it.
        restore = await asyncio.create_subprocess_exec(
            "pg_restore",
            "--no-owner",
            "-d",
            with_database(admin, target),
            str(backup / PG_DUMP_FILE),
            stderr=asyncio.subprocess.PIPE,
        )
        _, errors = await asyncio.wait_for(restore.communicate(), 120)
        assert restore.returncode == 0, errors
        again = ServerProcess(
            server_env(
                tmp_path / "restored",
                with_database(admin, target),
                PARLEY_LOG_SIGNING_KEY=(backup / KEY_FILE).read_text().strip(),
            ),
            tmp_path / "restored.log",
            port=server.port,
        )
        again.start()
        try:
            await mediator.send(room, "after the restore")
            assert await _texts(mediator, room) == ["before the backup", "after the restore"]
        finally:
            again.stop()
            await mediator.aclose()
    finally:
        for name in (source, target):
            await drop_database(admin, name)
