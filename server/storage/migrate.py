"""Upgrade the schema to the newest Alembic revision, from inside the server."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.database import Database

_PROJECT_ROOT = Path(__file__).resolve().parents[2]
_PG_MIGRATION_LOCK = 0x7061726C6579  # "parley": replicas starting together migrate once


def alembic_config() -> Config:
    """The project's Alembic configuration (migrations live beside the packages)."""
    ini = _PROJECT_ROOT / "alembic.ini"
    if not ini.exists():
        raise RuntimeError(f"migrations not found at {ini}; install Parley with `pip install -e`")
    return Config(str(ini))


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_to_head(database: Database) -> None:
    """Create or upgrade every table, trigger and index."""
    async with database.write() as conn:
        await conn.run_sync(_upgrade)


def head_revisions() -> set[str]:
    """The newest revisions of the migrations this code ships."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


async def current_revisions(conn: AsyncConnection) -> set[str]:
    """The revisions the database's schema is at (none for an empty database)."""
    exists = await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
    if not exists:
        return set()
    rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return {row[0] for row in rows}
