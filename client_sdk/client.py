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
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import ValidationError

from client_sdk._errors import ProtocolError, TransportError, VerificationError
from client_sdk._helpers import (
    b64,
    dump,
    encryption_cert,
    party_side,
    roster_member,
    signed_statement,
)
from client_sdk._http import HttpSession
from client_sdk._logs import LogVerifier
from client_sdk._models import (
    Member,
    Message,
    Receipt,
    Relay,
    Room,
    RoomStateView,
    _RoomChain,
)
from client_sdk._stream import EventStream
from client_sdk._verify import (
    VerifiedAccount,
    verify_account,
    verify_roster_step,
)
from client_sdk.keystore import (
    DEFAULT_SCRYPT_N,
    Keystore,
    KeystoreState,
    PinResult,
    UntrustedKeyError,
    default_home,
    passphrase_from_env_or_prompt,
)
from client_sdk.protocol.encoding import b64d, b64e, sha256
from client_sdk.protocol.envelope import (
    CheckpointRef,
    Envelope,
    Recipient,
    check_envelope,
    new_message_id,
    open_envelope,
    seal_envelope,
)
from client_sdk.protocol.fingerprint import check_safety_number, safety_number
from client_sdk.protocol.keys import EncryptionKey, SigningKey, key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID, LogLeaf
from client_sdk.protocol.mediation import (
    NotPermitted,
    RoomState,
    channel_devices,
    channel_sides,
)
from client_sdk.protocol.merkle import CompactRange, leaf_hash
from client_sdk.protocol.models import Role, Side
from client_sdk.protocol.note import Checkpoint
from client_sdk.protocol.statements import (
    Action,
    DeviceCert,
    Mode,
    Moderation,
    Registration,
    RoomPolicy,
    Roster,
    RosterMember,
    SignedStatement,
    sign_statement,
    verify_statement,
)

__all__ = [
    "Member",
    "Message",
    "ParleyClient",
    "Receipt",
    "Relay",
    "Room",
    "RoomStateView",
]

PLENARY = "plenary"
PAGE = 200
SEND_ATTEMPTS = 3
SEALED_KEPT = 1024
"""Envelopes remembered by message id, so that a retried send is the same envelope."""
_ROSTER_HEADS = "roster_heads"
"""Keystore ``extra`` entry: room id -> [newest verified roster version, its body hash]."""
DAY_MS = 24 * 3600 * 1000
DEFAULT_KEY_LIFETIME_MS = 14 * DAY_MS
ROTATE_AFTER_MS = 7 * DAY_MS
"""Encryption keys are replaced weekly..."""
RETIRED_KEY_GRACE_MS = 7 * DAY_MS
"""...and a replaced private key is deleted a week later, bounding what a stolen
device can decrypt from the past."""
Clock = Callable[[], int]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ParleyClient:
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
        state = KeystoreState(
            server=server,
            account_id=account_id,
            device_id=device_id,
            role=role,
            name=name,
            account_key=account_key,
            device_key=device_key,
        )
        keystore = Keystore.create(home, passphrase, state, scrypt_n=scrypt_n)
        keystore.add_encryption_key(enc_key, not_after, now)
        keystore.pin(account_id, account_key.public_bytes(), now)
        keystore.mark_verified(account_id, account_key.public_bytes())
        keystore.save()
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
        result = self.keystore.pin(account_id, account.account_key, self.clock())
        if result is not PinResult.SAME:
            self.keystore.save()
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
        self.keystore.pin(account_id, other.account_key, self.clock())
        self.keystore.mark_verified(account_id, other.account_key)
        self.keystore.save()

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact's current key."""
        pin = self.keystore.state.pins.get(account_id)
        return bool(pin and pin.verified and pin.pending_key is None)

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
        purged = self.keystore.purge_retired(now, RETIRED_KEY_GRACE_MS)
        if purged:
            self.keystore.save()
        return purged

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
        self.keystore.save()
        return record.key_id

    # --- rooms ----------------------------------------------------------------------

    async def create_room(
        self,
        title: str,
        *,
        require_verified: bool = False,
        witnesses: Sequence[str] = (),
        witness_quorum: int = 0,
    ) -> Room:
        """(Mediators) open a room with yourself as its only member.

        The policy (`require_verified`, the witness keys and quorum) is part of
        the signed roster, so the server cannot change it.
        """
        state = self.keystore.state
        me = await self.account(state.account_id)
        roster = Roster(
            room_id=uuid.uuid4().hex,
            version=1,
            prev_hash=None,
            title=title,
            members=[roster_member(me, Side.MEDIATOR)],
            policy=RoomPolicy(
                require_verified=require_verified,
                witnesses=list(witnesses),
                witness_quorum=witness_quorum,
            ),
            signer_device=state.device_id,
            issued_at=self.clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self.http.request("POST", "/v1/rooms", json={"roster": dump(signed)})
        await self._check_logged(
            roster.room_id, data["logged"], "roster", signed.body_hash(), signed.signature
        )
        return await self._room_from(data)

    async def set_policy(
        self,
        room_id: str,
        *,
        require_verified: bool | None = None,
        witnesses: Sequence[str] | None = None,
        witness_quorum: int | None = None,
    ) -> Room:
        """(Mediators) change the room's policy: a new roster version, signed here."""
        current, current_signed = await self._current_roster(room_id)
        changes = {
            "require_verified": require_verified,
            "witnesses": None if witnesses is None else list(witnesses),
            "witness_quorum": witness_quorum,
        }
        try:
            policy = RoomPolicy.model_validate(
                {
                    **current.policy.model_dump(),
                    **{k: v for k, v in changes.items() if v is not None},
                }
            )
        except ValidationError as exc:
            raise ProtocolError(f"invalid room policy: {exc.errors()[0]['msg']}") from exc
        return await self._publish_roster(current, current_signed, current.members, policy)

    async def add_member(self, room_id: str, account_id: str, side: Side) -> Room:
        """(Mediators) add an account on `side`: a new roster version, signed here."""
        room_roster, room_signed = await self._current_roster(room_id)
        if room_roster.member(account_id) is not None:
            raise ProtocolError(f"account {account_id} is already in the room")
        account = await self.account(account_id)
        members = [*room_roster.members, roster_member(account, side)]
        return await self._publish_roster(room_roster, room_signed, members)

    async def remove_member(self, room_id: str, account_id: str) -> Room:
        """(Mediators) remove an account: a new roster version without it."""
        room_roster, room_signed = await self._current_roster(room_id)
        members = [m for m in room_roster.members if m.account_id != account_id]
        if len(members) == len(room_roster.members):
            raise ProtocolError(f"account {account_id} is not in the room")
        return await self._publish_roster(room_roster, room_signed, members)

    async def _publish_roster(
        self,
        current: Roster,
        current_signed: SignedStatement,
        members: list[RosterMember],
        policy: RoomPolicy | None = None,
    ) -> Room:
        state = self.keystore.state
        roster = Roster(
            room_id=current.room_id,
            version=current.version + 1,
            prev_hash=b64e(current_signed.body_hash()),
            title=current.title,
            members=members,
            policy=current.policy if policy is None else policy,
            signer_device=state.device_id,
            issued_at=self.clock(),
        )
        signed = sign_statement(state.device_key, roster)
        data = await self.http.request(
            "POST", f"/v1/rooms/{current.room_id}/rosters", json={"roster": dump(signed)}
        )
        await self._check_logged(
            current.room_id, data["logged"], "roster", signed.body_hash(), signed.signature
        )
        return await self._room_from(data)

    async def room(self, room_id: str) -> Room:
        """A room with its roster verified back to version 1, and its mode, caucuses,
        mutes and status replayed from the signed log (not taken from the server)."""
        await self._replay(room_id)
        return await self._room_from(await self.http.request("GET", f"/v1/rooms/{room_id}"))

    async def _replay(self, room_id: str) -> None:
        """Check every event of the room not replayed yet, without decrypting messages."""
        chain = self._chains.get(room_id)
        cursor = chain.position if chain is not None and chain.state_known else 0
        while True:
            page = await self.http.request(
                "GET",
                f"/v1/rooms/{room_id}/events",
                params={"after": cursor, "limit": PAGE, "since": self.logs.since(room_id)},
            )
            _, cursor = await self._process_batch(room_id, page, cursor, decrypt=False)
            if len(page["events"]) < PAGE:
                return

    async def rooms(self) -> list[dict[str, Any]]:
        """Summaries of the rooms this account is in."""
        result: list[dict[str, Any]] = await self.http.request("GET", "/v1/rooms")
        return result

    async def _room_from(self, data: dict[str, Any]) -> Room:
        room_id = str(data["room_id"])
        roster, _ = await self._served_roster(room_id, data)
        chain = self._chains[room_id]
        known = chain.state_known and chain.position >= int(data["last_seq"])
        return Room(
            room_id=room_id,
            title=roster.title,
            status=chain.state.status.value if known else str(data["status"]),
            mode=chain.state.mode.value if known else str(data["mode"]),
            caucuses=sorted(chain.state.caucuses) if known else list(data.get("caucuses", [])),
            muted=sorted(chain.state.muted) if known else [],
            state_verified=known,
            require_verified=roster.policy.require_verified,
            witnesses=list(roster.policy.witnesses),
            witness_quorum=roster.policy.witness_quorum,
            roster_version=roster.version,
            last_seq=int(data["last_seq"]),
            side=str(data["side"]),
            members=[
                Member(
                    account_id=m.account_id,
                    name=m.name,
                    side=m.side,
                    device_ids=[d.device_id for d in m.devices],
                    verified=self.is_verified(m.account_id),
                )
                for m in roster.members
            ],
        )

    async def _current_roster(self, room_id: str) -> tuple[Roster, SignedStatement]:
        data = await self.http.request("GET", f"/v1/rooms/{room_id}")
        return await self._served_roster(room_id, data)

    async def _served_roster(
        self, room_id: str, data: dict[str, Any]
    ) -> tuple[Roster, SignedStatement]:
        """The roster a room answer calls current, if the verified chain agrees.

        Never older than a version already verified: a server winding the room
        back could make us encrypt to a member since removed.
        """
        version = int(data["roster_version"])
        head = self._roster_heads().get(room_id)
        newest = max(
            self._chains[room_id].newest if room_id in self._chains else 0,
            0 if head is None else int(head[0]),
        )
        if version < newest:
            raise VerificationError(
                f"room {room_id}: the server shows roster version {version}, older than "
                f"version {newest} already verified"
            )
        roster, signed = await self._roster(room_id, version)
        if signed_statement(data["roster"]).body != signed.body:
            raise VerificationError(f"room {room_id}: the server's roster differs from the chain")
        return roster, signed

    async def _roster(self, room_id: str, version: int) -> tuple[Roster, SignedStatement]:
        """Roster `version` of a room, verifying every version up to it once."""
        chain = self._chains.setdefault(room_id, _RoomChain())
        for v in range(chain.newest + 1, version + 1):
            data = await self.http.request("GET", f"/v1/rooms/{room_id}/rosters/{v}")
            await self._accept_roster(room_id, signed_statement(data["roster"]))
        if version not in chain.rosters:
            raise VerificationError(f"room {room_id}: no verified roster version {version}")
        return chain.rosters[version]

    async def _accept_roster(self, room_id: str, signed: SignedStatement) -> Roster:
        chain = self._chains.setdefault(room_id, _RoomChain())
        version = signed.body.get("version")
        if not isinstance(version, int) or version < 1:
            raise VerificationError(f"room {room_id}: roster without a valid version")
        if version in chain.rosters:
            if chain.rosters[version][1].body != signed.body:
                raise VerificationError(
                    f"room {room_id}: two different rosters for version {version}"
                )
            return chain.rosters[version][0]
        if version > chain.newest + 1:
            await self._roster(room_id, version - 1)
        previous = chain.rosters.get(version - 1)
        roster = verify_roster_step(signed, room_id=room_id, previous=previous)
        signer = (previous[0] if previous else roster).device_owner(roster.signer_device)
        assert signer is not None
        directory = await self.account(signer.account_id)
        if directory.role is not Role.MEDIATOR or b64e(directory.account_key) != signer.account_key:
            raise VerificationError(
                f"room {room_id}: roster version {roster.version} signer is not a mediator "
                "in the directory"
            )
        if roster.signer_device not in directory.devices:
            raise VerificationError(
                f"room {room_id}: roster signer device is not certified by its account"
            )
        heads, digest = self._roster_heads(), b64e(signed.body_hash())
        head = heads.get(room_id)
        if head is not None and head[0] == roster.version and head[1] != digest:
            raise VerificationError(
                f"room {room_id}: two different rosters for version {roster.version} "
                "(the other was verified in an earlier session)"
            )
        chain.rosters[roster.version] = (roster, signed)
        if head is None or roster.version > head[0]:
            heads[room_id] = [roster.version, digest]
            self.keystore.save()
        return roster

    def _roster_heads(self) -> dict[str, list[Any]]:
        """Room id -> [newest roster version verified, its body hash], kept in the keystore
        so that a later session refuses an older or a different roster too."""
        heads: dict[str, list[Any]] = self.keystore.state.extra.setdefault(_ROSTER_HEADS, {})
        return heads

    # --- moderation -----------------------------------------------------------------

    async def moderate(
        self,
        room_id: str,
        action: Action,
        *,
        mode: Mode | None = None,
        side: Side | None = None,
        account_id: str | None = None,
    ) -> RoomStateView:
        """(Mediators) sign and submit one act on the room; return the room's state after it.

        The answer's checkpoint is checked like a message receipt; after
        ``close`` it is the room's final checkpoint (see `final_checkpoint`).
        """
        current, _ = await self._current_roster(room_id)
        state = self.keystore.state
        try:
            act = Moderation(
                room_id=room_id,
                moderation_id=new_message_id(),
                action=action,
                mode=mode,
                side=None if side is None else party_side(side),
                account_id=account_id,
                roster_version=current.version,
                signer_device=state.device_id,
                issued_at=self.clock(),
            )
        except ValidationError as exc:
            raise ProtocolError(f"invalid moderation act: {exc.errors()[0]['msg']}") from exc
        signed = sign_statement(state.device_key, act)
        result = await self.http.request(
            "POST", f"/v1/rooms/{room_id}/moderation", json={"statement": dump(signed)}
        )
        await self._check_logged(
            room_id, result, "moderation", signed.body_hash(), signed.signature
        )
        answer = result["state"]
        return RoomStateView(
            mode=str(answer["mode"]),
            status=str(answer["status"]),
            caucuses=list(answer["caucuses"]),
            muted=list(answer["muted"]),
            seq=int(result["seq"]),
            checkpoint=str(result["checkpoint"]),
        )

    # --- messages -------------------------------------------------------------------

    async def send(
        self, room_id: str, text: str, *, channel: str = PLENARY, message_id: str | None = None
    ) -> Receipt:
        """Encrypt `text` to exactly the devices of `channel` in the room's current roster,
        sign it and send it.

        The receipt is checked: the server's checkpoint is consistent with what
        this client verified before, and the message's leaf is included in it.
        """
        return await self._send_content(
            room_id, {"type": "text", "text": text}, channel=channel, message_id=message_id
        )

    async def relay(self, room_id: str, seq: int, *, to: str, edit: str | None = None) -> Receipt:
        """(Mediators) pass message `seq` on to channel `to`, re-encrypted and signed by you.

        The relay carries the original's channel, sender and the hash of what its
        sender signed, so anyone who can read both can check what was passed on
        and whether (`edit`) it was changed.
        """
        original = await self._message_at(room_id, seq)
        text = original.text if edit is None else edit
        content = {
            "type": "relay",
            "text": text,
            "edited": edit is not None and edit != original.text,
            "original": {
                "seq": original.seq,
                "channel": original.channel,
                "message_id": original.message_id,
                "sender_account_id": original.sender_account_id,
                "sender_name": original.sender_name,
                "signed_sha256": original.signed_sha256,
                "text_sha256": b64e(sha256(original.text.encode("utf-8"))),
            },
        }
        return await self._send_content(room_id, content, channel=to)

    async def _message_at(self, room_id: str, seq: int) -> Message:
        async for message in self.messages(room_id, after=0):
            if message.seq == seq:
                return message
        raise ProtocolError(f"room {room_id}: no message #{seq} this device can read")

    async def _send_content(
        self,
        room_id: str,
        content: dict[str, Any],
        *,
        channel: str,
        message_id: str | None = None,
    ) -> Receipt:
        if channel_sides(channel) is None:
            raise ProtocolError(f"unknown channel {channel!r}: plenary, caucus-a or caucus-b")
        sealed = None if message_id is None else self._sealed.get((room_id, message_id))
        if sealed is not None:
            # A retry: the very same envelope, so the server answers with the first receipt.
            return await self._post_envelope(room_id, sealed)
        await self.maintain_keys()
        data = await self.http.request("GET", f"/v1/rooms/{room_id}")
        roster, _ = await self._served_roster(room_id, data)
        devices = set(channel_devices(roster, channel))
        recipients = [
            r
            for r in await self._recipients(
                roster, require_verified=roster.policy.require_verified, channel=channel
            )
            if r.device_id in devices
        ]
        state = self.keystore.state
        seen = self.keystore.checkpoint(room_id)
        envelope = seal_envelope(
            content=content,
            room_id=room_id,
            channel=channel,
            roster_version=roster.version,
            sender_device=state.device_id,
            sender_key=state.device_key,
            recipients=recipients,
            sent_at=self.clock(),
            message_id=message_id,
            checkpoint=None
            if seen is None
            else CheckpointRef(size=seen.size, root=b64e(seen.root)),
        )
        if len(self._sealed) >= SEALED_KEPT:
            self._sealed.pop(next(iter(self._sealed)))
        self._sealed[(room_id, envelope.header.message_id)] = envelope
        return await self._post_envelope(room_id, envelope)

    async def _post_envelope(self, room_id: str, envelope: Envelope) -> Receipt:
        """Post an envelope, retrying it unchanged after a lost connection (the server
        answers a repeated message id with its first receipt), and check the receipt."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                result = await self.http.request(
                    "POST",
                    f"/v1/rooms/{room_id}/messages",
                    json=envelope.model_dump(mode="json"),
                )
                break
            except TransportError:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
        await self._check_receipt(room_id, envelope, result)
        return Receipt(
            room_id=room_id,
            seq=int(result["seq"]),
            leaf_index=int(result["leaf_index"]),
            message_id=str(result["message_id"]),
        )

    async def _check_receipt(
        self, room_id: str, envelope: Envelope, result: dict[str, Any]
    ) -> None:
        """The answer's checkpoint is consistent with our view and includes our leaf."""
        await self._check_logged(
            room_id, result, "message", sha256(envelope.signed_bytes()), envelope.signature
        )

    async def _check_logged(
        self,
        room_id: str,
        result: dict[str, Any],
        kind: str,
        payload_hash: bytes,
        signature: str,
        *,
        actor: str | None = None,
    ) -> None:
        """An answer's checkpoint is consistent with our view and includes the leaf of
        what this device (or `actor`) just signed (rebuilt here, not taken from the server)."""
        index = int(result["leaf_index"])
        checkpoint = await self.logs.accept(room_id, str(result["checkpoint"]))
        identity = await self.logs.identity(room_id)
        device = actor or self.keystore.state.device_id
        leaf = LogLeaf(
            origin=identity.origin,
            index=index,
            type=kind,
            actor_device=device,
            server_time=int(result["created_at"]),
            payload_sha256=b64e(payload_hash),
            signature=signature,
        )
        await self.logs.check_leaf(
            room_id,
            checkpoint,
            b64e(leaf.to_bytes()),
            result["inclusion_proof"],
            index=index,
            type=kind,
            actor_device=device,
            payload_hash=payload_hash,
            signature=signature,
        )

    async def _recipients(
        self, roster: Roster, *, require_verified: bool, channel: str = PLENARY
    ) -> list[Recipient]:
        sides = channel_sides(channel) or set()
        recipients = []
        for member in roster.members:
            if member.side not in sides:
                continue
            account = await self.account(member.account_id)
            if b64e(account.account_key) != member.account_key:
                raise VerificationError(
                    f"account {member.account_id}: roster and directory keys differ"
                )
            self.keystore.require_trusted(
                member.account_id, account.account_key, require_verified=require_verified
            )
            for device in member.devices:
                verified = account.devices.get(device.device_id)
                if verified is None or b64e(verified.signing_key) != device.signing_key:
                    raise VerificationError(
                        f"device {device.device_id} of {member.account_id} is not certified"
                    )
                if verified.encryption_key is None:
                    raise VerificationError(
                        f"device {device.device_id} of {member.account_id} has no valid "
                        "encryption key"
                    )
                recipients.append(Recipient(device.device_id, verified.encryption_key))
        return recipients

    async def messages(
        self, room_id: str, *, after: int = 0, follow: bool = False, channel: str | None = None
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after `after` (only `channel`'s, if given); see
        `_messages`."""
        async for message in self._messages(room_id, after=after, follow=follow):
            if channel is None or message.channel == channel:
                yield message

    async def _messages(
        self, room_id: str, *, after: int = 0, follow: bool = False
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages after sequence number `after`.

        Every event is checked before it is handed over: its leaf is in a
        checkpoint signed by the pinned log key and consistent with every
        checkpoint verified before; then the roster chain, the recipients, the
        signature and the sender's view of the log. With `follow`, keep
        streaming over the WebSocket, reconnecting and resuming from the last
        event seen: no gap and no duplicate.
        """
        await self.maintain_keys()
        cursor = after
        while True:
            page = await self.http.request(
                "GET",
                f"/v1/rooms/{room_id}/events",
                params={"after": cursor, "limit": PAGE, "since": self.logs.since(room_id)},
            )
            messages, cursor = await self._process_batch(room_id, page, cursor)
            for message in messages:
                yield message
            if len(page["events"]) < PAGE:
                break
        if not follow:
            return
        stream = EventStream(self.http, room_id, since=lambda: self.logs.since(room_id))
        async for batch in stream.batches(after=cursor):
            messages, cursor = await self._process_batch(room_id, batch, cursor)
            for message in messages:
                yield message

    async def _process_batch(
        self, room_id: str, batch: dict[str, Any], cursor: int, *, decrypt: bool = True
    ) -> tuple[list[Message], int]:
        checkpoint = await self.logs.accept(
            room_id,
            str(batch["checkpoint"]),
            since=int(batch["since"]),
            proof=batch["consistency_proof"],
        )
        messages = []
        for event in batch["events"]:
            message = await self._process(room_id, event, cursor, checkpoint, decrypt=decrypt)
            cursor = int(event["seq"])
            if message is not None:
                messages.append(message)
        return messages, cursor

    async def _process(
        self,
        room_id: str,
        event: dict[str, Any],
        cursor: int,
        checkpoint: Checkpoint,
        *,
        decrypt: bool = True,
    ) -> Message | None:
        seq = int(event["seq"])
        if seq != cursor + 1 or int(event["leaf_index"]) != seq - 1:
            raise VerificationError(f"room {room_id}: event {seq} does not follow {cursor}")
        kind = str(event["kind"])
        payload = event.get("payload")
        if kind in ("roster", "moderation"):
            signed = signed_statement(payload)
            payload_hash, signature = signed.body_hash(), signed.signature
        elif kind == "message":
            try:
                envelope = Envelope.model_validate(payload)
            except ValidationError as exc:
                raise VerificationError(f"room {room_id}: event {seq} is not an envelope") from exc
            payload_hash, signature = sha256(envelope.signed_bytes()), envelope.signature
        else:
            raise VerificationError(f"room {room_id}: event {seq} has unknown kind {kind!r}")
        await self.logs.check_leaf(
            room_id,
            checkpoint,
            event["leaf"],
            event["inclusion_proof"],
            index=seq - 1,
            type=kind,
            actor_device=str(event["sender_device"]),
            payload_hash=payload_hash,
            signature=signature,
            server_time=int(event["created_at"]),
        )
        self._track_root(room_id, seq - 1, b64(str(event["leaf"])))
        chain = self._chains.setdefault(room_id, _RoomChain())
        if seq == 1:
            chain.state, chain.state_known = RoomState(), True
        elif chain.position != seq - 1:
            chain.state_known = False
        chain.position = seq
        if kind == "moderation":
            await self._accept_moderation(room_id, signed, seq)
            return None
        if kind == "roster":
            roster = await self._accept_roster(room_id, signed)
            seen = self._chains[room_id].roster_seqs.setdefault(roster.version, seq)
            if seen != seq:
                raise VerificationError(
                    f"room {room_id}: event {seq} replays roster version {roster.version} "
                    f"of event {seen}"
                )
            return None
        return await self._open(room_id, event, envelope, decrypt=decrypt)

    async def _accept_moderation(self, room_id: str, signed: SignedStatement, seq: int) -> None:
        """Check a moderation act against the roster in force and replay it."""
        chain = self._chains[room_id]
        try:
            act = Moderation.model_validate(signed.body)
        except ValidationError as exc:
            raise VerificationError(f"room {room_id}: event {seq} is not a moderation act") from exc
        if act.room_id != room_id:
            raise VerificationError(f"room {room_id}: event {seq} moderates another room")
        in_force = max((v for v, at in chain.roster_seqs.items() if at < seq), default=None)
        if in_force is not None and act.roster_version != in_force:
            raise VerificationError(
                f"room {room_id}: event {seq} names roster version {act.roster_version}, "
                f"but version {in_force} was in force"
            )
        roster, _ = await self._roster(room_id, act.roster_version)
        signer = roster.device_owner(act.signer_device)
        if signer is None or signer.side is not Side.MEDIATOR:
            raise VerificationError(
                f"room {room_id}: event {seq} is a moderation act not signed by a mediator"
            )
        key = next(d.signing_key for d in signer.devices if d.device_id == act.signer_device)
        try:
            verify_statement(signed, b64d(key), Moderation)
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        first = chain.message_seqs.setdefault(act.moderation_id, seq)
        if first != seq:
            raise VerificationError(
                f"room {room_id}: event {seq} replays moderation act of event {first}"
            )
        if chain.state_known:
            try:
                chain.state = chain.state.apply(act, roster)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq}: the server logged an act the room's "
                    f"rules refuse: {exc}"
                ) from exc

    def _track_root(self, room_id: str, index: int, leaf: bytes) -> None:
        """Keep the root at every size of a log read from its start (for gossip checks)."""
        frontier = self._frontiers.get(room_id, CompactRange())
        if frontier.size != index:
            return
        frontier, _ = frontier.append(leaf_hash(leaf))
        self._frontiers[room_id] = frontier
        self.logs.roots.setdefault(room_id, {})[frontier.size] = frontier.root()

    async def _open(
        self, room_id: str, event: dict[str, Any], envelope: Envelope, *, decrypt: bool = True
    ) -> Message | None:
        header = envelope.header
        seq = int(event["seq"])
        if header.room_id != room_id or header.sender_device != event["sender_device"]:
            raise VerificationError(f"room {room_id}: event {seq} envelope is misaddressed")
        roster, _ = await self._roster(room_id, header.roster_version)
        if channel_sides(header.channel) is None or header.recipients != channel_devices(
            roster, header.channel
        ):
            raise VerificationError(
                f"room {room_id}: event {seq} recipients are not the devices of {header.channel!r}"
            )
        sender = roster.device_owner(header.sender_device)
        if sender is None:
            raise VerificationError(f"room {room_id}: event {seq} sender is not in the roster")
        chain = self._chains[room_id]
        if chain.state_known:
            try:
                chain.state.check_post(roster, sender.account_id, header.channel)
            except NotPermitted as exc:
                raise VerificationError(
                    f"room {room_id}: event {seq} from {sender.name} breaks the room's rules: {exc}"
                ) from exc
        sender_key = next(
            d.signing_key for d in sender.devices if d.device_id == header.sender_device
        )
        try:  # every event, even one this device cannot open
            check_envelope(envelope, b64d(sender_key))
        except VerificationError as exc:
            raise VerificationError(f"room {room_id}: event {seq}: {exc}") from exc
        chain = self._chains[room_id]
        superseded = [
            (v, at) for v, at in chain.roster_seqs.items() if v > header.roster_version and at < seq
        ]
        if superseded:
            version, at = min(superseded)
            raise VerificationError(
                f"room {room_id}: event {seq} is sealed to roster version "
                f"{header.roster_version}, but version {version} took effect at event {at}"
            )
        first = chain.message_seqs.setdefault(header.message_id, seq)
        if first != seq:
            raise VerificationError(
                f"room {room_id}: event {seq} replays message {header.message_id}, "
                f"first seen at event {first}"
            )
        if header.checkpoint is not None:
            await self.logs.check_prefix(
                room_id,
                header.checkpoint.size,
                b64(header.checkpoint.root),
                who=f"{sender.name} (event {seq})",
            )
        state = self.keystore.state
        if state.device_id not in header.recipients or not decrypt:
            return None  # not sealed to this device (another channel, or before it joined)
        content = self._decrypt(envelope, b64d(sender_key))
        text = content.get("text")
        message = Message(
            room_id=room_id,
            seq=seq,
            leaf_index=int(event["leaf_index"]),
            channel=header.channel,
            message_id=header.message_id,
            sender_account_id=sender.account_id,
            sender_name=sender.name,
            sender_device=header.sender_device,
            sent_at=header.sent_at,
            server_time=int(event["created_at"]),
            text=text if isinstance(text, str) else "",
            content=content,
            signed_sha256=b64e(sha256(envelope.signed_bytes())),
            relay=None,
        )
        if content.get("type") == "relay":
            message = replace(message, relay=self._check_relay(room_id, message, sender.side))
        chain.readable[seq] = message
        return message

    def _check_relay(self, room_id: str, message: Message, side: Side) -> Relay:
        """What a relay says it passes on, checked against the original where we read it."""
        where = f"room {room_id}: relay #{message.seq}"
        original = message.content.get("original")
        if side is not Side.MEDIATOR or not isinstance(original, dict):
            raise VerificationError(f"{where} is not a mediator's relay of a message")
        try:
            relay = Relay(
                original_seq=int(original["seq"]),
                original_channel=str(original["channel"]),
                original_sender_name=str(original["sender_name"]),
                original_sender_account_id=str(original["sender_account_id"]),
                edited=bool(message.content.get("edited")),
                checked=False,
            )
            signed_sha256 = str(original["signed_sha256"])
            text_sha256 = str(original["text_sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"{where} is malformed") from exc
        seen = self._chains[room_id].readable.get(relay.original_seq)
        if seen is None:
            return relay  # we cannot read the original: nothing to compare
        if seen.signed_sha256 != signed_sha256 or seen.sender_account_id != (
            relay.original_sender_account_id
        ):
            raise VerificationError(f"{where} misquotes message #{relay.original_seq}")
        if b64e(sha256(seen.text.encode("utf-8"))) != text_sha256:
            raise VerificationError(f"{where} misstates the original text's hash")
        if (seen.text != message.text) != relay.edited:
            raise VerificationError(
                f"{where} says it is {'edited' if relay.edited else 'unedited'}, "
                "but the texts say otherwise"
            )
        return replace(relay, checked=True)

    def _decrypt(self, envelope: Envelope, sender_key: bytes) -> dict[str, Any]:
        """Open with whichever of this device's keys works.

        A message older than every key still held was sealed to a key purged on
        purpose; its signature still verifies, and it reads as ``expired``.
        """
        check_envelope(envelope, sender_key)
        state = self.keystore.state
        records = sorted(state.encryption_keys, key=lambda r: r.created_at, reverse=True)
        failure: VerificationError | None = None
        for record in records:
            try:
                return open_envelope(
                    envelope,
                    sender_signing_key=sender_key,
                    recipient_device=state.device_id,
                    recipient_key=record.private,
                )
            except VerificationError as exc:
                failure = exc
        if records and envelope.header.sent_at < min(r.created_at for r in records):
            return {"type": "expired", "text": ""}
        raise failure or VerificationError("no encryption key left to open the message")
