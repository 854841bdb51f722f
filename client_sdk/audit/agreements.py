"""Checking a signed agreement offline (docs/design.md §7, "Agreements"): a file and an
audit bundle of its room, no server, no profile, no private key.

The bundle (tiled or JSON) is audited in full (`verify_bundle`: every leaf, signature and
checkpoint against the log key, every instrument act replayed by the rules);
then the file's SHA-256 picks the proposal that names it, and the replayed
ledger gives its required signers and their signatures. The verdict is
`AgreementCheck.complete`: every required signature is logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from client_sdk.audit.archive import TiledBundle
from client_sdk.audit.bundle import AuditBundle
from client_sdk.audit.core import AuditReport
from client_sdk.client.agreement_models import AgreementView, agreement_view
from client_sdk.protocol.encoding import b64e
from client_sdk.protocol.errors import ProtocolError, VerificationError

_READ = 1 << 20


@dataclass(frozen=True, slots=True)
class AgreementCheck:
    """What a file and a bundle prove: the agreement that names the file's hash (the
    complete one if any, else the newest), the others that name it, and the audit."""

    document_sha256: str
    agreement: AgreementView
    others: list[AgreementView]
    report: AuditReport
    log_key_pinned: bool

    @property
    def complete(self) -> bool:
        """Every required signature of the agreement is logged."""
        return self.agreement.complete


def file_sha256(path: Path) -> str:
    """Base64url SHA-256 of a file, read in pieces; `ProtocolError` if unreadable."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while piece := file.read(_READ):
                digest.update(piece)
    except OSError as exc:
        raise ProtocolError(f"cannot read {path}: {exc.strerror}") from exc
    return b64e(digest.digest())


def verify_agreement(
    path: Path, bundle: AuditBundle | TiledBundle, *, log_vkey: str | None = None
) -> AgreementCheck:
    """Audit `bundle` (against `log_vkey` if given, else its own key) and find the
    agreement whose document is the file at `path`.

    Raises `AuditFailure` if the bundle does not verify and `VerificationError`
    if no agreement of the room names the file's hash. Whether it is complete is
    `AgreementCheck.complete`.
    """
    from client_sdk.audit import verify_bundle  # the package imports this module

    digest = file_sha256(path)
    report = verify_bundle(bundle, log_vkey=log_vkey)
    names: dict[str, str] = {}
    for roster in report.rosters:
        names.update((m.account_id, m.name) for m in roster.members)
    found = [
        agreement_view(bundle.log_id, state, lambda a: names.get(a, a))
        for state in report.ledger.agreements()
        if state.document_sha256 == digest
    ]
    if not found:
        raise VerificationError(
            f"no agreement of room {bundle.log_id} names this file (SHA-256 {digest})"
        )
    chosen = next((a for a in found if a.complete), found[-1])
    return AgreementCheck(
        document_sha256=digest,
        agreement=chosen,
        others=[a for a in found if a is not chosen],
        report=report,
        log_key_pinned=log_vkey is not None,
    )
