"""Verification that scales with delegations: the mediator vouches (docs/design.md §3).

In a room whose signed policy has ``mediator_vouches``, each roster version
carries, for every member its signer verified by safety number, the
fingerprint of the account key it verified (``vouched_key_sha256``). A member
who verified that mediator takes its word for the others: they count as
"verified via mediator". Direct verification still counts first; a vouch for
another key than the one the member has now is refused outright (the key
changed, or the mediator verified someone else), whatever the policy asks;
and a member who has not verified the signing mediator gets nothing from its
vouches. The roster is signed, so the server can neither add nor strip a vouch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import UntrustedKeyError
from client_sdk.protocol.keys import key_id
from client_sdk.protocol.statements import Roster, RosterMember, key_fingerprint


class Trust(enum.StrEnum):
    """How this device trusts a room member's account key."""

    DIRECT = "direct"
    """The user compared the safety number (`parley verify`)."""
    MEDIATOR = "mediator"
    """Vouched for by the roster's signer, whom the user verified: "verified via mediator"."""
    NONE = "none"
    """Pinned on first sight only."""
    REFUSED = "refused"
    """The roster vouches for another key than the member's: never sealed to."""


@dataclass(frozen=True, slots=True)
class MemberTrust:
    """A member's trust, and in words why (who vouched, or why not)."""

    trust: Trust
    reason: str

    @property
    def verified(self) -> bool:
        """Whether the member counts as verified (directly or via the mediator)."""
        return self.trust in (Trust.DIRECT, Trust.MEDIATOR)

    def require(self, *, require_verified: bool) -> None:
        """Raise `UntrustedKeyError` for a refused vouch, and (with `require_verified`)
        for a member verified neither directly nor via the mediator."""
        if self.trust is Trust.REFUSED or (require_verified and not self.verified):
            raise UntrustedKeyError(self.reason)


def with_vouches(
    keystore: Keystore, members: list[RosterMember], *, vouch: bool
) -> list[RosterMember]:
    """`members` as a mediator signs them: under `vouch`, each member this device's user
    verified (its verified key the one listed) carries that key's fingerprint, and no
    other member a vouch; without it, none does. A mediator never vouches for itself."""
    me = keystore.state.account_id
    signed = []
    for member in members:
        pin = keystore.state.pins.get(member.account_id)
        verified = (
            vouch
            and member.account_id != me
            and keystore.is_verified(member.account_id)
            and pin is not None
            and pin.account_key == b64d(member.account_key)
        )
        fingerprint = key_fingerprint(b64d(member.account_key)) if verified else None
        signed.append(member.model_copy(update={"vouched_key_sha256": fingerprint}))
    return signed


def member_trust(
    keystore: Keystore, roster: Roster, signer: RosterMember, member: RosterMember
) -> MemberTrust:
    """How this device trusts `member` of `roster`, signed by `signer`'s device."""
    account = member.account_id
    key = b64d(member.account_key)
    pin = keystore.state.pins.get(account)
    if keystore.is_verified(account) and pin is not None and pin.account_key == key:
        return MemberTrust(Trust.DIRECT, f"you verified account {account}")
    unverified = (
        f"account {account} is not verified; compare the safety number "
        f"and run `parley verify {account}`"
    )
    vouched = member.vouched_key_sha256
    if not roster.policy.mediator_vouches or vouched is None:
        return MemberTrust(Trust.NONE, unverified)
    current = key_fingerprint(key)
    changed = pin is not None and (pin.account_key != key or pin.pending_key is not None)
    if vouched != current or changed:
        return MemberTrust(
            Trust.REFUSED,
            f"mediator {signer.name} ({signer.account_id}) vouched in roster version "
            f"{roster.version} for key fingerprint {vouched} of account {account}, but its key "
            f"is {key_id(key)} (fingerprint {current})"
            + (", and not the key pinned for it" if changed else "")
            + f": compare the safety number and run `parley verify {account}`",
        )
    signer_pin = keystore.state.pins.get(signer.account_id)
    signer_key = b64d(signer.account_key)
    if not (
        keystore.is_verified(signer.account_id)
        and signer_pin is not None
        and signer_pin.account_key == signer_key
    ):
        return MemberTrust(
            Trust.NONE,
            f"{unverified} (mediator {signer.name} vouches for it, but you have not "
            f"verified the mediator: run `parley verify {signer.account_id}`)",
        )
    return MemberTrust(Trust.MEDIATOR, f"verified via mediator {signer.name} ({signer.account_id})")
