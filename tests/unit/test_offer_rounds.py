"""Sealed-offer rounds (docs/design.md §7): commitments bind everything they name, the
escrow has one size whatever the offer, settlements compute exactly, and the round's
rules refuse every act out of turn."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import NotPermitted, ProtocolError, VerificationError
from client_sdk.protocol.instruments.base import Context, State
from client_sdk.protocol.instruments.offers import (
    ESCROW_CIPHERTEXT_LEN,
    Opening,
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
    round_key,
)
from client_sdk.protocol.keys import EncryptionKey
from client_sdk.protocol.mediation import Refusal
from client_sdk.protocol.statements import Roster
from tests.unit.test_statements import make_roster

ROOM = "room-1"
ROUND = "round-1"
T0 = 1_800_000_000_000
KEY = EncryptionKey.generate()


def _opening(value: str = "120", note: str = "") -> Opening:
    return Opening(salt=b64e(os.urandom(32)), value=value, note=note)


# --- commitments and escrow ------------------------------------------------------------

BINDING = {
    "room_id": ROOM,
    "round_id": ROUND,
    "side": "a",
    "account_id": "acc-alice",
}


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from([*BINDING, "salt", "value", "note"]),
    other=st.text(alphabet="abcdefgh0123456789", min_size=1, max_size=8),
)
def test_a_commitment_binds_room_round_side_account_and_the_whole_opening(
    field: str, other: str
) -> None:
    opening = _opening("120", "firm")
    original = commitment(**BINDING, opening=opening)
    binding = dict(BINDING)
    if field in binding:
        binding[field] = binding[field] + other
        changed = opening
    elif field == "salt":
        changed = opening.model_copy(update={"salt": b64e(os.urandom(32))})
    elif field == "value":
        changed = opening.model_copy(update={"value": "121"})
    else:
        changed = opening.model_copy(update={"note": "firm" + other})

    assert commitment(**binding, opening=changed) != original
    with pytest.raises(VerificationError, match="does not match"):
        check_opening(original, **binding, opening=changed)
    check_opening(original, **BINDING, opening=opening)


@settings(max_examples=15, deadline=None)
@given(
    value=st.decimals(min_value=-(10**12), max_value=10**12, places=3, allow_nan=False),
    note=st.text(max_size=200),
)
def test_every_escrow_has_the_same_size_and_opens_only_for_its_device_and_binding(
    value: Decimal, note: str
) -> None:
    opening = _opening(parse_decimal(_plain(value)), note)
    bound = {"room_id": ROOM, "round_id": ROUND, "side": "a", "commitment": "c" * 43}

    sealed = seal_escrow(opening, {"dev-1": KEY.public_bytes()}, **bound)

    assert len(b64d(sealed["dev-1"])) == ESCROW_CIPHERTEXT_LEN
    assert open_escrow(sealed["dev-1"], [KEY], **bound, device_id="dev-1") == opening
    with pytest.raises(VerificationError, match="no key"):
        open_escrow(sealed["dev-1"], [KEY], **bound, device_id="dev-2")
    with pytest.raises(VerificationError, match="no key"):
        open_escrow(sealed["dev-1"], [KEY], **{**bound, "side": "b"}, device_id="dev-1")


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def test_a_note_too_long_for_the_escrow_is_refused() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        seal_escrow(
            _opening(note="\u0001" * 400),
            {"dev-1": KEY.public_bytes()},
            room_id=ROOM,
            round_id=ROUND,
            side="a",
            commitment="c" * 43,
        )


@pytest.mark.parametrize("text", ["", "01", "1e5", "1.", ".5", "NaN", "1,5", "1.1234567890123"])
def test_an_offer_is_a_plain_decimal(text: str) -> None:
    with pytest.raises(ProtocolError, match="decimal number"):
        parse_decimal(text)


@pytest.mark.parametrize(
    ("a", "b", "offering", "rule", "expected"),
    [
        ("120", "100", "a", "overlap", (True, None)),
        ("100", "100", "a", "midpoint", (True, "100")),
        ("120", "101", "a", "midpoint", (True, "110.5")),
        ("90", "100", "a", "midpoint", (False, None)),
        ("90", "100", "b", "midpoint", (True, "95")),
        ("0.000000000001", "0", "a", "midpoint", (True, "0.0000000000005")),
    ],
)
def test_a_settlement_compares_what_the_offering_side_gives_with_what_the_other_asks(
    a: str, b: str, offering: str, rule: str, expected: tuple[bool, str | None]
) -> None:
    assert settle({"a": a, "b": b}, offering_side=offering, rule=rule) == expected


@settings(max_examples=50, deadline=None)
@given(
    st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    st.decimals(min_value=-(10**9), max_value=10**9, places=2),
)
def test_the_midpoint_lies_between_the_offers(give: Decimal, ask: Decimal) -> None:
    overlap, midpoint = settle(
        {"a": _plain(give), "b": _plain(ask)}, offering_side="a", rule="midpoint"
    )
    assert overlap == (give >= ask)
    if overlap:
        assert midpoint is not None
        assert ask <= Decimal(midpoint) <= give
        assert Decimal(midpoint) * 2 == give + ask


# --- the round's rules ------------------------------------------------------------------


class Room:
    """A roster and the states acts built, applied like the ledger does (no signatures:
    `judge` checks those for every kind alike)."""

    def __init__(self) -> None:
        self.roster: Roster = make_roster(room_id=ROOM)
        self.states: dict[str, State] = {}
        self.seq = 1

    def apply(self, act: Any, account: str, *, at: int = T0) -> dict[str, State]:
        signer = self.roster.member(account)
        assert signer is not None
        self.seq += 1
        context = Context(
            room_id=ROOM, roster=self.roster, signer=signer, seq=self.seq, server_time=at
        )
        changes: dict[str, State] = act.apply(self.states, context)
        self.states.update(changes)
        return changes

    @property
    def round(self) -> RoundState:
        state = self.states[round_key(ROUND)]
        assert isinstance(state, RoundState)
        return state


COMMON: dict[str, Any] = {
    "room_id": ROOM,
    "roster_version": 1,
    "signer_device": "x",
    "issued_at": T0,
}
ESCROW = {"mediator-laptop": b64e(bytes(ESCROW_CIPHERTEXT_LEN))}


def _open(**fields: Any) -> RoundOpenAct:
    return RoundOpenAct(**COMMON, instrument_id=ROUND, **fields)


def _commit(side: str, account: str, digest: str, **fields: Any) -> OfferCommitAct:
    values: dict[str, Any] = {
        "round_id": ROUND,
        "side": side,
        "account_id": account,
        "commitment": digest,
        "escrow": ESCROW,
    }
    values.update(fields)
    return OfferCommitAct(**COMMON, instrument_id=f"commit-{digest[:4]}", **values)


def _act(model: Any, **fields: Any) -> Any:
    return model(**COMMON, instrument_id=os.urandom(4).hex(), round_id=ROUND, **fields)


def _refused(room: Room, act: Any, account: str, reason: Refusal, match: str, **kw: Any) -> None:
    before = dict(room.states)
    with pytest.raises(NotPermitted, match=match) as refusal:
        room.apply(act, account, **kw)
    assert refusal.value.reason is reason
    assert room.states == before


def test_only_a_mediator_opens_a_round_and_only_with_a_deadline_ahead() -> None:
    room = Room()
    _refused(room, _open(), "acc-alice", Refusal.WRONG_SIDE, "only a mediator")
    _refused(room, _open(deadline=T0), "acc-mediator", Refusal.MISMATCH, "already passed")
    room.apply(_open(deadline=T0 + 1, blind=True), "acc-mediator")
    _refused(room, _open(), "acc-mediator", Refusal.INVALID, "already open")
    assert room.round.channel_of("a") == "caucus-a"


def test_each_side_commits_once_as_itself_with_an_escrow_to_every_mediator_device() -> None:
    room = Room()
    room.apply(_open(), "acc-mediator")
    a, b = "A" * 43, "B" * 42 + "A"
    missing = _act(OfferCommitAct, side="a", account_id="acc-alice", commitment=a, escrow=ESCROW)
    _refused(
        room,
        missing.model_copy(update={"round_id": "nope"}),
        "acc-alice",
        Refusal.UNKNOWN,
        "no offer round",
    )
    _refused(room, _commit("a", "acc-bob", a), "acc-alice", Refusal.MISMATCH, "account")
    _refused(room, _commit("a", "acc-bob", a), "acc-bob", Refusal.WRONG_SIDE, "side a")
    _refused(
        room,
        _commit("a", "acc-alice", a, escrow={"other": ESCROW["mediator-laptop"]}),
        "acc-alice",
        Refusal.MISMATCH,
        "mediator devices",
    )
    _refused(
        room,
        _commit("a", "acc-alice", a, escrow={"mediator-laptop": b64e(bytes(100))}),
        "acc-alice",
        Refusal.MISMATCH,
        f"{ESCROW_CIPHERTEXT_LEN} bytes",
    )
    room.apply(_commit("a", "acc-alice", a), "acc-alice")
    _refused(room, _commit("a", "acc-alice", b), "acc-alice", Refusal.INVALID, "already")
    _refused(room, _commit("b", "acc-bob", a), "acc-bob", Refusal.INVALID, "copies")
    room.apply(_commit("b", "acc-bob", b), "acc-bob")
    assert room.round.all_committed


def test_a_reveal_waits_for_every_commitment_and_comes_once_from_the_committer() -> None:
    room = Room()
    room.apply(_open(), "acc-mediator")
    room.apply(_commit("a", "acc-alice", "A" * 43), "acc-alice")
    reveal_a = _act(OfferRevealAct, side="a")

    _refused(room, reveal_a, "acc-alice", Refusal.INVALID, "not every side")
    _refused(room, _act(OfferRevealAct, side="b"), "acc-bob", Refusal.INVALID, "not committed")
    room.apply(_commit("b", "acc-bob", "B" * 42 + "A"), "acc-bob")
    _refused(room, reveal_a, "acc-mediator", Refusal.WRONG_SIDE, "committed side a")
    room.apply(reveal_a, "acc-alice")
    _refused(room, reveal_a, "acc-alice", Refusal.INVALID, "already open")
    assert reveal_a.sealed_channel(room.states, None) == "plenary"


def test_the_deadline_closes_commitments_and_lets_anyone_close_the_round() -> None:
    room = Room()
    room.apply(_open(deadline=T0 + 1000), "acc-mediator")
    room.apply(_commit("a", "acc-alice", "A" * 43), "acc-alice")
    close = _act(RoundCloseAct)

    _refused(room, close, "acc-bob", Refusal.INVALID, "not passed", at=T0 + 999)
    _refused(
        room,
        _commit("b", "acc-bob", "B" * 42 + "A"),
        "acc-bob",
        Refusal.INVALID,
        "deadline",
        at=T0 + 1000,
    )
    room.apply(close, "acc-olga", at=T0 + 1000)
    _refused(room, close, "acc-bob", Refusal.INVALID, "already closed", at=T0 + 2000)
    assert room.round.closed_at == T0 + 1000
    room.apply(_act(OfferRevealAct, side="a"), "acc-alice", at=T0 + 3000)


def test_a_round_without_deadline_is_closed_by_a_mediator_only() -> None:
    room = Room()
    room.apply(_open(), "acc-mediator")
    _refused(room, _act(RoundCloseAct), "acc-alice", Refusal.WRONG_SIDE, "only a mediator")
    room.apply(_act(RoundCloseAct), "acc-mediator")


def test_an_escrow_opens_after_the_close_once_for_a_side_that_committed() -> None:
    room = Room()
    room.apply(_open(deadline=T0 + 10), "acc-mediator")
    room.apply(_commit("a", "acc-alice", "A" * 43), "acc-alice")
    room.apply(_commit("b", "acc-bob", "B" * 42 + "A"), "acc-bob")
    room.apply(_act(OfferRevealAct, side="a"), "acc-alice")
    escrow_b = _act(EscrowOpenAct, side="b")

    _refused(room, escrow_b, "acc-mediator", Refusal.INVALID, "after the round closed")
    room.apply(_act(RoundCloseAct), "acc-alice", at=T0 + 10)
    _refused(room, escrow_b, "acc-bob", Refusal.WRONG_SIDE, "only a mediator")
    room.apply(escrow_b, "acc-mediator", at=T0 + 20)
    _refused(room, escrow_b, "acc-mediator", Refusal.INVALID, "already open", at=T0 + 30)
    assert room.round.offers["b"].escrow_seq is not None
    assert room.round.offers["b"].revealed_seq is None  # the refusal to reveal stays visible


def test_a_blind_round_is_settled_once_naming_both_commitments() -> None:
    room = Room()
    room.apply(_open(blind=True, rule="midpoint"), "acc-mediator")
    room.apply(_commit("a", "acc-alice", "A" * 43), "acc-alice")
    room.apply(_commit("b", "acc-bob", "B" * 42 + "A"), "acc-bob")
    named = {"a": "A" * 43, "b": "B" * 42 + "A"}
    settle_act = _act(OfferSettleAct, commitments=named)

    _refused(room, settle_act, "acc-mediator", Refusal.INVALID, "not open yet")
    room.apply(_act(OfferRevealAct, side="a"), "acc-alice")
    room.apply(_act(OfferRevealAct, side="b"), "acc-bob")
    _refused(room, settle_act, "acc-alice", Refusal.WRONG_SIDE, "only a mediator")
    wrong = _act(OfferSettleAct, commitments={"a": "A" * 43, "b": "C" * 42 + "A"})
    _refused(room, wrong, "acc-mediator", Refusal.MISMATCH, "other commitments")
    room.apply(settle_act, "acc-mediator")
    _refused(room, settle_act, "acc-mediator", Refusal.INVALID, "already settled")


def test_an_open_round_is_not_settled() -> None:
    room = Room()
    room.apply(_open(), "acc-mediator")
    _refused(
        room,
        _act(OfferSettleAct, commitments={}),
        "acc-mediator",
        Refusal.INVALID,
        "only blind rounds",
    )


def test_a_round_names_each_side_once_and_only_sides_with_members() -> None:
    with pytest.raises(ValueError, match="once each"):
        _open(sides=["b", "a"])
    room = Room()
    room.roster = make_roster(room_id=ROOM, members=tuple(room.roster.members[:2]))
    _refused(room, _open(), "acc-mediator", Refusal.INVALID, "side b has no member")
    room.apply(_open(sides=["a"]), "acc-mediator")
