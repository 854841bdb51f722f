"""Receipts (docs/design.md §7): acknowledging events this device received and
decrypted, automatically for what matters in a negotiation, and listing who
acknowledged what and when, as the log proves it."""

from __future__ import annotations

from client_sdk.client.chains import RoomChain, RoomChains
from client_sdk.client.instruments import InstrumentActs
from client_sdk.client.models import Acknowledgement, Message
from client_sdk.client.reader import Reader
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ConflictError, ProtocolError
from client_sdk.protocol.instruments.receipts import Acknowledged, ReceiptAct, acknowledged_key

ACKNOWLEDGED_CONTENT = frozenset({"dossier-disclosure", "document"})
"""Message content acknowledged automatically (instruments' sealed parts always are)."""


class Receipts:
    """This device's receipts, and everyone's as the room's log shows them."""

    def __init__(
        self, acts: InstrumentActs, reader: Reader, chains: RoomChains, keystore: Keystore
    ) -> None:
        self._acts = acts
        self._reader = reader
        self._chains = chains
        self._keystore = keystore

    async def acknowledge(self, room_id: str, seq: int) -> Acknowledgement:
        """Sign and log a receipt for event `seq`, which this device must be able to
        read; if this account acknowledged it already, that receipt."""
        message = await self._reader.message_at(room_id, seq)
        chain = self._chains.chain(room_id)
        earlier = self._acknowledged(chain, seq)
        if earlier is not None:
            return self._view(room_id, chain, earlier)
        await self._submit(room_id, chain, message)
        found = self._acknowledged(chain, seq)
        if found is None:  # our receipt is logged; read up to it
            await self._reader.replay(room_id)
            found = self._acknowledged(chain, seq)
        if found is None:
            raise ProtocolError(f"room {room_id}: the receipt for event {seq} is not in the log")
        return self._view(room_id, chain, found)

    async def logged(self, room_id: str, seq: int | None = None) -> list[Acknowledgement]:
        """Every logged receipt of the room (for event `seq` only, if given), checked and
        replayed from the room's first event."""
        await self._reader.replay(room_id)
        chain = self._chains.chain(room_id)
        return [self._view(room_id, chain, s) for s in chain.ledger.acknowledgements(seq)]

    def seen(self, room_id: str, seq: int | None = None) -> list[Acknowledgement]:
        """The receipts this client has read so far (no request)."""
        chain = self._chains.chain(room_id)
        return [self._view(room_id, chain, s) for s in chain.ledger.acknowledgements(seq)]

    async def automatic(self, room_id: str, messages: list[Message]) -> None:
        """Acknowledge what was just opened, where it calls for a receipt: instruments'
        sealed parts, disclosures and documents (every message, if the profile says so),
        never our own, never twice."""
        chain = self._chains.chain(room_id)
        me = self._keystore.state.account_id
        every = self._keystore.state.auto_receipts
        for message in messages:
            if message.sender_account_id == me or self._acknowledged(chain, message.seq):
                continue
            kind = message.content.get("type")
            sealed = message.instrument is not None and kind != "instrument"
            if sealed or kind in ACKNOWLEDGED_CONTENT or (every and message.instrument is None):
                try:
                    await self._submit(room_id, chain, message)
                except ConflictError:
                    continue  # acknowledged meanwhile (another process, a later page)

    async def _submit(self, room_id: str, chain: RoomChain, message: Message) -> None:
        leaf = chain.leaf_hashes.get(message.seq)
        if leaf is None:
            raise ProtocolError(f"room {room_id}: event {message.seq} was not read from the log")
        me = self._keystore.state.account_id
        await self._acts.submit(
            room_id,
            lambda **common: ReceiptAct(
                seq=message.seq, leaf_sha256=b64e(leaf), account_id=me, **common
            ),
        )

    def _acknowledged(self, chain: RoomChain, seq: int) -> Acknowledged | None:
        found = chain.ledger.states.get(acknowledged_key(seq, self._keystore.state.account_id))
        return found if isinstance(found, Acknowledged) else None

    @staticmethod
    def _view(room_id: str, chain: RoomChain, state: Acknowledged) -> Acknowledgement:
        name = next(
            (
                member.name
                for roster, _ in reversed(list(chain.rosters.values()))
                for member in roster.members
                if member.account_id == state.account_id
            ),
            state.account_id,
        )
        return Acknowledgement(
            room_id=room_id,
            seq=state.target_seq,
            account_id=state.account_id,
            name=name,
            receipt_seq=state.receipt_seq,
            server_time=state.server_time,
        )
