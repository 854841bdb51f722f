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
`witness_once` runs this profile's witness (`client_sdk.audit.witness`) once;
`readable_logs` lists the logs the profile may read, and why.
`verify_agreement` checks a signed agreement's file against a bundle offline
(`client_sdk.audit.agreements`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from client_sdk.audit.agreements import AgreementCheck, verify_agreement
from client_sdk.audit.archive import TiledBundle
from client_sdk.audit.bundle import AuditBundle, parse_bundle, read_bundle, write_bundle
from client_sdk.audit.checkpoints import KnownCheckpoint
from client_sdk.audit.core import AuditReport, Policy, ProgressSink
from client_sdk.audit.offline import Options, verify_json, verify_tiled
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
from client_sdk.protocol.wire.logs import LogSummary

__all__ = [
    "PARALLEL_THRESHOLD",
    "AgreementCheck",
    "AuditBundle",
    "AuditFailure",
    "AuditReport",
    "KnownCheckpoint",
    "LogSummary",
    "ProgressSink",
    "TiledBundle",
    "WitnessedCheckpoint",
    "existing_witness",
    "export_log",
    "export_tiled",
    "fetch_checkpoint",
    "keystore_witness",
    "parse_bundle",
    "read_bundle",
    "readable_logs",
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


async def readable_logs(client: ParleyClient) -> list[LogSummary]:
    """The logs `client`'s account may read: the directory (everyone), its rooms' logs
    (``member``), the rooms a mediator granted it (``auditor``), and the rooms whose
    signed policy names its witness key (``witness``: checkpoints and consistency only)."""
    return await client.http.call_list(LogSummary, "GET", "/v1/logs")


async def export_log(client: ParleyClient, log_id: str) -> AuditBundle:
    """A self-contained bundle of a log for `verify_bundle`; its checkpoints are checked."""
    return await OnlineLog(client, log_id).export()


async def export_tiled(client: ParleyClient, log_id: str, out: IO[bytes]) -> int:
    """Write a tiled bundle of a log to `out` as its pages arrive; the entry count."""
    return await OnlineLog(client, log_id).export_tiled(out)


def verify_bundle(
    bundle: AuditBundle | TiledBundle,
    *,
    log_vkey: str | None = None,
    known: Sequence[KnownCheckpoint] = (),
    witnesses: Sequence[str] = (),
    quorum: int | None = None,
    workers: int | None = None,
    parallel_threshold: int = PARALLEL_THRESHOLD,
    progress: ProgressSink | None = None,
) -> AuditReport:
    """Audit a bundle offline: a tiled one (read from its file in one pass, in bounded
    memory) or a JSON one.

    `log_vkey` pins the log key the bundle must carry (otherwise the bundle's
    own is used, and the report says which); `known` are tree heads seen
    before that the log must extend. Raises `AuditFailure`.
    """
    options = Options(log_vkey, known, witnesses, quorum, workers, parallel_threshold, progress)
    if isinstance(bundle, TiledBundle):
        return verify_tiled(bundle, options)
    return verify_json(bundle, options)
