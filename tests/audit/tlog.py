"""A log as its operator sees it, for witness tests: leaves, a key, signed checkpoints and
add-checkpoint requests built as c2sp.org/tlog-witness lays them out."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_sdk.audit.witness import AddCheckpointRequest
from client_sdk.protocol.merkle import (
    consistency_proof_from_leaves,
    leaf_hash,
    root_from_leaf_hashes,
)
from client_sdk.protocol.note import Checkpoint, format_verifier_key, sign_note

ORIGIN = "audit.test/rooms/r1"


class Log:
    """A log as its operator sees it: leaves, and a key that signs checkpoints."""

    def __init__(self, origin: str = ORIGIN, key: Ed25519PrivateKey | None = None) -> None:
        self.origin = origin
        self.key = key or Ed25519PrivateKey.generate()
        self.hashes: list[bytes] = []

    @property
    def vkey(self) -> str:
        """The log's verifier key."""
        return format_verifier_key(self.origin, self.key.public_key().public_bytes_raw())

    def grow(self, count: int, tag: str = "leaf") -> None:
        """Append `count` leaves."""
        self.hashes += [leaf_hash(f"{tag}{len(self.hashes) + n}".encode()) for n in range(count)]

    def note(self, size: int | None = None) -> str:
        """The signed checkpoint of `size` (default: the whole log)."""
        size = len(self.hashes) if size is None else size
        root = root_from_leaf_hashes(self.hashes[:size])
        return sign_note(Checkpoint(self.origin, size, root).to_text(), self.origin, self.key)

    def request(self, old: int, size: int | None = None) -> AddCheckpointRequest:
        """An add-checkpoint request from `old` to `size`, with the right proof."""
        size = len(self.hashes) if size is None else size
        proof = consistency_proof_from_leaves(old, size, self.hashes) if 0 < old < size else []
        return AddCheckpointRequest(old, tuple(proof), self.note(size))
