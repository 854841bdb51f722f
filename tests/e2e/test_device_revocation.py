"""Lost devices on a real server: a second device linked with `parley device add` and
`parley device approve`, and a revoked device's open stream closed within a second,
whether its own account revokes it or the operator does with `parley admin revoke`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from client_sdk.client import ParleyClient
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.wire.stream import CloseCode
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N
from tests.e2e.harness import Cast, Deployment, profile_env
from tests.support.cli import CliProcess, parley

pytestmark = pytest.mark.slow

CLOSE_WITHIN = 1.0


async def _open_stream(deployment: Deployment, room_id: str, token: str) -> ClientConnection:
    host = deployment.url.removeprefix("http://")
    ws = await connect(
        f"ws://{host}/v1/rooms/{room_id}/stream?after=0",
        additional_headers={"Authorization": f"Bearer {token}"},
    )
    assert '"ready"' in str(await asyncio.wait_for(ws.recv(), 10))
    return ws


async def _closed_within(ws: ClientConnection, seconds: float) -> int | None:
    """The close code the server sends within `seconds` (frames before it are skipped)."""
    deadline = time.monotonic() + seconds
    try:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        pytest.fail(f"the stream was still open {seconds}s after the revocation")


async def test_revoked_device_stream_is_closed(
    deployment: Deployment, cast: Cast, tmp_path: Path
) -> None:
    issued = await parley(
        ["admin", "enroll", "--role", "party", "--name", "Carol", "--json"], env=deployment.env
    )
    token = issued.json()["token"]
    laptop = await ParleyClient.enroll(
        server=deployment.url,
        token=token,
        home=tmp_path / "laptop",
        passphrase=PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
    )
    mediator = cast.mediator.client()
    clients = [laptop, mediator]
    try:
        carol_id = laptop.whoami()["account_id"]
        room = await mediator.create_room("Devices")
        await mediator.add_member(room.room_id, carol_id, Side.A)

        # A second machine joins with `parley device add`, approved by the code it shows.
        adding = CliProcess(
            [
                "device",
                "add",
                "--server",
                deployment.url,
                "--account",
                carol_id,
                "--json",
            ],
            env=profile_env(tmp_path / "desktop"),
            stderr_path=tmp_path / "add.stderr",
        )
        try:
            code = (await adding.next_json())["code"]
            approved = await parley(
                ["device", "approve", code, "--json"], env=profile_env(tmp_path / "laptop")
            )
            assert approved.ok().json()["code"] == code
            linked = await adding.next_json()
            assert (linked["status"], linked["account_id"]) == ("linked", carol_id)
        finally:
            adding.stop()
        desktop = ParleyClient.open(tmp_path / "desktop", PASSPHRASE)
        clients.append(desktop)
        listed = await parley(["device", "list", "--json"], env=profile_env(tmp_path / "desktop"))
        assert {d["status"] for d in listed.ok().json()} == {"active"}
        shown = await parley(["room", "show", room.room_id], env=cast.mediator.env)
        assert "re-key needed" in shown.ok().stdout
        assert "was linked since" in shown.stdout
        rekeyed = await parley(["room", "rekey", room.room_id, "--json"], env=cast.mediator.env)
        assert rekeyed.json()["rekey"] == []

        # Revoked from the laptop: the desktop's open stream closes at once.
        ws = await _open_stream(deployment, room.room_id, await desktop.token())
        revoked = await parley(
            ["device", "revoke", desktop.whoami()["device_id"]],
            env=profile_env(tmp_path / "laptop"),
        )
        revoked.ok()
        assert await _closed_within(ws, CLOSE_WITHIN) == CloseCode.UNAUTHENTICATED
        # The room still lists the desktop: the mediator's client will not seal to it.
        refused = await parley(["send", room.room_id, "hello"], env=cast.mediator.env)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1
        assert desktop.whoami()["device_id"] in refused.stderr
        assert "re-keys the room" in refused.stderr

        # Revoked by the operator on the server host: another process, found within a second.
        pending = await ParleyClient.request_link(server=deployment.url, account_id=carol_id)
        await laptop.devices.approve(pending.code)
        phone = await ParleyClient.complete_link(
            pending, home=tmp_path / "phone", passphrase=PASSPHRASE, scrypt_n=TEST_SCRYPT_N
        )
        clients.append(phone)
        ws = await _open_stream(deployment, room.room_id, await phone.token())
        by_operator = await parley(
            ["admin", "revoke", phone.whoami()["device_id"], "--reason", "stolen"],
            env=deployment.env,
        )
        assert "Revoked" in by_operator.ok().stdout
        assert await _closed_within(ws, CLOSE_WITHIN) == CloseCode.UNAUTHENTICATED
        account = await mediator.account(carol_id)
        assert account.revoked[phone.whoami()["device_id"]].authority == "operator"
        assert account.role is Role.PARTY
    finally:
        for client in clients:
            await client.aclose()
