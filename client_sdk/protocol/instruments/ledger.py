"""Judging an instrument act, the same way on the server, in members' SDKs and in the
audit (docs/design.md §7), and the ledger of every state a room's acts built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.instruments.acts import verify_act
from client_sdk.protocol.instruments.agreements import Agreement, agreement_key
from client_sdk.protocol.instruments.base import Act, Context, State, States, check_sealed
from client_sdk.protocol.instruments.receipts import Acknowledged
from client_sdk.protocol.statements import Roster, SignedStatement

LeafHashes = Callable[[int], bytes | None]
"""The leaf hash of event `seq` of the room, or None where the judge does not hold it."""


@dataclass(frozen=True, slots=True)
class Judged:
    """An act found good: the act, the device that signed it, and the states it changes."""

    act: Act
    changes: dict[str, State]
    channel: str | None
    """The channel its sealed part is sealed to (None if it has none)."""


def judge(
    signed: SignedStatement,
    states: States,
    *,
    room_id: str,
    roster: Roster,
    seq: int,
    server_time: int,
    leaf_hash: LeafHashes,
) -> Judged:
    """Check one act at event `seq` under `roster` (the roster in force).

    The signature must be a device's of the roster, the act for this room and
    this roster version, every earlier event it names by leaf hash that event's
    leaf (where `leaf_hash` knows it), and its sealed part as its rules say.
    Raises `VerificationError` for a forged or malformed act and `NotPermitted`
    for one the rules refuse.
    """
    device = signed.body.get("signer_device")
    signer = roster.device_owner(device) if isinstance(device, str) else None
    if signer is None:
        raise VerificationError("the act is not signed by a device of the roster in force")
    key = b64d(signer.signing_key_of(signer_device := str(device)))
    act = verify_act(signed, key)
    if act.signer_device != signer_device:
        raise VerificationError("the act's signer device is not the one that signed it")
    if act.room_id != room_id:
        raise VerificationError(f"the act is for room {act.room_id}")
    if act.roster_version != roster.version:
        raise VerificationError(
            f"the act names roster version {act.roster_version}, "
            f"but version {roster.version} is in force"
        )
    for target, claimed in act.leaf_refs().items():
        if target >= seq:
            continue  # the rules refuse it below
        actual = leaf_hash(target)
        if actual is not None and b64e(actual) != claimed:
            raise VerificationError(f"the act names a leaf hash that is not event {target}'s")
    context = Context(
        room_id=room_id, roster=roster, signer=signer, seq=seq, server_time=server_time
    )
    changes = act.apply(states, context)
    channel = act.sealed_channel(states, context)
    try:
        check_sealed(act, channel, roster, key)
    except ProtocolError as exc:
        raise VerificationError(str(exc)) from exc
    return Judged(act=act, changes=changes, channel=channel)


@dataclass(slots=True)
class Ledger:
    """Every state a room's instrument acts built, as a member or auditor replays them."""

    states: dict[str, State] = field(default_factory=dict)

    def view(self, keys: list[str]) -> dict[str, State]:
        """The states under `keys` (for judging the next act)."""
        return {key: self.states[key] for key in keys if key in self.states}

    def record(self, judged: Judged) -> None:
        """Keep what a judged act changed."""
        self.states.update(judged.changes)

    def acknowledgements(self, seq: int | None = None) -> list[Acknowledged]:
        """The receipts logged so far (for event `seq` only, if given), in log order."""
        found = [
            state
            for state in self.states.values()
            if isinstance(state, Acknowledged) and (seq is None or state.target_seq == seq)
        ]
        return sorted(found, key=lambda state: state.receipt_seq)

    def agreements(self) -> list[Agreement]:
        """Every agreement proposed so far, in log order."""
        found = [state for state in self.states.values() if isinstance(state, Agreement)]
        return sorted(found, key=lambda state: state.seq)

    def agreement(self, agreement_id: str) -> Agreement | None:
        """One agreement, if it was proposed."""
        found = self.states.get(agreement_key(agreement_id))
        return found if isinstance(found, Agreement) else None
