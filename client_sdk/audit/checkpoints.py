"""Checkpoints as an auditor checks them: the log's signature, every known cosignature,
and the root against the tree rebuilt from the entries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from client_sdk.protocol.errors import (
    AuditFailure,
    ProtocolError,
    UnwitnessedError,
    VerificationError,
)
from client_sdk.protocol.note import (
    SIG_COSIGNATURE_V1,
    Checkpoint,
    VerifierKey,
    open_note,
    parse_verifier_key,
    verify_checkpoint,
)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint whose log signature and known cosignatures verified."""

    size: int
    root: bytes
    note: str
    cosigners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KnownCheckpoint:
    """A tree head seen before (by this keystore or its witness) that the log must extend."""

    source: str
    size: int
    root: bytes


def parse_witness_keys(log_id: str, vkeys: Iterable[str]) -> list[VerifierKey]:
    """Type 0x04 witness keys, each once; `VerificationError` for anything else."""
    keys: dict[tuple[str, bytes], VerifierKey] = {}
    for vkey in vkeys:
        try:
            key = parse_verifier_key(vkey)
        except ProtocolError as exc:
            raise AuditFailure(log_id, f"bad witness key {vkey!r}: {exc}") from exc
        if key.sig_type != SIG_COSIGNATURE_V1:
            raise AuditFailure(log_id, f"witness key {key.name} is not a cosignature key")
        keys[(key.name, key.key_hash)] = key
    return list(keys.values())


class CheckpointChecker:
    """Checks one log's checkpoint notes with its pinned key and the known witness keys."""

    def __init__(
        self, log_id: str, origin: str, log_key: VerifierKey, witnesses: Sequence[VerifierKey]
    ) -> None:
        """Check notes of `origin` signed by `log_key`, cosigned by any of `witnesses`."""
        self.log_id = log_id
        self.origin = origin
        self.log_key = log_key
        self.witnesses = list(witnesses)
        self._names = {w.name for w in witnesses}

    def check(self, note: str, *, size: int | None = None) -> SignedCheckpoint:
        """Verify the log's signature and every cosignature by a known witness."""
        what = "checkpoint" if size is None else f"checkpoint of size {size}"
        try:
            checkpoint = verify_checkpoint(note, self.origin, self.log_key)
        except VerificationError as exc:
            raise AuditFailure(self.log_id, f"{what} refused: {exc}") from exc
        if size is not None and checkpoint.size != size:
            raise AuditFailure(self.log_id, f"asked for the {what}, got size {checkpoint.size}")
        cosigners: list[str] = []
        if signer_names(note) & self._names:
            try:
                _, cosigners = open_note(note, self.witnesses)
            except VerificationError as exc:
                raise AuditFailure(
                    self.log_id, f"checkpoint of size {checkpoint.size}: bad cosignature: {exc}"
                ) from exc
        return SignedCheckpoint(
            checkpoint.size, checkpoint.root_hash, note, tuple(sorted(cosigners))
        )


def signer_names(note: str) -> set[str]:
    """The key names on a note's signature lines (not yet verified)."""
    _, _, block = note.rpartition("\n\n")
    names = set()
    for line in block.splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "\u2014":
            names.add(parts[1])
    return names


def first_mismatch(
    checkpoints: Mapping[int, SignedCheckpoint], root_at: dict[int, bytes]
) -> tuple[int, int] | None:
    """(lo, hi): the smallest checkpoint size `hi` whose root is not the rebuilt one, and the
    largest size below it whose root is (0 if none); None if every root matches.

    `root_at` holds the rebuilt root of each checkpoint size the tree covers.
    """
    matched = 0
    for size in sorted(s for s in checkpoints if s in root_at):
        if checkpoints[size].root != root_at[size]:
            return matched, size
        matched = size
    return None


def check_quorum(
    note: str, log_vkey: str, origin: str, witness_vkeys: Sequence[str], k: int
) -> Checkpoint:
    """Require the log's signature and cosignatures by at least `k` of the named witnesses.

    `witness_vkeys` are type 0x04 verifier key strings; the same witness
    named twice counts once, and a cosignature by a named witness that does
    not verify is an error. Fails closed: no witnesses, ``k <= 0`` or ``k``
    above the number of distinct witnesses is a `VerificationError`, as is
    any defect in the note. Returns the checkpoint.
    """
    if k <= 0:
        raise VerificationError(f"log {origin}: a witness quorum is at least 1, not {k}")
    if not witness_vkeys:
        raise VerificationError(f"log {origin}: a witness quorum needs at least one witness key")
    keys: dict[tuple[str, bytes], VerifierKey] = {}
    for vkey in witness_vkeys:
        try:
            key = parse_verifier_key(vkey)
        except ProtocolError as exc:
            raise VerificationError(f"log {origin}: bad witness key {vkey!r}: {exc}") from exc
        if key.sig_type != SIG_COSIGNATURE_V1:
            raise VerificationError(f"log {origin}: witness key {key.name} is not a type 0x04 key")
        keys[(key.name, key.key_hash)] = key
    names = {key.name for key in keys.values()}
    if k > len(names):
        raise VerificationError(
            f"log {origin}: a quorum of {k} cannot be met by {len(names)} distinct witnesses"
        )
    try:
        log_key = parse_verifier_key(log_vkey)
    except ProtocolError as exc:
        raise VerificationError(f"log {origin}: bad log key: {exc}") from exc
    try:
        checkpoint = verify_checkpoint(note, origin, log_key)
    except VerificationError as exc:
        raise VerificationError(f"log {origin}: checkpoint refused: {exc}") from exc
    if origin in names:
        raise VerificationError(f"log {origin}: a witness may not share the log's key name")
    cosigned: list[str] = []
    if signer_names(note) & names:  # open_note refuses a note none of the keys signed
        _, cosigned = open_note(note, list(keys.values()))
    if len(cosigned) < k:
        raise UnwitnessedError(
            f"log {origin}: the checkpoint of size {checkpoint.size} has {len(cosigned)} of the "
            f"{k} witness cosignatures required"
            + (f" (by {', '.join(sorted(cosigned))})" if cosigned else "")
        )
    return checkpoint
