"""What the SDK returns about sealed-offer rounds (docs/design.md §7): rounds with each
side's commitment and opening (checked against it, or refused with the reason), the
settlement checked against the openings held, and the offers this device keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from client_sdk.protocol.instruments.offers import Commitment, Opening, PartySide
from client_sdk.protocol.models import Ident, Int, WireModel

OpenedFrom = Literal["reveal", "escrow", "own"]
"""Where an opening shown came from: a logged reveal, a logged escrow opening, or this
device's own store (an offer it committed and has not revealed)."""


@dataclass(frozen=True, slots=True)
class RoundSide:
    """One side's offer in a round, as this device can check it.

    `value` and `note` are set only from an opening that opens the side's
    commitment; an opening that does not is named in `refused`, never shown as
    the offer.
    """

    side: str
    account_id: str
    name: str
    commitment: str
    commit_seq: int
    revealed_seq: int | None
    escrow_seq: int | None
    """The escrow opening, if the mediator opened it (the side did not reveal, or its
    reveal did not open the commitment)."""
    value: str | None
    note: str | None
    opened_from: OpenedFrom | None
    refused: str | None


@dataclass(frozen=True, slots=True)
class Settlement:
    """A blind round's announced outcome, and whether this device checked it against
    both openings (`checked`), or found it false (`refused`)."""

    seq: int
    overlap: bool | None
    midpoint: str | None
    checked: bool
    refused: str | None


@dataclass(frozen=True, slots=True)
class OfferRound:
    """A round as the log shows it to this device."""

    room_id: str
    round_id: str
    question: str | None
    """None if this device cannot read it (it joined after the round opened)."""
    opened_seq: int
    opened_by: str
    blind: bool
    deadline: int | None
    rule: str
    offering_side: str
    sides: list[str]
    closed_seq: int | None
    closed_at: int | None
    offers: list[RoundSide]
    settlement: Settlement | None

    @property
    def status(self) -> str:
        """``open``, ``closed`` or ``settled``."""
        if self.settlement is not None:
            return "settled"
        return "open" if self.closed_seq is None else "closed"


@dataclass(frozen=True, slots=True)
class OfferAct:
    """A round act this device submitted: where it landed."""

    room_id: str
    round_id: str
    act: str
    seq: int
    side: str | None = None
    value: str | None = None
    overlap: bool | None = None
    midpoint: str | None = None


@dataclass(frozen=True, slots=True)
class OfferEvent:
    """A round act read in the room, described for `parley read` (an opening that does
    not open its commitment is `refused`, its value never shown)."""

    act: str
    round_id: str
    side: str | None
    value: str | None
    note: str | None
    refused: str | None
    text: str


class KeptOffer(WireModel):
    """An offer this device committed: what it takes to reveal it later."""

    room_id: Ident
    round_id: Ident
    side: PartySide
    account_id: Ident
    commitment: Commitment
    opening: Opening
    created_at: Int


class OfferBook(WireModel):
    """Everything in the offer store."""

    offers: list[KeptOffer] = Field(default_factory=list)
