"""Erasures: when a person's rows were removed from the store, and how many, never whose.

`recommender audit erase` deletes a person's assignments and outcomes and redacts their answers
(recommender.service._erasure); each erasure leaves one row here so that an auditor can see
that rows left the log, when, and how many. The service neither reads nor writes this table.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("people_asked", sa.Integer, nullable=False),
        sa.Column("people_found", sa.Integer, nullable=False),
        sa.Column("answers_redacted", sa.Integer, nullable=False),
        sa.Column("crisis_answers_redacted", sa.Integer, nullable=False),
        sa.Column("assignments_deleted", sa.Integer, nullable=False),
        sa.Column("outcomes_deleted", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    # The rows erased stay erased: only the record that they were is dropped with the table.
    op.drop_table("erasures")
