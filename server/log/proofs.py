"""Proofs and tiles from stored subtree hashes, with one query per batch.

The pure generators in `client_sdk.protocol.merkle` ask for perfect-subtree
hashes one at a time. Here each request is planned first (which nodes will
it read?), the nodes are fetched in one query, and the proof is then built
from memory — O(log n) hashes from one round trip, even at millions of leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol import merkle
from server.errors import InvalidInput
from server.storage.logs import LogRepository

Plan = Callable[[merkle.NodeGetter], object]
_DUMMY = bytes(32)


def _keys(plan: Plan) -> set[tuple[int, int]]:
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return _DUMMY

    plan(record)
    return wanted


def _inclusion_plan(index: int, size: int, get: merkle.NodeGetter) -> object:
    return merkle.inclusion_proof(index, size, get)


class ProofReader:
    """Builds proofs for one log inside the caller's transaction."""

    def __init__(self, conn: AsyncConnection, log_id: str) -> None:
        self.repo = LogRepository(conn)
        self.log_id = log_id
        self._cache: dict[tuple[int, int], bytes] = {}

    async def prefetch(self, plans: list[Plan]) -> None:
        """Fetch, in one query, every node the given plans will read."""
        wanted: set[tuple[int, int]] = set()
        for plan in plans:
            wanted |= _keys(plan)
        missing = wanted - self._cache.keys()
        found = await self.repo.nodes(self.log_id, missing)
        if len(found) != len(missing):
            raise RuntimeError(f"log {self.log_id}: stored tree nodes are missing")
        self._cache.update(found)

    def _get(self, level: int, index: int) -> bytes:
        return self._cache[(level, index)]

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf `index` in the tree of `size` leaves."""
        if not 0 <= index < size:
            raise InvalidInput(f"leaf {index} is not in a tree of size {size}")
        plan: Plan = lambda get: merkle.inclusion_proof(index, size, get)  # noqa: E731
        await self.prefetch([plan])
        return merkle.inclusion_proof(index, size, self._get)

    async def inclusions(self, indexes: list[int], size: int) -> list[list[bytes]]:
        """Inclusion proofs of several leaves in one tree, with one query."""
        for index in indexes:
            if not 0 <= index < size:
                raise InvalidInput(f"leaf {index} is not in a tree of size {size}")
        await self.prefetch([partial(_inclusion_plan, i, size) for i in indexes])
        return [merkle.inclusion_proof(i, size, self._get) for i in indexes]

    async def consistency(self, size1: int, size2: int) -> list[bytes]:
        """The consistency proof from `size1` to `size2` (empty if either is 0 or equal)."""
        if not 0 <= size1 <= size2:
            raise InvalidInput(f"no consistency proof from size {size1} to size {size2}")
        if size1 == 0 or size1 == size2:
            return []
        plan: Plan = lambda get: merkle.consistency_proof(size1, size2, get)  # noqa: E731
        await self.prefetch([plan])
        return merkle.consistency_proof(size1, size2, self._get)

    async def root(self, size: int) -> bytes:
        """The root of the tree of `size` leaves, recomputed from stored hashes."""
        plan: Plan = lambda get: merkle.CompactRange.from_nodes(size, get)  # noqa: E731
        await self.prefetch([plan])
        return merkle.CompactRange.from_nodes(size, self._get).root()

    async def frontier(self, size: int) -> merkle.CompactRange:
        """The right edge of the tree of `size` leaves, from stored hashes."""
        plan: Plan = lambda get: merkle.CompactRange.from_nodes(size, get)  # noqa: E731
        await self.prefetch([plan])
        return merkle.CompactRange.from_nodes(size, self._get)

    def remember(self, nodes: list[merkle.Node]) -> None:
        """Add nodes written in this transaction to the cache."""
        for node in nodes:
            self._cache[(node.level, node.index)] = node.hash


async def proof_at_append(
    conn: AsyncConnection, log_id: str, index: int
) -> tuple[str, list[bytes]]:
    """The checkpoint signed when leaf `index` was appended (size ``index + 1``) and the
    leaf's inclusion proof in it: the answer a retried request gets again."""
    checkpoint = await LogRepository(conn).checkpoint(log_id, index + 1)
    if checkpoint is None:
        raise RuntimeError(f"log {log_id}: no checkpoint of size {index + 1}")
    return checkpoint.note, await ProofReader(conn, log_id).inclusion(index, checkpoint.size)
