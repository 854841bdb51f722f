"""The async Parley client: enrollment, rooms, sending and verified reading.

    async with ParleyClient.open(home, passphrase) as client:
        room = await client.create_room("Talks")
        await client.send(room.room_id, "hello")
        async for message in client.messages(room.room_id, follow=True):
            print(message.sender_name, message.text)

Everything the server serves is checked before it is used or shown: accounts
by their own signatures, rosters by the mediators' signature chain, messages
by their sender's signature and exact recipient set. Nothing is returned
half-verified; a failed check raises `VerificationError`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

import httpx

from client_sdk.client.base import (
    DAY_MS,
    DEFAULT_KEY_LIFETIME_MS,
    RETIRED_KEY_GRACE_MS,
    ROTATE_AFTER_MS,
    Clock,
)
from client_sdk.client.helpers import (
    dump,
    encryption_cert,
    signed_statement,
)
from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import (
    Member,
    Message,
    Receipt,
    Relay,
    Room,
    RoomStateView,
    _RoomChain,
)
from client_sdk.client.reading import _Reading
from client_sdk.client.rooms import _Rooms
from client_sdk.client.sending import _Sending
from client_sdk.client.verify import (
    VerifiedAccount,
    verify_account,
)
from client_sdk.keystore import (
    DEFAULT_SCRYPT_N,
    EncryptionKeyRecord,
    Keystore,
    KeystoreState,
    Pin,
    default_home,
    passphrase_from_env_or_prompt,
)
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import (
    Envelope,
)
from client_sdk.protocol.errors import ProtocolError, UntrustedKeyError, VerificationError
from client_sdk.protocol.fingerprint import check_safety_number, safety_number
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.merkle import CompactRange
from client_sdk.protocol.models import Role
from client_sdk.protocol.statements import (
    DeviceCert,
    Registration,
    sign_statement,
)

__all__ = [
    "DAY_MS",
    "DEFAULT_KEY_LIFETIME_MS",
    "RETIRED_KEY_GRACE_MS",
    "ROTATE_AFTER_MS",
    "Member",
    "Message",
    "ParleyClient",
    "Receipt",
    "Relay",
    "Room",
    "RoomStateView",
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ParleyClient(_Rooms, _Sending, _Reading):
    """One device's connection to a Parley server."""

    def __init__(
        self,
        keystore: Keystore,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _now_ms,
    ) -> None:
        """Use an opened keystore; see `open` and `enroll`."""
        self.keystore = keystore
        state = keystore.state
        self.clock = clock
        self.http = HttpSession(
            state.server,
            device_id=state.device_id,
            device_key=state.device_key,
            transport=transport,
        )
        self._chains: dict[str, _RoomChain] = {}
        self._frontiers: dict[str, CompactRange] = {}
        self._sealed: dict[tuple[str, str], Envelope] = {}
        self.logs = LogVerifier(keystore, self.http)
        self._accounts: dict[str, VerifiedAccount] = {}

    @classmethod
    def open(
        cls,
        home: Path | None = None,
        passphrase: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ParleyClient:
        """Open the keystore in `home` (default `$PARLEY_HOME`) and connect as its device."""
        home = home or default_home()
        passphrase = passphrase if passphrase is not None else passphrase_from_env_or_prompt()
        return cls(Keystore.open(home, passphrase), transport=transport)

    @classmethod
    async def enroll(
        cls,
        *,
        server: str,
        token: str,
        home: Path,
        passphrase: str,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = _now_ms,
        scrypt_n: int = DEFAULT_SCRYPT_N,
    ) -> ParleyClient:
        """Generate keys here, register their public halves, and save them in a new keystore."""
        if Keystore.exists(home):
            raise ProtocolError(f"{home} already holds a keystore; use another PARLEY_HOME")
        http = HttpSession(server, transport=transport)
        try:
            preview = await http.request(
                "POST", "/v1/enroll/preview", json={"token": token}, auth=False
            )
            account_id, name, role = preview["account_id"], preview["name"], Role(preview["role"])
            now = clock()
            account_key, device_key = SigningKey.generate(), SigningKey.generate()
            enc_key = EncryptionKey.generate()
            device_id = key_id(device_key.public_bytes())
            not_after = now + DEFAULT_KEY_LIFETIME_MS
            body = {
                "token": token,
                "registration": dump(
                    sign_statement(
                        account_key,
                        Registration(
                            account_id=account_id,
                            name=name,
                            role=role,
                            account_key=b64e(account_key.public_bytes()),
                            issued_at=now,
                        ),
                    )
                ),
                "device_cert": dump(
                    sign_statement(
                        account_key,
                        DeviceCert(
                            account_id=account_id,
                            device_id=device_id,
                            signing_key=b64e(device_key.public_bytes()),
                            issued_at=now,
                        ),
                    )
                ),
                "encryption_key_cert": dump(
                    encryption_cert(account_key, account_id, device_id, enc_key, now, not_after)
                ),
            }
            await http.request("POST", "/v1/enroll", json=body, auth=False)
        finally:
            await http.aclose()
        own_key = account_key.public_bytes()
        state = KeystoreState(
            server=server,
            account_id=account_id,
            device_id=device_id,
            role=role,
            name=name,
            account_key=account_key,
            device_key=device_key,
            encryption_keys=(EncryptionKeyRecord.new(enc_key, not_after, now),),
            pins={
                account_id: Pin(
                    account_key=own_key, first_seen=now, verified=True, verified_key=own_key
                )
            },
        )
        keystore = Keystore.create(home, passphrase, state, scrypt_n=scrypt_n)
        return cls(keystore, transport=transport, clock=clock)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close network connections."""
        await self.http.aclose()

    # --- identity -------------------------------------------------------------------

    def whoami(self) -> dict[str, str]:
        """This profile's account, device, role, name and server."""
        state = self.keystore.state
        return {
            "account_id": state.account_id,
            "device_id": state.device_id,
            "role": state.role.value,
            "name": state.name,
            "server": state.server,
        }

    async def token(self) -> str:
        """A currently valid bearer token (for scripting with curl)."""
        return await self.http.token()

    async def account(self, account_id: str) -> VerifiedAccount:
        """A directory account, checked by its own signatures and pinned on first sight.

        Raises `UntrustedKeyError` when its key is not the one pinned: account
        keys never change, so a change (even of a contact never verified) is
        trusted only after the user compares the safety number again.
        """
        account = await self._directory_account(account_id)
        pin = self.keystore.state.pins.get(account_id)
        if pin is not None and pin.verified_key is None and pin.account_key != account.account_key:
            # Keystore.pin would replace an unverified pin silently; refuse instead.
            raise UntrustedKeyError(
                f"the key of account {account_id} changed (pinned {key_id(pin.account_key)}, "
                f"now {key_id(account.account_key)}); compare the safety number and run "
                f"`parley verify {account_id}` to trust the new key"
            )
        self.keystore.pin(account_id, account.account_key, self.clock())
        self.keystore.require_trusted(account_id, account.account_key)
        self._accounts[account_id] = account
        return account

    async def _directory_account(self, account_id: str) -> VerifiedAccount:
        """The account as the directory shows it now, checked by its signatures and by
        the directory log (every statement about its keys is a proven leaf); not pinned."""
        since = self.logs.since(DIRECTORY_LOG_ID)
        data = await self.http.request("GET", f"/v1/accounts/{account_id}", params={"since": since})
        account = verify_account(account_id, data, now=self.clock())
        await self._check_directory(account, data)
        return account

    async def _check_directory(self, account: VerifiedAccount, data: dict[str, Any]) -> None:
        """Every statement served about the account must be a leaf of the directory log."""
        proof = data.get("directory")
        if not isinstance(proof, dict):
            raise VerificationError(f"account {account.account_id}: no directory proof")
        checkpoint = await self.logs.accept(
            DIRECTORY_LOG_ID,
            str(proof["checkpoint"]),
            since=int(proof["since"]),
            proof=proof["consistency_proof"],
        )
        logged: set[bytes] = set()
        for entry in proof["entries"]:
            statement = signed_statement(entry["statement"])
            logged_key = statement.body.get("account_key")
            if entry["kind"] == "registration" and logged_key != b64e(account.account_key):
                raise VerificationError(
                    f"account {account.account_id}: the directory log holds a registration "
                    f"with another account key ({logged_key}); account keys never change, so "
                    "the server registered a second key for this account"
                )
            await self.logs.check_leaf(
                DIRECTORY_LOG_ID,
                checkpoint,
                entry["leaf"],
                entry["inclusion_proof"],
                index=int(entry["index"]),
                type=str(entry["kind"]),
                actor_device=key_id(account.account_key),
                payload_hash=statement.body_hash(),
                signature=statement.signature,
            )
            logged.add(statement.body_hash())
        served = [data["registration"]]
        for device in data.get("devices") or []:
            served.append(device["cert"])
            if device.get("encryption_key"):
                served.append(device["encryption_key"]["cert"])
        for statement in served:
            if signed_statement(statement).body_hash() not in logged:
                raise VerificationError(
                    f"account {account.account_id}: a key statement is not in the directory log"
                )

    async def accounts(self, role: Role | None = None) -> list[dict[str, str]]:
        """Enrolled accounts (unverified summaries: id, name, role)."""
        params = {"role": role.value} if role else None
        result: list[dict[str, str]] = await self.http.request("GET", "/v1/accounts", params=params)
        return result

    async def safety_number(self, account_id: str) -> str:
        """The safety number this account shares with `account_id`, to compare out of band."""
        other = await self._directory_account(account_id)
        state = self.keystore.state
        return safety_number(
            state.account_id, state.account_key.public_bytes(), account_id, other.account_key
        )

    async def verify_contact(self, account_id: str, number: str) -> None:
        """Mark `account_id` verified if `number` is your shared safety number."""
        other = await self._directory_account(account_id)
        state = self.keystore.state
        check_safety_number(
            number,
            state.account_id,
            state.account_key.public_bytes(),
            account_id,
            other.account_key,
        )
        self.keystore.pin_and_verify(account_id, other.account_key, self.clock())

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact's current key."""
        return self.keystore.is_verified(account_id)

    async def invite(self, name: str) -> dict[str, Any]:
        """(Mediators) a party's one-time enrollment token."""
        result: dict[str, Any] = await self.http.request(
            "POST", "/v1/enrollment-tokens", json={"name": name}
        )
        return result

    async def maintain_keys(self) -> list[str]:
        """Rotate the encryption key when it is due and purge retired private keys.

        Called before sending and reading; returns the ids of purged keys.
        """
        now = self.clock()
        current = self.keystore.current_encryption_key()
        if now - current.created_at >= ROTATE_AFTER_MS or current.not_after - now < DAY_MS:
            await self.rotate_encryption_key()
        return self.keystore.purge_retired(now, RETIRED_KEY_GRACE_MS)

    async def rotate_encryption_key(self, *, lifetime_ms: int = DEFAULT_KEY_LIFETIME_MS) -> str:
        """Publish a new encryption key; the old one is kept for a grace period."""
        state = self.keystore.state
        now = self.clock()
        enc_key = EncryptionKey.generate()
        cert = encryption_cert(
            state.account_key, state.account_id, state.device_id, enc_key, now, now + lifetime_ms
        )
        logged = await self.http.request(
            "POST", "/v1/devices/me/encryption-keys", json={"cert": dump(cert)}
        )
        await self._check_logged(
            DIRECTORY_LOG_ID,
            logged,
            "encryption-key",
            cert.body_hash(),
            cert.signature,
            actor=key_id(state.account_key.public_bytes()),
        )
        record = self.keystore.add_encryption_key(enc_key, now + lifetime_ms, now)
        return record.key_id
