"""Roster signers: each roster version's signer must be a mediator the directory certifies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from client_sdk.audit.checks import Failure
from client_sdk.client.verify import verify_account
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.models import Role


@dataclass(frozen=True, slots=True)
class RosterSigner:
    """Who signed a roster version, as the roster chain names them."""

    index: int
    version: int
    account_id: str
    account_key: str
    device_id: str


def check_roster_signers(
    signers: Sequence[RosterSigner], accounts: Mapping[str, Any], *, now: int
) -> Failure | None:
    """Each roster's signer must be a mediator whose directory record certifies the device.

    `accounts` are directory records (``GET /v1/accounts/{id}``) by account id.
    """
    for signer in signers:
        record = accounts.get(signer.account_id)
        if record is None:
            return signer.index, f"no directory record of roster signer {signer.account_id}"
        try:
            account = verify_account(signer.account_id, record, now=now)
        except (VerificationError, ProtocolError) as exc:
            return signer.index, f"directory record of roster signer {signer.account_id}: {exc}"
        if account.role is not Role.MEDIATOR:
            return signer.index, (
                f"roster version {signer.version} is signed by {signer.account_id}, who is not "
                "a mediator in the directory"
            )
        if b64e(account.account_key) != signer.account_key:
            return signer.index, (
                f"roster version {signer.version}: the roster and the directory disagree on the "
                f"account key of {signer.account_id}"
            )
        if account.certified_device(signer.device_id) is None:
            return signer.index, (
                f"roster version {signer.version}: device {signer.device_id} is not certified "
                f"by {signer.account_id}"
            )
    return None
