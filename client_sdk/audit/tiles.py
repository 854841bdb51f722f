"""Tiles as c2sp.org/tlog-tiles defines them, for the offline bundle (docs/design.md §6).

A hash tile ``tile/L/N[.p/W]`` holds the hashes of the tree's nodes at height
``8*L`` with indexes ``256*N .. 256*N+W-1`` (W = 256 unless partial), 32 bytes
each. An entry bundle ``tile/entries/N[.p/W]`` holds the leaves ``256*N ..``,
each as a big-endian uint16 length and its bytes. Beside them the bundle
carries ``signed/N[.p/W]``: what each leaf's actor signed, the canonical JSON
of its signed payload, each as a big-endian uint32 length and its bytes (a
Parley addition: tlog-tiles has no place for it).

`StreamTree` rebuilds the tree from leaf hashes fed in order, keeping only its
right edge: the roots at the sizes asked for in advance and the tile-level
node hashes not yet compared. `LeafHashFile` keeps every leaf hash on disk, so
an instrument act that names an earlier leaf is checked without holding the log.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.merkle import EMPTY_ROOT, HASH_SIZE, CompactRange, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEAF = 0xFFFF
MAX_SIGNED = 1 << 24
"""The largest signed payload a bundle may carry (16 MiB)."""


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/L/x001/x234/067[.p/W]``: the tlog-tiles path of a tile (or ``entries``)."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    path = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{path}{suffix}"


def signed_path(index: int, width: int = TILE_WIDTH) -> str:
    """``signed/N[.p/W]``: where the signed payloads of entry bundle N are."""
    return "signed/" + tile_path(0, index, width).removeprefix("tile/0/")


def pack(items: Iterable[bytes], *, wide: bool = False) -> bytes:
    """Length-prefixed items: uint16 lengths (an entry bundle) or uint32 (`wide`)."""
    form, limit = (">I", MAX_SIGNED) if wide else (">H", MAX_LEAF)
    parts: list[bytes] = []
    for item in items:
        if len(item) > limit:
            raise ProtocolError(f"an item of {len(item)} bytes does not fit a bundle")
        parts += (struct.pack(form, len(item)), item)
    return b"".join(parts)


def unpack(data: bytes, count: int, *, wide: bool = False, what: str) -> list[bytes]:
    """The `count` length-prefixed items of `data`; `ProtocolError` if it holds other."""
    head = 4 if wide else 2
    items, at = [], 0
    view = memoryview(data)
    for _ in range(count):
        if at + head > len(data):
            raise ProtocolError(f"{what} ends early")
        length = int.from_bytes(view[at : at + head], "big")
        at += head
        if at + length > len(data):
            raise ProtocolError(f"{what} ends early")
        items.append(bytes(view[at : at + length]))
        at += length
    if at != len(data):
        raise ProtocolError(f"{what} holds more than {count} items")
    return items


def tile_levels(size: int) -> int:
    """How many tile levels a tree of `size` leaves has (hash tiles 0 .. n-1)."""
    levels = 1
    while size >> (TILE_HEIGHT * levels):
        levels += 1
    return levels


class Roots(Protocol):
    """A rebuilt tree: its size and its root at the sizes it can tell."""

    @property
    def size(self) -> int:
        """How many leaves it has."""

    def root(self, size: int) -> bytes:
        """The root of the first `size` leaves; `ValueError` if it cannot tell."""


class TreeRoots:
    """Every level of a Merkle tree built from its leaf hashes: the root at any size."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.size = len(leaf_hashes)
        self._levels = [list(leaf_hashes)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            )

    def root(self, size: int) -> bytes:
        """The root hash of the first `size` leaves (``0 <= size <= self.size``)."""
        if not 0 <= size <= self.size:
            raise ValueError(f"no root of size {size} in a tree of {self.size} leaves")
        return CompactRange.from_nodes(size, lambda level, index: self._levels[level][index]).root()


class StreamTree:
    """A Merkle tree rebuilt leaf by leaf, keeping only its right edge.

    Roots are kept for the sizes in `wanted`; `nodes[L]` are the hashes at
    height ``8*L`` (L >= 1) completed and not yet taken by `take_nodes`.
    Memory: about ``log2(size)`` hashes, the wanted roots, and what is pending.
    """

    def __init__(self, wanted: Iterable[int] = ()) -> None:
        """Keep the roots of the sizes in `wanted`."""
        self.size = 0
        self._edge: list[bytes] = []
        self._wanted = set(wanted)
        self._roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in self._wanted else {}
        self.nodes: dict[int, list[bytes]] = {}

    def append(self, leaf: bytes) -> None:
        """Append the next leaf hash."""
        index, current, level = self.size, leaf, 0
        edge = self._edge
        while index >> level & 1:
            current = node_hash(edge.pop(), current)
            level += 1
            if not level % TILE_HEIGHT:
                self.nodes.setdefault(level // TILE_HEIGHT, []).append(current)
        edge.append(current)
        self.size += 1
        if self.size in self._wanted:
            self._roots[self.size] = self.current_root()

    def current_root(self) -> bytes:
        """The root of the leaves so far."""
        if not self._edge:
            return EMPTY_ROOT
        root = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            root = node_hash(left, root)
        return root

    def take_nodes(self, level: int, count: int) -> list[bytes]:
        """The first `count` pending hashes at height ``8*level`` (fewer if not there)."""
        pending = self.nodes.get(level, [])
        taken, self.nodes[level] = pending[:count], pending[count:]
        return taken

    def root(self, size: int) -> bytes:
        """The root at `size`: one of the wanted sizes reached, or the present size."""
        if size == self.size:
            return self.current_root()
        try:
            return self._roots[size]
        except KeyError:
            raise ValueError(f"the root of size {size} was not kept") from None


class LeafHashFile:
    """Every leaf hash so far, in a temporary file: bounded memory, any one readable."""

    def __init__(self) -> None:
        """An empty file, deleted when closed."""
        self._file = tempfile.TemporaryFile(prefix="parley-audit-")
        self._buffer: list[bytes] = []
        self._written = 0

    def __len__(self) -> int:
        return self._written + len(self._buffer)

    def append(self, leaf: bytes) -> None:
        """Keep the next leaf hash."""
        self._buffer.append(leaf)
        if len(self._buffer) >= 4096:
            self._spill()

    def _spill(self) -> None:
        if self._buffer:
            self._file.seek(0, os.SEEK_END)
            self._file.write(b"".join(self._buffer))
            self._written += len(self._buffer)
            self._buffer.clear()

    def __getitem__(self, index: int) -> bytes:
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index >= self._written:
            return self._buffer[index - self._written]
        self._file.seek(index * HASH_SIZE)
        return self._file.read(HASH_SIZE)

    def close(self) -> None:
        """Delete the file."""
        self._file.close()


def iter_hashes(data: bytes, what: str) -> Iterator[bytes]:
    """The 32-byte hashes of a tile's bytes."""
    if len(data) % HASH_SIZE:
        raise ProtocolError(f"{what} is not a whole number of hashes")
    for at in range(0, len(data), HASH_SIZE):
        yield data[at : at + HASH_SIZE]
