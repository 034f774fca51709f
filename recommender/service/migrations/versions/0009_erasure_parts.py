"""Erasures written in parts: when each erasure was completed, or that it was not.

An erasure of many people is written in parts, each a transaction of its own (so that the
service's answers never wait long for the store's write lock). Its row in `erasures` is written
with its first part, its counts grow with each part, and `completed_at` is set with the last:
a row whose `completed_at` is null is an erasure stopped between parts (running it again
finishes it). Erasures recorded before this revision were one transaction each: completed when
they began.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("erasures", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE erasures SET completed_at = erased_at")


def downgrade() -> None:
    # An erasure stopped between parts then reads as a completed one: its counts stay true.
    with op.batch_alter_table("erasures") as table:
        table.drop_column("completed_at")
