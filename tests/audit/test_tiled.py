"""The tiled offline bundle: round trip, the JSON bundle still read, tampering named,
and memory that does not grow with the log (docs/design.md §6)."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from client_sdk.audit import (
    AuditBundle,
    AuditFailure,
    TiledBundle,
    read_bundle,
    verify_bundle,
    write_bundle,
)
from client_sdk.audit.archive import TiledReader, is_tiled
from client_sdk.audit.log import LogAuditor
from client_sdk.audit.tiles import StreamTree, tile_path, unpack
from client_sdk.protocol.errors import ProtocolError
from client_sdk.protocol.merkle import leaf_hash, root_from_leaf_hashes
from tests.audit import synthetic

MESSAGES = 600  # three level-0 tiles (the last partial) and partial tiles above


@pytest.fixture(scope="module")
def talks() -> synthetic.Room:
    return synthetic.room(messages=MESSAGES, fresh_wraps=True)


@pytest.fixture
def tiled(talks: synthetic.Room, tmp_path: Path) -> Path:
    path = tmp_path / "room.parley-bundle"
    talks.write_tiled(path)
    return path


def _rewrite(path: Path, name: str, change: Callable[[bytes], bytes]) -> None:
    """Rewrite the bundle at `path` with member `name` changed (members kept in order)."""
    members = []
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            extracted = tar.extractfile(member)
            assert extracted is not None
            members.append((member.name, extracted.read()))
    assert name in dict(members), name
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb") as zipped,
        tarfile.open(fileobj=zipped, mode="w|", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for member_name, data in members:
            data = change(data) if member_name == name else data
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(out.getvalue())


def test_a_tiled_bundle_round_trips_and_verifies(talks: synthetic.Room, tiled: Path) -> None:
    bundle = read_bundle(tiled)
    assert isinstance(bundle, TiledBundle)
    assert (bundle.log_id, bundle.size) == (talks.log.log_id, MESSAGES + 3)
    with tiled.open("rb") as file:
        names = [m.name for m in tarfile.open(fileobj=file, mode="r|gz")]
    assert names[:2] == ["parley-audit-bundle.json", "checkpoint"]
    assert names[2:5] == ["tile/0/000", "tile/entries/000", "signed/000"]
    assert {"tile/0/002.p/91", "tile/entries/002.p/91", "tile/1/000.p/2"} <= set(names)
    assert names[-1] == "accounts.json"
    in_process = verify_bundle(bundle)
    pooled = verify_bundle(bundle, workers=2, parallel_threshold=0)
    assert in_process.entries == pooled.entries == {"roster": 3, "message": MESSAGES}
    assert in_process.root == pooled.root == root_from_leaf_hashes(talks.log.hashes)
    assert pooled.parallel


def test_the_tiles_are_tlog_tiles(talks: synthetic.Room, tiled: Path) -> None:
    with tarfile.open(tiled, "r:gz") as tar:

        def member(name: str) -> bytes:
            extracted = tar.extractfile(name)
            assert extracted is not None
            return extracted.read()

        level0 = member(tile_path(0, 1))
        entries = unpack(member(tile_path("entries", 1)), 256, what="entries")
        level1 = member(tile_path(1, 0, 2))
    hashes = talks.log.hashes
    assert level0 == b"".join(hashes[256:512])
    assert [leaf_hash(leaf) for leaf in entries] == hashes[256:512]
    assert level1 == root_from_leaf_hashes(hashes[:256]) + root_from_leaf_hashes(hashes[256:512])
    assert tile_path(0, 1234067, 9) == "tile/0/x001/x234/067.p/9"


def test_a_json_bundle_still_verifies(talks: synthetic.Room, tmp_path: Path) -> None:
    for name in ("room.json", "room.json.gz"):
        path = tmp_path / name
        write_bundle(talks.bundle(), path)
        assert not is_tiled(path.read_bytes()[:4096])
        bundle = read_bundle(path)
        assert isinstance(bundle, AuditBundle)
        assert verify_bundle(bundle).size == MESSAGES + 3


def _failure(path: Path) -> AuditFailure:
    with pytest.raises(AuditFailure) as caught:
        verify_bundle(read_bundle(path), workers=2, parallel_threshold=0)
    return caught.value


def test_a_changed_tile_is_named(tiled: Path) -> None:
    _rewrite(tiled, "tile/0/001", lambda data: data[:64] + bytes(32) + data[96:])
    failure = _failure(tiled)
    assert failure.index == 258
    assert "a tile was changed: tile/0/001 has another hash" in str(failure)


def test_a_changed_upper_tile_is_named(tiled: Path) -> None:
    _rewrite(tiled, "tile/1/000.p/2", lambda data: bytes(32) + data[32:])
    assert "tile/1/000.p/2 is not the tree of the tiles below it" in str(_failure(tiled))


def test_a_changed_entry_is_named(talks: synthetic.Room, tiled: Path) -> None:
    # The leaf's server time changed: every signature still holds, only the tree differs.
    def change(data: bytes) -> bytes:
        leaves = unpack(data, 256, what="entries")
        time = str(synthetic.T0 + 300).encode()
        leaves[300 - 256] = leaves[300 - 256].replace(time, str(synthetic.T0 + 301).encode())
        return b"".join(len(leaf).to_bytes(2, "big") + leaf for leaf in leaves)

    _rewrite(tiled, "tile/entries/001", change)
    failure = _failure(tiled)
    assert failure.index == 300
    assert "the leaf was changed: tile/0/001 has another hash for this leaf" in str(failure)


def test_a_changed_signed_payload_is_named(tiled: Path) -> None:
    _rewrite(tiled, "signed/000", lambda data: data.replace(b'"sent_at":1', b'"sent_at":2', 1))
    failure = _failure(tiled)
    assert failure.index == 3
    assert "payload_sha256" in str(failure)


def test_a_changed_checkpoint_is_named(tiled: Path) -> None:
    def change(note: bytes) -> bytes:
        lines = note.split(b"\n")
        lines[1] = b"602"
        return b"\n".join(lines)

    _rewrite(tiled, "checkpoint", change)
    assert "the bundle's checkpoint: " in str(_failure(tiled))


def test_a_truncated_bundle_is_named(tiled: Path) -> None:
    data = tiled.read_bytes()
    tiled.write_bytes(data[: len(data) // 2])
    assert "the bundle is damaged" in str(_failure(tiled))


def test_not_a_bundle_is_a_protocol_error(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(gzip.compress(b"junk" * 200))
    with pytest.raises(ProtocolError):
        read_bundle(path)


@pytest.mark.parametrize("length", [2, 3, 10])
def test_a_bundle_cut_inside_its_gzip_header_is_a_protocol_error(tiled: Path, length: int) -> None:
    # Found by Hypothesis: tarfile raised TypeError for a gzip header cut after 3 bytes.
    tiled.write_bytes(tiled.read_bytes()[:length])
    with pytest.raises(ProtocolError, match="not an audit bundle"):
        TiledReader(io.BytesIO(tiled.read_bytes()))


def test_the_reader_streams(tiled: Path) -> None:
    """One group of tiles read at a time: the file is not read ahead of the audit."""
    with tiled.open("rb") as file:
        reader = TiledReader(file)
        batches = reader.batches()
        first = next(batches)
        assert [e["index"] for e in first] == list(range(256))
        assert file.tell() < tiled.stat().st_size / 2


def test_the_tree_keeps_only_its_right_edge() -> None:
    tree = StreamTree({5, 1000})
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(5000)]
    for hashed in hashes:
        tree.append(hashed)
        tree.take_nodes(1, 256)
        assert len(tree._edge) <= 13
        assert not tree.nodes.get(1)
    assert tree.root(5) == root_from_leaf_hashes(hashes[:5])
    assert tree.root(1000) == root_from_leaf_hashes(hashes[:1000])
    assert tree.root(5000) == root_from_leaf_hashes(hashes)
    with pytest.raises(ValueError, match="was not kept"):
        tree.root(7)


class _CountingExecutor(ThreadPoolExecutor):
    """Runs the checks in a thread; records how many chunks are queued or running at
    each submit."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.outstanding: list[int] = []
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.outstanding.append(sum(not f.done() for f in self._futures))
        future = super().submit(fn, *args, **kwargs)
        self._futures.append(future)
        return future


def test_the_auditor_holds_a_bounded_number_of_chunks(talks: synthetic.Room) -> None:
    """Fed a long log, a streaming auditor waits for the checks: never more than
    `max_in_flight` chunks (of `chunk_size` entries) are held."""
    executor = _CountingExecutor()
    auditor = LogAuditor(
        log_id=talks.log.log_id,
        origin=talks.log.origin,
        executor=executor,
        chunk_size=16,
        stream=StreamTree(),
        max_in_flight=3,
    )
    entries: list[dict[str, Any]] = talks.log.entries
    try:
        for start in range(0, len(entries), 16):
            auditor.feed(entries[start : start + 16])
        outcome = auditor.finish()
    finally:
        auditor.close()
    assert outcome.failure is None
    assert outcome.tree.size == MESSAGES + 3
    assert len(executor.outstanding) > 30
    assert max(executor.outstanding) <= 3
