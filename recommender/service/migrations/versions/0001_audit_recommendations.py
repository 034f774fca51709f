"""The audit log's recommendations table, as the service created it before migrations.

A database made then (by ``create_all``) already has this table and no version table; it is
stamped at this revision instead of running it (see ``upgrade_schema``), then upgraded.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("batch_id", sa.String(64), nullable=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("caller_role", sa.String(16), nullable=False),
        sa.Column("person_hash", sa.String(64), nullable=False),
        sa.Column("safety_level", sa.String(16), nullable=False),
        sa.Column("recommended", sa.String(64), nullable=True),
        sa.Column("ranking_meaningful", sa.Boolean, nullable=True),
        sa.Column("effects", sa.Text, nullable=False),
    )
    op.create_index("ix_recommendations_logged_at", "recommendations", ["logged_at"])


def downgrade() -> None:
    op.drop_index("ix_recommendations_logged_at", table_name="recommendations")
    op.drop_table("recommendations")
