"""The log key cannot be lost silently (docs/design.md §6).

Every client pins the verifier key of each log it reads and refuses any other, so a
server that signs with a new key locks every client out for good. So the first start
records the public log key in the database, and every start (and every operator
command that signs) checks the key it holds against it, or, in a database from
before the record, against the newest stored checkpoint. A missing key file is made
anew only for a database that holds no checkpoint yet.
"""

from __future__ import annotations

import base64

from sqlalchemy.exc import IntegrityError

from client_sdk.protocol.errors import VerificationError
from client_sdk.protocol.leaf import DIRECTORY_LOG_ID, directory_origin
from client_sdk.protocol.note import format_verifier_key, parse_verifier_key, verify_checkpoint
from server.config import Settings
from server.errors import StartupError
from server.log.signer import KEY_FILE, CheckpointSigner
from server.storage.database import Database
from server.storage.log_keys import LogKeyRepository, SignedCheckpoint


def restore_hint(settings: Settings) -> str:
    """Where the right key goes back."""
    return (
        f"restore that key from a backup (`parley admin backup` copies it) into "
        f"{settings.data_dir / KEY_FILE} or PARLEY_LOG_SIGNING_KEY"
    )


async def checked_signer(database: Database, settings: Settings, now: int) -> CheckpointSigner:
    """The server's log signer, refused (`StartupError`) unless it is the key this
    database's checkpoints are signed by; recorded on first use."""
    async with database.read() as conn:
        repo = LogKeyRepository(conn)
        recorded = await repo.recorded()
        newest = await repo.newest_checkpoint()
        origin = await repo.origin(DIRECTORY_LOG_ID)
    origin = origin or directory_origin(settings.log_origin_host)
    key_file = settings.data_dir / KEY_FILE
    if settings.log_signing_key is None and not key_file.exists() and (recorded or newest):
        raise StartupError(
            f"the log key file {key_file} is missing, and this database's logs are "
            f"signed by {_expected(origin, recorded, newest)}: {restore_hint(settings)} "
            "(a new key would lock out every client)"
        )
    signer = CheckpointSigner.load(signer_key=settings.log_signing_key, data_dir=settings.data_dir)
    if recorded is not None:
        if recorded != signer.public_key:
            raise _mismatch(settings, signer, origin, recorded, newest)
        return signer
    if newest is not None:
        try:
            verify_checkpoint(
                newest.note, newest.origin, parse_verifier_key(signer.vkey(newest.origin))
            )
        except VerificationError:
            raise _mismatch(settings, signer, origin, None, newest) from None
    await _record(database, signer, now)
    return signer


async def _record(database: Database, signer: CheckpointSigner, now: int) -> None:
    try:
        async with database.write() as conn:
            if await LogKeyRepository(conn).recorded() is None:
                await LogKeyRepository(conn).record(signer.public_key, now)
    except IntegrityError:  # a replica starting at the same time recorded one first
        pass
    async with database.read() as conn:
        recorded = await LogKeyRepository(conn).recorded()
    if recorded != signer.public_key:
        raise StartupError(
            "another server recorded a different log key in this database just now: "
            "replicas must share one (`parley admin log-key generate`)"
        )


def _expected(origin: str, recorded: bytes | None, newest: SignedCheckpoint | None) -> str:
    """The key the database expects, as clients pin it (or, in a database from before
    the record, the key hash its newest checkpoint's signature names)."""
    if recorded is not None:
        return f"log key {format_verifier_key(origin, recorded)}"
    assert newest is not None
    signature = newest.note.rstrip("\n").rsplit("\n", 1)[-1].rsplit(" ", 1)[-1]
    try:
        key_hash = base64.b64decode(signature, validate=True)[:4].hex()
    except ValueError:
        key_hash = "unknown"
    return f"the log key of key hash {key_hash} (as in {newest.origin}+{key_hash}+...)"


def _mismatch(
    settings: Settings,
    signer: CheckpointSigner,
    origin: str,
    recorded: bytes | None,
    newest: SignedCheckpoint | None,
) -> StartupError:
    source = (
        "PARLEY_LOG_SIGNING_KEY" if settings.log_signing_key else str(settings.data_dir / KEY_FILE)
    )
    return StartupError(
        f"this database's logs are signed by {_expected(origin, recorded, newest)}, "
        f"not by the key in {source} ({signer.vkey(origin)}): {restore_hint(settings)}"
    )
