"""What the store remembers about itself: the fingerprint of the salt its person hashes use.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty: a store written before this revision adopts the salt of the first service that
    # opens it with one (recommender.service._store_salt).
    op.create_table(
        "store_facts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_facts")
