"""Agreements (docs/design.md §7): a document's SHA-256 proposed with the signers it
needs, then signed, hash for hash, by each of them; the mediator countersigns last.

- ``agreement-propose`` (any member but observers): the plaintext document's
  SHA-256, the required signers fixed there and then, and optionally the earlier
  proposal of the room it ``supersedes`` (which then takes no more signatures).
  Its title and the document reference (the ``document`` content of §7
  "Documents", the chunks sealed under the sealed part's content key) are sealed
  to plenary. The agreement id is the proposal's ``instrument_id``.
- A required signer is a side slot (``{"side": "a"}``: any one account of that
  side) or a named account (``{"side": ..., "account_id": ...}``, the side it
  sat on when proposed). The default is one slot per party side plus the
  mediator. Slots on the mediator side are countersignatures.
- ``agreement-sign``: the signer's account signs the exact hash of the proposal;
  only for a slot of its own, once per slot; a countersignature only after
  every other slot is signed; never on a superseded proposal.

An agreement is complete when every slot is signed. A complete agreement is
final: nothing supersedes it. Signatures never carry to a new version.
"""

from __future__ import annotations

from typing import Final, Literal, Self

from pydantic import Field, model_validator

from client_sdk.protocol.documents import DocumentContent, Sha256B64
from client_sdk.protocol.errors import NotPermitted
from client_sdk.protocol.instruments.base import Act, Context, State, States
from client_sdk.protocol.mediation import PLENARY, Refusal
from client_sdk.protocol.models import Ident, Int, Name, Side, WireModel
from client_sdk.protocol.statements import Roster, RosterMember

AGREEMENT: Final = "agreement"
"""The ``type`` of a proposal's sealed part: ``{type, title, document}``."""
MAX_SIGNERS: Final = 32
SIGNING_SIDES: Final = frozenset({Side.A, Side.B, Side.MEDIATOR})


class AgreementContent(WireModel):
    """A proposal's sealed part: its title and the document whose hash it names (the
    document's chunks are sealed under this sealed part's content key)."""

    type: Literal["agreement"] = AGREEMENT
    title: Name
    document: DocumentContent


class RequiredSigner(WireModel):
    """One signature an agreement needs: any account of `side`, or the named account
    (which sat on `side` when the agreement was proposed)."""

    side: Side
    account_id: Ident | None = None

    def label(self) -> str:
        """How the slot reads in a refusal."""
        return f"account {self.account_id}" if self.account_id else f"side {self.side.value}"


class AgreementSignature(WireModel):
    """A logged signature: who signed which hash, filling which slot, at which event."""

    slot: Int = Field(ge=0)
    account_id: Ident
    side: Side
    device_id: Ident
    document_sha256: Sha256B64
    seq: Int
    server_time: Int


class Agreement(State):
    """A proposal and the signatures logged for it so far."""

    kind: Literal["agreement"] = "agreement"
    agreement_id: Ident
    proposer_account_id: Ident
    seq: Int
    server_time: Int
    document_sha256: Sha256B64
    signers: list[RequiredSigner]
    supersedes: Ident | None = None
    superseded_by: Ident | None = None
    signatures: list[AgreementSignature] = Field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every required signature is logged."""
        return len(self.signatures) == len(self.signers)

    def signature_of(self, slot: int) -> AgreementSignature | None:
        """The signature filling `slot`, if any."""
        return next((s for s in self.signatures if s.slot == slot), None)

    def slot_for(self, member: RosterMember) -> int | None:
        """The slot `member` signs for: its named one, else its side's (None: no slot)."""
        for index, signer in enumerate(self.signers):
            if signer.account_id == member.account_id:
                return index
        for index, signer in enumerate(self.signers):
            if signer.account_id is None and signer.side is member.side:
                return index
        return None

    def waiting_for(self) -> list[RequiredSigner]:
        """The slots not signed yet, in order."""
        return [s for i, s in enumerate(self.signers) if self.signature_of(i) is None]


def agreement_key(agreement_id: str) -> str:
    """Where an agreement's state is kept."""
    return f"agreement/{agreement_id}"


def default_signers(roster: Roster) -> list[RequiredSigner]:
    """One account per party side the roster has, plus a mediator."""
    sides = [side for side in (Side.A, Side.B) if any(m.side is side for m in roster.members)]
    return [RequiredSigner(side=side) for side in [*sides, Side.MEDIATOR]]


def _agreement(states: States, agreement_id: str) -> Agreement:
    found = states.get(agreement_key(agreement_id))
    if not isinstance(found, Agreement):
        raise NotPermitted(Refusal.UNKNOWN, f"there is no agreement {agreement_id} in this room")
    return found


class AgreementProposeAct(Act):
    """``agreement-propose``: a document's hash, the signers it needs, what it replaces."""

    act: Literal["agreement-propose"] = "agreement-propose"
    document_sha256: Sha256B64
    signers: list[RequiredSigner] = Field(min_length=1, max_length=MAX_SIGNERS)
    supersedes: Ident | None = None

    @model_validator(mode="after")
    def _slots_are_unambiguous(self) -> Self:
        named = [s.account_id for s in self.signers if s.account_id is not None]
        if len(set(named)) != len(named):
            raise ValueError("an account is named twice among the signers")
        by_side = [s.side for s in self.signers if s.account_id is None]
        if len(set(by_side)) != len(by_side):
            raise ValueError("a side is listed twice among the signers")
        if any(s.account_id is not None and s.side in by_side for s in self.signers):
            raise ValueError("a side is listed both by name and as a side")
        if any(s.side not in SIGNING_SIDES for s in self.signers):
            raise ValueError("observers do not sign agreements")
        return self

    def keys(self) -> list[str]:
        keys = [agreement_key(self.instrument_id)]
        if self.supersedes is not None:
            keys.append(agreement_key(self.supersedes))
        return keys

    def apply(self, states: States, context: Context) -> dict[str, State]:
        if context.signer.side is Side.OBSERVER:
            raise NotPermitted(Refusal.OBSERVER, "observers do not propose agreements")
        if agreement_key(self.instrument_id) in states:
            raise NotPermitted(Refusal.INVALID, f"agreement {self.instrument_id} already exists")
        for signer in self.signers:
            if signer.account_id is None:
                continue
            member = context.roster.member(signer.account_id)
            if member is None:
                raise NotPermitted(
                    Refusal.MISMATCH, f"signer {signer.account_id} is not a member of the room"
                )
            if member.side is not signer.side:
                raise NotPermitted(
                    Refusal.MISMATCH,
                    f"signer {signer.account_id} sits on side {member.side.value}, "
                    f"not {signer.side.value}",
                )
        changes: dict[str, State] = {}
        if self.supersedes is not None:
            old = _agreement(states, self.supersedes)
            if old.superseded_by is not None:
                raise NotPermitted(
                    Refusal.INVALID,
                    f"agreement {old.agreement_id} is already superseded by {old.superseded_by}",
                )
            if old.complete:
                raise NotPermitted(
                    Refusal.INVALID, f"agreement {old.agreement_id} is complete: it stands"
                )
            changes[agreement_key(old.agreement_id)] = old.model_copy(
                update={"superseded_by": self.instrument_id}
            )
        changes[agreement_key(self.instrument_id)] = Agreement(
            agreement_id=self.instrument_id,
            proposer_account_id=context.signer.account_id,
            seq=context.seq,
            server_time=context.server_time,
            document_sha256=self.document_sha256,
            signers=self.signers,
            supersedes=self.supersedes,
        )
        return changes

    def sealed_channel(self, states: States, context: Context) -> str | None:
        return PLENARY


class AgreementSignAct(Act):
    """``agreement-sign``: `account_id` signs the document hash of agreement
    `agreement_id`."""

    act: Literal["agreement-sign"] = "agreement-sign"
    agreement_id: Ident
    account_id: Ident
    document_sha256: Sha256B64

    def keys(self) -> list[str]:
        return [agreement_key(self.agreement_id)]

    def apply(self, states: States, context: Context) -> dict[str, State]:
        agreement = _agreement(states, self.agreement_id)
        signer = context.signer
        if signer.account_id != self.account_id:
            raise NotPermitted(
                Refusal.MISMATCH, "a signature names the account of the device that signs it"
            )
        if self.document_sha256 != agreement.document_sha256:
            raise NotPermitted(
                Refusal.MISMATCH,
                f"the signature is over another hash than agreement {self.agreement_id}'s "
                f"document ({agreement.document_sha256})",
            )
        if agreement.superseded_by is not None:
            raise NotPermitted(
                Refusal.INVALID,
                f"agreement {self.agreement_id} is superseded by {agreement.superseded_by}",
            )
        slot = agreement.slot_for(signer)
        if slot is None:
            raise NotPermitted(
                Refusal.WRONG_SIDE,
                f"account {signer.account_id} is not a required signer of "
                f"agreement {self.agreement_id}",
            )
        done = agreement.signature_of(slot)
        if done is not None:
            who = "it" if done.account_id == signer.account_id else f"account {done.account_id}"
            raise NotPermitted(
                Refusal.INVALID,
                f"{agreement.signers[slot].label()} already signed agreement "
                f"{self.agreement_id} ({who}, event {done.seq})",
            )
        if agreement.signers[slot].side is Side.MEDIATOR:
            others = [s for s in agreement.waiting_for() if s.side is not Side.MEDIATOR]
            if others:
                raise NotPermitted(
                    Refusal.INVALID,
                    "the mediator countersigns last; waiting for "
                    + ", ".join(s.label() for s in others),
                )
        signature = AgreementSignature(
            slot=slot,
            account_id=signer.account_id,
            side=signer.side,
            device_id=self.signer_device,
            document_sha256=self.document_sha256,
            seq=context.seq,
            server_time=context.server_time,
        )
        return {
            agreement_key(self.agreement_id): agreement.model_copy(
                update={"signatures": [*agreement.signatures, signature]}
            )
        }
