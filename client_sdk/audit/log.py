"""Auditing one log from its entries: the pass in log order and the tree.

`LogAuditor.feed` takes entries in order, as the log read API serves them
(``{index, leaf, leaf_hash?, signed}``). For each it hashes the leaf into the
tree and works out what only log order tells: which roster is in force and
which mediator may sign the next one (room logs), which account key certifies
what (the directory). Rosters are checked right there (there are few); every
other entry becomes an `EntryJob` whose leaf, payload hash and signature are
checked by `client_sdk.audit.checks.check_chunk`, in a process pool for large
logs. `finish` returns the first failing index, whichever check found it.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from typing import Any

from pydantic import ValidationError

from client_sdk.audit.checks import (
    DIRECTORY_LEAF_TYPES,
    REBUILT,
    ChunkContext,
    ChunkResult,
    EntryJob,
    Failure,
    check_chunk,
    check_leaf,
)
from client_sdk.audit.instruments import InstrumentAudit
from client_sdk.audit.outcome import AuditOutcome, LogKind, log_kind
from client_sdk.audit.pool import CHUNK_SIZE
from client_sdk.audit.signers import RosterSigner
from client_sdk.audit.tiles import LeafHashFile, Roots, StreamTree, TreeRoots
from client_sdk.client.verify import verify_roster_step
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import NotPermitted, ParleyError, ProtocolError, VerificationError
from client_sdk.protocol.keys import key_id
from client_sdk.protocol.mediation import RoomState, Status
from client_sdk.protocol.merkle import CompactRange, leaf_hash
from client_sdk.protocol.models import Side
from client_sdk.protocol.note import format_root
from client_sdk.protocol.statements import (
    Moderation,
    Roster,
    SignedStatement,
    parse_statement,
    verify_statement,
)

Progress = Callable[[int], None]
"""Called with the number of entries just checked (possibly from another thread)."""


class LogAuditor:
    """Checks a log's entries, fed in order; `finish` gives the outcome."""

    def __init__(
        self,
        *,
        log_id: str,
        origin: str,
        operator_key: bytes | None = None,
        executor: Executor | None = None,
        progress: Progress | None = None,
        chunk_size: int = CHUNK_SIZE,
        stream: StreamTree | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        """Audit the log `log_id` with this origin; checks run in `executor` if given.

        With `stream`, the tree is rebuilt there and leaf hashes go to a file: memory
        does not grow with the log (offline bundles). Otherwise every leaf hash is kept,
        so that a root at any size can be had (online audits bisect with them).
        `operator_key` (the log's own key) checks the operator's revocations in the
        directory log; without it they fail the audit."""
        self.log_id = log_id
        self.origin = origin
        self.kind = log_kind(log_id)
        self._executor = executor
        self._progress = progress
        self._chunk_size = chunk_size
        self._stream = stream
        self._max_in_flight = max_in_flight
        self._size = 0
        self._hashes: list[bytes] | LeafHashFile = [] if stream is None else LeafHashFile()
        self._counts: Counter[str] = Counter()
        self._failures: list[Failure] = []
        self._gossip: dict[int, tuple[bytes, int]] = {}
        """Size -> the root a message's sender saw there, and that message's index."""
        self._forks: set[int] = set()
        """Indexes whose failure shows a fork (gossip that disagrees)."""
        self._pending: list[EntryJob] = []
        self._futures: list[Future[ChunkResult]] = []
        self._lock = threading.Lock()
        self._chunk_failed = False
        # Room logs: the roster chain so far.
        self._roster: tuple[Roster, SignedStatement] | None = None
        self._roster_devices: dict[int, frozenset[str]] = {}
        self._rosters: list[Roster] = []
        self._state = RoomState()
        self._roster_keys: dict[str, bytes] = {}
        self._version_keys: dict[int, dict[str, bytes]] = {}
        self._signers: list[RosterSigner] = []
        self._instruments = InstrumentAudit(log_id=log_id, origin=origin, hashes=self._hashes)
        # The directory: account keys and certified devices so far.
        self._accounts: dict[str, bytes] = {}
        self._devices: dict[str, set[str]] = {}
        self._revoked_accounts: set[str] = set()
        self._operator_key = operator_key

    @property
    def size(self) -> int:
        """How many entries were fed and hashed."""
        return self._size

    @property
    def failed(self) -> bool:
        """Whether some entry already failed (feeding more is then pointless)."""
        with self._lock:
            return bool(self._failures) or self._chunk_failed

    def feed(self, entries: Sequence[Any]) -> None:
        """Take the next entries of the log, in order; their checks start before it returns."""
        for entry in entries:
            if self._failures:
                break
            index = self._size
            try:
                self._take(index, entry)
            except (ParleyError, ValueError, TypeError, KeyError) as exc:
                self._failures.append((index, str(exc) or type(exc).__name__))
                break
            if len(self._pending) >= self._chunk_size:
                self._flush()
        if self._executor is not None:
            self._flush()  # idle workers are worth more than full chunks

    def close(self) -> None:
        """Stop the worker pool: the auditor owns the executor it was given."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        if isinstance(self._hashes, LeafHashFile):
            self._hashes.close()

    def fail(self, index: int, reason: str) -> None:
        """Record a failure found outside the entries (e.g. missing entries)."""
        self._failures.append((index, reason))

    def finish(self) -> AuditOutcome:
        """Wait for every check; the tree, the counts and the first failure."""
        self._flush()
        for future in self._futures:
            try:
                result = future.result()
            except BrokenExecutor as exc:
                raise ParleyError(f"the processes checking signatures failed: {exc}") from exc
            self._harvest(result)
        self._futures = []
        tree: Roots
        if self._stream is not None:
            tree = self._stream
        else:
            assert isinstance(self._hashes, list)
            tree = TreeRoots(self._hashes)
        failures = list(self._failures)
        fork = self._gossip_failure(tree if isinstance(tree, TreeRoots) else None)
        if fork is not None:
            failures.append(fork)
        return AuditOutcome(
            tree=tree,
            counts=dict(self._counts),
            failure=min(failures, default=None),
            forks=frozenset(self._forks),
            roster_signers=list(self._signers),
            ledger=self._instruments.ledger,
            rosters=list(self._rosters),
        )

    # The pass in log order.

    def _take(self, index: int, entry: Any) -> None:
        if not isinstance(entry, Mapping) or entry.get("index") != index:
            raise VerificationError(f"entry {index} is missing (the log skips or repeats one)")
        raw = entry.get("leaf")
        if not isinstance(raw, bytes):  # JSON: base64url text
            raw = _b64(raw, "the leaf")
        hashed = leaf_hash(raw)
        stored = entry.get("leaf_hash")
        if stored is not None and stored != b64e(hashed):
            raise VerificationError("the stored leaf hash is not the hash of the leaf")
        self._hashes.append(hashed)
        if self._stream is not None:
            self._stream.append(hashed)
        self._size += 1
        signed = entry.get("signed")
        if isinstance(signed, bytes):  # a tiled bundle: messages go to the checks unparsed
            if self.kind is LogKind.ROOM and signed.startswith(b'{"header":'):
                self._take_message_bytes(index, raw, signed)
                return
            signed = _json_object(signed)
        if not isinstance(signed, dict):
            raise VerificationError("no signed payload is served for this leaf")
        if self.kind is LogKind.DIRECTORY:
            self._take_statement(index, raw, signed)
        elif "header" in signed:
            self._take_message(index, raw, signed)
        elif not isinstance(signed.get("body"), dict):
            raise VerificationError("the signed payload is neither a statement nor an envelope")
        elif signed["body"].get("type") == "roster":
            self._take_roster(index, raw, signed)
        elif signed["body"].get("type") == "moderation":
            self._take_moderation(index, raw, signed)
        elif signed["body"].get("type") == "instrument":
            if self._state.status is not Status.OPEN:
                raise VerificationError(f"an instrument act in a {self._state.status} room")
            self._instruments.take(index, raw, signed, self._roster and self._roster[0])
            self._counts["instrument"] += 1
            self._report(1)
        else:  # fail closed on any act this audit does not know how to check
            kind = signed["body"].get("type")
            raise VerificationError(f"a {kind!r} statement, which this audit cannot check")

    def _take_roster(self, index: int, raw: bytes, signed: dict[str, Any]) -> None:
        try:
            statement = SignedStatement.model_validate(signed)
        except ValidationError as exc:
            raise VerificationError(f"malformed signed roster: {exc}") from exc
        previous = self._roster
        roster = verify_roster_step(statement, room_id=self.log_id, previous=previous)
        check_leaf(
            raw,
            origin=self.origin,
            index=index,
            leaf_type="roster",
            actor_device=roster.signer_device,
            payload_hash=statement.body_hash(),
            signature=statement.signature,
        )
        signer = (previous[0] if previous else roster).device_owner(roster.signer_device)
        assert signer is not None  # verify_roster_step found it
        self._signers.append(
            RosterSigner(
                index, roster.version, signer.account_id, signer.account_key, roster.signer_device
            )
        )
        self._roster = (roster, statement)
        self._rosters.append(roster)
        self._roster_devices[roster.version] = frozenset(roster.device_ids())
        self._roster_keys = {
            d.device_id: b64d(d.signing_key) for m in roster.members for d in m.devices
        }
        self._version_keys[roster.version] = self._roster_keys
        self._counts["roster"] += 1
        self._report(1)

    def _take_moderation(self, index: int, raw: bytes, signed: dict[str, Any]) -> None:
        """A mediator's act: signed by a mediator device of the roster in force, naming
        that roster's version, and one the room's rules allow at this point."""
        if self._roster is None:
            raise VerificationError("a moderation act before the room's first roster")
        try:
            statement = SignedStatement.model_validate(signed)
            act = parse_statement(statement, Moderation)
        except (ValidationError, ProtocolError) as exc:
            raise VerificationError(f"malformed moderation act: {exc}") from exc
        roster = self._roster[0]
        if act.room_id != self.log_id or act.roster_version != roster.version:
            raise VerificationError(
                f"moderation act names room {act.room_id} at roster version "
                f"{act.roster_version}, but roster version {roster.version} is in force"
            )
        signer = roster.device_owner(act.signer_device)
        if signer is None or signer.side is not Side.MEDIATOR:
            raise VerificationError("moderation act not signed by a mediator of the room")
        key = signer.signing_key_of(act.signer_device)
        verify_statement(statement, b64d(key), Moderation)
        check_leaf(
            raw,
            origin=self.origin,
            index=index,
            leaf_type="moderation",
            actor_device=act.signer_device,
            payload_hash=statement.body_hash(),
            signature=statement.signature,
        )
        try:
            self._state = self._state.apply(act, roster)
        except NotPermitted as exc:
            raise VerificationError(f"a moderation act the room's rules refuse: {exc}") from exc
        self._counts["moderation"] += 1
        self._report(1)

    def _take_message(self, index: int, raw: bytes, signed: dict[str, Any]) -> None:
        if self._roster is None:
            raise VerificationError("a message before the room's first roster")
        header = signed.get("header")
        sender = header.get("sender_device") if isinstance(header, dict) else None
        version = self._roster[0].version
        key = self._roster_keys.get(sender) if isinstance(sender, str) else None
        if key is None or not isinstance(sender, str):
            raise VerificationError(f"the sender device is not in roster version {version}")
        self._pending.append(EntryJob(index, raw, signed, "message", key, sender, version))
        self._counts["message"] += 1

    def _take_message_bytes(self, index: int, raw: bytes, signed: bytes) -> None:
        """A message given unparsed: `check_chunk` parses it and finds its sender's key
        in the roster in force (nothing here reads it: this pass is the bottleneck)."""
        if self._roster is None:
            raise VerificationError("a message before the room's first roster")
        version = self._roster[0].version
        self._pending.append(EntryJob(index, raw, signed, "message", b"", "", version))
        self._counts["message"] += 1

    def _take_statement(self, index: int, raw: bytes, signed: dict[str, Any]) -> None:
        body = signed.get("body")
        if not isinstance(body, dict):
            raise VerificationError("the signed statement has no body")
        leaf_type = DIRECTORY_LEAF_TYPES.get(str(body.get("type")))
        account_id = body.get("account_id")
        if leaf_type is None or not isinstance(account_id, str):
            raise VerificationError(f"unknown directory statement {body.get('type')!r}")
        if leaf_type == "registration":
            if account_id in self._accounts:
                raise VerificationError(f"account {account_id} is registered a second time")
            key = _b64(body.get("account_key"), "the account key")
            self._accounts[account_id] = key
            self._devices[account_id] = set()
        elif leaf_type == "revocation":
            key = self._revocation(account_id, body)
        else:
            found = self._accounts.get(account_id)
            if found is None:
                raise VerificationError(f"a certificate for account {account_id}, not registered")
            if account_id in self._revoked_accounts:
                raise VerificationError(f"a certificate for account {account_id}, revoked whole")
            key = found
            device_id = str(body.get("device_id"))
            if leaf_type == "device":
                self._devices[account_id].add(device_id)
            elif device_id not in self._devices[account_id]:
                raise VerificationError(
                    f"an encryption key for device {device_id}, not certified for {account_id}"
                )
        self._pending.append(EntryJob(index, raw, signed, leaf_type, key, key_id(key)))
        self._counts[leaf_type] += 1

    def _revocation(self, account_id: str, body: dict[str, Any]) -> bytes:
        """The key that must have signed a revocation; the devices it ends stop counting
        as certified, so a later key for them fails."""
        devices = self._devices.get(account_id)
        if devices is None:
            raise VerificationError(f"a revocation for account {account_id}, not registered")
        device_id = body.get("device_id")
        if body.get("authority") == "operator":
            if self._operator_key is None:
                raise VerificationError("an operator's revocation, and no log key to check it")
            key = self._operator_key
        else:
            key = self._accounts[account_id]
        if device_id is None:
            self._revoked_accounts.add(account_id)
            devices.clear()
        elif device_id in devices:
            devices.discard(str(device_id))
        else:
            raise VerificationError(
                f"a revocation of device {device_id}, not certified for {account_id}"
            )
        return key

    # Running the checks.

    def _flush(self) -> None:
        if not self._pending:
            return
        jobs, self._pending = self._pending, []
        versions = {job.roster_version for job in jobs if job.leaf_type == "message"}
        context = ChunkContext(
            log_id=self.log_id,
            origin=self.origin,
            roster_devices={v: self._roster_devices[v] for v in versions},
            roster_keys={v: self._version_keys[v] for v in versions},
        )
        if self._executor is None:
            result = check_chunk(context, jobs)
            self._report(len(jobs))
            self._harvest(result)
            return
        self._wait_for_room()
        future = self._executor.submit(check_chunk, context, jobs)
        count = len(jobs)

        def done(finished: Future[ChunkResult]) -> None:
            if finished.cancelled() or finished.exception() is not None:
                return
            if finished.result().failure is not None:
                with self._lock:
                    self._chunk_failed = True
            self._report(count)

        future.add_done_callback(done)
        self._futures.append(future)

    def _wait_for_room(self) -> None:
        """Keep at most `max_in_flight` chunks (if set) queued: what is read waits for the checks,
        so memory holds a few chunks, not the log. Chunks that passed are forgotten."""
        kept = []
        for future in self._futures:
            if not future.done() or future.cancelled() or future.exception() is not None:
                kept.append(future)
            elif future.result().failure is not None:
                kept.append(future)
            else:
                self._harvest(future.result())
        self._futures = kept
        limit = self._max_in_flight
        while limit is not None and sum(not f.done() for f in self._futures) >= limit:
            wait([f for f in self._futures if not f.done()], return_when=FIRST_COMPLETED)

    def _harvest(self, result: ChunkResult) -> None:
        """Keep a chunk's failure and its messages' gossip: one root per size claimed (a
        second root for a size is a fork at once)."""
        if result.failure is not None:
            self._failures.append(result.failure)
            if result.failure[1].endswith(REBUILT):
                self._forks.add(result.failure[0])
        for index, size, root in result.gossip:
            claimed = self._gossip.setdefault(size, (root, index))
            if claimed[0] != root:
                self._fork(
                    max(index, claimed[1]),
                    f"its sender saw the log at size {size} with another root than the sender "
                    f"of entry {min(index, claimed[1])} did",
                )

    def _fork(self, index: int, reason: str) -> None:
        self._forks.add(index)
        self._failures.append(
            (index, f"{reason}: the server showed its members different histories (a fork)")
        )

    def _gossip_failure(self, tree: TreeRoots | None) -> Failure | None:
        """The first message whose sender saw a root at some size that this log does not
        have there: the log the members were shown is not the one audited. Roots come
        from `tree` (kept whole online), else from one pass over the leaf hashes."""
        if not self._gossip:
            return None
        sizes = sorted(size for size in self._gossip if size <= self._size)
        if tree is not None:
            roots = {size: tree.root(size) for size in sizes}
        else:
            roots, frontier, wanted = {}, CompactRange(), iter(sizes)
            next_size = next(wanted, None)
            for i in range(self._size + 1):
                while next_size == i:
                    roots[i] = frontier.root()
                    next_size = next(wanted, None)
                if next_size is None or i == self._size:
                    break
                frontier, _ = frontier.append(self._hashes[i])
        bad = [
            (index, size)
            for size, (root, index) in self._gossip.items()
            if size in roots and roots[size] != root
        ]
        if not bad:
            return None
        index, size = min(bad)
        self._forks.add(index)
        return (
            index,
            f"its sender saw the log at size {size} with root "
            f"{format_root(self._gossip[size][0])}, but this log's root there is "
            f"{format_root(roots[size])}: the server showed its members different histories "
            "(a fork), or rebuilt the log",
        )

    def _report(self, count: int) -> None:
        if self._progress is not None:
            self._progress(count)


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise VerificationError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise VerificationError("not a JSON object")
    return value


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"{what} is missing")
    try:
        return b64d(value)
    except ProtocolError as exc:
        raise VerificationError(f"{what}: {exc}") from exc
