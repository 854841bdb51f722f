"""Properties of the RFC 9162 tree: generated proofs verify, altered ones do not."""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.merkle import (
    EMPTY_ROOT,
    CompactRange,
    Node,
    consistency_proof,
    consistency_proof_from_leaves,
    inclusion_proof,
    inclusion_proof_from_leaves,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 200
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]
ROOTS = [root_from_leaf_hashes(LEAVES[:size]) for size in range(MAX_SIZE + 1)]

PROPERTY = settings(max_examples=200, deadline=None, database=None)


@functools.cache
def stored_node(level: int, index: int) -> bytes:
    """A get_node over LEAVES built from the MTH definition, independent of the proof code."""
    return root_from_leaf_hashes(LEAVES[index << level : (index + 1) << level])


def _flip_bit(value: bytes, bit: int) -> bytes:
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def _rejected(check: Callable[[], None]) -> bool:
    try:
        check()
    except VerificationError:
        return True
    return False


# Known answers: the leaves and roots of the RFC 6962 reference test tree.

RFC6962_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
RFC6962_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_root_is_hash_of_empty_string() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_leaf_and_node_hashes_use_distinct_prefixes() -> None:
    assert leaf_hash(b"ab") == hashlib.sha256(b"\x00ab").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize("size", range(1, len(RFC6962_LEAVES) + 1))
def test_roots_match_the_rfc6962_reference_tree(size: int) -> None:
    hashes = [leaf_hash(data) for data in RFC6962_LEAVES[:size]]
    assert root_from_leaf_hashes(hashes).hex() == RFC6962_ROOTS[size - 1]


# Generation and verification agree on every small tree.


def test_inclusion_proofs_verify_for_every_index_of_every_size() -> None:
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            proof = inclusion_proof(index, size, stored_node)
            verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


def test_consistency_proofs_verify_for_every_pair_of_sizes() -> None:
    for size2 in range(1, MAX_SIZE + 1):
        for size1 in range(1, size2 + 1):
            proof = consistency_proof(size1, size2, stored_node)
            verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


def test_consistency_proof_between_equal_sizes_is_empty() -> None:
    assert consistency_proof(7, 7, stored_node) == []


def test_inclusion_proof_outside_the_tree_is_not_generated() -> None:
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(5, 5, stored_node)


@pytest.mark.parametrize(("size1", "size2"), [(0, 3), (0, 0), (4, 3), (-1, 2)])
def test_consistency_proof_for_invalid_sizes_is_not_generated(size1: int, size2: int) -> None:
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(size1, size2, stored_node)


@given(data=st.data())
@PROPERTY
def test_list_based_proofs_equal_node_backed_proofs(data: st.DataObject) -> None:
    size2 = data.draw(st.integers(1, MAX_SIZE))
    size1 = data.draw(st.integers(1, size2))
    index = data.draw(st.integers(0, size2 - 1))
    assert inclusion_proof_from_leaves(index, LEAVES[:size2]) == inclusion_proof(
        index, size2, stored_node
    )
    assert consistency_proof_from_leaves(size1, size2, LEAVES) == consistency_proof(
        size1, size2, stored_node
    )


@pytest.mark.parametrize("size", [1_000_000, 2**20, 2**20 - 1, 2**40 + 12345])
def test_proofs_need_logarithmically_many_node_lookups(size: int) -> None:
    lookups: list[tuple[int, int]] = []

    def get_node(level: int, index: int) -> bytes:
        assert index << level < size, "a node outside the tree was requested"
        lookups.append((level, index))
        return hashlib.sha256(f"{level}/{index}".encode()).digest()

    bound = 2 * math.ceil(math.log2(size)) + 2
    for index in (0, size // 3, size - 1):
        lookups.clear()
        inclusion_proof(index, size, get_node)
        assert len(lookups) <= bound
    for size1 in (1, size // 3, size - 1):
        lookups.clear()
        consistency_proof(size1, size, get_node)
        assert len(lookups) <= bound


# Altered inclusion proofs are rejected.


def _inclusion_case(data: st.DataObject, min_size: int = 1) -> tuple[int, int, list[bytes]]:
    size = data.draw(st.integers(min_size, MAX_SIZE), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    return index, size, inclusion_proof(index, size, stored_node)


@given(data=st.data())
@PROPERTY
def test_inclusion_proof_with_a_flipped_bit_is_rejected(data: st.DataObject) -> None:
    index, size, proof = _inclusion_case(data)
    if not proof:
        return
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, 255), label="bit")
    proof[position] = _flip_bit(proof[position], bit)
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@given(data=st.data())
@PROPERTY
def test_inclusion_proof_missing_a_hash_is_rejected(data: st.DataObject) -> None:
    index, size, proof = _inclusion_case(data)
    if not proof:
        return
    del proof[data.draw(st.integers(0, len(proof) - 1), label="position")]
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@given(data=st.data())
@PROPERTY
def test_inclusion_proof_with_an_extra_hash_is_rejected(data: st.DataObject) -> None:
    index, size, proof = _inclusion_case(data)
    position = data.draw(st.integers(0, len(proof)), label="position")
    extra = data.draw(st.sampled_from([ROOTS[size], LEAVES[index], EMPTY_ROOT]), label="extra")
    proof.insert(position, extra)
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], index, size, proof, ROOTS[size])


@given(data=st.data())
@PROPERTY
def test_inclusion_proof_for_another_index_is_rejected(data: st.DataObject) -> None:
    index, size, proof = _inclusion_case(data, min_size=2)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], other, size, proof, ROOTS[size])


@given(data=st.data())
@PROPERTY
def test_inclusion_proof_for_another_tree_is_rejected(data: st.DataObject) -> None:
    index, size, proof = _inclusion_case(data)
    other = data.draw(st.integers(1, MAX_SIZE).filter(lambda s: s != size), label="other size")
    with pytest.raises(VerificationError):
        verify_inclusion(LEAVES[index], index, other, proof, ROOTS[other])


def test_inclusion_proof_of_another_leaf_is_rejected() -> None:
    proof = inclusion_proof(3, 10, stored_node)
    with pytest.raises(VerificationError, match="root hash"):
        verify_inclusion(LEAVES[4], 3, 10, proof, ROOTS[10])


# Altered consistency proofs are rejected.


def _consistency_case(data: st.DataObject) -> tuple[int, int, list[bytes]]:
    size2 = data.draw(st.integers(2, MAX_SIZE), label="size2")
    size1 = data.draw(st.integers(1, size2 - 1), label="size1")
    return size1, size2, consistency_proof(size1, size2, stored_node)


@given(data=st.data())
@PROPERTY
def test_consistency_proof_with_a_flipped_bit_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    bit = data.draw(st.integers(0, 255), label="bit")
    proof[position] = _flip_bit(proof[position], bit)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@given(data=st.data())
@PROPERTY
def test_consistency_proof_missing_a_hash_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    del proof[data.draw(st.integers(0, len(proof) - 1), label="position")]
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@given(data=st.data())
@PROPERTY
def test_consistency_proof_with_an_extra_hash_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    position = data.draw(st.integers(0, len(proof)), label="position")
    extra = data.draw(st.sampled_from([ROOTS[size1], ROOTS[size2], EMPTY_ROOT]), label="extra")
    proof.insert(position, extra)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@given(data=st.data())
@PROPERTY
def test_consistency_proof_from_another_old_size_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    other = data.draw(st.integers(1, size2).filter(lambda s: s != size1), label="other size1")
    with pytest.raises(VerificationError):
        verify_consistency(other, size2, proof, ROOTS[other], ROOTS[size2])


@given(data=st.data())
@PROPERTY
def test_consistency_proof_to_another_new_size_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    other = data.draw(st.integers(size1, MAX_SIZE).filter(lambda s: s != size2), label="size2'")
    with pytest.raises(VerificationError):
        verify_consistency(size1, other, proof, ROOTS[size1], ROOTS[other])


@given(data=st.data())
@PROPERTY
def test_consistency_proof_with_swapped_roots_is_rejected(data: st.DataObject) -> None:
    size1, size2, proof = _consistency_case(data)
    with pytest.raises(VerificationError):
        verify_consistency(size1, size2, proof, ROOTS[size2], ROOTS[size1])


def test_consistency_proof_of_a_forked_tree_is_rejected() -> None:
    forked = [*LEAVES[:5], leaf_hash(b"rewritten"), *LEAVES[6:20]]
    proof = consistency_proof_from_leaves(8, 20, forked)
    with pytest.raises(VerificationError, match="root hash"):
        verify_consistency(8, 20, proof, ROOTS[8], root_from_leaf_hashes(forked))


# The compact range appends leaves and reports the nodes to store.


def test_compact_range_roots_match_root_from_leaf_hashes_at_every_size() -> None:
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for size in range(1, MAX_SIZE + 1):
        compact, _ = compact.append(LEAVES[size - 1])
        assert (compact.size, compact.root()) == (size, ROOTS[size])


@given(leaves=st.lists(st.binary(max_size=8), max_size=300))
@PROPERTY
def test_compact_range_root_equals_mth_of_any_leaves(leaves: list[bytes]) -> None:
    hashes = [leaf_hash(data) for data in leaves]
    compact = CompactRange()
    for h in hashes:
        compact, _ = compact.append(h)
    assert compact.root() == root_from_leaf_hashes(hashes)


def test_compact_range_reports_every_perfect_subtree_exactly_once() -> None:
    compact = CompactRange()
    reported: list[Node] = []
    for h in LEAVES:
        compact, completed = compact.append(h)
        reported.extend(completed)
    positions = [(node.level, node.index) for node in reported]
    expected = [
        (level, index)
        for level in range(MAX_SIZE.bit_length())
        for index in range(MAX_SIZE >> level)
    ]
    assert sorted(positions) == sorted(expected)
    assert all(node.hash == stored_node(node.level, node.index) for node in reported)


def test_compact_range_append_reports_the_leaf_then_closed_subtrees_lowest_first() -> None:
    compact = CompactRange()
    for h in LEAVES[:7]:
        compact, _ = compact.append(h)
    _, completed = compact.append(LEAVES[7])
    assert [(node.level, node.index) for node in completed] == [(0, 7), (1, 3), (2, 1), (3, 0)]


def test_proofs_served_from_reported_nodes_equal_list_based_proofs() -> None:
    store: dict[tuple[int, int], bytes] = {}
    compact = CompactRange()
    for h in LEAVES[:77]:
        compact, completed = compact.append(h)
        store.update({(node.level, node.index): node.hash for node in completed})

    def get_node(level: int, index: int) -> bytes:
        return store[(level, index)]

    for index in range(77):
        assert inclusion_proof(index, 77, get_node) == inclusion_proof_from_leaves(
            index, LEAVES[:77]
        )
    for size1 in range(1, 78):
        assert consistency_proof(size1, 77, get_node) == consistency_proof_from_leaves(
            size1, 77, LEAVES
        )


@pytest.mark.parametrize("size", [0, 1, 2, 3, 64, 77, MAX_SIZE - 1])
def test_compact_range_loaded_from_stored_nodes_continues_the_same_tree(size: int) -> None:
    loaded = CompactRange.from_nodes(size, stored_node)
    assert loaded.root() == ROOTS[size]
    grown, _ = loaded.append(LEAVES[size])
    assert grown.root() == ROOTS[size + 1]


def test_compact_range_lists_its_frontier_nodes_largest_first() -> None:
    compact = CompactRange.from_nodes(13, stored_node)
    assert [(node.level, node.index) for node in compact.nodes()] == [(3, 0), (2, 2), (0, 12)]


def test_compact_range_with_the_wrong_number_of_hashes_is_refused() -> None:
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange(3, (LEAVES[0],))


def test_compact_range_refuses_a_leaf_hash_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CompactRange().append(b"short")


# Verification fails closed.


def test_inclusion_in_an_empty_tree_is_rejected() -> None:
    with pytest.raises(VerificationError, match="size 0"):
        verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)


def test_negative_leaf_index_is_rejected() -> None:
    with pytest.raises(VerificationError, match="outside"):
        verify_inclusion(LEAVES[0], -1, 2, [LEAVES[1]], ROOTS[2])


def test_consistency_from_the_empty_tree_is_rejected() -> None:
    with pytest.raises(VerificationError, match="size 0"):
        verify_consistency(0, 5, [], EMPTY_ROOT, ROOTS[5])


def test_empty_consistency_proof_between_different_sizes_is_rejected() -> None:
    with pytest.raises(VerificationError, match="empty"):
        verify_consistency(3, 5, [], ROOTS[3], ROOTS[5])


def test_truncated_proof_hash_is_rejected() -> None:
    proof = inclusion_proof(0, 4, stored_node)
    proof[1] = proof[1][:31]
    with pytest.raises(VerificationError, match="proof hash 1 is 31 bytes"):
        verify_inclusion(LEAVES[0], 0, 4, proof, ROOTS[4])
