"""What the parts of `ParleyClient` share: its state, the constants, and the check
that an answer's checkpoint includes the leaf of what this device just signed.

`ParleyClient` is assembled from feature mixins (`_rooms`, `_sending`, `_reading`)
over this base; the stubs below are the methods one part calls on another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.client.models import (
    Message,
    _RoomChain,
)
from client_sdk.client.verify import (
    VerifiedAccount,
)
from client_sdk.keystore import (
    Keystore,
)
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.envelope import (
    Envelope,
)
from client_sdk.protocol.leaf import LogLeaf
from client_sdk.protocol.merkle import CompactRange
from client_sdk.protocol.statements import (
    Roster,
    SignedStatement,
)

PLENARY = "plenary"
PAGE = 200
SEND_ATTEMPTS = 3
SEALED_KEPT = 1024
"""Envelopes remembered by message id, so that a retried send is the same envelope."""
DAY_MS = 24 * 3600 * 1000
"""One day in milliseconds, the unit of every time the SDK keeps."""
DEFAULT_KEY_LIFETIME_MS = 14 * DAY_MS
"""How long a new encryption key's certificate is valid (``not_after``)."""
ROTATE_AFTER_MS = 7 * DAY_MS
"""Encryption keys are replaced weekly..."""
RETIRED_KEY_GRACE_MS = 7 * DAY_MS
"""...and a replaced private key is deleted a week later, bounding what a stolen
device can decrypt from the past."""
Clock = Callable[[], int]


class _ClientBase:
    """State and cross-part methods of a `ParleyClient`."""

    keystore: Keystore
    clock: Clock
    http: HttpSession
    logs: LogVerifier
    _chains: dict[str, _RoomChain]
    _frontiers: dict[str, CompactRange]
    _sealed: dict[tuple[str, str], Envelope]
    _accounts: dict[str, VerifiedAccount]

    async def account(self, account_id: str) -> VerifiedAccount:
        """A verified, pinned directory account (see `ParleyClient.account`)."""
        raise NotImplementedError

    def is_verified(self, account_id: str) -> bool:
        """Whether the user verified this contact (see `ParleyClient.is_verified`)."""
        raise NotImplementedError

    async def maintain_keys(self) -> list[str]:
        """Rotate and purge encryption keys (see `ParleyClient.maintain_keys`)."""
        raise NotImplementedError

    async def _served_roster(
        self, room_id: str, data: dict[str, Any]
    ) -> tuple[Roster, SignedStatement]:
        raise NotImplementedError

    async def _roster(self, room_id: str, version: int) -> tuple[Roster, SignedStatement]:
        raise NotImplementedError

    async def _accept_roster(self, room_id: str, signed: SignedStatement) -> Roster:
        raise NotImplementedError

    async def _replay(self, room_id: str) -> None:
        raise NotImplementedError

    def messages(
        self, room_id: str, *, after: int = 0, follow: bool = False, channel: str | None = None
    ) -> AsyncIterator[Message]:
        """Verified, decrypted messages (see `ParleyClient.messages`)."""
        raise NotImplementedError

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
