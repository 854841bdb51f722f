"""Receipts (docs/design.md §7): a member's signed acknowledgement that it received and
decrypted an event, naming the event by sequence number and leaf hash.

One receipt per account and event; a receipt is never acknowledged itself.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from client_sdk.protocol.errors import NotPermitted
from client_sdk.protocol.instruments.base import Act, Context, State, States
from client_sdk.protocol.mediation import Refusal
from client_sdk.protocol.models import B64, Ident, Int


class Acknowledged(State):
    """An account acknowledged an event: which, by which receipt event, and when."""

    kind: Literal["acknowledged"] = "acknowledged"
    target_seq: Int
    account_id: Ident
    receipt_seq: Int
    server_time: Int


class ReceiptEvent(State):
    """The event at this key is a receipt (so nobody acknowledges it)."""

    kind: Literal["receipt-event"] = "receipt-event"


def acknowledged_key(seq: int, account_id: str) -> str:
    """Where `account_id`'s receipt for event `seq` is kept."""
    return f"receipt/{seq}/{account_id}"


def event_key(seq: int) -> str:
    """Where the kind of instrument event `seq` is kept, if it is a receipt."""
    return f"event/{seq}"


class ReceiptAct(Act):
    """``receipt``: the signer's account received and decrypted event `seq`."""

    act: Literal["receipt"] = "receipt"
    seq: Int = Field(ge=1)
    leaf_sha256: B64 = Field(min_length=43, max_length=43)
    account_id: Ident

    def keys(self) -> list[str]:
        return [acknowledged_key(self.seq, self.account_id), event_key(self.seq)]

    def leaf_refs(self) -> dict[int, str]:
        return {self.seq: self.leaf_sha256}

    def apply(self, states: States, context: Context) -> dict[str, State]:
        if context.signer.account_id != self.account_id:
            raise NotPermitted(
                Refusal.MISMATCH, "a receipt names the account of the device that signs it"
            )
        if self.seq >= context.seq:
            raise NotPermitted(Refusal.UNKNOWN, f"there is no event {self.seq} before this one")
        if isinstance(states.get(event_key(self.seq)), ReceiptEvent):
            raise NotPermitted(Refusal.INVALID, f"event {self.seq} is a receipt")
        if acknowledged_key(self.seq, self.account_id) in states:
            raise NotPermitted(
                Refusal.INVALID, f"account {self.account_id} already acknowledged event {self.seq}"
            )
        return {
            acknowledged_key(self.seq, self.account_id): Acknowledged(
                target_seq=self.seq,
                account_id=self.account_id,
                receipt_seq=context.seq,
                server_time=context.server_time,
            ),
            event_key(context.seq): ReceiptEvent(),
        }
