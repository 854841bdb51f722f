"""The client's view of the server's logs: every checkpoint it accepts is signed by
the log key it pinned, consistent with the newest one it verified before
(kept in the keystore across runs), and every leaf it relies on is proven
included. A server that rolls back, forks or rewrites a log is caught here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from client_sdk.client.http import HttpSession
from client_sdk.keystore import Keystore
from client_sdk.protocol.encoding import b64d, b64e
from client_sdk.protocol.errors import (
    AlteredError,
    ForkedError,
    InvalidRequestError,
    KeySubstitutedError,
    ProtocolError,
    RolledBackError,
    VerificationError,
)
from client_sdk.protocol.leaf import LogLeaf, parse_leaf
from client_sdk.protocol.merkle import (
    CompactRange,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from client_sdk.protocol.note import (
    Checkpoint,
    VerifierKey,
    format_root,
    parse_verifier_key,
    verify_checkpoint,
)
from client_sdk.protocol.wire.logs import ConsistencyOut, LogOut


class Logged(Protocol):
    """An answer to an append (`LoggedOut`, `SendResponse`, `ModerationOut`): where the
    leaf landed, the checkpoint of the size it made, and its inclusion proof there."""

    @property
    def leaf_index(self) -> int: ...
    @property
    def created_at(self) -> int: ...
    @property
    def checkpoint(self) -> str: ...
    @property
    def inclusion_proof(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class LogIdentity:
    """A log's origin and pinned verifier key."""

    origin: str
    key: VerifierKey


def _decode_all(values: Sequence[str], what: str) -> list[bytes]:
    try:
        return [b64d(v) for v in values]
    except ProtocolError as exc:
        raise VerificationError(f"{what}: {exc}") from exc


class LogVerifier:
    """Checkpoint, consistency and inclusion checks for every log this client reads."""

    def __init__(self, keystore: Keystore, http: HttpSession) -> None:
        self.keystore = keystore
        self.http = http
        self._identities: dict[str, LogIdentity] = {}
        self.roots: dict[str, dict[int, bytes]] = {}
        """Roots this session verified, by log and size (for gossip checks)."""
        self._locks: dict[str, asyncio.Lock] = {}
        """One lock per log: the stored checkpoint is read, checked against and replaced
        as one step, so concurrent answers never race each other back in time."""
        self._identity_lock = asyncio.Lock()
        self._frontiers: dict[str, CompactRange] = {}
        """Logs read from their start: the compact range of the leaves read so far."""

    def _lock(self, log_id: str) -> asyncio.Lock:
        return self._locks.setdefault(log_id, asyncio.Lock())

    async def identity(self, log_id: str) -> LogIdentity:
        """The log's origin and key; the key is pinned on first sight and must not change."""
        if log_id in self._identities:
            return self._identities[log_id]
        async with self._identity_lock:
            if log_id in self._identities:
                return self._identities[log_id]
            return await self._fetch_identity(log_id)

    async def _fetch_identity(self, log_id: str) -> LogIdentity:
        info = await self.http.call(LogOut, "GET", f"/v1/logs/{log_id}")
        vkey = info.vkey
        pinned = self.keystore.log_key(log_id)
        if pinned is not None and pinned != vkey:
            raise KeySubstitutedError(
                f"log {log_id}: the server's log key changed from {pinned} to {vkey}"
            )
        try:
            key = parse_verifier_key(vkey)
        except ProtocolError as exc:
            raise VerificationError(f"log {log_id}: bad verifier key: {exc}") from exc
        if key.name != info.origin:
            raise VerificationError(f"log {log_id}: key name is not the log's origin")
        self.keystore.pin_log_key(log_id, vkey)  # refused if another process pinned another
        identity = LogIdentity(origin=info.origin, key=key)
        self._identities[log_id] = identity
        return identity

    def since(self, log_id: str) -> int:
        """The size of the newest checkpoint verified for this log (0 if none)."""
        stored = self.keystore.checkpoint(log_id)
        return 0 if stored is None else stored.size

    async def accept(
        self,
        log_id: str,
        note: str,
        *,
        since: int | None = None,
        proof: Sequence[str] | None = None,
    ) -> Checkpoint:
        """Verify a checkpoint and its consistency with the newest one verified before.

        `proof` is a consistency proof from size `since` that came with the
        checkpoint; when it does not start at the stored size, one is fetched.
        A checkpoint smaller than the stored one (an answer overtaken by a
        concurrent one) is old news once proven a prefix of it; only a real
        inconsistency raises. The view only ever grows.
        """
        identity = await self.identity(log_id)
        try:
            checkpoint = verify_checkpoint(note, identity.origin, identity.key)
        except VerificationError as exc:
            raise VerificationError(f"log {log_id}: checkpoint refused: {exc}") from exc
        async with self._lock(log_id):
            await self._advance(log_id, checkpoint, note, since=since, proof=proof)
        return checkpoint

    async def accept_newest(
        self,
        log_id: str,
        note: str,
        *,
        asked: int,
        since: int | None = None,
        proof: Sequence[str] | None = None,
    ) -> Checkpoint:
        """Verify a checkpoint the server gave as its newest when asked for what came
        after size `asked` (the size this device had verified when it asked).

        The server's log only grows, so its newest checkpoint is never smaller than
        one this device verified: a smaller one, even a true prefix, means it rolled
        the log back for this member, withholding the newest events
        (`RolledBackError`).
        """
        checkpoint = await self.accept(log_id, note, since=since, proof=proof)
        if checkpoint.size < asked:
            raise RolledBackError(
                f"log {log_id}: the server calls a checkpoint of size {checkpoint.size} its "
                f"newest, but this device verified size {asked} before: the last "
                f"{asked - checkpoint.size} entries are hidden from you"
            )
        return checkpoint

    async def refused_since(self, log_id: str, asked: int, refusal: InvalidRequestError) -> None:
        """The server refused to prove its log from size `asked` (the size this device
        verified): raise `RolledBackError` if its newest checkpoint is smaller, else
        return (the caller re-raises `refusal`)."""
        if asked == 0:
            return
        identity = await self.identity(log_id)
        note = await self.http.text(f"/v1/logs/{log_id}/checkpoint")
        try:
            checkpoint = verify_checkpoint(note, identity.origin, identity.key)
        except VerificationError:
            return  # nothing signed to show: the refusal stands as it is
        if checkpoint.size < asked:
            raise RolledBackError(
                f"log {log_id}: the server's log now has {checkpoint.size} entries, but this "
                f"device verified a signed checkpoint of size {asked}: entries were deleted "
                f"or the log was replaced (the server said: {refusal.message})"
            ) from refusal

    async def _advance(
        self,
        log_id: str,
        checkpoint: Checkpoint,
        note: str,
        *,
        since: int | None,
        proof: Sequence[str] | None,
    ) -> None:
        """Check `checkpoint` against the stored view and keep the larger (under the lock)."""
        stored = self.keystore.checkpoint(log_id)
        if stored is not None:
            old, new = stored.size, checkpoint.size
            if old == new:
                if stored.root != checkpoint.root_hash:
                    raise ForkedError(
                        f"log {log_id}: two different roots for size {new}: the log forked"
                    )
            elif old < new:
                path = (
                    _decode_all(proof, "consistency proof")
                    if since == old and proof is not None
                    else await self._consistency(log_id, old, new)
                )
                self._check_consistency(log_id, old, new, path, stored.root, checkpoint.root_hash)
            elif self.roots.get(log_id, {}).get(new) != checkpoint.root_hash:
                # Old news (a concurrent answer got here first), if a prefix of our view.
                path = await self._consistency(log_id, new, old)
                self._check_consistency(log_id, new, old, path, checkpoint.root_hash, stored.root)
        if stored is None or checkpoint.size > stored.size:
            kept = self.keystore.set_checkpoint(log_id, checkpoint.size, checkpoint.root_hash, note)
            if kept.size > checkpoint.size:
                # Another process on this profile verified a newer checkpoint
                # meanwhile; ours must be a prefix of it, or the log forked.
                path = await self._consistency(log_id, checkpoint.size, kept.size)
                self._check_consistency(
                    log_id, checkpoint.size, kept.size, path, checkpoint.root_hash, kept.root
                )
        self.roots.setdefault(log_id, {})[checkpoint.size] = checkpoint.root_hash

    async def _consistency(self, log_id: str, size1: int, size2: int) -> list[bytes]:
        answer = await self.http.call(
            ConsistencyOut,
            "GET",
            f"/v1/logs/{log_id}/proof/consistency",
            params={"size1": size1, "size2": size2},
        )
        if (answer.size1, answer.size2) != (size1, size2):
            raise ProtocolError(
                f"log {log_id}: asked for a consistency proof from {size1} to {size2}, "
                f"got one from {answer.size1} to {answer.size2}"
            )
        return _decode_all(answer.proof, "consistency proof")

    @staticmethod
    def _check_consistency(
        log_id: str, size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
    ) -> None:
        try:
            verify_consistency(size1, size2, proof, root1, root2)
        except VerificationError as exc:
            raise ForkedError(
                f"log {log_id}: checkpoint of size {size2} is not consistent with size "
                f"{size1}: {exc} (the log was rewritten or forked)"
            ) from exc

    async def check_leaf(
        self,
        log_id: str,
        checkpoint: Checkpoint,
        leaf_b64: str,
        proof: Sequence[str],
        *,
        index: int,
        type: str,
        actor_device: str,
        payload_hash: bytes,
        signature: str,
        server_time: int | None = None,
    ) -> LogLeaf:
        """Check that a leaf says what the event says and is in the checkpoint's tree."""
        identity = await self.identity(log_id)
        try:
            raw = b64d(leaf_b64)
            leaf = parse_leaf(raw)
        except ProtocolError as exc:
            raise VerificationError(f"log {log_id} index {index}: bad leaf: {exc}") from exc
        expected = {
            "origin": identity.origin,
            "index": index,
            "type": type,
            "actor_device": actor_device,
            "payload_sha256": b64e(payload_hash),
            "signature": signature,
        }
        for field, value in expected.items():
            if getattr(leaf, field) != value:
                raise AlteredError(
                    f"log {log_id} index {index}: the leaf's {field} does not match the event"
                )
        if server_time is not None and leaf.server_time != server_time:
            raise AlteredError(f"log {log_id} index {index}: the leaf's time differs")
        try:
            verify_inclusion(
                leaf_hash(raw),
                index,
                checkpoint.size,
                _decode_all(proof, "inclusion proof"),
                checkpoint.root_hash,
            )
        except VerificationError as exc:
            raise VerificationError(
                f"log {log_id} index {index}: not included in the checkpoint of size "
                f"{checkpoint.size}: {exc}"
            ) from exc
        return leaf

    async def check_logged(
        self,
        log_id: str,
        logged: Logged,
        *,
        kind: str,
        actor_device: str,
        payload_hash: bytes,
        signature: str,
    ) -> None:
        """An answer's checkpoint is consistent with our view and includes the leaf of
        what `actor_device` just signed (rebuilt here, not taken from the server)."""
        index = logged.leaf_index
        checkpoint = await self.accept(log_id, logged.checkpoint)
        identity = await self.identity(log_id)
        leaf = LogLeaf(
            origin=identity.origin,
            index=index,
            type=kind,
            actor_device=actor_device,
            server_time=logged.created_at,
            payload_sha256=b64e(payload_hash),
            signature=signature,
        )
        await self.check_leaf(
            log_id,
            checkpoint,
            b64e(leaf.to_bytes()),
            logged.inclusion_proof,
            index=index,
            type=kind,
            actor_device=actor_device,
            payload_hash=payload_hash,
            signature=signature,
        )

    def track_leaf(self, log_id: str, index: int, leaf: bytes) -> None:
        """Keep the root at every size of a log read from its start (for gossip checks).

        Leaves come in order from the one reader of the log's events, under its lock.
        """
        frontier = self._frontiers.get(log_id, CompactRange())
        if frontier.size != index:
            return
        frontier, _ = frontier.append(leaf_hash(leaf))
        self._frontiers[log_id] = frontier
        self.roots.setdefault(log_id, {})[frontier.size] = frontier.root()

    async def check_prefix(self, log_id: str, size: int, root: bytes, *, who: str) -> None:
        """Check that (size, root), a checkpoint someone else saw, is a prefix of our view."""
        stored = self.keystore.checkpoint(log_id)
        if stored is None or size == 0:
            return
        known = self.roots.get(log_id, {}).get(size)
        if known is not None:
            if known != root:
                raise ForkedError(
                    f"log {log_id}: {who} saw root {format_root(root)} at size {size}, "
                    f"we saw {format_root(known)}: the server shows different histories"
                )
            return
        if size > stored.size:
            return  # newer than our view; our next checkpoint will be checked against it
        proof = await self._consistency(log_id, size, stored.size)
        try:
            verify_consistency(size, stored.size, proof, root, stored.root)
        except VerificationError as exc:
            raise ForkedError(
                f"log {log_id}: {who} saw a checkpoint of size {size} that is not a prefix "
                "of ours: the server shows different histories"
            ) from exc
        self.roots.setdefault(log_id, {})[size] = root
