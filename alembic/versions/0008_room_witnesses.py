"""Room witnesses: the witness keys each room's current signed policy names

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "room_witnesses",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("vkey", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_room_witnesses_room_id_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "vkey", name=op.f("pk_room_witnesses")),
    )
    # Every room's current roster was checked when it was stored: read its policy as is.
    current = op.get_bind().execute(
        sa.text(
            "SELECT rosters.room_id, rosters.statement FROM rosters JOIN rooms "
            "ON rooms.id = rosters.room_id AND rooms.roster_version = rosters.version"
        )
    )
    rows = [
        {"room_id": room_id, "vkey": vkey}
        for room_id, statement in current
        for vkey in json.loads(statement)["body"].get("policy", {}).get("witnesses", [])
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("room_witnesses")
