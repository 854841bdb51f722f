"""This account's devices, as an existing device manages them (docs/design.md §3):
listing them from the verified directory, revoking one with the account key, and
approving a new device's link request by its code."""

from __future__ import annotations

from dataclasses import dataclass

from client_sdk.client.directory import Directory
from client_sdk.client.helpers import Clock, dump
from client_sdk.client.http import HttpSession
from client_sdk.client.keys import DEFAULT_KEY_LIFETIME_MS
from client_sdk.client.logs import LogVerifier
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.keys import hpke_public_key, key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.linking import link_code, normalize_code, seal_account_key
from client_sdk.protocol.statements import (
    DeviceCert,
    EncryptionKeyCert,
    Revocation,
    sign_statement,
)
from client_sdk.protocol.wire.devices import LinkOut
from client_sdk.protocol.wire.logs import LoggedOut


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device of this account, as the directory log shows it."""

    device_id: str
    status: str
    """``active`` or ``revoked``."""
    this_device: bool
    revoked_by: str | None = None
    """``account`` or ``operator`` for a revoked device."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LinkView:
    """A new device's pending link request, with the code computed here from its keys."""

    link_id: str
    device_id: str
    code: str
    created_at: int
    expires_at: int


class Devices:
    """What one device does with its account's devices."""

    def __init__(
        self,
        http: HttpSession,
        logs: LogVerifier,
        directory: Directory,
        keystore: Keystore,
        clock: Clock,
    ) -> None:
        self._http = http
        self._logs = logs
        self._directory = directory
        self._keystore = keystore
        self._clock = clock

    async def all(self) -> list[DeviceView]:
        """Every device this account has had: in use, and revoked (by whom, why)."""
        state = self._keystore.state
        account = await self._directory.fetch(state.account_id)
        views = [
            DeviceView(device_id=d, status="active", this_device=d == state.device_id)
            for d in sorted(account.devices)
        ]
        views += [
            DeviceView(
                device_id=d,
                status="revoked",
                this_device=d == state.device_id,
                revoked_by=r.authority,
                reason=r.reason,
            )
            for d, r in sorted(account.revoked.items())
        ]
        return views

    async def revoke(self, device_id: str, *, reason: str = "") -> LoggedOut:
        """Revoke a device of this account, signed by the account key; the answer's
        directory leaf is checked to log exactly this revocation."""
        state = self._keystore.state
        statement = Revocation(
            account_id=state.account_id,
            device_id=device_id,
            authority="account",
            reason=reason,
            issued_at=self._clock(),
        )
        signed = sign_statement(state.account_key, statement)
        logged = await self._http.call(
            LoggedOut, "POST", "/v1/devices/revocations", json={"statement": dump(signed)}
        )
        await self._logs.check_logged(
            DIRECTORY_LOG_ID,
            logged,
            kind="revocation",
            actor_device=key_id(state.account_key.public_bytes()),
            payload_hash=signed.body_hash(),
            signature=signed.signature,
        )
        return logged

    async def pending_links(self) -> list[LinkView]:
        """Link requests waiting for this account, each with the code of its keys."""
        links = await self._http.call_list(LinkOut, "GET", "/v1/device-links")
        return [_view(link) for link in links if _well_formed(link)]

    async def approve(self, code: str) -> LinkView:
        """Approve the one pending request whose keys give `code`: certify its keys with
        the account key and seal the account key to it. A code that matches no request
        approves nothing (`ProtocolError`)."""
        wanted = normalize_code(code)
        state = self._keystore.state
        links = await self._http.call_list(LinkOut, "GET", "/v1/device-links")
        matches = [link for link in links if _well_formed(link) and _view(link).code == wanted]
        if len(matches) != 1:
            raise ProtocolError(
                f"no pending link request of this account has the code {wanted}: "
                "check the code the new device shows (nothing was approved)"
            )
        link = matches[0]
        now = self._clock()
        device_cert = sign_statement(
            state.account_key,
            DeviceCert(
                account_id=state.account_id,
                device_id=link.device_id,
                signing_key=link.signing_key,
                issued_at=now,
            ),
        )
        encryption = b64d(link.encryption_key)
        encryption_cert = sign_statement(
            state.account_key,
            EncryptionKeyCert(
                account_id=state.account_id,
                device_id=link.device_id,
                key_id=key_id(encryption),
                public_key=link.encryption_key,
                issued_at=now,
                not_after=now + DEFAULT_KEY_LIFETIME_MS,
            ),
        )
        sealed = seal_account_key(
            state.account_key,
            encryption,
            link_id=link.link_id,
            account_id=state.account_id,
            device_id=link.device_id,
        )
        await self._http.call(
            LinkOut,
            "POST",
            f"/v1/device-links/{link.link_id}/approve",
            json={
                "device_cert": dump(device_cert),
                "encryption_key_cert": dump(encryption_cert),
                "sealed_account_key": b64e(sealed),
            },
        )
        return _view(link)


def _well_formed(link: LinkOut) -> bool:
    """A request whose device id is its signing key's and whose encryption key parses
    (others are never shown, so never approved)."""
    try:
        hpke_public_key(b64d(link.encryption_key))
        return link.device_id == key_id(b64d(link.signing_key))
    except ProtocolError:
        return False


def _view(link: LinkOut) -> LinkView:
    return LinkView(
        link_id=link.link_id,
        device_id=link.device_id,
        code=link_code(
            link_id=link.link_id,
            account_id=link.account_id,
            signing_key=b64d(link.signing_key),
            encryption_key=b64d(link.encryption_key),
        ),
        created_at=link.created_at,
        expires_at=link.expires_at,
    )
