"""Durable local files: written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomically(
    path: Path, data: bytes, *, mode: int = 0o600, mtime_ns: int | None = None
) -> None:
    """Replace `path` with `data`: a temporary file in the same directory, fsync,
    rename, then fsync the directory so the rename itself is durable.

    `mtime_ns`, if given, is the new file's modification time (to the nanosecond).
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp:
            os.fchmod(temp.fileno(), mode)
            temp.write(data)
            temp.flush()
            if mtime_ns is not None:
                os.utime(temp.fileno(), ns=(mtime_ns, mtime_ns))
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
