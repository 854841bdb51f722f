"""One `parley serve` per SQLite data directory.

The server holds an exclusive `flock` on ``DATA_DIR/serve.lock`` for as long as it
runs, and writes who it is (pid, host, start time) into the file. The kernel
releases the lock when the process ends, however it ends (a SIGKILL, a crash), so
a lock is never stale: a file that still names a process whose lock the kernel
released is only its text, and the next server says whose lock it takes over.
(An OS lock on a network file system is only as good as that file system's
locking: keep the data directory on a local disk.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from server.errors import StartupError

LOCK_FILE = "serve.lock"
log = logging.getLogger(__name__)


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
        return f"pid {int(holder['pid'])} on {holder['host']}"
    except (ValueError, KeyError, TypeError):
        return "a process whose lock file could not be read"


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock for the block; `StartupError` at once if another
    process holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"another parley serve ({_holder(path.read_text())}) is using the data "
                f"directory {data_dir}: one server per SQLite data directory "
                "(replicas share a PostgreSQL database instead)"
            ) from None
        stale = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if stale:
            log.info("taking over %s from %s, which has ended", path, _holder(stale))
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": int(time.time())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean stop (SIGTERM too); a SIGKILL leaves the text
    finally:
        os.close(fd)
