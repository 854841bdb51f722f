"""Proofs and tiles from stored subtree hashes, with one query per batch.

The pure generators in `client_sdk.protocol.merkle` ask for perfect-subtree
hashes one at a time. Here each request is planned first (which nodes will
it read?), the nodes are fetched in one query, and the proof is then built
from memory — O(log n) hashes from one round trip, even at millions of leaves.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from functools import partial

from sqlalchemy.ext.asyncio import AsyncConnection

from client_sdk.protocol import merkle
from server.errors import InvalidInput
from server.storage.database import after_commit
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


class NodeCache:
    """Committed subtree hashes of recently appended-to logs, shared by a process.

    A perfect subtree's hash never changes once committed (the log is
    append-only, and its tables refuse UPDATE), so a committed node is valid
    forever, on every replica. Nodes enter only after their transaction
    committed (`ProofReader.publish`), so a rolled-back append leaves nothing
    here. With the right edge of a log cached, an append reads no node at all.
    """

    def __init__(self, *, logs: int = 1024, nodes_per_log: int = 4096) -> None:
        self._logs: OrderedDict[str, dict[tuple[int, int], bytes]] = OrderedDict()
        self._max_logs = logs
        self._max_nodes = nodes_per_log

    def of(self, log_id: str) -> Mapping[tuple[int, int], bytes]:
        """The cached nodes of one log (empty if none)."""
        found = self._logs.get(log_id)
        if found is None:
            return {}
        self._logs.move_to_end(log_id)
        return found

    def add(self, log_id: str, nodes: Mapping[tuple[int, int], bytes]) -> None:
        """Keep committed nodes of one log (a log's share starts over when full, and
        the least recently used log goes when there are too many)."""
        kept = self._logs.setdefault(log_id, {})
        self._logs.move_to_end(log_id)
        if len(kept) + len(nodes) > self._max_nodes:
            kept.clear()
        kept.update(nodes)
        while len(self._logs) > self._max_logs:
            self._logs.popitem(last=False)


class ProofReader:
    """Builds proofs for one log inside the caller's transaction."""

    def __init__(
        self, conn: AsyncConnection, log_id: str, *, shared: NodeCache | None = None
    ) -> None:
        """`shared` is the process's cache of committed nodes: read from, and (see
        `publish`) added to."""
        self.conn = conn
        self.repo = LogRepository(conn)
        self.log_id = log_id
        self._cache: dict[tuple[int, int], bytes] = {}
        self._shared = shared
        self._known = shared.of(log_id) if shared is not None else {}

    async def prefetch(self, plans: list[Plan]) -> None:
        """Fetch, in one query, every node the given plans will read."""
        wanted: set[tuple[int, int]] = set()
        for plan in plans:
            wanted |= _keys(plan)
        missing = wanted - self._cache.keys()
        known = {key: self._known[key] for key in missing if key in self._known}
        missing -= known.keys()
        found = await self.repo.nodes(self.log_id, missing) if missing else {}
        if len(found) != len(missing):
            raise RuntimeError(f"log {self.log_id}: stored tree nodes are missing")
        self._cache.update(known)
        self._cache.update(found)

    def publish(self) -> None:
        """Add every node this reader read or wrote to the shared cache, once the
        caller's transaction has committed."""
        if self._shared is None:
            return
        shared, log_id, nodes = self._shared, self.log_id, self.held()
        after_commit(self.conn, lambda: shared.add(log_id, nodes))

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

    def held(self) -> dict[tuple[int, int], bytes]:
        """Every node this reader read or wrote so far."""
        return dict(self._cache)

    def assume(self, nodes: Mapping[tuple[int, int], bytes]) -> None:
        """Use nodes the caller has proven committed (see `LogWriter.plan`)."""
        self._cache.update(nodes)

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
