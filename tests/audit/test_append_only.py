"""The database itself refuses to change or remove log rows (triggers from the migrations)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from client_sdk.protocol.models import Role
from tests.audit.conftest import database
from tests.conftest import EnrollFactory

STATEMENTS = {
    "log_entries": (
        "UPDATE log_entries SET leaf_hash = leaf_hash WHERE idx = 0",
        "DELETE FROM log_entries WHERE idx = 0",
    ),
    "log_nodes": (
        "UPDATE log_nodes SET hash = hash WHERE level = 0 AND idx = 0",
        "DELETE FROM log_nodes WHERE level = 0 AND idx = 0",
    ),
    "checkpoints": (
        "UPDATE checkpoints SET note = note WHERE size = 1",
        "DELETE FROM checkpoints WHERE size = 1",
    ),
}


@pytest.mark.parametrize("table", sorted(STATEMENTS))
async def test_log_rows_cannot_be_updated_or_deleted(
    app: FastAPI, enroll: EnrollFactory, table: str
) -> None:
    await enroll(role=Role.AUDITOR, name="Audrey")  # three directory leaves
    db = database(app)
    for statement in STATEMENTS[table]:
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.write() as conn:
                await conn.execute(text(statement))
    async with db.read() as conn:
        count = (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
    assert count >= 3
