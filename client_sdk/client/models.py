"""The SDK's result types: rooms, members, messages, receipts, relays."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client_sdk.client.vouching import MemberTrust
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.instruments.base import Act
from client_sdk.protocol.models import Side


@dataclass(frozen=True, slots=True)
class Member:
    """A room member as the verified roster lists it, and how this device trusts it."""

    account_id: str
    name: str
    side: Side
    device_ids: list[str]
    trust: MemberTrust
    """Verified directly, via the mediator (``mediator_vouches`` rooms), not at all, or
    refused (a vouch for another key): `client_sdk.client.vouching`."""

    @property
    def verified(self) -> bool:
        """Whether this device counts the member verified (directly or via the mediator)."""
        return self.trust.verified


@dataclass(frozen=True, slots=True)
class Room:
    """A room with its verified current roster."""

    room_id: str
    title: str
    status: str
    mode: str
    caucuses: list[str]
    muted: list[str]
    state_verified: bool
    """Whether status, mode, caucuses and mutes were replayed from the signed log."""
    require_verified: bool
    mediator_vouches: bool
    """Members take the roster signer's vouches for the members it verified."""
    witnesses: list[str]
    witness_quorum: int
    roster_version: int
    last_seq: int
    side: str
    members: list[Member]
    rekey: list[RekeyNotice] = field(default_factory=list)
    """Devices the roster lists that were revoked, or that members linked since: a
    mediator must re-key the room (`ParleyClient.rekey`); nothing is sealed to a
    revoked device meanwhile."""


@dataclass(frozen=True, slots=True)
class RekeyNotice:
    """Why a room needs re-keying: ``device_id`` of ``account_id`` was ``revoked``, or
    was ``linked`` to the account after the roster was signed."""

    account_id: str
    device_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """The server's acknowledgement of a sent message (after commit)."""

    room_id: str
    seq: int
    leaf_index: int
    message_id: str


@dataclass(frozen=True, slots=True)
class Message:
    """A decrypted message whose signature and recipients were verified."""

    room_id: str
    seq: int
    leaf_index: int
    channel: str
    message_id: str
    sender_account_id: str
    sender_name: str
    sender_device: str
    sent_at: int
    server_time: int
    text: str
    content: dict[str, Any]
    signed_sha256: str
    """Base64url SHA-256 of what the sender signed (header and key wraps)."""
    relay: Relay | None
    """For a mediator's relay: what it passes on, and whether we checked it."""
    instrument: Act | None = None
    """For an instrument event (an offer, an agreement...): the act, checked against the
    room's rules; `content` is then what its sealed part says (``{"type": "instrument"}``
    if it has none or this device cannot read it)."""
    sender_side: str | None = None
    """The sender's side in the signed roster its message names (``mediator``, ``a``,
    ``b``, ``observer``): what the sender cannot choose, unlike its display name."""
    refused: VerificationError | None = None
    """Set for an event reported, not opened: what the server did (a message it accepted
    against a newer roster). Its `text` is empty and its `content` ``{"type":
    "refused"}``; nothing of it is verified content."""


@dataclass(frozen=True, slots=True)
class Person:
    """Who a room change is by or about, as the signed roster lists them."""

    account_id: str
    name: str
    side: str


@dataclass(frozen=True, slots=True)
class RoomChange:
    """A mediator's act on a room, verified like a message and handed over beside the
    messages (`ParleyClient.events`): a moderation act (`action` is its
    `Action` value: ``set-mode``, ``open-caucus``, ``mute``, ``close``...) or a new
    roster version (`action` ``roster``: members `added` or `removed`, the `policy`
    changed, or devices re-keyed; ``created`` for the first)."""

    room_id: str
    seq: int
    leaf_index: int
    server_time: int
    action: str
    by: Person | None
    """The mediator who signed it (None if the roster does not list the device)."""
    roster_version: int
    mode: str | None = None
    channel: str | None = None
    """For a caucus opened or closed: its channel."""
    subject: Person | None = None
    """For a mute, unmute or auditor grant: the account it is about."""
    added: tuple[Person, ...] = ()
    removed: tuple[Person, ...] = ()
    policy: dict[str, Any] | None = None
    """For a roster whose policy changed: the new policy (`RoomPolicy` as JSON)."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A logged receipt: `account_id` received and decrypted event `seq`, said so by its
    signed receipt at event `receipt_seq`, logged at `server_time` (ms)."""

    room_id: str
    seq: int
    account_id: str
    name: str
    receipt_seq: int
    server_time: int


@dataclass(frozen=True, slots=True)
class RoomStateView:
    """A room's state after a moderation act, as the server answered it."""

    mode: str
    status: str
    caucuses: list[str]
    muted: list[str]
    seq: int
    checkpoint: str


@dataclass(frozen=True, slots=True)
class Relay:
    """A relayed message's claim about its original."""

    original_seq: int
    original_channel: str
    original_sender_name: str
    original_sender_account_id: str
    edited: bool
    checked: bool
    """True when this device read the original and the claim matches it."""


@dataclass(frozen=True, slots=True)
class ContactFingerprint:
    """The safety number shared with a contact, and whether the key behind it is the one
    this profile pinned (docs/design.md §3).

    `safety_number` is computed with the key the directory shows now. When a key was
    pinned before (first sight, or verified), `pinned_key_id` and `pinned_safety_number`
    name it; `matches_pinned` is False when the two differ, which means the server
    substituted a key (account keys never change) unless the contact re-enrolled.
    """

    account_id: str
    safety_number: str
    key_id: str
    pinned_key_id: str | None
    pinned_safety_number: str | None
    verified: bool
    """Whether the user verified the key shown now."""

    @property
    def matches_pinned(self) -> bool | None:
        """False if the key shown now differs from the pinned one; None if none was pinned."""
        return None if self.pinned_key_id is None else self.pinned_key_id == self.key_id
