"""Sealed-offer rounds as a member reads them (docs/design.md §7): each opening checked
against its side's commitment (a bad one is refused, never shown as the offer), a
blind round's settlement checked against the openings held, and a line for each round
act in `parley read`.

Pure: the round states come from the replayed ledger, the acts from the reader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pydantic import ValidationError

from client_sdk.client.models import Message
from client_sdk.client.offer_models import (
    KeptOffer,
    OfferEvent,
    OfferRound,
    OpenedFrom,
    RoundSide,
    Settlement,
)
from client_sdk.protocol.errors import ProtocolError, VerificationError
from client_sdk.protocol.instruments.base import State
from client_sdk.protocol.instruments.offers import (
    Opening,
    OpeningContent,
    QuestionContent,
    SettlementContent,
    check_opening,
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
    round_key,
)

ROUND_ACTS = (
    RoundOpenAct,
    OfferCommitAct,
    OfferRevealAct,
    RoundCloseAct,
    EscrowOpenAct,
    OfferSettleAct,
)
KeptLookup = Callable[[str, str], KeptOffer | None]
"""(round id, commitment) -> the offer this device kept for it, if any."""


def round_of(message: Message) -> str | None:
    """The round a message's act belongs to (None if it is no round act)."""
    act = message.instrument
    if isinstance(act, RoundOpenAct):
        return act.instrument_id
    if isinstance(act, ROUND_ACTS):
        return str(getattr(act, "round_id"))  # noqa: B009  # every other round act has one
    return None


def round_state(states: Mapping[str, State], round_id: str) -> RoundState | None:
    """Round `round_id`'s state in a replayed ledger, if it is there."""
    found = states.get(round_key(round_id))
    return found if isinstance(found, RoundState) else None


def checked_opening(
    room_id: str, state: RoundState, message: Message
) -> tuple[Opening | None, str | None]:
    """The opening a reveal or escrow opening carries, if it opens its side's commitment;
    else the reason it is refused. (None, None): this device cannot read it."""
    act = message.instrument
    assert isinstance(act, OfferRevealAct | EscrowOpenAct)
    what = "reveal" if isinstance(act, OfferRevealAct) else "escrow opening"
    offer = state.offers.get(act.side)
    if message.content.get("type") == "instrument" or offer is None:
        return None, None
    try:
        content = OpeningContent.model_validate(message.content)
    except ValidationError:
        return None, f"the {what} of side {act.side} (#{message.seq}) is malformed"
    if content.round_id != state.round_id or content.side != act.side:
        return None, f"the {what} of side {act.side} (#{message.seq}) names another round or side"
    try:
        check_opening(
            offer.commitment,
            room_id=room_id,
            round_id=state.round_id,
            side=act.side,
            account_id=offer.account_id,
            opening=content.opening,
        )
    except VerificationError:
        return None, (
            f"the {what} of side {act.side} (#{message.seq}) does not open its commitment"
        )
    return content.opening, None


def build_rounds(
    room_id: str,
    states: Mapping[str, State],
    messages: Iterable[Message],
    names: Mapping[str, str],
    kept: KeptLookup,
) -> list[OfferRound]:
    """Every round of the room's ledger, with what `messages` (its round acts, in log
    order) let this device read and check."""
    by_round: dict[str, list[Message]] = {}
    for message in messages:
        round_id = round_of(message)
        if round_id is not None:
            by_round.setdefault(round_id, []).append(message)
    found = [s for s in states.values() if isinstance(s, RoundState)]
    return [
        _round(room_id, state, by_round.get(state.round_id, []), names, kept)
        for state in sorted(found, key=lambda s: s.opened_seq)
    ]


def _round(
    room_id: str,
    state: RoundState,
    acts: list[Message],
    names: Mapping[str, str],
    kept: KeptLookup,
) -> OfferRound:
    question: str | None = None
    opened_by = ""
    openings: dict[str, list[tuple[OpenedFrom, Opening | None, str | None]]] = {}
    settle_message: Message | None = None
    for message in acts:
        act = message.instrument
        if isinstance(act, RoundOpenAct):
            opened_by = message.sender_name
            try:
                question = QuestionContent.model_validate(message.content).question
            except ValidationError:
                question = None
        elif isinstance(act, OfferRevealAct | EscrowOpenAct):
            source: OpenedFrom = "reveal" if isinstance(act, OfferRevealAct) else "escrow"
            opening, refused = checked_opening(room_id, state, message)
            openings.setdefault(act.side, []).append((source, opening, refused))
        elif isinstance(act, OfferSettleAct):
            settle_message = message
    offers = []
    values: dict[str, str] = {}
    for side, offer in sorted(state.offers.items()):
        tried = openings.get(side, [])
        good = [(source, opening) for source, opening, _ in tried if opening is not None]
        refusals = [refused for _, _, refused in tried if refused is not None]
        source_used: OpenedFrom | None = None
        shown: Opening | None = None
        if good:
            source_used, shown = good[0]
        elif (own := kept(state.round_id, offer.commitment)) is not None:
            source_used, shown = "own", own.opening
        if shown is not None:
            values[side] = shown.value
        offers.append(
            RoundSide(
                side=side,
                account_id=offer.account_id,
                name=names.get(offer.account_id, offer.account_id),
                commitment=offer.commitment,
                commit_seq=offer.commit_seq,
                revealed_seq=offer.revealed_seq,
                escrow_seq=offer.escrow_seq,
                value=None if shown is None else shown.value,
                note=None if shown is None else shown.note,
                opened_from=source_used,
                refused="; ".join(refusals) or None,
            )
        )
    return OfferRound(
        room_id=room_id,
        round_id=state.round_id,
        question=question,
        opened_seq=state.opened_seq,
        opened_by=opened_by,
        blind=state.blind,
        deadline=state.deadline,
        rule=state.rule,
        offering_side=state.offering_side,
        sides=list(state.sides),
        closed_seq=state.closed_seq,
        closed_at=state.closed_at,
        offers=offers,
        settlement=None if settle_message is None else _settlement(state, settle_message, values),
    )


def _settlement(state: RoundState, message: Message, values: dict[str, str]) -> Settlement:
    if message.content.get("type") == "instrument":
        return Settlement(message.seq, None, None, checked=False, refused=None)
    try:
        content = SettlementContent.model_validate(message.content)
    except ValidationError:
        return Settlement(message.seq, None, None, checked=False, refused="malformed")
    if content.round_id != state.round_id:
        return Settlement(message.seq, None, None, checked=False, refused="names another round")
    if sorted(values) != ["a", "b"]:
        return Settlement(message.seq, content.overlap, content.midpoint, False, None)
    try:
        expected = settle(values, offering_side=state.offering_side, rule=state.rule)
    except ProtocolError as exc:
        return Settlement(message.seq, None, None, checked=False, refused=str(exc))
    if expected != (content.overlap, content.midpoint):
        return Settlement(
            message.seq,
            None,
            None,
            checked=False,
            refused="the settlement does not follow from the openings",
        )
    return Settlement(message.seq, content.overlap, content.midpoint, True, None)


def describe(room_id: str, states: Mapping[str, State], message: Message) -> OfferEvent | None:
    """A round act read in the room, as a line (None if the message is no round act)."""
    round_id = round_of(message)
    act = message.instrument
    if round_id is None or act is None:
        return None
    state = round_state(states, round_id)
    side = getattr(act, "side", None)
    value = note = refused = None
    if isinstance(act, RoundOpenAct):
        try:
            question = QuestionContent.model_validate(message.content).question
        except ValidationError:
            question = "(a question this device cannot read)"
        kind = "blind " if act.blind else ""
        text = f"opened {kind}offer round {round_id}: {question}"
    elif isinstance(act, OfferCommitAct):
        text = f"side {act.side} committed an offer in round {round_id}"
    elif isinstance(act, RoundCloseAct):
        text = f"closed offer round {round_id}"
    elif isinstance(act, OfferSettleAct):
        text = f"settled offer round {round_id}" + _settle_text(message)
    else:
        assert isinstance(act, OfferRevealAct | EscrowOpenAct)
        subject = (
            f"side {act.side} revealed"
            if isinstance(act, OfferRevealAct)
            else f"opened the escrow of side {act.side}"
        )
        if state is not None:
            opening, refused = checked_opening(room_id, state, message)
        else:
            opening = None
        if opening is not None:
            value, note = opening.value, opening.note
            text = f"{subject} in round {round_id}: {value}" + (f" ({note})" if note else "")
        elif refused is not None:
            text = f"{subject} in round {round_id}: REFUSED, {refused}"
        else:
            text = f"{subject} in round {round_id} (not readable here)"
    return OfferEvent(
        act=act.act,
        round_id=round_id,
        side=side,
        value=value,
        note=note,
        refused=refused,
        text=text,
    )


def _settle_text(message: Message) -> str:
    try:
        content = SettlementContent.model_validate(message.content)
    except ValidationError:
        return ""
    outcome = "the offers overlap" if content.overlap else "the offers do not overlap"
    if content.midpoint is not None:
        outcome += f", midpoint {content.midpoint}"
    return f": {outcome}"
