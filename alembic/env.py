"""Alembic environment: runs on a connection handed in by `server.storage.migrate`,
or on its own engine (from PARLEY_* settings) when run as ``alembic upgrade head``."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from server.config import Settings
from server.storage.database import create_database
from server.storage.tables import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    database = create_database(Settings().resolved_database_url())
    async with database.engine.begin() as conn:
        await conn.run_sync(_run)
    await database.dispose()


shared = config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    asyncio.run(_run_standalone())
