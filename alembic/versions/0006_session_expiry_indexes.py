"""Expiry indexes on login challenges and access tokens, so expired rows are purged
in bounded work

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_login_challenges_expires_at"), "login_challenges", ["expires_at"], unique=False
    )
    op.create_index(
        op.f("ix_access_tokens_expires_at"), "access_tokens", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_tokens_expires_at"), table_name="access_tokens")
    op.drop_index(op.f("ix_login_challenges_expires_at"), table_name="login_challenges")
