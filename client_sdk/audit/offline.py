"""Offline audits (docs/design.md §6): a bundle checked without any network.

Two formats, told apart by content: the tiled bundle (`client_sdk.audit.archive`),
read in one pass in bounded memory, and the JSON bundle of earlier versions
(`client_sdk.audit.bundle`), read whole. Both go through the same `AuditRun`
and `LogAuditor` as an online audit; a tiled bundle additionally has its hash
tiles set against its entries and its checkpoint, so a changed tile, entry or
checkpoint is named as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from client_sdk.audit.archive import TiledBundle, TiledReader
from client_sdk.audit.bundle import AuditBundle
from client_sdk.audit.checkpoints import KnownCheckpoint
from client_sdk.audit.core import AuditReport, AuditRun, Policy, ProgressSink
from client_sdk.audit.pool import PARALLEL_THRESHOLD
from client_sdk.audit.tiles import StreamTree
from client_sdk.protocol.errors import AuditFailure, ProtocolError


@dataclass(frozen=True, slots=True)
class Options:
    """How to audit a bundle (as `client_sdk.audit.verify_bundle` takes them)."""

    log_vkey: str | None = None
    known: Sequence[KnownCheckpoint] = ()
    witnesses: Sequence[str] = ()
    quorum: int | None = None
    workers: int | None = None
    parallel_threshold: int = PARALLEL_THRESHOLD
    progress: ProgressSink | None = None


def _pin(log_id: str, carried: str, pinned: str | None) -> None:
    if pinned is not None and pinned != carried:
        raise AuditFailure(log_id, f"the bundle's log key is {carried}, not {pinned}")


def verify_json(bundle: AuditBundle, options: Options) -> AuditReport:
    """Audit a JSON bundle (format v1), held in memory."""
    _pin(bundle.log_id, bundle.log_vkey, options.log_vkey)
    run = AuditRun(
        bundle.log_id,
        bundle.origin,
        bundle.log_vkey,
        bundle.witnesses,
        Policy(tuple(options.witnesses), options.quorum),
    )
    for note in bundle.checkpoints:
        run.add(note)
    run.check_rollback(options.known)
    auditor = run.entries(
        workers=options.workers, threshold=options.parallel_threshold, progress=options.progress
    )
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
    return run.conclude(outcome, located=run.mismatch(outcome.tree), known=options.known)


def verify_tiled(bundle: TiledBundle, options: Options) -> AuditReport:
    """Audit a tiled bundle (format v2) in one pass over its file."""
    with bundle.path.open("rb") as file:
        reader = TiledReader(file)
        manifest = reader.manifest
        log_id = manifest.log_id
        _pin(log_id, manifest.log_vkey, options.log_vkey)
        run = AuditRun(
            log_id,
            manifest.origin,
            manifest.log_vkey,
            manifest.witnesses,
            Policy(tuple(options.witnesses), options.quorum),
        )
        for note in manifest.checkpoints:
            run.add(note)
        try:
            newest = run.add(reader.checkpoint)
        except AuditFailure as exc:
            raise AuditFailure(log_id, f"the bundle's checkpoint: {exc.reason}") from exc
        if newest.size != manifest.size or run.newest is not newest:
            raise AuditFailure(
                log_id,
                f"the bundle's checkpoint has size {newest.size}, but the bundle holds "
                f"{manifest.size} entries and checkpoints up to size {run.newest.size}",
            )
        run.check_rollback(options.known)
        stream = StreamTree({*run.checkpoints, *(k.size for k in options.known)})
        auditor = run.entries(
            workers=options.workers,
            threshold=options.parallel_threshold,
            progress=options.progress,
            stream=stream,
        )
        accounts: dict[str, Any] | None = None
        try:
            try:
                for batch in reader.batches():
                    auditor.feed(batch)
                    if auditor.failed:
                        break
                else:
                    accounts = reader.accounts()
            except ProtocolError as exc:
                if not auditor.failed:
                    auditor.fail(auditor.size, f"the bundle is damaged: {exc}")
            outcome = auditor.finish()
        finally:
            auditor.close()
    if accounts is not None:  # else an entry failed, or the bundle is damaged: said already
        outcome = run.signer_failure(outcome, accounts, now=manifest.exported_at)
    located = run.mismatch(outcome.tree)
    if reader.tile_failure is not None and outcome.failure is None:
        index, what = reader.tile_failure
        tiles_match = reader.tiles.size == newest.size and reader.tiles.root(newest.size) == (
            newest.root
        )
        if located is None:
            raise AuditFailure(
                log_id,
                f"a tile was changed: {what}, and the entries hash to the signed checkpoints",
                index=index,
            )
        if tiles_match and located[0] <= index < located[1]:
            raise AuditFailure(
                log_id,
                f"the leaf was changed: {what}, and the tiles hash to the signed checkpoint "
                f"of size {newest.size}",
                index=index,
            )
    return run.conclude(outcome, located=located, known=options.known)
