"""Instrument states (rounds, agreements, receipts)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 17:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instrument_states",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_instrument_states_room_id_rooms")
        ),
        sa.PrimaryKeyConstraint("room_id", "key", name=op.f("pk_instrument_states")),
    )


def downgrade() -> None:
    op.drop_table("instrument_states")
