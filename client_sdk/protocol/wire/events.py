"""Messages and room events: the answer to a send, and pages of events with their proofs."""

from __future__ import annotations

import enum
from typing import Any

from client_sdk.protocol.models import B64, Ident, Int
from client_sdk.protocol.wire.base import Answer


class EventKind(enum.StrEnum):
    """What a room event carries (and the ``type`` of its log leaf)."""

    ROSTER = "roster"
    MESSAGE = "message"
    MODERATION = "moderation"
    INSTRUMENT = "instrument"


class SendResponse(Answer):
    """Where an accepted message landed."""

    seq: Int
    leaf_index: Int
    message_id: Ident
    created_at: Int
    checkpoint: str
    inclusion_proof: list[B64]


class EventOut(Answer):
    """One room event: a signed roster, moderation act or envelope, as stored.

    `payload` is what the actor signed (None once purged by retention); the
    reader parses it into its strict model (`SignedStatement` or `Envelope`)
    according to `kind` and checks it against the leaf.
    """

    seq: Int
    kind: EventKind
    channel: str | None
    message_id: str | None
    sender_device: Ident
    leaf_index: Int
    created_at: Int
    payload: dict[str, Any] | None
    leaf: B64
    inclusion_proof: list[B64]


class EventsPage(Answer):
    """A page of events; ask again with ``after=next_after`` for more.

    Every event's leaf is proven included in `checkpoint` (the log at `size`),
    and `consistency_proof` shows that checkpoint extends the size `since`.
    """

    events: list[EventOut]
    next_after: Int
    size: Int
    checkpoint: str
    since: Int
    consistency_proof: list[B64]
