"""Per-room fan-out of "something new happened" to WebSocket subscribers, and the
closing of streams whose credentials were revoked.

A notification carries the room id, the newest sequence number and, when the
process that committed the event built it, the event's stream batch
(`prepared`), built once for every subscriber from the rows just written. A
subscriber uses a prepared batch only if it continues exactly where the
subscriber stands; otherwise it reads the events itself, from its own cursor,
so a missed or coalesced notification can never lose an event. Each subscriber has a
bounded queue; one that cannot keep up is marked overflowed and dropped by
its connection (the client resumes from its cursor), never buffered forever.

A subscription also names its `StreamOwner` (the stored hash of the bearer token
that opened it, and that token's device). `close_token` and `close_device` mark
the owner's subscriptions revoked, and their connections close. When a
revocation may have been missed (the cross-replica listener was away, or a
revocation landed while a stream was authenticating), `recheck_all` and a stale
`epoch` mark subscriptions for re-authentication instead.

When the process shuts down, `go_away` marks every subscription (and any made
after it) as ending: their connections close with "going away" and the clients
resume elsewhere; `wait_empty` waits for the last one to go.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Notice:
    """`seq` exists in the room; `prepared` is its stream batch, if already built;
    `published` is when this process learned of it (`time.perf_counter`)."""

    seq: int
    prepared: object | None = None
    published: float = 0.0


@dataclass(frozen=True, slots=True)
class StreamOwner:
    """Whose credentials hold a stream open: the token's stored hash and its device."""

    token_hash: bytes
    device_id: str


class Subscription:
    """One subscriber's view of one room's notifications."""

    def __init__(self, room_id: str, queue_size: int, owner: StreamOwner | None = None) -> None:
        self.room_id = room_id
        self.owner = owner
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = asyncio.Event()
        self.attention = asyncio.Event()
        """Set when the owner's credentials must be looked at again: closed for good if
        `revoked_reason` is set, else authenticated again (a revocation may have been
        missed)."""
        self.revoked_reason: str | None = None
        self.going_away = False
        """The server is shutting down: the stream ends so its client resumes elsewhere."""

    def notify(self, notice: Notice) -> None:
        """Queue `notice`, or mark the subscriber overflowed if its queue is full."""
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.overflowed.set()

    def revoke(self, reason: str) -> None:
        """Mark the subscription's credentials revoked, saying why."""
        if self.revoked_reason is None:
            self.revoked_reason = reason
        self.attention.set()

    def recheck(self) -> None:
        """Ask for the owner to be authenticated again."""
        self.attention.set()

    def go_away(self) -> None:
        """End the stream: the server is shutting down."""
        self.going_away = True
        self.attention.set()


class RoomHub:
    """In-process registry of subscriptions per room and per owner."""

    def __init__(self, queue_size: int = 1024) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._by_token: dict[bytes, set[Subscription]] = defaultdict(set)
        self._by_device: dict[str, set[Subscription]] = defaultdict(set)
        self.epoch = 0
        """Counts revocations and rechecks seen by this process (see `subscribe`)."""
        self.closing = False
        self._count = 0
        self._empty = asyncio.Event()
        self._empty.set()

    @contextmanager
    def subscribe(
        self, room_id: str, owner: StreamOwner | None = None, *, epoch: int | None = None
    ) -> Iterator[Subscription]:
        """Receive notifications for `room_id` while the block runs.

        `epoch` is `self.epoch` as read before the owner was authenticated: if a
        revocation arrived since, the subscription starts marked for a recheck.
        """
        sub = Subscription(room_id, self.queue_size, owner)
        if epoch is not None and epoch != self.epoch:
            sub.recheck()
        if self.closing:
            sub.go_away()
        self._count += 1
        self._empty.clear()
        self._subs[room_id].add(sub)
        if owner is not None:
            self._by_token[owner.token_hash].add(sub)
            self._by_device[owner.device_id].add(sub)
        try:
            yield sub
        finally:
            self._count -= 1
            if self._count == 0:
                self._empty.set()
            _discard(self._subs, room_id, sub)
            if owner is not None:
                _discard(self._by_token, owner.token_hash, sub)
                _discard(self._by_device, owner.device_id, sub)

    def publish(self, room_id: str, seq: int, prepared: object | None = None) -> None:
        """Tell every local subscriber of `room_id` that `seq` exists (one shared notice)."""
        notice = Notice(seq, prepared, time.perf_counter())
        for sub in list(self._subs.get(room_id, ())):
            sub.notify(notice)

    def publish_all(self, seq: int) -> None:
        """Notify every subscriber of every room (after a possible gap in notifications)."""
        for room_id in list(self._subs):
            self.publish(room_id, seq)

    def close_token(self, token_hash: bytes) -> int:
        """Revoke every local stream opened with the token of hash `token_hash`; how many."""
        self.epoch += 1
        return _revoke(self._by_token.get(token_hash, ()), "the token was revoked")

    def close_device(self, device_id: str) -> int:
        """Revoke every local stream of device `device_id`, whatever its token; how many."""
        self.epoch += 1
        return _revoke(self._by_device.get(device_id, ()), "the device was revoked")

    def open_devices(self) -> set[str]:
        """The devices with a stream open in this process."""
        return set(self._by_device)

    def go_away(self) -> None:
        """End every local stream, and any opened from now on (the process is shutting
        down)."""
        self.closing = True
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.go_away()

    async def wait_empty(self) -> None:
        """Return once no stream is subscribed in this process."""
        await self._empty.wait()

    def recheck_all(self) -> None:
        """Make every local stream authenticate its owner again (revocations may have
        been missed)."""
        self.epoch += 1
        for subs in list(self._by_token.values()):
            for sub in list(subs):
                sub.recheck()


def _revoke(subs: set[Subscription] | tuple[()], reason: str) -> int:
    chosen = list(subs)
    for sub in chosen:
        sub.revoke(reason)
    return len(chosen)


def _discard(index: dict[K, set[Subscription]], key: K, sub: Subscription) -> None:
    subs = index.get(key)
    if subs is not None:
        subs.discard(sub)
        if not subs:
            del index[key]
