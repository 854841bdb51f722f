"""The profile's exclusive lock: ``keystore.lock`` beside the keystore, held with
``flock`` for the few milliseconds of one read-modify-write.

The lock file is never deleted (a process waiting on an unlinked file would
lock nothing); the kernel drops the lock when its holder exits, even killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from client_sdk.protocol.errors import KeystoreError

__all__ = ["LOCK_FILENAME", "LOCK_TIMEOUT", "exclusive_lock"]

LOCK_FILENAME = "keystore.lock"
"""The lock file beside the keystore, in the profile directory."""
LOCK_TIMEOUT = 30.0
"""Seconds to wait for another process's change before giving up with `KeystoreError`."""
_FIRST_WAIT = 0.001
_LONGEST_WAIT = 0.05


@contextlib.contextmanager
def exclusive_lock(home: Path, *, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the profile's exclusive lock for the body of the ``with``.

    Polls with a short backoff rather than blocking in the kernel, so that a
    stopped process holding the lock is an error after `timeout`, not a hang.
    """
    path = home / LOCK_FILENAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise KeystoreError(f"cannot open the keystore lock {path}: {exc.strerror}") from exc
    try:
        deadline = time.monotonic() + timeout
        wait = _FIRST_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KeystoreError(
                        f"another parley process has held the keystore lock {path} for "
                        f"{timeout:.0f} s; is one stuck?"
                    ) from None
                time.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
