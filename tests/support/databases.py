"""Fresh databases for tests: a SQLite file, or a PostgreSQL database cloned from
a migrated template (one template per test session, one clone per test).

Every PostgreSQL database made here has a name of its own (a random suffix, and the
pytest-xdist worker's id when there is one), so parallel workers never share one;
each is dropped by whoever made it."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

POSTGRES_ENV = "PARLEY_TEST_POSTGRES_URL"
"""A PostgreSQL URL (any database) whose user may CREATE DATABASE; unset = skip PG tests."""


def postgres_admin_url() -> str | None:
    """The configured PostgreSQL URL in plain libpq form, or None."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        return None
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, name: str, *, driver: str = "postgresql") -> str:
    """`url` pointing at database `name`, with the given scheme."""
    parts = urlsplit(url)
    return urlunsplit((driver, parts.netloc, f"/{name}", parts.query, ""))


async def create_database(admin_url: str, *, template: str | None = None) -> str:
    """Create an empty (or template-cloned) database; return its name.

    Its sessions commit without waiting for the WAL flush (``synchronous_commit
    = off``): the suite makes thousands of small commits, and on a busy disk each
    flush costs more than the statement. Nothing here survives a PostgreSQL crash
    anyway; what a commit means to other sessions is unchanged.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ... under pytest-xdist
    name = "_".join(filter(None, ["parley_t", worker, uuid.uuid4().hex[:16]]))
    conn = await asyncpg.connect(admin_url)
    try:
        clause = f" TEMPLATE {template}" if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()
    return name


async def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database, disconnecting anyone still on it."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
