"""Outcome submissions by idempotency key: a retried POST /outcomes gets the answer it had.

A program that sends ``Idempotency-Key`` with POST /outcomes has the answer of the submission
that recorded its outcomes kept here, under a digest of its API key and the idempotency key, with
a digest of the body (both keyed with the audit salt); the same key and body sent again are
answered from this row (recommender.service._outcome_keys). No person id, hash or score is kept:
the answer holds counts alone. The service reads and appends to it only for such requests, so a
role granted before this revision keeps serving every other request.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_submissions",
        sa.Column("key_digest", sa.String(64), primary_key=True),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
    )


def downgrade() -> None:
    # The outcomes stay recorded; a retry with a key used before is then answered as one
    # without a key would be (409, already recorded).
    op.drop_table("outcome_submissions")
