"""token scopes and expiry, one-time login links

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import shipyard.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(
            sa.Column("expires_at", shipyard.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("scope", sa.JSON(), nullable=True))
    op.create_table(
        "login_links",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", shipyard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", shipyard.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", shipyard.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index(op.f("ix_login_links_user_id"), "login_links", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_login_links_user_id"), table_name="login_links")
    op.drop_table("login_links")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scope")
        batch.drop_column("expires_at")
