"""Per-room fan-out of "something new happened" to WebSocket subscribers.

A notification carries the room id, the newest sequence number and, when the
process that committed the event built it, the event's stream batch
(`prepared`), built once for every subscriber from the rows just written. A
subscriber uses a prepared batch only if it continues exactly where the
subscriber stands; otherwise it reads the events itself, from its own cursor,
so a missed or coalesced notification can never lose an event. Each subscriber has a
bounded queue; one that cannot keep up is marked overflowed and dropped by
its connection (the client resumes from its cursor), never buffered forever.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Notice:
    """`seq` exists in the room; `prepared` is its stream batch, if already built."""

    seq: int
    prepared: object | None = None


class Subscription:
    """One subscriber's view of one room's notifications."""

    def __init__(self, room_id: str, queue_size: int) -> None:
        self.room_id = room_id
        self.queue: asyncio.Queue[Notice] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = asyncio.Event()

    def notify(self, notice: Notice) -> None:
        """Queue `notice`, or mark the subscriber overflowed if its queue is full."""
        try:
            self.queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.overflowed.set()


class RoomHub:
    """In-process registry of subscriptions per room."""

    def __init__(self, queue_size: int = 1024) -> None:
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    @contextmanager
    def subscribe(self, room_id: str) -> Iterator[Subscription]:
        """Receive notifications for `room_id` while the block runs."""
        sub = Subscription(room_id, self.queue_size)
        self._subs[room_id].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(room_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[room_id]

    def publish(self, room_id: str, seq: int, prepared: object | None = None) -> None:
        """Tell every local subscriber of `room_id` that `seq` exists (one shared notice)."""
        notice = Notice(seq, prepared)
        for sub in list(self._subs.get(room_id, ())):
            sub.notify(notice)

    def publish_all(self, seq: int) -> None:
        """Notify every subscriber of every room (after a possible gap in notifications)."""
        for room_id in list(self._subs):
            self.publish(room_id, seq)
