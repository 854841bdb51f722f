"""The operator's listings and account changes on a real server, through the `parley
admin` command: every account, pending invitations (never their tokens), revoking
an invitation, disabling an account (logged in the directory for clients to see)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import AuthenticationError, NotFoundError
from tests.conftest import PASSPHRASE, TEST_SCRYPT_N
from tests.e2e.harness import Cast, Deployment
from tests.support.cli import CliResult, parley

pytestmark = pytest.mark.slow

ACCOUNT_KEYS = {"account_id", "role", "name", "status", "devices", "invited_by", "created_at"}
INVITE_KEYS = {"account_id", "role", "name", "invited_by", "created_at", "expires_at"}


async def _admin(deployment: Deployment, *args: str) -> CliResult:
    return await parley(["admin", *args], env=deployment.env)


async def _invite(deployment: Deployment, name: str) -> dict[str, Any]:
    issued = await _admin(deployment, "enroll", "--role", "party", "--name", name, "--json")
    ticket: dict[str, Any] = issued.json()
    return ticket


def _refused(result: CliResult, code: int, phrase: str) -> None:
    assert result.returncode == code, result.describe()
    assert result.stdout == "", result.describe()
    (line,) = result.stderr.strip().splitlines()
    assert phrase in line, result.describe()


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["account_id"]: row for row in rows}


async def _enroll(deployment: Deployment, token: str, home: Path) -> ParleyClient:
    return await ParleyClient.enroll(
        server=deployment.url,
        token=token,
        home=home,
        passphrase=PASSPHRASE,
        scrypt_n=TEST_SCRYPT_N,
    )


async def test_invites_lists_pending_invitations_without_their_tokens(
    deployment: Deployment,
) -> None:
    ticket = await _invite(deployment, "Ivy Invitee")

    listed = await _admin(deployment, "invites", "--json")
    invites = _by_id(listed.json())
    assert ticket["token"] not in listed.stdout
    assert set(invites[ticket["account_id"]]) == INVITE_KEYS
    assert invites[ticket["account_id"]]["name"] == "Ivy Invitee"
    assert invites[ticket["account_id"]]["expires_at"] == ticket["expires_at"]
    text = await _admin(deployment, "invites")
    assert ticket["account_id"] in text.ok().stdout
    assert ticket["token"] not in text.stdout


async def test_a_revoked_invitation_no_longer_enrolls(
    deployment: Deployment, tmp_path: Path
) -> None:
    ticket = await _invite(deployment, "Rex Revoked")

    revoked = await _admin(deployment, "invites", "revoke", ticket["account_id"], "--json")
    assert revoked.json() == {"account_id": ticket["account_id"], "status": "cancelled"}

    with pytest.raises(AuthenticationError):
        await _enroll(deployment, ticket["token"], tmp_path / "rex")
    assert ticket["account_id"] not in _by_id(
        (await _admin(deployment, "invites", "--json")).json()
    )
    accounts = _by_id((await _admin(deployment, "accounts", "--json")).json())
    assert accounts[ticket["account_id"]]["status"] == "cancelled"
    again = await _admin(deployment, "invites", "revoke", ticket["account_id"])
    _refused(again, 1, f"no pending invitation for account {ticket['account_id']}")


async def test_disabling_an_enrolled_account_locks_it_out_and_the_directory_says_so(
    deployment: Deployment, cast: Cast, tmp_path: Path
) -> None:
    ticket = await _invite(deployment, "Dora Disabled")
    dora = await _enroll(deployment, ticket["token"], tmp_path / "dora")
    mediator = cast.mediator.client()
    try:
        account_id = dora.whoami()["account_id"]
        listed = _by_id((await _admin(deployment, "accounts", "--json")).json())
        assert set(listed[account_id]) == ACCOUNT_KEYS
        assert (listed[account_id]["status"], listed[account_id]["devices"]) == ("active", 1)

        done = await _admin(deployment, "disable", account_id, "--reason", "left", "--json")
        summary = done.json()
        assert summary["status"] == "revoked"
        assert summary["revoked_devices"] == [dora.whoami()["device_id"]]
        assert isinstance(summary["leaf_index"], int)

        with pytest.raises((AuthenticationError, NotFoundError)):  # token, then login
            await dora.create_room("after being disabled")
        seen = await mediator.account(account_id)  # checked against the directory log
        assert seen.whole_account_revoked
        listed = _by_id((await _admin(deployment, "accounts", "--json")).json())
        assert (listed[account_id]["status"], listed[account_id]["devices"]) == ("revoked", 0)
        _refused(await _admin(deployment, "disable", account_id), 1, "revoked already")
    finally:
        await dora.aclose()
        await mediator.aclose()


async def test_disabling_a_pending_account_cancels_its_invitation(
    deployment: Deployment, tmp_path: Path
) -> None:
    ticket = await _invite(deployment, "Pat Pending")

    done = await _admin(deployment, "disable", ticket["account_id"])
    assert "Cancelled account" in done.ok().stdout

    with pytest.raises(AuthenticationError):
        await _enroll(deployment, ticket["token"], tmp_path / "pat")


async def test_unknown_accounts_are_one_line_refusals_exit_1(deployment: Deployment) -> None:
    _refused(await _admin(deployment, "disable", "nobody"), 1, "error: no account nobody")
    refused = await _admin(deployment, "disable", "nobody", "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stderr) == {"code": "refused", "message": "no account nobody"}
    _refused(await _admin(deployment, "invites", "revoke", "nobody"), 1, "no pending invitation")
