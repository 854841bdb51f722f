"""The agreement rules (docs/design.md §7) as pure code: who proposes, who signs which
hash when, the mediator's countersignature last, supersession, completion."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import NotPermitted
from client_sdk.protocol.instruments.agreements import (
    Agreement,
    AgreementProposeAct,
    AgreementSignAct,
    RequiredSigner,
    agreement_key,
    default_signers,
)
from client_sdk.protocol.instruments.base import Context, State
from client_sdk.protocol.mediation import Refusal
from client_sdk.protocol.models import Side
from client_sdk.protocol.statements import Roster, RosterDevice, RosterMember

TEXT = b64e(hashlib.sha256(b"phase 1 agreement").digest())
OTHER = b64e(hashlib.sha256(b"phase 1 agreement, amended").digest())
MEMBERS = {
    "mona": Side.MEDIATOR,
    "alice": Side.A,
    "anna": Side.A,
    "bob": Side.B,
    "olga": Side.OBSERVER,
}


def _roster() -> Roster:
    return Roster(
        room_id="room",
        version=1,
        prev_hash=None,
        title="Talks",
        members=[
            RosterMember(
                account_id=name,
                name=name.title(),
                side=side,
                account_key="AAAA",
                devices=[RosterDevice(device_id=f"{name}-dev", signing_key="AAAA")],
            )
            for name, side in MEMBERS.items()
        ],
        signer_device="mona-dev",
        issued_at=1,
    )


ROSTER = _roster()


class Log:
    """A room's agreement states, with acts applied in order as the ledger would."""

    def __init__(self) -> None:
        self.states: dict[str, State] = {}
        self.seq = 0

    def apply(self, who: str, act_type: type[Any], **fields: Any) -> Any:
        self.seq += 1
        member = ROSTER.member(who)
        assert member is not None
        act = act_type(
            room_id="room",
            instrument_id=fields.pop("instrument_id", f"act-{self.seq}"),
            roster_version=1,
            signer_device=f"{who}-dev",
            issued_at=1,
            **fields,
        )
        context = Context(
            room_id="room", roster=ROSTER, signer=member, seq=self.seq, server_time=self.seq * 10
        )
        view = {k: self.states[k] for k in act.keys() if k in self.states}
        changes = act.apply(view, context)
        self.states.update(changes)
        return act

    def propose(self, who: str = "mona", **fields: Any) -> str:
        fields.setdefault("document_sha256", TEXT)
        fields.setdefault("signers", default_signers(ROSTER))
        act = self.apply(who, AgreementProposeAct, **fields)
        return str(act.instrument_id)

    def sign(self, who: str, agreement_id: str, document_sha256: str = TEXT) -> None:
        self.apply(
            who,
            AgreementSignAct,
            agreement_id=agreement_id,
            account_id=who,
            document_sha256=document_sha256,
        )

    def agreement(self, agreement_id: str) -> Agreement:
        found = self.states[agreement_key(agreement_id)]
        assert isinstance(found, Agreement)
        return found


def _refused(reason: Refusal, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(NotPermitted) as caught:
        call(*args, **kwargs)
    assert caught.value.reason is reason
    return str(caught.value)


def test_default_signers_are_one_per_party_side_and_the_mediator() -> None:
    assert default_signers(ROSTER) == [
        RequiredSigner(side=Side.A),
        RequiredSigner(side=Side.B),
        RequiredSigner(side=Side.MEDIATOR),
    ]


def test_both_sides_sign_then_the_mediator_countersigns_and_it_is_complete() -> None:
    log = Log()
    agreement_id = log.propose("alice")

    log.sign("anna", agreement_id)  # any account of side a
    log.sign("bob", agreement_id)
    assert not log.agreement(agreement_id).complete
    log.sign("mona", agreement_id)

    done = log.agreement(agreement_id)
    assert done.complete
    assert [(s.account_id, s.slot, s.seq, s.server_time) for s in done.signatures] == [
        ("anna", 0, 2, 20),
        ("bob", 1, 3, 30),
        ("mona", 2, 4, 40),
    ]
    assert {s.document_sha256 for s in done.signatures} == {TEXT}


def test_a_signature_over_another_hash_is_a_mismatch() -> None:
    log = Log()
    agreement_id = log.propose()
    message = _refused(Refusal.MISMATCH, log.sign, "alice", agreement_id, OTHER)
    assert "another hash" in message
    assert log.agreement(agreement_id).signatures == []


def test_only_a_required_signer_signs() -> None:
    log = Log()
    agreement_id = log.propose(signers=[RequiredSigner(side=Side.A, account_id="alice")])
    _refused(Refusal.WRONG_SIDE, log.sign, "anna", agreement_id)  # side a, but not named
    _refused(Refusal.WRONG_SIDE, log.sign, "bob", agreement_id)
    _refused(Refusal.WRONG_SIDE, log.sign, "olga", agreement_id)
    log.sign("alice", agreement_id)
    assert log.agreement(agreement_id).complete


def test_a_slot_is_signed_once() -> None:
    log = Log()
    agreement_id = log.propose()
    log.sign("alice", agreement_id)
    assert "already signed" in _refused(Refusal.INVALID, log.sign, "alice", agreement_id)
    message = _refused(Refusal.INVALID, log.sign, "anna", agreement_id)
    assert "side a already signed" in message
    assert "account alice" in message


def test_the_mediator_countersigns_only_after_every_other_signature() -> None:
    log = Log()
    agreement_id = log.propose()
    assert "waiting for side a, side b" in _refused(Refusal.INVALID, log.sign, "mona", agreement_id)
    log.sign("bob", agreement_id)
    assert "waiting for side a" in _refused(Refusal.INVALID, log.sign, "mona", agreement_id)


def test_an_unknown_agreement_is_unknown() -> None:
    log = Log()
    _refused(Refusal.UNKNOWN, log.sign, "alice", "no-such-agreement")
    _refused(Refusal.UNKNOWN, log.propose, supersedes="no-such-agreement")


def test_a_signature_names_the_signing_account() -> None:
    log = Log()
    agreement_id = log.propose()
    _refused(
        Refusal.MISMATCH,
        log.apply,
        "alice",
        AgreementSignAct,
        agreement_id=agreement_id,
        account_id="anna",
        document_sha256=TEXT,
    )


def test_observers_do_not_propose() -> None:
    _refused(Refusal.OBSERVER, Log().propose, "olga")


def test_named_signers_must_be_members_on_the_side_named() -> None:
    log = Log()
    _refused(Refusal.MISMATCH, log.propose, signers=[RequiredSigner(side=Side.A, account_id="zed")])
    _refused(
        Refusal.MISMATCH, log.propose, signers=[RequiredSigner(side=Side.B, account_id="alice")]
    )


@pytest.mark.parametrize(
    ("signers", "mentions"),
    [
        ([{"side": "a", "account_id": "alice"}, {"side": "a", "account_id": "alice"}], "twice"),
        ([{"side": "a"}, {"side": "a"}], "twice"),
        ([{"side": "a"}, {"side": "a", "account_id": "alice"}], "both"),
        ([{"side": "observer"}], "observers"),
        ([], "at least 1"),
    ],
)
def test_ambiguous_signer_lists_do_not_parse(signers: list[Any], mentions: str) -> None:
    with pytest.raises(ValidationError, match=mentions):
        AgreementProposeAct(
            room_id="room",
            instrument_id="x",
            roster_version=1,
            signer_device="mona-dev",
            issued_at=1,
            document_sha256=TEXT,
            signers=signers,
        )


def test_a_superseded_proposal_takes_no_more_signatures_and_none_carry_over() -> None:
    log = Log()
    old = log.propose()
    log.sign("alice", old)
    new = log.propose("bob", supersedes=old, document_sha256=OTHER)

    assert log.agreement(old).superseded_by == new
    assert log.agreement(new).supersedes == old
    assert log.agreement(new).signatures == []
    assert "superseded" in _refused(Refusal.INVALID, log.sign, "bob", old)
    log.sign("alice", new, OTHER)
    assert [s.account_id for s in log.agreement(old).signatures] == ["alice"]


def test_a_proposal_is_superseded_once_and_a_complete_one_never() -> None:
    log = Log()
    old = log.propose()
    log.propose(supersedes=old)
    assert "already superseded" in _refused(Refusal.INVALID, log.propose, supersedes=old)

    done = log.propose(signers=[RequiredSigner(side=Side.B)])
    log.sign("bob", done)
    assert "complete" in _refused(Refusal.INVALID, log.propose, supersedes=done)


def test_an_agreement_id_is_proposed_once() -> None:
    log = Log()
    agreement_id = log.propose()
    _refused(Refusal.INVALID, log.propose, instrument_id=agreement_id)
