"""What the SDK says about an agreement (docs/design.md §7): the proposal, its required
signers and who signed which hash when, as a member or an outsider replayed them from
the log. Pure: built from an `Agreement` state and the names the rosters give."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from client_sdk.protocol.documents import DocumentContent
from client_sdk.protocol.instruments.agreements import Agreement, AgreementSignature


@dataclass(frozen=True, slots=True)
class AgreementSignatureView:
    """A logged signature: `account_id` signed `document_sha256` at event `seq`, logged
    at `server_time` (ms)."""

    account_id: str
    name: str
    side: str
    device_id: str
    document_sha256: str
    seq: int
    server_time: int


@dataclass(frozen=True, slots=True)
class RequiredSignerView:
    """One signature the agreement needs (any account of `side`, or the account named)
    and the signature that fills it, if logged."""

    side: str
    account_id: str | None
    name: str | None
    signature: AgreementSignatureView | None


@dataclass(frozen=True, slots=True)
class AgreementView:
    """An agreement as the log shows it."""

    room_id: str
    agreement_id: str
    seq: int
    proposed_at: int
    proposer_account_id: str
    proposer_name: str
    document_sha256: str
    """Base64url SHA-256 of the plaintext document, as proposed (and signed)."""
    title: str | None
    """From the sealed part (None where this reader cannot open it, e.g. offline)."""
    document: DocumentContent | None
    supersedes: str | None
    superseded_by: str | None
    signers: list[RequiredSignerView]
    signatures: list[AgreementSignatureView]
    complete: bool

    def to_json(self) -> dict[str, Any]:
        """The agreement as JSON-ready values (times as ISO 8601, UTC)."""
        return {
            "room_id": self.room_id,
            "agreement_id": self.agreement_id,
            "seq": self.seq,
            "proposed_at": _iso(self.proposed_at),
            "proposer": {"account_id": self.proposer_account_id, "name": self.proposer_name},
            "title": self.title,
            "document": None
            if self.document is None
            else {
                "name": self.document.name,
                "media_type": self.document.media_type,
                "size": self.document.size,
            },
            "document_sha256": self.document_sha256,
            "supersedes": self.supersedes,
            "superseded_by": self.superseded_by,
            "signers": [
                {
                    "side": s.side,
                    "account_id": s.account_id,
                    "name": s.name,
                    "signed": s.signature is not None,
                }
                for s in self.signers
            ],
            "signatures": [
                {
                    "account_id": s.account_id,
                    "name": s.name,
                    "side": s.side,
                    "device_id": s.device_id,
                    "document_sha256": s.document_sha256,
                    "seq": s.seq,
                    "server_time": _iso(s.server_time),
                }
                for s in self.signatures
            ],
            "complete": self.complete,
        }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


Names = Callable[[str], str]
"""An account's name as the rosters give it (its id if none does)."""


def agreement_view(
    room_id: str,
    state: Agreement,
    names: Names,
    *,
    title: str | None = None,
    document: DocumentContent | None = None,
) -> AgreementView:
    """The view of one replayed agreement."""

    def signature(found: AgreementSignature) -> AgreementSignatureView:
        return AgreementSignatureView(
            account_id=found.account_id,
            name=names(found.account_id),
            side=found.side.value,
            device_id=found.device_id,
            document_sha256=found.document_sha256,
            seq=found.seq,
            server_time=found.server_time,
        )

    return AgreementView(
        room_id=room_id,
        agreement_id=state.agreement_id,
        seq=state.seq,
        proposed_at=state.server_time,
        proposer_account_id=state.proposer_account_id,
        proposer_name=names(state.proposer_account_id),
        document_sha256=state.document_sha256,
        title=title,
        document=document,
        supersedes=state.supersedes,
        superseded_by=state.superseded_by,
        signers=[
            RequiredSignerView(
                side=signer.side.value,
                account_id=signer.account_id,
                name=None if signer.account_id is None else names(signer.account_id),
                signature=None if (found := state.signature_of(i)) is None else signature(found),
            )
            for i, signer in enumerate(state.signers)
        ],
        signatures=[signature(s) for s in state.signatures],
        complete=state.complete,
    )
