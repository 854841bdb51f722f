"""Sealed-offer rounds (docs/design.md §7): the acts of a round and their rules.

A mediator opens a round (``round-open``, the question sealed to plenary); each
side named commits once (``offer-commit``: a commitment and its escrow to the
mediators' devices, `offers.py`); once every side committed, or the round was
closed, each side reveals its opening (``offer-reveal``, sealed to plenary, or
for blind rounds to the side's caucus). Anyone closes the round after its
deadline (``round-close``: the passing, logged; without a deadline, a mediator
closes it when he chooses). After the close, a mediator opens the escrow of a
side that committed and did not reveal, or whose reveal its SDK found not to
open the commitment (``escrow-open``: the refusal stays in the log). In a blind
round a mediator announces whether the offers overlap, and the midpoint if the
rule says so (``offer-settle``, naming both commitments, sealed to plenary).

The server cannot read openings: members' SDKs check each against its
commitment (`offers.check_opening`). The round's id is its ``round-open`` act's
``instrument_id``; all its state is kept under one key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, field_validator

from client_sdk.protocol.encoding import b64d
from client_sdk.protocol.errors import NotPermitted, ProtocolError
from client_sdk.protocol.instruments.base import Act, Context, State, States
from client_sdk.protocol.instruments.offers import (
    ESCROW_CIPHERTEXT_LEN,
    Commitment,
    PartySide,
    Rule,
)
from client_sdk.protocol.mediation import PLENARY, Refusal, caucus
from client_sdk.protocol.models import B64, Ident, Int, Side, WireModel


class SideOffer(WireModel):
    """One side's commitment in a round, and how its opening came out."""

    account_id: Ident
    commitment: Commitment
    commit_seq: Int
    revealed_seq: Int | None = None
    escrow_seq: Int | None = None
    """The ``escrow-open`` event that opened it (the side did not reveal, or its reveal
    did not open the commitment)."""

    @property
    def opened(self) -> bool:
        """Whether an opening of it is in the log (revealed or from escrow)."""
        return self.revealed_seq is not None or self.escrow_seq is not None


class RoundState(State):
    """Everything the log says about one round."""

    kind: Literal["offer-round"] = "offer-round"
    round_id: Ident
    opened_seq: Int
    blind: StrictBool
    deadline: Int | None
    rule: Rule
    offering_side: PartySide
    sides: list[PartySide]
    offers: dict[PartySide, SideOffer] = Field(default_factory=dict)
    closed_seq: Int | None = None
    closed_at: Int | None = None
    settled_seq: Int | None = None

    def channel_of(self, side: str) -> str:
        """Where openings of `side` are sealed: plenary, or the side's caucus if blind."""
        return caucus(side) if self.blind else PLENARY

    @property
    def all_committed(self) -> bool:
        """Whether every side named committed."""
        return all(side in self.offers for side in self.sides)


def round_key(round_id: str) -> str:
    """Where round `round_id`'s state is kept."""
    return f"round/{round_id}"


def _round(states: States, round_id: str) -> RoundState:
    found = states.get(round_key(round_id))
    if not isinstance(found, RoundState):
        raise NotPermitted(Refusal.UNKNOWN, f"there is no offer round {round_id}")
    return found


def _mediator(context: Context, what: str) -> None:
    if context.signer.side is not Side.MEDIATOR:
        raise NotPermitted(Refusal.WRONG_SIDE, f"only a mediator {what}")


def _offer(state: RoundState, side: PartySide) -> SideOffer:
    offer = state.offers.get(side)
    if offer is None:
        raise NotPermitted(Refusal.INVALID, f"side {side} has not committed in this round")
    return offer


def _with(state: RoundState, side: PartySide, offer: SideOffer) -> dict[str, State]:
    offers = {**state.offers, side: offer}
    return {round_key(state.round_id): state.model_copy(update={"offers": offers})}


def _both_sides() -> list[PartySide]:
    return ["a", "b"]


class RoundOpenAct(Act):
    """``round-open``: a mediator opens round ``instrument_id`` (the question sealed to
    plenary)."""

    act: Literal["round-open"] = "round-open"
    blind: StrictBool = False
    deadline: Int | None = None
    """Milliseconds since the epoch, judged against leaves' server time."""
    rule: Rule = "overlap"
    offering_side: PartySide = "a"
    """The side whose number is what it would give (overlap: it is at least the other's)."""
    sides: list[PartySide] = Field(default_factory=_both_sides, min_length=1)

    @field_validator("sides")
    @classmethod
    def _sorted_once(cls, sides: list[str]) -> list[str]:
        if sides != sorted(set(sides)):
            raise ValueError("sides are listed once each, sorted")
        return sides

    def keys(self) -> list[str]:
        return [round_key(self.instrument_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        _mediator(context, "opens an offer round")
        if round_key(self.instrument_id) in states:
            raise NotPermitted(Refusal.INVALID, f"round {self.instrument_id} is already open")
        if self.deadline is not None and self.deadline <= context.server_time:
            raise NotPermitted(Refusal.MISMATCH, "the round's deadline has already passed")
        for side in self.sides:
            if not any(m.side.value == side for m in context.roster.members):
                raise NotPermitted(Refusal.INVALID, f"side {side} has no member in the room")
        return {
            round_key(self.instrument_id): RoundState(
                round_id=self.instrument_id,
                opened_seq=context.seq,
                blind=self.blind,
                deadline=self.deadline,
                rule=self.rule,
                offering_side=self.offering_side,
                sides=self.sides,
            )
        }

    def sealed_channel(self, states: States, context: Context) -> str | None:
        return PLENARY


class OfferCommitAct(Act):
    """``offer-commit``: a side's commitment, and its opening escrowed to every mediator
    device of the roster in force."""

    act: Literal["offer-commit"] = "offer-commit"
    round_id: Ident
    side: PartySide
    account_id: Ident
    commitment: Commitment
    escrow: dict[Ident, B64] = Field(min_length=1, max_length=1024)
    """Mediator device id -> the padded opening sealed to it (`offers.seal_escrow`)."""

    def keys(self) -> list[str]:
        return [round_key(self.round_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        state = _round(states, self.round_id)
        if context.signer.account_id != self.account_id:
            raise NotPermitted(
                Refusal.MISMATCH, "a commitment names the account of the device that signs it"
            )
        if context.signer.side.value != self.side:
            raise NotPermitted(Refusal.WRONG_SIDE, f"only a member of side {self.side} commits")
        if self.side not in state.sides:
            raise NotPermitted(Refusal.INVALID, f"side {self.side} does not commit in this round")
        if state.closed_seq is not None:
            raise NotPermitted(Refusal.INVALID, "the round is closed")
        if state.deadline is not None and context.server_time >= state.deadline:
            raise NotPermitted(Refusal.INVALID, "the round's deadline has passed")
        if self.side in state.offers:
            raise NotPermitted(Refusal.INVALID, f"side {self.side} already committed")
        if any(o.commitment == self.commitment for o in state.offers.values()):
            raise NotPermitted(Refusal.INVALID, "the commitment copies another side's")
        mediators = context.roster.device_ids({Side.MEDIATOR})
        if sorted(self.escrow) != mediators:
            raise NotPermitted(
                Refusal.MISMATCH,
                "the escrow must be sealed to exactly the mediator devices of roster "
                f"version {context.roster.version}",
            )
        for sealed in self.escrow.values():
            try:
                size = len(b64d(sealed))
            except ProtocolError:
                size = -1
            if size != ESCROW_CIPHERTEXT_LEN:
                raise NotPermitted(
                    Refusal.MISMATCH, f"every escrow is {ESCROW_CIPHERTEXT_LEN} bytes"
                )
        offer = SideOffer(
            account_id=self.account_id, commitment=self.commitment, commit_seq=context.seq
        )
        return _with(state, self.side, offer)


class OfferRevealAct(Act):
    """``offer-reveal``: the committing account reveals its opening (sealed to plenary,
    or to its side's caucus in a blind round)."""

    act: Literal["offer-reveal"] = "offer-reveal"
    round_id: Ident
    side: PartySide

    def keys(self) -> list[str]:
        return [round_key(self.round_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        state = _round(states, self.round_id)
        offer = _offer(state, self.side)
        if context.signer.account_id != offer.account_id:
            raise NotPermitted(
                Refusal.WRONG_SIDE, f"only the account that committed side {self.side} reveals"
            )
        if not state.all_committed and state.closed_seq is None:
            raise NotPermitted(
                Refusal.INVALID, "not every side has committed and the round is not closed"
            )
        if offer.opened:
            raise NotPermitted(Refusal.INVALID, f"side {self.side}'s offer is already open")
        return _with(state, self.side, offer.model_copy(update={"revealed_seq": context.seq}))

    def sealed_channel(self, states: States, context: Context) -> str | None:
        return _round(states, self.round_id).channel_of(self.side)


class RoundCloseAct(Act):
    """``round-close``: the round's deadline passed (anyone says so, once), or, in a
    round without a deadline, a mediator ends it."""

    act: Literal["round-close"] = "round-close"
    round_id: Ident

    def keys(self) -> list[str]:
        return [round_key(self.round_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        state = _round(states, self.round_id)
        if state.closed_seq is not None:
            raise NotPermitted(Refusal.INVALID, "the round is already closed")
        if state.deadline is None:
            _mediator(context, "closes a round without a deadline")
        elif context.server_time < state.deadline:
            raise NotPermitted(Refusal.INVALID, "the round's deadline has not passed")
        closed = state.model_copy(
            update={"closed_seq": context.seq, "closed_at": context.server_time}
        )
        return {round_key(self.round_id): closed}


class EscrowOpenAct(Act):
    """``escrow-open``: after the close, a mediator opens a side's escrow (the opening
    re-sealed where a reveal would have been)."""

    act: Literal["escrow-open"] = "escrow-open"
    round_id: Ident
    side: PartySide

    def keys(self) -> list[str]:
        return [round_key(self.round_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        _mediator(context, "opens an escrow")
        state = _round(states, self.round_id)
        offer = _offer(state, self.side)
        if state.closed_seq is None:
            raise NotPermitted(Refusal.INVALID, "an escrow is opened only after the round closed")
        if offer.escrow_seq is not None:
            raise NotPermitted(Refusal.INVALID, f"side {self.side}'s escrow is already open")
        if state.settled_seq is not None:
            raise NotPermitted(Refusal.INVALID, "the round is settled")
        return _with(state, self.side, offer.model_copy(update={"escrow_seq": context.seq}))

    def sealed_channel(self, states: States, context: Context) -> str | None:
        return _round(states, self.round_id).channel_of(self.side)


class OfferSettleAct(Act):
    """``offer-settle``: in a blind round, a mediator announces the outcome (sealed to
    plenary), naming both commitments."""

    act: Literal["offer-settle"] = "offer-settle"
    round_id: Ident
    commitments: dict[PartySide, Commitment]

    def keys(self) -> list[str]:
        return [round_key(self.round_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        _mediator(context, "settles a round")
        state = _round(states, self.round_id)
        if not state.blind:
            raise NotPermitted(Refusal.INVALID, "only blind rounds are settled")
        if state.sides != ["a", "b"]:
            raise NotPermitted(Refusal.INVALID, "a settlement compares sides a and b")
        if state.settled_seq is not None:
            raise NotPermitted(Refusal.INVALID, "the round is already settled")
        for side in state.sides:
            if not _offer(state, side).opened:
                raise NotPermitted(Refusal.INVALID, f"side {side}'s offer is not open yet")
        named = {side: offer.commitment for side, offer in state.offers.items()}
        if dict(self.commitments) != named:
            raise NotPermitted(Refusal.MISMATCH, "the settlement names other commitments")
        settled = state.model_copy(update={"settled_seq": context.seq})
        return {round_key(self.round_id): settled}

    def sealed_channel(self, states: States, context: Context) -> str | None:
        return PLENARY
