"""Witnessing logs: the c2sp.org/tlog-witness ``add-checkpoint`` semantics, and quorum checks.

A witness follows logs, each named by its origin line and checked with a log
key it pinned, and keeps the newest checkpoint it cosigned for each. An
``add-checkpoint`` request is an old-size line, up to 63 lines of an RFC 9162
consistency proof (standard base64, one hash a line), a blank line, then the
signed checkpoint note::

    old 3
    PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=

    parley.local/rooms/2f1c...
    5
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

    — parley.local/rooms/2f1c... Az3grlgtzPICa5OS...

The witness cosigns (c2sp.org/tlog-cosignature, type 0x04) only a checkpoint
signed by the pinned key, whose old size is exactly the size it cosigned last,
and which that proof shows to extend the cosigned tree. Checking the old size
and storing the new checkpoint happen under one file lock, and the state file
is replaced atomically (temporary file, fsync, `os.replace`), so a witness
never cosigns two inconsistent checkpoints, nor a smaller tree after a larger
one, across processes and restarts.

`Witness.add_checkpoint` returns the cosignature line or raises the
`WitnessError` the specification prescribes, its HTTP status in ``status``; a
damaged state file is a `WitnessStateError` and is never reset (the tree is
drawn in `client_sdk.protocol.errors`).

`check_quorum` is the client's side: a checkpoint counts only with the log's
signature and cosignatures by at least k of the witnesses it names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit.checkpoints import check_quorum
from client_sdk.audit.witness_state import (
    WITNESS_STATE_FILENAME,
    WitnessedLog,
    locked,
    read_witness_state,
    write_witness_state,
)
from client_sdk.protocol.errors import (
    ProtocolError,
    VerificationError,
    WitnessConflictError,
    WitnessProofError,
    WitnessRequestError,
    WitnessSignatureError,
    WitnessUnknownLogError,
)
from client_sdk.protocol.merkle import EMPTY_ROOT, verify_consistency
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Checkpoint,
    VerifierKey,
    cosign,
    parse_verifier_key,
    verify_checkpoint,
)

__all__ = [
    "MAX_PROOF_LINES",
    "WITNESS_STATE_FILENAME",
    "AddCheckpointRequest",
    "Witness",
    "WitnessedLog",
    "check_quorum",
    "read_witness_state",
]

MAX_PROOF_LINES: Final = 63
_OLD_LINE = re.compile(r"old (0|[1-9][0-9]*)")
_HASH_SIZE = 32


def _std_b64decode(text: str) -> bytes:
    # Padded standard base64 (RFC 4648 §4), canonical form only.
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("not standard base64") from exc
    if base64.b64encode(data).decode("ascii") != text:
        raise ProtocolError("non-canonical base64")
    return data


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    """An ``add-checkpoint`` request body: old size, consistency proof, signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: str
    """The signed checkpoint note, with any signature lines it carries."""

    def to_text(self) -> str:
        """The request body as the specification lays it out."""
        if self.old_size < 0 or len(self.proof) > MAX_PROOF_LINES:
            raise ProtocolError("an add-checkpoint request has an old size >= 0 and <= 63 hashes")
        lines = [f"old {self.old_size}", *(base64.b64encode(h).decode("ascii") for h in self.proof)]
        return "".join(line + "\n" for line in lines) + "\n" + self.checkpoint

    @classmethod
    def parse(cls, body: str | bytes) -> AddCheckpointRequest:
        """Parse a request body; raise `WitnessRequestError` on any malformation."""
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise WitnessRequestError("the request is not UTF-8") from exc
        head, blank, note = body.partition("\n\n")
        if not blank or not note:
            raise WitnessRequestError("the request lacks the blank line before the checkpoint")
        old_line, *proof_lines = head.split("\n")
        match = _OLD_LINE.fullmatch(old_line)
        if match is None:
            raise WitnessRequestError("the request starts with an `old SIZE` line")
        if len(proof_lines) > MAX_PROOF_LINES:
            raise WitnessRequestError(f"at most {MAX_PROOF_LINES} consistency proof lines")
        proof = []
        for number, line in enumerate(proof_lines, start=1):
            try:
                value = _std_b64decode(line)
            except ProtocolError as exc:
                raise WitnessRequestError(f"consistency proof line {number}: {exc}") from exc
            if len(value) != _HASH_SIZE:
                raise WitnessRequestError(f"consistency proof line {number} is not a hash")
            proof.append(value)
        return cls(int(match.group(1)), tuple(proof), note)


def _now_seconds() -> int:
    return int(time.time())


class Witness:
    """An auditor's witness: a cosigning key and the state file of the logs it follows."""

    def __init__(
        self,
        name: str,
        private_key: Ed25519PrivateKey,
        state_path: Path,
        *,
        clock: Callable[[], int] = _now_seconds,
    ) -> None:
        """A witness named `name` keeping its state in `state_path`; `clock` is POSIX seconds."""
        self.name = name
        self._key = private_key
        self.state_path = state_path
        self.clock = clock
        self.verifier_key = VerifierKey(
            name, private_key.public_key().public_bytes_raw(), SIG_COSIGNATURE_V1
        )

    @property
    def vkey(self) -> str:
        """The witness's verifier key string (type 0x04), as clients configure it."""
        return self.verifier_key.to_text()

    # State.

    def logs(self) -> dict[str, WitnessedLog]:
        """Every log followed, by origin (read from the state file)."""
        return read_witness_state(self.state_path)

    def latest(self, origin: str) -> WitnessedLog | None:
        """The log with this origin, if followed."""
        return self.logs().get(origin)

    def follow(self, origin: str, log_vkey: str) -> WitnessedLog:
        """Follow a log, pinning its key; raise `VerificationError` if another key is pinned."""
        key = _log_key(origin, log_vkey)
        with locked(self.state_path):
            logs = read_witness_state(self.state_path)
            known = logs.get(origin)
            if known is not None:
                if known.vkey != key.to_text():
                    raise VerificationError(
                        f"log {origin}: the log key changed from {known.vkey} to {log_vkey}"
                    )
                return known
            logs[origin] = WitnessedLog(origin=origin, vkey=key.to_text())
            write_witness_state(self.state_path, logs)
            return logs[origin]

    # The add-checkpoint endpoint.

    def add_checkpoint(self, request: str | bytes | AddCheckpointRequest) -> str:
        """Handle an ``add-checkpoint`` request; return the cosignature line (ending in LF).

        Checks, in the specification's order (c2sp.org/tlog-witness): the
        request's shape (400), the origin (404), the log's signature (403),
        old size not above the new size (400), old size equal to the size
        cosigned last (409), then 422 for a size-0 checkpoint whose root is not
        the empty tree's, a non-empty proof from size 0, a second root for the
        cosigned size, or a consistency proof that does not verify. On success
        the checkpoint is stored before the cosignature is returned.
        """
        parsed = (
            request
            if isinstance(request, AddCheckpointRequest)
            else AddCheckpointRequest.parse(request)
        )
        text, blank, _ = parsed.checkpoint.partition("\n\n")
        try:
            if not blank:
                raise ProtocolError("a signed note has a blank line before its signatures")
            claimed = Checkpoint.parse(text + "\n")
        except ProtocolError as exc:
            raise WitnessRequestError(f"malformed checkpoint: {exc}") from exc
        origin = claimed.origin
        followed = self.latest(origin)
        if followed is None:
            raise WitnessUnknownLogError(f"this witness does not follow log {origin}")
        try:
            checkpoint = verify_checkpoint(
                parsed.checkpoint, origin, parse_verifier_key(followed.vkey)
            )
        except (VerificationError, ProtocolError) as exc:
            raise WitnessSignatureError(f"log {origin}: checkpoint refused: {exc}") from exc
        old, size = parsed.old_size, checkpoint.size
        if old > size:
            raise WitnessRequestError(
                f"log {origin}: the checkpoint's size {size} is smaller than the old size {old}"
            )
        with locked(self.state_path):
            logs = read_witness_state(self.state_path)
            stored = logs.get(origin)
            if stored is None:
                raise WitnessUnknownLogError(f"this witness does not follow log {origin}")
            _check_extends(stored, parsed, checkpoint)
            line = cosign(text + "\n", self.name, self._key, self.clock())
            if size > stored.size:
                logs[origin] = WitnessedLog(
                    origin=origin,
                    vkey=stored.vkey,
                    size=size,
                    root=checkpoint.root_hash,
                    note=parsed.checkpoint,
                    cosignature=line,
                )
                write_witness_state(self.state_path, logs)
        return line

    def cosigned_checkpoint(self, origin_hash: str) -> str | None:
        """The newest checkpoint cosigned for the log whose origin has this SHA-256 (hex).

        The note carries the log's signature lines (by the pinned key) and the
        cosignature returned for it, as tlog-witness's monitoring interface
        serves it; None if no such log, or nothing cosigned yet.
        """
        for origin, log in self.logs().items():
            if hashlib.sha256(origin.encode()).hexdigest() != origin_hash:
                continue
            if log.note is None or log.cosignature is None:
                return None
            text, _, block = log.note.partition("\n\n")
            key_hash = parse_verifier_key(log.vkey).key_hash
            by_log = [
                line + "\n"
                for line in block.splitlines()
                if line.startswith(f"\u2014 {origin} ") and _signed_by(line, key_hash)
            ]
            return text + "\n\n" + "".join(by_log) + log.cosignature
        return None


def _check_extends(stored: WitnessedLog, request: AddCheckpointRequest, new: Checkpoint) -> None:
    """The 409 and 422 checks against the checkpoint cosigned last."""
    origin, old, size = stored.origin, request.old_size, new.size
    if old != stored.size:
        raise WitnessConflictError(
            f"log {origin}: old size {old} is not the size this witness cosigned last "
            f"({stored.size})",
            size=stored.size,
        )
    if size == 0 and new.root_hash != EMPTY_ROOT:
        raise WitnessProofError(
            f"log {origin}: a checkpoint of size 0 has the empty tree's root (RFC 6962 §2.1)"
        )
    if old == 0:
        if request.proof:
            raise WitnessProofError(f"log {origin}: a consistency proof from size 0 is empty")
        return
    assert stored.root is not None
    if old == size:
        if request.proof:
            raise WitnessProofError(
                f"log {origin}: a consistency proof between equal sizes is empty"
            )
        if stored.root != new.root_hash:
            raise WitnessProofError(
                f"log {origin}: a different root for size {size} than the one this witness "
                "cosigned: the log forked"
            )
        return
    try:
        verify_consistency(old, size, list(request.proof), stored.root, new.root_hash)
    except VerificationError as exc:
        raise WitnessProofError(
            f"log {origin}: the checkpoint of size {size} is not consistent with the one of "
            f"size {old} this witness cosigned ({exc}): the log was forked or rewritten"
        ) from exc


def _signed_by(line: str, key_hash: bytes) -> bool:
    try:
        return _std_b64decode(line.rsplit(" ", 1)[-1])[:4] == key_hash
    except ProtocolError:
        return False


def _log_key(origin: str, vkey: str) -> VerifierKey:
    try:
        key = parse_verifier_key(vkey)
    except ProtocolError as exc:
        raise VerificationError(f"log {origin}: bad log key: {exc}") from exc
    if key.sig_type != SIG_ED25519 or key.name != origin:
        raise VerificationError(f"log {origin}: the log key must be an Ed25519 key named {origin}")
    return key
