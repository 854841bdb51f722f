"""The directory of accounts as this device trusts it: every account checked by its own
signatures and by the directory log, pinned on first sight, and compared by safety number.
"""

from __future__ import annotations

from client_sdk.client.helpers import Clock
from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import ContactFingerprint
from client_sdk.client.verify import VerifiedAccount, verify_account
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import (
    InvalidRequestError,
    KeySubstitutedError,
    ServerMisbehaved,
    UntrustedKeyError,
    VerificationError,
)
from client_sdk.protocol.fingerprint import check_safety_number, safety_number
from client_sdk.protocol.keys import key_id
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID
from client_sdk.protocol.models import Role
from client_sdk.protocol.wire.identity import AccountOut, AccountSummary


class Directory:
    """Accounts from the server's directory, verified and pinned in the keystore."""

    def __init__(
        self, http: HttpSession, logs: LogVerifier, keystore: Keystore, clock: Clock
    ) -> None:
        self._http = http
        self._logs = logs
        self._keystore = keystore
        self._clock = clock

    async def account(self, account_id: str) -> VerifiedAccount:
        """A directory account, checked by its own signatures and pinned on first sight.

        Raises `UntrustedKeyError` when its key is not the one pinned: account
        keys never change, so a change (even of a contact never verified) is
        trusted only after the user compares the safety number again.
        """
        account = await self.fetch(account_id)
        pin = self._keystore.state.pins.get(account_id)
        if pin is not None and pin.verified_key is None and pin.account_key != account.account_key:
            # Keystore.pin would replace an unverified pin silently; refuse instead.
            raise UntrustedKeyError(
                f"the key of account {account_id} changed (pinned {key_id(pin.account_key)}, "
                f"now {key_id(account.account_key)}); compare the safety number and run "
                f"`parley verify {account_id}` to trust the new key"
            )
        self._keystore.pin(account_id, account.account_key, self._clock())
        self._keystore.require_trusted(account_id, account.account_key)
        return account

    async def fetch(self, account_id: str) -> VerifiedAccount:
        """The account as the directory shows it now, checked by its signatures and by
        the directory log (every statement about its keys is a proven leaf); not pinned."""
        since = self._logs.since(DIRECTORY_LOG_ID)
        try:
            data = await self._http.call(
                AccountOut, "GET", f"/v1/accounts/{account_id}", params={"since": since}
            )
        except InvalidRequestError as exc:
            await self._logs.refused_since(DIRECTORY_LOG_ID, since, exc)
            raise
        operator = (await self._logs.identity(DIRECTORY_LOG_ID)).key.public_key
        try:
            account = verify_account(
                account_id, data.model_dump(mode="json"), now=self._clock(), operator_key=operator
            )
        except (ServerMisbehaved, UntrustedKeyError):
            raise
        except VerificationError as exc:
            # What the directory serves must be signed by the account's key: anything
            # else is a key the server put there.
            where = f"account {account_id}"
            detail = str(exc) if str(exc).startswith(where) else f"{where}: {exc}"
            raise KeySubstitutedError(detail) from exc
        await self._check_logged(account, data, operator, asked=since)
        return account

    async def _check_logged(
        self, account: VerifiedAccount, data: AccountOut, operator_key: bytes, *, asked: int
    ) -> None:
        """Every statement served about the account must be a leaf of the directory log."""
        proof = data.directory
        if proof is None:
            raise VerificationError(f"account {account.account_id}: no directory proof")
        checkpoint = await self._logs.accept_newest(
            DIRECTORY_LOG_ID,
            proof.checkpoint,
            asked=asked,
            since=proof.since,
            proof=proof.consistency_proof,
        )
        logged: set[bytes] = set()
        for entry in proof.entries:
            statement = entry.statement
            logged_key = statement.body.get("account_key")
            if entry.kind == "registration" and logged_key != b64e(account.account_key):
                raise KeySubstitutedError(
                    f"account {account.account_id}: the directory log holds a registration "
                    f"with another account key ({logged_key}); account keys never change, so "
                    "the server registered a second key for this account"
                )
            by_operator = entry.kind == "revocation" and statement.body.get("authority") == (
                "operator"
            )
            actor = operator_key if by_operator else account.account_key
            await self._logs.check_leaf(
                DIRECTORY_LOG_ID,
                checkpoint,
                entry.leaf,
                entry.inclusion_proof,
                index=entry.index,
                type=entry.kind,
                actor_device=key_id(actor),
                payload_hash=statement.body_hash(),
                signature=statement.signature,
            )
            logged.add(statement.body_hash())
        served = [data.registration]
        for device in data.devices:
            served.append(device.cert)
            if device.encryption_key is not None:
                served.append(device.encryption_key.cert)
        for statement in served:
            if statement.body_hash() not in logged:
                raise KeySubstitutedError(
                    f"account {account.account_id}: a key statement is not in the directory log"
                )

    async def summaries(self, role: Role | None = None) -> list[AccountSummary]:
        """Enrolled accounts (unverified summaries: id, name, role)."""
        params = {"role": role.value} if role else None
        return await self._http.call_list(AccountSummary, "GET", "/v1/accounts", params=params)

    async def safety_number(self, account_id: str) -> str:
        """The safety number this account shares with `account_id`, to compare out of band."""
        other = await self.fetch(account_id)
        state = self._keystore.state
        return safety_number(
            state.account_id, state.account_key.public_bytes(), account_id, other.account_key
        )

    async def fingerprint(self, account_id: str) -> ContactFingerprint:
        """The safety number shared with `account_id`, set against the key pinned for it
        (nothing is pinned or trusted here: `parley verify` does that)."""
        other = await self.fetch(account_id)
        state = self._keystore.state
        me, my_key = state.account_id, state.account_key.public_bytes()
        pin = state.pins.get(account_id)
        pinned = None if pin is None else pin.account_key
        return ContactFingerprint(
            account_id=account_id,
            safety_number=safety_number(me, my_key, account_id, other.account_key),
            key_id=key_id(other.account_key),
            pinned_key_id=None if pinned is None else key_id(pinned),
            pinned_safety_number=(
                None if pinned is None else safety_number(me, my_key, account_id, pinned)
            ),
            verified=pinned == other.account_key and self._keystore.is_verified(account_id),
        )

    async def verify_contact(self, account_id: str, number: str) -> None:
        """Mark `account_id` verified if `number` is your shared safety number."""
        other = await self.fetch(account_id)
        state = self._keystore.state
        check_safety_number(
            number,
            state.account_id,
            state.account_key.public_bytes(),
            account_id,
            other.account_key,
        )
        self._keystore.pin_and_verify(account_id, other.account_key, self._clock())

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact's current key."""
        return self._keystore.is_verified(account_id)
