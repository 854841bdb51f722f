"""What the server and the operator commands check before they serve or change
anything: the database URL, its driver, that the database answers, its schema, and
the log key. Each failure is a `StartupError`: one line for the operator."""

from __future__ import annotations

import asyncio

from sqlalchemy import make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from server.config import Settings
from server.errors import StartupError
from server.log.keyguard import checked_signer
from server.log.signer import CheckpointSigner
from server.services.common import system_clock
from server.storage.database import Database, create_database
from server.storage.migrate import current_revisions, head_revisions, upgrade_to_head

CONNECT_TIMEOUT = 15.0
"""Seconds to wait for the database to answer before giving up on it."""


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _reason(exc: BaseException) -> str:
    """An exception's own words, on one line (a DBAPI error's, not SQLAlchemy's wrapper)."""
    inner = getattr(exc, "orig", None) or exc
    words = " ".join(str(inner).split()) or type(inner).__name__
    return words.split(" [SQL:")[0].split(" (Background on this error")[0]


def _database(url: str) -> Database:
    try:
        return create_database(url)
    except ModuleNotFoundError as exc:
        raise StartupError(
            f"the database URL {shown_url(url)} needs the Python module {exc.name}, which is "
            "not installed: Parley speaks postgresql:// (asyncpg) and SQLite"
        ) from None
    except (ArgumentError, ValueError, SQLAlchemyError) as exc:
        raise StartupError(
            f"bad database URL {shown_url(url)}: {_reason(exc)} "
            "(use postgresql://USER@HOST:PORT/DB, or none for SQLite in the data directory)"
        ) from None


async def open_database(settings: Settings, *, migrate: bool) -> Database:
    """The database, answering and at the newest schema (upgraded if `migrate`)."""
    url = settings.resolved_database_url()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = _database(url)
    try:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                async with database.read() as conn:
                    await conn.execute(text("SELECT 1"))
        except (TimeoutError, OSError, SQLAlchemyError) as exc:
            raise StartupError(
                f"cannot reach the database {shown_url(url)}: {_reason(exc)}"
            ) from None
        if migrate:
            try:
                await upgrade_to_head(database)
            except SQLAlchemyError as exc:
                raise StartupError(
                    f"upgrading the schema of {shown_url(url)} failed: {_reason(exc)}"
                ) from None
            return database
        async with database.read() as conn:
            current = await current_revisions(conn)
        head = head_revisions()
        if current != head:
            raise StartupError(
                f"the database {shown_url(url)} is at schema revision "
                f"{', '.join(sorted(current)) or 'none'}, not {', '.join(sorted(head))}: run "
                "`alembic upgrade head` with the same PARLEY_* settings, or start without "
                "--no-migrate"
            )
        return database
    except BaseException:
        await database.dispose()
        raise


async def open_signer(database: Database, settings: Settings) -> CheckpointSigner:
    """The log key, checked against the one this database's checkpoints are signed by."""
    return await checked_signer(database, settings, system_clock())


async def preflight(settings: Settings) -> None:
    """Everything `parley serve` checks before it listens (the schema upgraded if
    ``auto_migrate``); raises `StartupError`."""
    database = await open_database(settings, migrate=settings.auto_migrate)
    try:
        await open_signer(database, settings)
    finally:
        await database.dispose()
