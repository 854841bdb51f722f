"""Auditing logs (docs/design.md §6): full verification online or offline, bundles, witnesses.

`verify_log` rebuilds a log's whole tree from its entries and checks

- every leaf: canonical, at its index, of the log's origin, recording the
  type, actor, payload hash and signature of what its actor signed;
- every signature: rosters by a mediator device of the roster before
  (version 1 by one listed in itself) whose account the directory shows as a
  mediator; messages by the sender's device in the roster in force;
  directory statements by their account key;
- every checkpoint it fetches (the newest, the newest cosigned, and the
  sizes seen before) against the pinned log key, every cosignature by a
  known witness, and each root against the rebuilt tree;
- consistency with every checkpoint seen before: the one this keystore
  verified and the one this profile's witness cosigned;
- optionally a witness quorum: the newest cosigned checkpoint must carry
  cosignatures by k of the witness keys given (`client_sdk.audit.witness.check_quorum`).

It returns an `AuditReport` or raises `AuditFailure` (a `VerificationError`)
naming the first entry that fails; a leaf changed behind the server's back is
located by bisecting the signed checkpoints. Large logs have their
signatures checked in a process pool. `export_log` writes the same material
into an `AuditBundle`, which `verify_bundle` checks without any network, and
`witness_once` runs this profile's witness (`client_sdk.audit.witness`) once.
`verify_agreement` checks a signed agreement's file against a bundle offline
(`client_sdk.audit.agreements`).
"""

from __future__ import annotations

from collections.abc import Sequence

from client_sdk.audit.agreements import AgreementCheck, verify_agreement
from client_sdk.audit.bundle import AuditBundle, parse_bundle, read_bundle, write_bundle
from client_sdk.audit.checkpoints import KnownCheckpoint
from client_sdk.audit.core import AuditReport, AuditRun, Policy, ProgressSink
from client_sdk.audit.online import OnlineLog
from client_sdk.audit.pool import PARALLEL_THRESHOLD
from client_sdk.audit.witness_online import (
    WitnessedCheckpoint,
    existing_witness,
    fetch_checkpoint,
    keystore_witness,
    register_witness,
    witness_once,
)
from client_sdk.client import ParleyClient
from client_sdk.protocol.errors import AuditFailure

__all__ = [
    "PARALLEL_THRESHOLD",
    "AgreementCheck",
    "AuditBundle",
    "AuditFailure",
    "AuditReport",
    "KnownCheckpoint",
    "ProgressSink",
    "WitnessedCheckpoint",
    "existing_witness",
    "export_log",
    "fetch_checkpoint",
    "keystore_witness",
    "parse_bundle",
    "read_bundle",
    "register_witness",
    "verify_agreement",
    "verify_bundle",
    "verify_log",
    "witness_once",
    "write_bundle",
]


async def verify_log(
    client: ParleyClient,
    log_id: str,
    *,
    witnesses: Sequence[str] = (),
    quorum: int | None = None,
    workers: int | None = None,
    parallel_threshold: int = PARALLEL_THRESHOLD,
    progress: ProgressSink | None = None,
) -> AuditReport:
    """Audit a log through `client`, a member of its room or an auditor granted it.

    `witnesses` and `quorum` set a witness policy (k defaults to all of them).
    On success the newest checkpoint becomes the one this keystore verified.
    Raises `AuditFailure`, or the client's errors when the server cannot be used.
    """
    return await OnlineLog(client, log_id).verify(
        policy=Policy(tuple(witnesses), quorum),
        workers=workers,
        threshold=parallel_threshold,
        progress=progress,
    )


async def export_log(client: ParleyClient, log_id: str) -> AuditBundle:
    """A self-contained bundle of a log for `verify_bundle`; its checkpoints are checked."""
    return await OnlineLog(client, log_id).export()


def verify_bundle(
    bundle: AuditBundle,
    *,
    log_vkey: str | None = None,
    known: Sequence[KnownCheckpoint] = (),
    witnesses: Sequence[str] = (),
    quorum: int | None = None,
    workers: int | None = None,
    parallel_threshold: int = PARALLEL_THRESHOLD,
    progress: ProgressSink | None = None,
) -> AuditReport:
    """Audit a bundle offline.

    `log_vkey` pins the log key the bundle must carry (otherwise the bundle's
    own is used, and the report says which); `known` are tree heads seen
    before that the log must extend. Raises `AuditFailure`.
    """
    if log_vkey is not None and log_vkey != bundle.log_vkey:
        raise AuditFailure(
            bundle.log_id, f"the bundle's log key is {bundle.log_vkey}, not {log_vkey}"
        )
    run = AuditRun(
        bundle.log_id,
        bundle.origin,
        bundle.log_vkey,
        bundle.witnesses,
        Policy(tuple(witnesses), quorum),
    )
    for note in bundle.checkpoints:
        run.add(note)
    run.check_rollback(known)
    auditor = run.entries(workers=workers, threshold=parallel_threshold, progress=progress)
    size = run.newest.size
    try:
        auditor.feed(bundle.entries[:size])
        if not auditor.failed and auditor.size < size:
            auditor.fail(auditor.size, f"the bundle ends before size {size}")
        if not auditor.failed and len(bundle.entries) > size:
            auditor.fail(size, "entries beyond the newest checkpoint, which no checkpoint covers")
        outcome = auditor.finish()
    finally:
        auditor.close()
    outcome = run.signer_failure(outcome, bundle.accounts, now=bundle.exported_at)
    return run.conclude(outcome, located=run.mismatch(outcome.tree), known=known)
