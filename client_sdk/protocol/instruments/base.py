"""What every instrument act is and how it is judged (docs/design.md §7).

An act is a signed statement (label ``instrument``) naming the room, the
roster version in force, the signing device and an ``instrument_id`` (the
idempotency key). What the server must see to enforce the rules is in the
clear; what it must not see travels in ``sealed``, an envelope (§5) inside
the statement, signed by the same device and sealed to exactly the devices
of the channel the act's rules name.

The rules are pure: an act names the state keys it reads and writes
(`Act.keys`), and `Act.apply` turns the states found under those keys into
the states after it, or raises `NotPermitted`. The server keeps the states
in a table and loads only the keys an act names; members' SDKs and the
auditor keep them all in a `Ledger` (`ledger.py`) and replay the same rules.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from client_sdk.protocol.envelope import Envelope, check_envelope
from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.mediation import channel_devices, channel_sides
from client_sdk.protocol.models import Ident, Int, WireModel
from client_sdk.protocol.statements import Roster, RosterMember


class State(WireModel):
    """What the log says so far about one key (a round, an agreement, a receipt...)."""

    kind: str


States = Mapping[str, State]
"""The states found under the keys an act names (a key not there has no state yet)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Where an act lands: its room, the roster in force, the signer's entry in it, the
    event it is (or will be) and the server's time written into its leaf."""

    room_id: str
    roster: Roster
    signer: RosterMember
    seq: int
    server_time: int


class Act(WireModel):
    """The fields every instrument act has; each kind adds its own and its rules."""

    type: Literal["instrument"] = "instrument"
    act: str
    room_id: Ident
    instrument_id: Ident
    roster_version: Int = Field(ge=1)
    signer_device: Ident
    issued_at: Int
    sealed: Envelope | None = None
    """The part the server must not read, sealed to the channel `sealed_channel` names."""

    @abstractmethod
    def keys(self) -> list[str]:
        """The state keys this act reads and writes."""

    @abstractmethod
    def apply(self, states: States, context: Context) -> dict[str, State]:
        """The states after this act (only the keys that change); `NotPermitted` if the
        rules refuse it."""

    def sealed_channel(self, states: States, context: Context) -> str | None:
        """The channel the sealed part must be sealed to (None: the act has none).

        Called after `apply` accepted the act, with the states before it.
        """
        return None

    def leaf_refs(self) -> dict[int, str]:
        """Earlier events this act names by leaf hash (event seq -> base64url SHA-256 of
        its leaf): whoever judges the act checks each against the log."""
        return {}


def check_sealed(act: Act, channel: str | None, roster: Roster, signer_key: bytes) -> None:
    """The sealed part is there exactly when the rules name a channel, is this act's
    own (room, roster version, id and device) and is sealed to exactly that channel's
    devices, signed by the act's device. Raises `VerificationError`."""
    envelope = act.sealed
    if channel is None:
        if envelope is not None:
            raise VerificationError(f"a {act.act} act carries no sealed part")
        return
    if envelope is None:
        raise VerificationError(f"a {act.act} act must carry its sealed part (to {channel})")
    header = envelope.header
    if (
        header.room_id != act.room_id
        or header.message_id != act.instrument_id
        or header.sender_device != act.signer_device
        or header.roster_version != act.roster_version
    ):
        raise VerificationError(f"the sealed part of a {act.act} act belongs to another act")
    if channel_sides(header.channel) is None or header.channel != channel:
        raise VerificationError(f"the sealed part of a {act.act} act must be sealed to {channel}")
    if header.recipients != channel_devices(roster, channel):
        raise VerificationError(
            f"the sealed part of a {act.act} act must be sealed to exactly the devices of "
            f"{channel} at roster version {act.roster_version}"
        )
    check_envelope(envelope, signer_key)
