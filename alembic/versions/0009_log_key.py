"""The log key that signs this database's checkpoints, recorded at the first start

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.storage.ddl import append_only_statements

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "log_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_keys")),
    )
    for statement in append_only_statements(op.get_context().dialect.name, "log_keys"):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("log_keys")
