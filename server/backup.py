"""`parley admin backup DEST`: a consistent copy of a running server's data, with the
log key it cannot be restored without (docs/design.md §8).

SQLite: the database is copied with SQLite's online backup API in one step, so
the copy is one committed state while the server keeps serving, then the
finished document blobs (content-addressed and never changed, so every blob the
copied database names is already there; newer ones are harmless). DEST is then
a data directory: a server started on a copy of it serves the backed-up state.
PostgreSQL: ``pg_dump --format=custom`` (one snapshot) into ``DEST/parley.pgdump``,
restored with ``pg_restore``; the blobs likewise. Unfinished uploads are not
copied: their clients start them again.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, make_url

from client_sdk.protocol.leaf import directory_origin
from client_sdk.protocol.note import parse_signer_key
from server.config import Settings
from server.errors import StartupError
from server.log.signer import KEY_FILE, CheckpointSigner
from server.realtime.fanout import asyncpg_dsn

PG_DUMP_FILE = "parley.pgdump"
MANIFEST = "backup.json"


class BackupRefused(Exception):
    """DEST cannot take a backup (it exists and is not empty)."""


@dataclass(frozen=True, slots=True)
class BackupDone:
    """What a backup wrote: DEST, the database copied, and the log key's verifier key."""

    dest: Path
    database: str
    database_file: Path
    log_key: str
    blobs: int


def backup(settings: Settings, dest: Path) -> BackupDone:
    """Copy the database, the log key and the blobs into `dest` (new or empty)."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupRefused(f"{dest} exists and is not an empty directory")
    key = _log_key(settings)
    url = settings.resolved_database_url()
    dest.mkdir(parents=True, exist_ok=True)
    _write_secret(dest / KEY_FILE, key)
    if url.startswith("sqlite"):
        kind, copied = "sqlite", dest / "parley.db"
        _sqlite_copy(Path(str(make_url(url).database)), copied)
    else:
        kind, copied = "postgresql", dest / PG_DUMP_FILE
        _pg_dump(url, copied)
    blobs = _copy_blobs(settings.blob_dir(), dest / "blobs")
    signer = CheckpointSigner(parse_signer_key(key).private_key)
    done = BackupDone(
        dest, kind, copied, signer.vkey(directory_origin(settings.log_origin_host)), blobs
    )
    manifest = {
        "created_at": int(time.time() * 1000),
        "database": kind,
        "database_file": copied.name,
        "log_key": done.log_key,
        "blobs": blobs,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return done


def _log_key(settings: Settings) -> str:
    if settings.log_signing_key:
        return settings.log_signing_key.strip()
    path = settings.data_dir / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise StartupError(
            f"no log key at {path} (nor PARLEY_LOG_SIGNING_KEY): a backup without it "
            "cannot be restored"
        ) from None


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.exists():
        raise StartupError(f"no SQLite database at {source}")
    try:
        src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)  # all pages in one step: one committed state
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise StartupError(f"cannot copy the SQLite database {source}: {exc}") from None


def pg_dump_command(pg_dump: str, dsn: str, target: Path) -> tuple[list[str], dict[str, str]]:
    """pg_dump's arguments and environment: the password, if the URL has one, goes in
    ``PGPASSWORD``, not on the command line, where any local user's ``ps`` shows it."""
    parsed = make_url(dsn)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
        bare = URL.create(
            parsed.drivername, parsed.username, None, parsed.host, parsed.port,
            parsed.database, parsed.query,
        )  # fmt: skip
        dsn = bare.render_as_string(hide_password=False)
    return [pg_dump, "--format=custom", "--no-owner", "--file", str(target), dsn], env


def _pg_dump(url: str, target: Path) -> None:
    dsn = asyncpg_dsn(url)
    assert dsn is not None
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise StartupError("pg_dump is not installed (PostgreSQL's client tools)")
    argv, env = pg_dump_command(pg_dump, dsn, target)
    dumped = subprocess.run(  # noqa: S603 (our own arguments, no shell)
        argv, env=env, capture_output=True, text=True, check=False
    )
    if dumped.returncode != 0:
        last = (dumped.stderr.strip().splitlines() or ["no output"])[-1]
        raise StartupError(f"pg_dump failed: {last}")


def _copy_blobs(source: Path, target: Path) -> int:
    if not source.is_dir():  # none yet: an empty blobs/ all the same, for the restore
        target.mkdir()
        return 0
    shutil.copytree(source, target)
    return sum(1 for path in target.rglob("*") if path.is_file())
