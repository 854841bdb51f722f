"""Logs, proofs, witnesses and cosignatures; `LoggedOut` answers every append."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from client_sdk.protocol.models import B64, Ident, Int, WireModel
from client_sdk.protocol.wire.base import Answer


class LogOut(Answer):
    """A log's identity: what a verifier needs to check its checkpoints."""

    log_id: Ident
    origin: str
    vkey: str
    size: Int
    cosigned_size: Int | None


class LogSummary(Answer):
    """A log the caller may read: its size, and why it may (``everyone`` for the
    directory, ``member``, ``auditor`` when granted, ``witness`` when the room's
    signed policy names the caller's witness key: checkpoints and consistency only)."""

    log_id: Ident
    kind: Literal["room", "directory"]
    origin: str
    size: Int
    access: Literal["everyone", "member", "auditor", "witness"]


class EntryOut(Answer):
    """One leaf, its hash, and what its actor signed (never content)."""

    index: Int
    leaf: B64
    leaf_hash: B64
    signed: dict[str, Any] | None


class EntriesOut(Answer):
    """A range of leaves."""

    entries: list[EntryOut]


class InclusionOut(Answer):
    """An inclusion proof of leaf `index` in the tree of `size` leaves."""

    index: Int
    size: Int
    proof: list[B64]


class ConsistencyOut(Answer):
    """A consistency proof from `size1` to `size2`."""

    size1: Int
    size2: Int
    proof: list[B64]


class WitnessIn(WireModel):
    """An auditor's witness key (c2sp.org/tlog-cosignature, type 0x04)."""

    vkey: str = Field(min_length=1, max_length=500)


class WitnessOut(Answer):
    """A registered witness key."""

    name: str
    vkey: str
    account_id: Ident


class CosignatureIn(WireModel):
    """A witness's cosignature line for the checkpoint of `size`."""

    size: Int = Field(ge=1)
    cosignature: str = Field(min_length=1, max_length=1000)


class LoggedOut(Answer):
    """Where an appended leaf landed: its index and time, the checkpoint of the size it
    made, and its inclusion proof in that checkpoint."""

    leaf_index: Int
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]
