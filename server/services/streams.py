"""Event-stream subscriptions, each held open by a bearer token of a device.

A subscription is revoked, and its connection closed, when its token is logged
out or its device revoked (`Fanout.close_streams`, on every replica).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from server.realtime.fanout import Fanout
from server.realtime.hub import StreamOwner, Subscription
from server.services.common import Principal, secret_hash


class StreamService:
    """Subscribing a WebSocket connection to a room's new events."""

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout

    def epoch(self) -> int:
        """Read before authenticating a stream's token and hand to `subscribe`: a
        revocation in between then makes the stream check its token again."""
        return self.fanout.hub.epoch

    def subscribe(
        self, room_id: str, *, token: str, principal: Principal, epoch: int
    ) -> AbstractContextManager[Subscription]:
        """Be told of `room_id`'s new sequence numbers (from every replica) while the
        block runs (read the events with `MessageService.events`). The subscription
        is revoked when `token`, or `principal`'s device, is."""
        owner = StreamOwner(token_hash=secret_hash(token), device_id=principal.device_id)
        return self.fanout.hub.subscribe(room_id, owner, epoch=epoch)

    async def go_away(self) -> None:
        """End every stream of this process, and refuse new ones, for a shutdown: each
        closes with "going away" so its client resumes elsewhere. Returns once all
        have ended (bound it with a timeout)."""
        hub = self.fanout.hub
        hub.go_away()
        await hub.wait_empty()
