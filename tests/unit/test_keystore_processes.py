"""Several processes changing one keystore at once lose no update.

Real processes (each with its own `Keystore.open`) start together on a
barrier and interleave pins, verifications, checkpoints, roster heads and
encryption keys; afterwards every one of their changes is in the file.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from client_sdk.keystore import Keystore, RosterHead
from client_sdk.protocol.keys import EncryptionKey
from tests.unit.keystores import NOW, PASSPHRASE, make_keystore

WORKERS = 4
ROUNDS = 12
KEY_EVERY = 4
JOIN_TIMEOUT = 90.0


def _digest(label: str, n: int) -> bytes:
    return hashlib.sha256(f"{label}/{n}".encode()).digest()


def _account_key(worker: int, i: int) -> bytes:
    return _digest(f"account-{worker}", i)


def _change_a_lot(home: Path, worker: int, start: Barrier) -> None:
    """One process's share: its own contacts and keys, and shared anchors that compete."""
    keystore = Keystore.open(home, PASSPHRASE)
    start.wait(timeout=JOIN_TIMEOUT)
    for i in range(ROUNDS):
        account = f"w{worker}-{i}"
        keystore.pin(account, _account_key(worker, i), NOW + i)
        if i % 2 == 0:
            keystore.mark_verified(account, _account_key(worker, i))
        # Shared logs and rooms: every worker pushes them forward from its own
        # (possibly older) view; the same size always carries the same root.
        size = i * WORKERS + worker + 1
        keystore.set_checkpoint("shared-log", size, _digest("root", size), f"note {size}")
        keystore.set_roster_head("shared-room", size, _digest("roster", size))
        if i % KEY_EVERY == 0:
            keystore.add_encryption_key(EncryptionKey.generate(), NOW + 10**9, now=NOW + size)


def test_concurrent_processes_lose_no_update(tmp_path: Path) -> None:
    home = tmp_path / "profile"
    make_keystore(home)
    # A fork server imports this module once and forks each worker from it: real,
    # separate processes without paying a fresh interpreter's imports four times.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    start = context.Barrier(WORKERS)
    workers = [
        context.Process(target=_change_a_lot, args=(home, worker, start))
        for worker in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=JOIN_TIMEOUT)
    assert [p.exitcode for p in workers] == [0] * WORKERS

    state = Keystore.open(home, PASSPHRASE).state
    expected_pins = {f"w{w}-{i}" for w in range(WORKERS) for i in range(ROUNDS)}
    assert set(state.pins) == expected_pins
    for worker in range(WORKERS):
        for i in range(ROUNDS):
            pin = state.pins[f"w{worker}-{i}"]
            assert pin.account_key == _account_key(worker, i)
            assert pin.verified is (i % 2 == 0)
    top = ROUNDS * WORKERS
    checkpoint = state.checkpoints["shared-log"]
    assert (checkpoint.size, checkpoint.root) == (top, _digest("root", top))
    assert state.roster_heads["shared-room"] == RosterHead(
        version=top, body_hash=_digest("roster", top)
    )
    added = WORKERS * len(range(0, ROUNDS, KEY_EVERY))
    assert len(state.encryption_keys) == added
    assert sum(r.retired_at is None for r in state.encryption_keys) == 1
