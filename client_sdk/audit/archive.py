"""The tiled offline bundle (docs/design.md §6): a gzipped tar stream, read in one pass.

Members, in this order:

- ``parley-audit-bundle.json``: ``{"format": "parley-audit-bundle/v2", log_id,
  origin, log_vkey, exported_at, size, checkpoints: [signed notes, ascending,
  the newest excluded], witnesses, accounts}``;
- ``checkpoint``: the newest signed checkpoint, with its cosignatures, of `size`;
- for each 256 leaves N: ``tile/0/N``, ``tile/entries/N``, ``signed/N``
  (`client_sdk.audit.tiles`), then every higher tile those leaves completed;
  the last of each level partial (``.p/W``);
- ``accounts.json``: the directory records of the roster signers.

`TiledReader.batches` yields the entries 256 at a time, comparing each leaf
with the level-0 tile and rebuilding the tree the tiles describe; memory stays
that of one tile group whatever the log's length.
"""

from __future__ import annotations

import gzip
import json
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from pydantic import Field, ValidationError

from client_sdk.audit.tiles import (
    TILE_WIDTH,
    StreamTree,
    iter_hashes,
    pack,
    signed_path,
    tile_levels,
    tile_path,
    unpack,
)
from client_sdk.protocol.encoding import canonical_json
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.merkle import leaf_hash
from client_sdk.protocol.models import Ident, Int, WireModel

TILED_FORMAT: Final = "parley-audit-bundle/v2"
MANIFEST: Final = "parley-audit-bundle.json"
ACCOUNTS: Final = "accounts.json"
MAX_MEMBER = 64 * 1024**2
"""The largest member a reader accepts (a manifest or a group of 256 signed payloads)."""


class TiledManifest(WireModel):
    """What a tiled bundle says of its log before its tiles."""

    format: str = TILED_FORMAT
    log_id: Ident
    origin: str = Field(min_length=1, max_length=300)
    log_vkey: str
    exported_at: Int
    size: Int
    checkpoints: list[str] = Field(default_factory=list)
    witnesses: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TiledBundle:
    """A tiled bundle file: its manifest and newest checkpoint (the entries stay on disk)."""

    path: Path
    manifest: TiledManifest
    checkpoint: str

    @property
    def log_id(self) -> str:
        """The log the bundle holds."""
        return self.manifest.log_id

    @property
    def origin(self) -> str:
        """The log's origin."""
        return self.manifest.origin

    @property
    def size(self) -> int:
        """How many entries it holds."""
        return self.manifest.size


def signed_bytes_of(signed: Any) -> bytes:
    """A signed payload as the bundle stores it: its RFC 8785 canonical JSON."""
    return canonical_json(signed)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, _Reader(data))


class _Reader:
    """The smallest file-like object `TarFile.addfile` reads from."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._at = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._at + size
        piece = bytes(self._view[self._at : end])
        self._at += len(piece)
        return piece


class TiledWriter:
    """Writes a tiled bundle as its entries arrive: `add` each, then `finish`."""

    def __init__(self, out: IO[bytes], manifest: TiledManifest, checkpoint: str) -> None:
        """Start the bundle of `manifest.size` entries on `out`."""
        self.manifest = manifest
        self._zipped = gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0)
        self._tar = tarfile.open(fileobj=self._zipped, mode="w|", format=tarfile.USTAR_FORMAT)
        self._tree = StreamTree()
        self._group: list[tuple[bytes, bytes]] = []
        self.written = 0
        _add(self._tar, MANIFEST, manifest.model_dump_json().encode())
        _add(self._tar, "checkpoint", checkpoint.encode())

    def add(self, leaf: bytes, signed: bytes) -> None:
        """The next entry: its leaf and the JSON of what its actor signed."""
        if self.written + len(self._group) >= self.manifest.size:
            raise ProtocolError(f"more than {self.manifest.size} entries to bundle")
        self._group.append((leaf, signed))
        if len(self._group) == TILE_WIDTH:
            self.written = _write_group(self._tar, self._tree, self.written, self._group)
            self._group = []

    def finish(self, accounts: dict[str, dict[str, Any]]) -> None:
        """The last tiles, then the directory records of the roster signers."""
        if self._group:
            self.written = _write_group(self._tar, self._tree, self.written, self._group)
            self._group = []
        if self.written != self.manifest.size:
            raise ProtocolError(f"{self.written} entries to bundle, not {self.manifest.size}")
        for level in range(1, tile_levels(self.written)):
            pending = self._tree.take_nodes(level, TILE_WIDTH)
            if pending:
                index = (self.written >> (8 * level)) // TILE_WIDTH
                _add(self._tar, tile_path(level, index, len(pending)), b"".join(pending))
        _add(self._tar, ACCOUNTS, canonical_json(accounts))
        self._tar.close()
        self._zipped.close()


def _write_group(
    tar: tarfile.TarFile, tree: StreamTree, start: int, group: list[tuple[bytes, bytes]]
) -> int:
    index, width = start // TILE_WIDTH, len(group)
    hashes = [leaf_hash(leaf) for leaf, _ in group]
    for hashed in hashes:
        tree.append(hashed)
    _add(tar, tile_path(0, index, width), b"".join(hashes))
    _add(tar, tile_path("entries", index, width), pack(leaf for leaf, _ in group))
    _add(tar, signed_path(index, width), pack((signed for _, signed in group), wide=True))
    for level in range(1, tile_levels(tree.size)):
        while len(tree.nodes.get(level, ())) >= TILE_WIDTH:
            done = (tree.size >> (8 * level)) // TILE_WIDTH - 1
            _add(tar, tile_path(level, done), b"".join(tree.take_nodes(level, TILE_WIDTH)))
    return start + width


def is_tiled(head: bytes) -> bool:
    """Whether bytes starting a file are a tiled bundle (gzip, then a tar header)."""
    if head[:2] != b"\x1f\x8b":
        return False
    try:
        inner = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 512)
    except zlib.error:
        return False
    return inner[257:262] == b"ustar" and inner.startswith(MANIFEST.encode())


def open_tiled(path: Path) -> TiledBundle:
    """Read a tiled bundle's manifest and checkpoint; `ProtocolError` if it is not one."""
    with path.open("rb") as file:
        reader = TiledReader(file)
        return TiledBundle(path, reader.manifest, reader.checkpoint)


_DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error, TypeError)
"""What reading a damaged gzipped tar raises (tarfile raises TypeError on a gzip header
cut short, CPython 3.11), each a damaged bundle (`ProtocolError`)."""


class TiledReader:
    """One pass over a tiled bundle: the manifest, the checkpoint, then the entries."""

    def __init__(self, file: IO[bytes]) -> None:
        """Start reading `file`; `ProtocolError` unless it starts as a tiled bundle does."""
        try:
            self._tar = tarfile.open(fileobj=file, mode="r|gz")
        except _DAMAGED as exc:
            raise ProtocolError(f"not an audit bundle: {exc}") from exc
        self._members = iter(self._tar)
        raw = self._member(MANIFEST)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ProtocolError(f"not an audit bundle: {exc}") from exc
        if not isinstance(value, dict) or value.get("format") != TILED_FORMAT:
            raise ProtocolError(f"not an audit bundle (format {TILED_FORMAT})")
        try:
            self.manifest = TiledManifest.model_validate(value)
        except ValidationError as exc:
            raise ProtocolError(f"malformed audit bundle: {exc.errors()[0]['msg']}") from exc
        self.checkpoint = self._member("checkpoint").decode("utf-8", "replace")
        self.tiles = StreamTree()
        """The tree the hash tiles describe (level 0), to set against the checkpoint."""
        self.tile_failure: tuple[int, str] | None = None
        """The first leaf whose level-0 tile hash is not its own, or an upper tile that is
        not the tree of the tiles below: (index, what)."""

    def _member(self, name: str) -> bytes:
        try:
            member = next(self._members)
        except StopIteration:
            raise ProtocolError(f"the bundle ends before {name}") from None
        except (*_DAMAGED, ValueError) as exc:
            raise ProtocolError(f"the bundle is damaged before {name}: {exc}") from exc
        if member.name != name:
            raise ProtocolError(f"the bundle has {member.name} where {name} belongs")
        if not member.isfile() or member.size > MAX_MEMBER:
            raise ProtocolError(f"the bundle's {name} is not a file of at most {MAX_MEMBER}")
        extracted = self._tar.extractfile(member)
        assert extracted is not None  # a regular file
        try:
            return extracted.read()
        except _DAMAGED as exc:
            raise ProtocolError(f"the bundle's {name} is damaged: {exc}") from exc

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """The entries, 256 at a time, as ``{index, leaf: bytes, signed: bytes}``."""
        size = self.manifest.size
        for start in range(0, size, TILE_WIDTH):
            index, width = start // TILE_WIDTH, min(TILE_WIDTH, size - start)
            hashes = list(iter_hashes(self._member(tile_path(0, index, width)), "a tile"))
            leaves = unpack(
                self._member(tile_path("entries", index, width)), width, what="an entry bundle"
            )
            signed = unpack(
                self._member(signed_path(index, width)), width, wide=True, what="signed payloads"
            )
            if len(hashes) != width:
                raise ProtocolError(f"{tile_path(0, index, width)} does not hold {width} hashes")
            for offset, (hashed, leaf) in enumerate(zip(hashes, leaves, strict=True)):
                self.tiles.append(hashed)
                if self.tile_failure is None and hashed != leaf_hash(leaf):
                    self.tile_failure = (
                        start + offset,
                        f"{tile_path(0, index, width)} has another hash for this leaf",
                    )
            yield [
                {"index": start + i, "leaf": leaves[i], "signed": signed[i]} for i in range(width)
            ]
            self._upper(final=start + width == size)

    def _upper(self, *, final: bool) -> None:
        """Read the higher tiles now complete (all of them after the last group)."""
        tree = self.tiles
        for level in range(1, tile_levels(tree.size)):
            while len(tree.nodes.get(level, ())) >= TILE_WIDTH or (final and tree.nodes.get(level)):
                pending = tree.nodes[level]
                width = min(TILE_WIDTH, len(pending))
                number = ((tree.size >> (8 * level)) - len(pending)) // TILE_WIDTH
                name = tile_path(level, number, width)
                stored = self._member(name)
                expected = tree.take_nodes(level, width)
                if stored != b"".join(expected) and self.tile_failure is None:
                    self.tile_failure = (
                        number * TILE_WIDTH << (8 * level),
                        f"{name} is not the tree of the tiles below it",
                    )

    def accounts(self) -> dict[str, Any]:
        """The directory records of the roster signers (after the last tile), then the end."""
        raw = self._member(ACCOUNTS)
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise ProtocolError(f"the bundle's {ACCOUNTS} is not JSON") from exc
        if not isinstance(value, dict):
            raise ProtocolError(f"the bundle's {ACCOUNTS} is not a JSON object")
        self._end()
        return value

    def _end(self) -> None:
        try:
            extra = next(self._members, None)
        except _DAMAGED as exc:
            raise ProtocolError(f"the bundle is damaged after its tiles: {exc}") from exc
        if extra is not None:
            raise ProtocolError(f"the bundle has {extra.name} after its last tile")
