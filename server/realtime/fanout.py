"""Telling every replica's subscribers that a room has a new event.

In one process the hub is enough. With PostgreSQL, several stateless replicas
share the database: each event's transaction also runs
``pg_notify('parley_events', 'ROOM SEQ ORIGIN')``, which PostgreSQL delivers
only if and when the transaction commits, to every replica listening. A
notification carries only the room id and sequence number; receivers read
the event from the database. If the listening connection drops, every local
subscriber is woken to re-read from its cursor, so nothing is missed.

Closing the streams of a revoked token or device takes the same path:
`close_streams`, called inside the revoking transaction, runs
``pg_notify('parley_revocations', 'token HASH ORIGIN')`` (or ``device ID``) and
closes this process's streams once the transaction commits; every other replica
closes its own on the notification. A replica whose listener was away makes
every stream authenticate again, as a revocation may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.realtime.hub import RoomHub
from server.storage.database import after_commit

CHANNEL = "parley_events"
REVOKE_CHANNEL = "parley_revocations"
WAKE_ALL = 2**62
"""A sequence number above any real one: makes subscribers re-read from their cursor."""

log = logging.getLogger(__name__)


class Fanout:
    """Stage notifications inside transactions; deliver them after commit."""

    def __init__(self, hub: RoomHub, *, postgres_dsn: str | None) -> None:
        self.hub = hub
        self.postgres_dsn = postgres_dsn
        self.origin = uuid.uuid4().hex[:16]
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def stage(self, conn: AsyncConnection, room_id: str, seq: int) -> None:
        """Queue a cross-replica notification that fires if `conn`'s transaction commits."""
        notice = self.notice(room_id, seq)
        if notice is not None:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": notice[0], "payload": notice[1]},
            )

    def notice(self, room_id: str, seq: int) -> tuple[str, str] | None:
        """The ``(channel, payload)`` of `stage`'s notification, for a caller that sends
        it within a statement of its own (None without PostgreSQL)."""
        if self.postgres_dsn is None:
            return None
        return CHANNEL, f"{room_id} {seq} {self.origin}"

    async def close_streams(
        self,
        conn: AsyncConnection,
        *,
        token_hash: bytes | None = None,
        device_id: str | None = None,
    ) -> None:
        """Close every stream opened with the token of hash `token_hash`, or of device
        `device_id`, on every replica, once `conn`'s transaction commits (never if it
        rolls back). Call it in the transaction that revokes them."""
        if (token_hash is None) == (device_id is None):
            raise ValueError("close the streams of a token or of a device")
        kind, key = ("token", token_hash.hex()) if token_hash is not None else ("device", device_id)
        if self.postgres_dsn is not None:
            await conn.execute(
                text("SELECT pg_notify(:channel, :payload)"),
                {"channel": REVOKE_CHANNEL, "payload": f"{kind} {key} {self.origin}"},
            )
        after_commit(conn, lambda: self._close_local(kind, str(key)))

    def _close_local(self, kind: str, key: str) -> None:
        if kind == "token":
            self.hub.close_token(bytes.fromhex(key))
        else:
            self.hub.close_device(key)

    def committed(self, room_id: str, seq: int, prepared: object | None = None) -> None:
        """Wake this replica's subscribers (call after the commit), handing them the
        event's stream batch if the caller built one."""
        self.hub.publish(room_id, seq, prepared)

    async def start(self) -> None:
        """Start listening for other replicas' notifications (PostgreSQL only)."""
        if self.postgres_dsn is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen_forever())
            await asyncio.wait_for(self.listening.wait(), timeout=30)

    async def stop(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        room_id, _, rest = payload.partition(" ")
        seq_text, _, origin = rest.partition(" ")
        if origin != self.origin and seq_text.isdigit():
            self.hub.publish(room_id, int(seq_text))

    def _on_revoke(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        kind, _, rest = payload.partition(" ")
        key, _, origin = rest.partition(" ")
        if origin == self.origin or not key:
            return
        if kind == "device":
            self._close_local(kind, key)
        elif kind == "token":
            try:
                bytes.fromhex(key)
            except ValueError:
                self.hub.recheck_all()  # unreadable: make sure nothing revoked stays open
                return
            self._close_local(kind, key)
        else:
            self.hub.recheck_all()

    async def _listen_forever(self) -> None:
        assert self.postgres_dsn is not None
        delay = 0.1
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.postgres_dsn)
                await conn.add_listener(CHANNEL, self._on_notify)
                await conn.add_listener(REVOKE_CHANNEL, self._on_revoke)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                if self.listening.is_set():  # we may have missed some while away
                    self.hub.publish_all(WAKE_ALL)
                    self.hub.recheck_all()
                self.listening.set()
                delay = 0.1
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event listener lost its connection: %s", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close()
            self.hub.publish_all(WAKE_ALL)
            self.hub.recheck_all()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def _setter(event: asyncio.Event) -> Any:
    return lambda _conn: event.set()


def asyncpg_dsn(url: str) -> str | None:
    """The plain libpq DSN of a SQLAlchemy PostgreSQL URL, or None for other databases."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return None
