"""Instrument acts on the wire: a signed act, and where it landed (docs/design.md §7)."""

from __future__ import annotations

from client_sdk.protocol.models import B64, Ident, Int, WireModel
from client_sdk.protocol.statements import SignedStatement
from client_sdk.protocol.wire.base import Answer


class ActRequest(WireModel):
    """``POST /v1/rooms/{room_id}/instruments``: one signed instrument act."""

    statement: SignedStatement


class ActOut(Answer):
    """Where an act landed, with the checkpoint covering it and its inclusion proof."""

    seq: Int
    leaf_index: Int
    instrument_id: Ident
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]
