"""The state of one audit: the log's identity, its checkpoints, and the conclusions drawn
from the rebuilt tree (shared by online audits and offline bundles)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from client_sdk.audit.checkpoints import (
    CheckpointChecker,
    KnownCheckpoint,
    SignedCheckpoint,
    check_quorum,
    first_mismatch,
    parse_witness_keys,
)
from client_sdk.audit.log import LogAuditor
from client_sdk.audit.outcome import AuditOutcome, LogKind, check_origin, log_kind
from client_sdk.audit.pool import make_pool, worker_count
from client_sdk.audit.signers import check_roster_signers
from client_sdk.audit.tiles import Roots, StreamTree
from client_sdk.protocol.errors import (
    AuditFailure,
    ForkedError,
    ParleyError,
    ProtocolError,
    RolledBackError,
    UnwitnessedError,
)
from client_sdk.protocol.instruments.ledger import Ledger
from client_sdk.protocol.note import format_root, parse_verifier_key
from client_sdk.protocol.statements import Roster


class ProgressSink(Protocol):
    """Where an audit reports progress (the CLI's progress bar)."""

    def start(self, total: int) -> None:
        """The number of entries to check."""

    def advance(self, count: int) -> None:
        """`count` more entries were checked (may be called from another thread)."""


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What a successful audit checked."""

    log_id: str
    origin: str
    log_vkey: str
    size: int
    root: bytes
    entries: dict[str, int]
    """Entries by leaf type."""
    checkpoints: tuple[int, ...]
    """Sizes of the checkpoints whose signature, cosignatures and root were checked."""
    cosignatures: dict[int, tuple[str, ...]]
    """Checkpoint size -> names of the witnesses whose cosignatures verified."""
    consistent_with: tuple[str, ...]
    """The checkpoints seen before that the log extends."""
    quorum: tuple[int, tuple[str, ...]] | None
    """The size of the checkpoint that met the witness quorum, and its cosigners."""
    parallel: bool
    seconds: float
    ledger: Ledger = field(default_factory=Ledger, repr=False, compare=False)
    """What the room's instrument acts built, replayed by the rules (room logs)."""
    rosters: tuple[Roster, ...] = field(default=(), repr=False, compare=False)
    """Every roster version of the room, in order (room logs)."""

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {
            "log_id": self.log_id,
            "origin": self.origin,
            "log_vkey": self.log_vkey,
            "size": self.size,
            "root": format_root(self.root),
            "entries": self.entries,
            "checkpoints": list(self.checkpoints),
            "cosignatures": {str(k): list(v) for k, v in self.cosignatures.items()},
            "consistent_with": list(self.consistent_with),
            "quorum": None
            if self.quorum is None
            else {"size": self.quorum[0], "witnesses": list(self.quorum[1])},
            "parallel": self.parallel,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True, slots=True)
class Policy:
    """The witness quorum an audit must find (none without witnesses or quorum)."""

    witnesses: tuple[str, ...]
    quorum: int | None


Probe = Callable[[int], Awaitable[str]]
"""Fetches the signed checkpoint of a size (online audits only)."""


class AuditRun:
    """One audit: the log's identity, the checkpoints checked, and the conclusions."""

    def __init__(
        self, log_id: str, origin: str, log_vkey: str, witnesses: Sequence[str], policy: Policy
    ) -> None:
        """Audit `log_id` of `origin` against `log_vkey`; `witnesses` are known cosigners."""
        self.log_id = log_id
        self.origin = origin
        self.log_vkey = log_vkey
        self.policy = policy
        check_origin(log_id, origin)
        try:
            key = parse_verifier_key(log_vkey)
        except ProtocolError as exc:
            raise AuditFailure(log_id, f"bad log key: {exc}") from exc
        if key.name != origin:
            raise AuditFailure(log_id, "the log key is not named after the log's origin")
        keys = parse_witness_keys(log_id, [*witnesses, *policy.witnesses])
        self.checker = CheckpointChecker(log_id, origin, key, keys)
        self.checkpoints: dict[int, SignedCheckpoint] = {}
        self.parallel = False
        self.started = time.monotonic()

    def add(self, note: str, *, size: int | None = None) -> SignedCheckpoint:
        """Check a checkpoint note and keep it; two roots for one size are a fork."""
        checkpoint = self.checker.check(note, size=size)
        known = self.checkpoints.get(checkpoint.size)
        if known is not None and known.root != checkpoint.root:
            raise AuditFailure(
                self.log_id,
                f"two different roots for size {checkpoint.size}",
                kind=ForkedError.kind,
            )
        self.checkpoints[checkpoint.size] = checkpoint
        return checkpoint

    @property
    def newest(self) -> SignedCheckpoint:
        """The largest checkpoint checked."""
        return self.checkpoints[max(self.checkpoints)]

    def check_rollback(self, known: Sequence[KnownCheckpoint]) -> None:
        """Nothing seen before may be larger than the newest checkpoint."""
        for seen in known:
            if seen.size > self.newest.size:
                raise AuditFailure(
                    self.log_id,
                    f"the newest checkpoint has size {self.newest.size}, but {seen.source} has "
                    f"size {seen.size}: the log was rolled back",
                    kind=RolledBackError.kind,
                )

    def entries(
        self,
        *,
        workers: int | None,
        threshold: int,
        progress: ProgressSink | None,
        pool: Executor | None = None,
        stream: StreamTree | None = None,
    ) -> LogAuditor:
        """The auditor of the entries up to the newest checkpoint: in a process pool (`pool`,
        started early, or a new one) for logs larger than `threshold`, else in process."""
        size = self.newest.size
        self.parallel = size > threshold and worker_count(workers) > 1
        executor = None
        if self.parallel:
            executor = pool or make_pool(workers)
        elif pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if progress is not None:
            progress.start(size)  # after the pool: a progress bar runs a thread
        return LogAuditor(
            log_id=self.log_id,
            origin=self.origin,
            operator_key=parse_verifier_key(self.log_vkey).public_key,
            executor=executor,
            progress=None if progress is None else progress.advance,
            stream=stream,
            # Streaming: a few chunks per worker queued, so memory holds no more.
            max_in_flight=None if stream is None else 3 * worker_count(workers),
        )

    def signer_failure(
        self, outcome: AuditOutcome, accounts: Mapping[str, Any], *, now: int
    ) -> AuditOutcome:
        """The outcome, with the directory check of the roster signers (room logs)."""
        if log_kind(self.log_id) is not LogKind.ROOM:
            return outcome
        failure = check_roster_signers(outcome.roster_signers, accounts, now=now)
        if failure is None or (outcome.failure is not None and outcome.failure <= failure):
            return outcome
        return replace(outcome, failure=failure)

    def mismatch(self, tree: Roots) -> tuple[int, int] | None:
        """(lo, hi): the first checkpoint size whose root is not the tree's, and the last
        matching size before it (0 if none); None if every root the tree covers matches."""
        roots = {size: tree.root(size) for size in self.checkpoints if size <= tree.size}
        return first_mismatch(self.checkpoints, roots)

    def conclude(
        self,
        outcome: AuditOutcome,
        *,
        located: tuple[int, int] | None,
        known: Sequence[KnownCheckpoint],
    ) -> AuditReport:
        """Raise for the first failure, check what was seen before and the quorum; report."""
        failures: list[tuple[int, int, str]] = []
        if outcome.failure is not None:
            index, reason = outcome.failure
            failures.append((index, index, reason))
        if located is not None:
            lo, hi = located
            # An entry that fails inside the range is the best account of it offline.
            if not any(lo <= index < hi for index, _, _ in failures):
                failures.append((lo, hi - 1, _changed(lo, hi)))
        if failures:
            first, last, reason = min(failures)
            kind = ForkedError.kind if first in outcome.forks else None
            raise AuditFailure(self.log_id, reason, index=first, last=last, kind=kind)
        tree = outcome.tree
        consistent = []
        for seen in known:
            if not seen.size:
                continue
            if tree.root(seen.size) != seen.root:
                raise AuditFailure(
                    self.log_id,
                    f"the log's history differs from {seen.source} (size {seen.size}): "
                    "the log was rewritten or forked",
                    kind=ForkedError.kind,
                )
            consistent.append(f"{seen.source} (size {seen.size})")
        checkpoints = sorted(self.checkpoints.items())
        return AuditReport(
            log_id=self.log_id,
            origin=self.origin,
            log_vkey=self.log_vkey,
            size=self.newest.size,
            root=self.newest.root,
            entries=outcome.counts,
            checkpoints=tuple(size for size, _ in checkpoints),
            cosignatures={size: c.cosigners for size, c in checkpoints if c.cosigners},
            consistent_with=tuple(consistent),
            quorum=self._quorum(),
            parallel=self.parallel,
            seconds=time.monotonic() - self.started,
            ledger=outcome.ledger,
            rosters=tuple(outcome.rosters),
        )

    def _quorum(self) -> tuple[int, tuple[str, ...]] | None:
        policy = self.policy
        if not policy.witnesses and policy.quorum is None:
            return None
        cosigned = [c for c in self.checkpoints.values() if c.cosigners]
        if not cosigned:
            raise AuditFailure(
                self.log_id,
                "no checkpoint is cosigned: no witness quorum is met",
                kind=UnwitnessedError.kind,
            )
        newest = max(cosigned, key=lambda c: c.size)
        k = policy.quorum if policy.quorum is not None else len(set(policy.witnesses))
        check_quorum(newest.note, self.log_vkey, self.origin, list(policy.witnesses), k)
        return newest.size, newest.cosigners


def _changed(lo: int, hi: int) -> str:
    what = "the leaf was changed" if hi - lo == 1 else "a leaf in this range was changed"
    below = f", but to the one of size {lo}" if lo else ""
    return f"{what}: the entries do not hash to the root the log signed at size {hi}{below}"


async def bisect(
    run: AuditRun, tree: Roots, located: tuple[int, int], probe: Probe
) -> tuple[int, int]:
    """Narrow (lo, hi] down to the changed leaf with checkpoints fetched by `probe`."""
    lo, hi = located
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            checkpoint = run.add(await probe(mid), size=mid)
        except (AuditFailure, ParleyError):
            break  # no such checkpoint to be had: report the range
        if checkpoint.root == tree.root(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi
