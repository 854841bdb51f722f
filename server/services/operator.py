"""What the operator sees and does on the server host (`parley admin ...`): every
account, the pending invitations, and cutting an account off.

Disabling an enrolled account is the operator's revocation of the whole account
(`DeviceService.operator_revoke`): a directory leaf signed by the log key, which
every client checks, its devices' tokens refused at once and no new device linked.
A pending account was never in the directory, so disabling it (like revoking its
invitation) ends its enrollment token and marks it ``cancelled``, with nothing
for clients to see.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.errors import Conflict, NotFound
from server.services.common import Clock
from server.services.devices import DeviceService, RevocationDone
from server.storage.accounts import AccountRepository, AccountRow
from server.storage.database import Database


@dataclass(frozen=True, slots=True)
class AccountListing:
    """An account, who invited it (None: the operator), and its active devices."""

    account: AccountRow
    invited_by: str | None
    devices: int


@dataclass(frozen=True, slots=True)
class InviteListing:
    """A pending account whose enrollment token is live, and when the token expires."""

    account: AccountRow
    invited_by: str | None
    expires_at: int


@dataclass(frozen=True, slots=True)
class Disabled:
    """A disabled account: ``revoked`` (logged: `revocation`) or ``cancelled``."""

    account_id: str
    status: str
    revocation: RevocationDone | None


class OperatorService:
    """Listings and account changes for the operator's commands."""

    def __init__(self, database: Database, clock: Clock, devices: DeviceService) -> None:
        self.database = database
        self.clock = clock
        self.devices = devices

    async def accounts(self) -> list[AccountListing]:
        """Every account, oldest first, whatever its status."""
        async with self.database.read() as conn:
            rows = await AccountRepository(conn).list_all()
        return [AccountListing(account, by, devices) for account, by, devices in rows]

    async def invites(self) -> list[InviteListing]:
        """The invitations that can still be redeemed (never their tokens)."""
        async with self.database.read() as conn:
            rows = await AccountRepository(conn).pending_invites(self.clock())
        return [InviteListing(account, by, expires) for account, by, expires in rows]

    async def revoke_invite(self, account_id: str) -> None:
        """End the invitation of a pending account (`account_id`, as `invites` shows)."""
        now = self.clock()
        async with self.database.write() as conn:
            repo = AccountRepository(conn)
            if not any(a.id == account_id for a, _, _ in await repo.pending_invites(now)):
                raise NotFound(f"no pending invitation for account {account_id}")
            await repo.cancel_invite(account_id, now)

    async def disable(self, account_id: str, *, reason: str = "") -> Disabled:
        """Cut an account off for good: it can no longer authenticate, enroll or link a
        device. An enrolled account's revocation is logged in the directory."""
        async with self.database.write() as conn:  # the status is read where it changes
            repo = AccountRepository(conn)
            account = await repo.get(account_id)
            if account is None:
                raise NotFound(f"no account {account_id}")
            if account.status in ("revoked", "cancelled"):
                raise Conflict(f"account {account_id} is {account.status} already")
            if account.status == "pending":
                await repo.cancel_invite(account_id, self.clock())
                return Disabled(account_id, "cancelled", None)
        # Enrolled: operator_revoke checks again in its own transaction.
        done = await self.devices.operator_revoke(account_id, reason=reason or "disabled")
        return Disabled(account_id, "revoked", done)
