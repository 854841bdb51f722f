"""Auditing instrument acts (docs/design.md §7): each act judged by the same rules the
server and members' SDKs apply, replayed from the room's first act, with deadlines
judged against the leaf's server time and receipts against the leaves they name."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import ValidationError

from client_sdk.audit.checks import check_leaf
from client_sdk.audit.tiles import LeafHashFile
from client_sdk.protocol.errors import NotPermitted, ProtocolError, VerificationError
from client_sdk.protocol.instruments.acts import parse_act
from client_sdk.protocol.instruments.ledger import Ledger, judge
from client_sdk.protocol.leaf import parse_leaf
from client_sdk.protocol.statements import Roster, SignedStatement


class InstrumentAudit:
    """The ledger of one room's instrument acts, as the audit replays them."""

    def __init__(self, *, log_id: str, origin: str, hashes: list[bytes] | LeafHashFile) -> None:
        """`hashes` is the audit's list of leaf hashes so far (event seq - 1)."""
        self.log_id = log_id
        self.origin = origin
        self._hashes = hashes
        self.ledger = Ledger()
        self.counts: Counter[str] = Counter()

    def take(self, index: int, raw: bytes, signed: dict[str, Any], roster: Roster | None) -> None:
        """Check the act at leaf `index` under the roster in force; `VerificationError`
        names what is wrong with it."""
        if roster is None:
            raise VerificationError("an instrument act before the room's first roster")
        try:
            statement = SignedStatement.model_validate(signed)
            act = parse_act(statement)
        except (ValidationError, ProtocolError) as exc:
            raise VerificationError(f"malformed instrument act: {exc}") from exc
        leaf = parse_leaf(raw)
        try:
            judged = judge(
                statement,
                self.ledger.view(act.keys()),
                room_id=self.log_id,
                roster=roster,
                seq=index + 1,
                server_time=leaf.server_time,
                leaf_hash=self._leaf_hash,
            )
        except NotPermitted as exc:
            raise VerificationError(f"a {act.act} act the rules refuse: {exc}") from exc
        check_leaf(
            raw,
            origin=self.origin,
            index=index,
            leaf_type="instrument",
            actor_device=act.signer_device,
            payload_hash=statement.body_hash(),
            signature=statement.signature,
        )
        self.ledger.record(judged)
        self.counts[act.act] += 1

    def _leaf_hash(self, seq: int) -> bytes | None:
        return self._hashes[seq - 1] if 1 <= seq <= len(self._hashes) else None
