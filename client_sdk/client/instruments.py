"""Submitting instrument acts (docs/design.md §7): the fields every act has filled in,
the sealed part sealed to its channel, the act signed, posted, and its logging checked.

Receipts, offer rounds and agreements build their acts on this part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client_sdk.client.chains import RoomChains
from client_sdk.client.helpers import Clock, dump
from client_sdk.client.http import HttpSession
from client_sdk.client.logs import LogVerifier
from client_sdk.client.sender import Sender
from client_sdk.keystore import Keystore
from client_sdk.protocol.envelope import Envelope, new_message_id
from client_sdk.protocol.errors import TransportError, VerificationError
from client_sdk.protocol.instruments.acts import sign_act
from client_sdk.protocol.instruments.base import Act
from client_sdk.protocol.statements import Roster
from client_sdk.protocol.wire.instruments import ActOut

ATTEMPTS = 3

MakeAct = Callable[..., Act]
"""Builds the act from the common fields (room_id, instrument_id, roster_version,
signer_device, issued_at, sealed) given as keyword arguments."""


class InstrumentActs:
    """Signs and submits this device's instrument acts."""

    def __init__(
        self,
        http: HttpSession,
        logs: LogVerifier,
        chains: RoomChains,
        sender: Sender,
        keystore: Keystore,
        clock: Clock,
    ) -> None:
        self._http = http
        self._logs = logs
        self._chains = chains
        self._sender = sender
        self._keystore = keystore
        self._clock = clock

    async def submit(
        self,
        room_id: str,
        make: MakeAct,
        *,
        sealed: tuple[str, dict[str, Any]] | None = None,
        roster: Roster | None = None,
        content_key: bytes | None = None,
    ) -> tuple[Act, ActOut]:
        """Build, sign and submit one act; `sealed` is (channel, content) for its sealed
        part, sealed under `content_key` if given (a document's chunks were sealed under
        a key derived from it). Returns the act and where it landed, after checking
        that its leaf is in a checkpoint consistent with everything verified before."""
        if roster is None:
            roster, _ = await self._chains.current(room_id)
        instrument_id = new_message_id()
        envelope: Envelope | None = None
        if sealed is not None:
            channel, content = sealed
            envelope = await self._sender.seal(
                room_id,
                content,
                channel=channel,
                message_id=instrument_id,
                roster=roster,
                content_key=content_key,
            )
        act = make(
            room_id=room_id,
            instrument_id=instrument_id,
            roster_version=roster.version,
            signer_device=self._keystore.state.device_id,
            issued_at=self._clock(),
            sealed=envelope,
        )
        signed = sign_act(self._keystore.state.device_key, act)
        for attempt in range(ATTEMPTS):
            try:  # a retried act gets its first answer: the id is the idempotency key
                result = await self._http.call(
                    ActOut,
                    "POST",
                    f"/v1/rooms/{room_id}/instruments",
                    json={"statement": dump(signed)},
                )
                break
            except TransportError:
                if attempt == ATTEMPTS - 1:
                    raise
        await self._logs.check_logged(
            room_id,
            result,
            kind="instrument",
            actor_device=self._keystore.state.device_id,
            payload_hash=signed.body_hash(),
            signature=signed.signature,
        )
        if result.instrument_id != instrument_id or result.seq != result.leaf_index + 1:
            raise VerificationError(
                f"room {room_id}: the answer names act {result.instrument_id} at event "
                f"{result.seq}, leaf {result.leaf_index}; sent {instrument_id}"
            )
        return act, result
