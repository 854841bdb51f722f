"""Merkle trees, inclusion proofs and consistency proofs of RFC 9162 §2.1.

Pure: bytes in, bytes out. Hashes are SHA-256 with the RFC's domain
separation, ``0x00 || leaf`` for leaves and ``0x01 || left || right`` for
interior nodes; the hash of the empty tree is ``SHA-256("")``.

Proofs are generated from *perfect subtrees*: ``get_node(level, index)``
returns the hash of the subtree of ``2**level`` leaves starting at leaf
``index * 2**level`` (level 0 is the leaf hashes). A log that stores the
nodes `CompactRange.append` reports answers every ``get_node`` call with one
lookup, so a proof costs O(log n) lookups however large the tree grows.

Verification follows the algorithms of RFC 9162 §2.1.3.2 (inclusion) and
§2.1.4.2 (consistency): the public ``verify_*`` functions return ``None`` or
raise `VerificationError` with the reason, and fail closed on empty or
out-of-range input.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from client_sdk.protocol.errors import VerificationError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeGetter = Callable[[int, int], bytes]
"""``get_node(level, index)``: the hash of the perfect subtree at that level and index."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes; `EMPTY_ROOT` for none."""
    if not hashes:
        return EMPTY_ROOT
    return _mth(hashes, 0, len(hashes))


def _mth(hashes: Sequence[bytes], begin: int, end: int) -> bytes:
    # The recursive definition of RFC 9162 §2.1.1, over hashes[begin:end].
    if end - begin == 1:
        return hashes[begin]
    split = begin + _largest_power_of_two_below(end - begin)
    return node_hash(_mth(hashes, begin, split), _mth(hashes, split, end))


def _largest_power_of_two_below(n: int) -> int:
    # The k of RFC 9162: the largest power of two strictly smaller than n (n >= 2).
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_subtrees(begin: int, end: int) -> list[tuple[int, int]]:
    """The (level, index) of the perfect subtrees that tile leaves [begin, end), largest first.

    `begin` must be a multiple of the largest of them, which holds for every
    range the RFC's recursive split produces.
    """
    nodes = []
    position = begin
    for level in range((end - begin).bit_length() - 1, -1, -1):
        if (end - begin) >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def _fold(hashes: Sequence[bytes]) -> bytes:
    # Hash perfect subtrees, largest first, into the root of the range they tile.
    root = hashes[-1]
    for left in reversed(hashes[:-1]):
        root = node_hash(left, root)
    return root


def _range_root(begin: int, end: int, get_node: NodeGetter) -> bytes:
    return _fold([get_node(level, index) for level, index in _perfect_subtrees(begin, end)])


def inclusion_proof(index: int, size: int, get_node: NodeGetter) -> list[bytes]:
    """The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1).

    Raises `ValueError` unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    # Walk down from the root; the siblings come out root first.
    path: list[bytes] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _largest_power_of_two_below(end - begin)
        if index < begin + k:
            path.append(_range_root(begin + k, end, get_node))
            end = begin + k
        else:
            path.append(get_node(k.bit_length() - 1, begin // k))
            begin += k
    path.reverse()
    return path


def consistency_proof(size1: int, size2: int, get_node: NodeGetter) -> list[bytes]:
    """The proof that the tree of `size1` leaves is a prefix of the tree of `size2` (§2.1.4.1).

    Empty when the sizes are equal. Raises `ValueError` unless
    ``0 < size1 <= size2``: no proof from the empty tree is meaningful.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    begin, end = 0, size2
    # SUBPROOF's flag b: true while the current subtree is a left edge of the old tree.
    on_left_edge = True
    # Descend until the current subtree ends where the old tree ends.
    while end != size1:
        k = _largest_power_of_two_below(end - begin)
        if size1 - begin <= k:
            proof.append(_range_root(begin + k, end, get_node))
            end = begin + k
        else:
            proof.append(get_node(k.bit_length() - 1, begin // k))
            begin += k
            on_left_edge = False
    if not on_left_edge:
        proof.append(_range_root(begin, end, get_node))
    proof.reverse()
    return proof


def _getter_from_leaves(leaf_hashes: Sequence[bytes]) -> NodeGetter:
    # Build every complete level once, so each lookup is an index.
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def get_node(level: int, index: int) -> bytes:
        return levels[level][index]

    return get_node


def inclusion_proof_from_leaves(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """`inclusion_proof` over a list of leaf hashes (for tests and small trees)."""
    return inclusion_proof(index, len(leaf_hashes), _getter_from_leaves(leaf_hashes))


def consistency_proof_from_leaves(
    size1: int, size2: int, leaf_hashes: Sequence[bytes]
) -> list[bytes]:
    """`consistency_proof` over the first `size2` of a list of leaf hashes."""
    if size2 > len(leaf_hashes):
        raise ValueError(f"size {size2} exceeds the {len(leaf_hashes)} leaves given")
    return consistency_proof(size1, size2, _getter_from_leaves(leaf_hashes[:size2]))


@dataclass(frozen=True, slots=True)
class Node:
    """The hash of the perfect subtree of ``2**level`` leaves starting at ``index * 2**level``."""

    level: int
    index: int
    hash: bytes


@dataclass(frozen=True, slots=True)
class CompactRange:
    """The right edge of a tree: what it takes to append leaves and compute roots.

    `hashes` are the perfect subtrees tiling leaves ``[0, size)``, largest
    first: one per set bit of `size`. Immutable; `append` returns a new range.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("a tree size is not negative")
        if len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of size {self.size} has {self.size.bit_count()} frontier hashes, "
                f"not {len(self.hashes)}"
            )
        if any(len(h) != HASH_SIZE for h in self.hashes):
            raise ValueError(f"frontier hashes are {HASH_SIZE} bytes")

    @classmethod
    def from_nodes(cls, size: int, get_node: NodeGetter) -> CompactRange:
        """Load the range of a tree of `size` leaves from stored perfect-subtree hashes."""
        if size < 0:
            raise ValueError("a tree size is not negative")
        subtrees = _perfect_subtrees(0, size)
        return cls(size, tuple(get_node(level, index) for level, index in subtrees))

    def nodes(self) -> list[Node]:
        """The frontier hashes with their positions, largest subtree first."""
        return [
            Node(level, index, h)
            for (level, index), h in zip(_perfect_subtrees(0, self.size), self.hashes, strict=True)
        ]

    def root(self) -> bytes:
        """The root hash of the tree of `size` leaves."""
        return _fold(self.hashes) if self.hashes else EMPTY_ROOT

    def append(self, leaf: bytes) -> tuple[CompactRange, list[Node]]:
        """Append one leaf hash; return the new range and every node it completed.

        The nodes are the leaf itself (level 0) and each subtree it closed,
        lowest first: storing them is what makes `get_node` answerable.
        """
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        hashes = list(self.hashes)
        completed = [Node(0, self.size, leaf)]
        current = leaf
        level = 0
        # Like a binary counter: each trailing one bit of size is a subtree to merge.
        while self.size >> level & 1:
            current = node_hash(hashes.pop(), current)
            level += 1
            completed.append(Node(level, self.size >> level, current))
        hashes.append(current)
        return CompactRange(self.size + 1, tuple(hashes)), completed


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _lsb(n: int) -> bool:
    return n & 1 == 1


def verify_inclusion(
    leaf_hash: bytes, index: int, tree_size: int, proof: list[bytes], root: bytes
) -> None:
    """Check that `leaf_hash` is leaf `index` of the tree of `tree_size` leaves with `root`.

    RFC 9162 §2.1.3.2. Returns ``None`` or raises `VerificationError`.
    """
    if tree_size <= 0:
        raise VerificationError(f"no leaf is included in a tree of size {tree_size}")
    if not 0 <= index < tree_size:
        raise VerificationError(f"leaf index {index} is outside a tree of size {tree_size}")
    _check_hash(leaf_hash, "the leaf hash")
    _check_hash(root, "the root hash")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof hash {position}")

    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError("inclusion proof is too long")
        if _lsb(fn) or fn == sn:
            r = node_hash(p, r)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("inclusion proof is too short")
    if not hmac.compare_digest(r, root):
        raise VerificationError("inclusion proof does not lead to the root hash")


def verify_consistency(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of `size1` leaves with `root1` is a prefix of the one of `size2`.

    RFC 9162 §2.1.4.2. A proof from the empty tree proves nothing and is
    always rejected. For equal sizes the proof must be empty and the roots
    equal. Returns ``None`` or raises `VerificationError`.
    """
    if size1 <= 0:
        raise VerificationError(f"no consistency proof from a tree of size {size1}")
    if size2 < size1:
        raise VerificationError(f"the new size {size2} is smaller than the old size {size1}")
    if size1 == size2:
        if proof:
            raise VerificationError("consistency proof between equal sizes must be empty")
        if not hmac.compare_digest(root1, root2):
            raise VerificationError("the roots of two trees of equal size differ")
        return
    _check_hash(root1, "the old root hash")
    _check_hash(root2, "the new root hash")
    if not proof:
        raise VerificationError("consistency proof is empty")
    for position, element in enumerate(proof):
        _check_hash(element, f"proof hash {position}")

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        # The old tree is a perfect subtree of the new one: it starts the path.
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while _lsb(fn):
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("consistency proof is too long")
        if _lsb(fn) or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not _lsb(fn) and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise VerificationError("consistency proof is too short")
    if not hmac.compare_digest(fr, root1):
        raise VerificationError("consistency proof does not lead to the old root hash")
    if not hmac.compare_digest(sr, root2):
        raise VerificationError("consistency proof does not lead to the new root hash")
