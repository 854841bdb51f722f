"""Scenes: a world a test starts from (accounts enrolled, a room with traffic),
built once per test module and backend, and copied for each test that uses it.

A `Seed` names a builder. The first test of a module that needs it builds it
for real (through the app and the SDK, exactly as the test would have) in a
directory laid out like a test's ``tmp_path``: the SQLite file, the server's
data directory (its log key), the profiles the builder enrolled. Every test
then gets its own copy of that directory and of the database (the SQLite
file, or the PostgreSQL rows), so tests stay independent: each one can run
alone or in any order, and none sees another's writes.

What a copy cannot carry is what the builder's clients held in memory: a test
opens the scene's profiles again, as a restarted device would.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI

from server.storage.tables import metadata

Build = Callable[[FastAPI, Path], Awaitable[Any]]
"""Builds a scene with the app, keeping files under the directory; returns what tests
need to find their way in it (ids, profile directories relative to it)."""


@dataclass(frozen=True, slots=True)
class Seed:
    """A named scene and how to build it."""

    name: str
    build: Build


@dataclass(slots=True)
class PostgresRows:
    """Every row of every table, and every sequence's position."""

    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = field(default_factory=dict)
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Scene:
    """A built scene: its files, its database and what the builder returned."""

    files: Path
    value: Any
    rows: PostgresRows | None = None
    """The PostgreSQL rows; None on SQLite, whose database is a file under `files`."""

    def copy_files(self, destination: Path) -> None:
        """Copy the scene's files (database, server data, profiles) into `destination`."""
        shutil.copytree(self.files, destination, dirs_exist_ok=True)


SCENE_VALUE = pytest.StashKey[Any]()
"""Where a test item keeps the value of the scene its database was copied from."""


def scene_value(request: pytest.FixtureRequest) -> Any:
    """What the builder of this test's scene returned."""
    return request.node.stash[SCENE_VALUE]


async def dump_postgres(url: str) -> PostgresRows:
    """Read every row of the tables and every sequence of the database at `url`."""
    rows = PostgresRows()
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for table in metadata.sorted_tables:
                columns = [column.name for column in table.columns]
                selected = ", ".join(f'"{name}"' for name in columns)
                # Names from our own metadata, not from input.
                records = await conn.fetch(f"SELECT {selected} FROM {table.name}")  # noqa: S608
                rows.tables[table.name] = (columns, [tuple(r) for r in records])
            for row in await conn.fetch(
                "SELECT quote_ident(sequence_schema) || '.' || quote_ident(sequence_name)"
                " AS name FROM information_schema.sequences"
            ):
                position = await conn.fetchrow(f"SELECT last_value, is_called FROM {row['name']}")  # noqa: S608
                rows.sequences[row["name"]] = (position["last_value"], position["is_called"])
    finally:
        await conn.close()
    return rows


async def restore_postgres(url: str, rows: PostgresRows) -> None:
    """Write `rows` into the (empty) database at `url`, triggers off, and set its sequences."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")
            for table, (columns, records) in rows.tables.items():
                if records:
                    await conn.copy_records_to_table(table, records=records, columns=columns)
            for name, (value, called) in rows.sequences.items():
                await conn.execute("SELECT setval($1, $2, $3)", name, value, called)
    finally:
        await conn.close()
