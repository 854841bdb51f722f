"""Sealed-offer rounds (docs/design.md §7) from a member's device: opening a round,
committing an offer (its opening kept in this profile's sealed `OfferStore` and
escrowed to the mediators' devices), revealing it, closing a round whose deadline
passed, opening a side's escrow, settling a blind round, and showing rounds with
every opening checked against its commitment."""

from __future__ import annotations

import os
from collections.abc import Sequence

from client_sdk.client.chains import RoomChains
from client_sdk.client.helpers import Clock
from client_sdk.client.instruments import InstrumentActs
from client_sdk.client.models import Message
from client_sdk.client.offer_models import KeptOffer, OfferAct, OfferEvent, OfferRound
from client_sdk.client.offer_store import OfferStore
from client_sdk.client.offer_views import (
    build_rounds,
    checked_opening,
    describe,
    round_of,
    round_state,
)
from client_sdk.client.reader import Reader
from client_sdk.client.sender import Sender
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ConflictError, ProtocolError, VerificationError
from client_sdk.protocol.instruments.offers import (
    SALT_LEN,
    Opening,
    OpeningContent,
    PartySide,
    QuestionContent,
    Rule,
    SettlementContent,
    check_opening,
    commitment,
    open_escrow,
    parse_decimal,
    seal_escrow,
    settle,
)
from client_sdk.protocol.instruments.rounds import (
    EscrowOpenAct,
    OfferCommitAct,
    OfferRevealAct,
    OfferSettleAct,
    RoundCloseAct,
    RoundOpenAct,
    RoundState,
)
from client_sdk.protocol.mediation import PLENARY
from client_sdk.protocol.models import Side


class Offers:
    """This device's part in the room's sealed-offer rounds."""

    def __init__(
        self,
        acts: InstrumentActs,
        reader: Reader,
        chains: RoomChains,
        sender: Sender,
        keystore: Keystore,
        store: OfferStore,
        clock: Clock,
    ) -> None:
        self._acts = acts
        self._reader = reader
        self._chains = chains
        self._sender = sender
        self._keystore = keystore
        self._store = store
        self._clock = clock

    async def open_round(
        self,
        room_id: str,
        question: str,
        *,
        blind: bool = False,
        deadline: int | None = None,
        rule: Rule = "overlap",
        offering_side: PartySide = "a",
        sides: Sequence[PartySide] = ("a", "b"),
    ) -> OfferAct:
        """(Mediators) open a round: `question` sealed to plenary; `deadline` in ms since
        the epoch (judged by the server's time). Its round id is the act's id."""
        content = QuestionContent(question=question).model_dump(mode="json")
        act, result = await self._acts.submit(
            room_id,
            lambda **common: RoundOpenAct(
                blind=blind,
                deadline=deadline,
                rule=rule,
                offering_side=offering_side,
                sides=sorted(set(sides)),
                **common,
            ),
            sealed=(PLENARY, content),
        )
        return OfferAct(room_id, act.instrument_id, act.act, result.seq)

    async def commit(self, room_id: str, round_id: str, value: str, note: str = "") -> OfferAct:
        """Commit this account's side to `value` (a decimal number) in round `round_id`:
        the opening is kept in this profile first, then the commitment and its escrow to
        every mediator device are logged."""
        roster, _ = await self._chains.current(room_id)
        state = self._keystore.state
        me = roster.member(state.account_id)
        if me is None or me.side not in (Side.A, Side.B):
            raise ProtocolError("only a member of side a or b commits an offer")
        side: PartySide = "a" if me.side is Side.A else "b"
        opening = Opening(salt=b64e(os.urandom(SALT_LEN)), value=parse_decimal(value), note=note)
        digest = commitment(
            room_id=room_id,
            round_id=round_id,
            side=side,
            account_id=state.account_id,
            opening=opening,
        )
        mediators = await self._sender.recipients(roster, {Side.MEDIATOR})
        escrow = seal_escrow(
            opening,
            {r.device_id: r.encryption_key for r in mediators},
            room_id=room_id,
            round_id=round_id,
            side=side,
            commitment=digest,
        )
        self._store.keep(
            KeptOffer(
                room_id=room_id,
                round_id=round_id,
                side=side,
                account_id=state.account_id,
                commitment=digest,
                opening=opening,
                created_at=self._clock(),
            )
        )
        _, result = await self._acts.submit(
            room_id,
            lambda **common: OfferCommitAct(
                round_id=round_id,
                side=side,
                account_id=state.account_id,
                commitment=digest,
                escrow=escrow,
                **common,
            ),
            roster=roster,
        )
        return OfferAct(room_id, round_id, "offer-commit", result.seq, side=side, value=value)

    async def reveal(self, room_id: str, round_id: str) -> OfferAct:
        """Reveal this account's offer in round `round_id` (to plenary, or in a blind
        round to its side's caucus); if the deadline passed and the round is still
        open, its close is logged first."""
        state = await self._round(room_id, round_id)
        me = self._keystore.state.account_id
        side, offer = next(
            ((s, o) for s, o in state.offers.items() if o.account_id == me), (None, None)
        )
        if side is None or offer is None:
            raise ProtocolError(f"this account has no offer committed in round {round_id}")
        kept = self._store.find(room_id, round_id, offer.commitment)
        if kept is None:
            raise ProtocolError(
                f"this profile does not hold the opening of side {side}'s offer in round "
                f"{round_id} (committed from another device?)"
            )
        await self._close_if_due(room_id, state)
        content = OpeningContent(round_id=round_id, side=side, opening=kept.opening)
        _, result = await self._acts.submit(
            room_id,
            lambda **common: OfferRevealAct(round_id=round_id, side=side, **common),
            sealed=(state.channel_of(side), content.model_dump(mode="json")),
        )
        return OfferAct(room_id, round_id, "offer-reveal", result.seq, side, kept.opening.value)

    async def close(self, room_id: str, round_id: str) -> OfferAct:
        """Log the round's close (after its deadline; a mediator's, if it has none)."""
        _, result = await self._acts.submit(
            room_id, lambda **common: RoundCloseAct(round_id=round_id, **common)
        )
        return OfferAct(room_id, round_id, "round-close", result.seq)

    async def open_escrow(self, room_id: str, round_id: str, side: PartySide) -> OfferAct:
        """(Mediators) open `side`'s escrow with this device's key, check it against the
        side's commitment and log it (closing the round first if it is still open)."""
        messages = [m async for m in self._reader.messages(room_id)]
        state = self._state(room_id, round_id)
        offer = state.offers.get(side)
        commit = next(
            (
                m.instrument
                for m in messages
                if isinstance(m.instrument, OfferCommitAct)
                and m.instrument.round_id == round_id
                and m.instrument.side == side
            ),
            None,
        )
        if offer is None or commit is None:
            raise ProtocolError(f"side {side} has not committed in round {round_id}")
        device = self._keystore.state.device_id
        sealed = commit.escrow.get(device)
        if sealed is None:
            raise ProtocolError(f"side {side}'s escrow is not sealed to this device")
        keys = [r.private for r in self._keystore.state.encryption_keys]
        opening = open_escrow(
            sealed,
            keys,
            room_id=room_id,
            round_id=round_id,
            side=side,
            commitment=offer.commitment,
            device_id=device,
        )
        try:
            check_opening(
                offer.commitment,
                room_id=room_id,
                round_id=round_id,
                side=side,
                account_id=offer.account_id,
                opening=opening,
            )
        except VerificationError as exc:
            raise VerificationError(f"side {side}'s escrow does not open its commitment") from exc
        if state.closed_seq is None:
            await self._close(room_id, round_id)
        content = OpeningContent(round_id=round_id, side=side, opening=opening)
        _, result = await self._acts.submit(
            room_id,
            lambda **common: EscrowOpenAct(round_id=round_id, side=side, **common),
            sealed=(state.channel_of(side), content.model_dump(mode="json")),
        )
        return OfferAct(room_id, round_id, "escrow-open", result.seq, side, opening.value)

    async def settle(self, room_id: str, round_id: str) -> OfferAct:
        """(Mediators) announce whether a blind round's offers overlap (and the midpoint,
        if its rule says so), computed from both openings checked here."""
        messages = [m async for m in self._reader.messages(room_id)]
        state = self._state(room_id, round_id)
        if not state.blind:
            raise ProtocolError(f"round {round_id} is not blind: its offers are shown as such")
        values: dict[str, str] = {}
        for message in messages:
            if round_of(message) == round_id and isinstance(
                message.instrument, OfferRevealAct | EscrowOpenAct
            ):
                opening, _ = checked_opening(room_id, state, message)
                if opening is not None:
                    values.setdefault(message.instrument.side, opening.value)
        missing = [side for side in state.sides if side not in values]
        if missing:
            raise ProtocolError(
                f"no opening of side {', '.join(missing)} that opens its commitment: reveal "
                "it, or open its escrow after the round closes"
            )
        overlap, midpoint = settle(values, offering_side=state.offering_side, rule=state.rule)
        content = SettlementContent(round_id=round_id, overlap=overlap, midpoint=midpoint)
        named = {side: offer.commitment for side, offer in state.offers.items()}
        _, result = await self._acts.submit(
            room_id,
            lambda **common: OfferSettleAct(round_id=round_id, commitments=named, **common),
            sealed=(PLENARY, content.model_dump(mode="json")),
        )
        return OfferAct(
            room_id, round_id, "offer-settle", result.seq, overlap=overlap, midpoint=midpoint
        )

    async def rounds(self, room_id: str, round_id: str | None = None) -> list[OfferRound]:
        """The room's rounds (only `round_id`, if given), read and checked from the log:
        each opening against its commitment, a settlement against the openings held."""
        messages = [m async for m in self._reader.messages(room_id) if round_of(m) is not None]
        chain = self._chains.chain(room_id)
        if round_id is not None:
            self._state(room_id, round_id)
        names = {
            member.account_id: member.name
            for roster, _ in chain.rosters.values()
            for member in roster.members
        }
        found = build_rounds(
            room_id,
            chain.ledger.states,
            messages,
            names,
            lambda rid, digest: self._store.find(room_id, rid, digest),
        )
        return [r for r in found if round_id is None or r.round_id == round_id]

    def event(self, message: Message) -> OfferEvent | None:
        """A round act just read, described (None if the message is no round act)."""
        return describe(message.room_id, self._chains.chain(message.room_id).ledger.states, message)

    async def _round(self, room_id: str, round_id: str) -> RoundState:
        await self._reader.replay(room_id)
        return self._state(room_id, round_id)

    def _state(self, room_id: str, round_id: str) -> RoundState:
        found = round_state(self._chains.chain(room_id).ledger.states, round_id)
        if found is None:
            raise ProtocolError(f"there is no offer round {round_id} in room {room_id}")
        return found

    async def _close_if_due(self, room_id: str, state: RoundState) -> None:
        due = state.deadline is not None and self._clock() >= state.deadline
        if state.closed_seq is None and due:
            await self._close(room_id, state.round_id)

    async def _close(self, room_id: str, round_id: str) -> None:
        try:
            await self.close(room_id, round_id)
        except ConflictError as exc:
            if "already closed" not in str(exc):
                raise
