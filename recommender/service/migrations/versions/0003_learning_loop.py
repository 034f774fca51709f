"""The learning loop: the arm served with every candidate's probability, and follow-up outcomes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("person_hash", sa.String(64), nullable=False, index=True),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("safety_level", sa.String(16), nullable=False),
        sa.Column("cycle", sa.Integer, nullable=False),
        sa.Column("policy", sa.String(16), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("probability", sa.Float, nullable=False),
        sa.Column("probabilities", sa.Text, nullable=False),
        sa.Column("profile", sa.Text, nullable=False),
    )
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("person_hash", sa.String(64), nullable=False, index=True),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("arm_taken", sa.String(64), nullable=False),
        sa.Column("ee_followup", sa.Integer, nullable=False),
        sa.Column("dp_followup", sa.Integer, nullable=False),
        sa.Column("pa_followup", sa.Integer, nullable=False),
        sa.Column("source", sa.String(120), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("outcomes")
    op.drop_table("assignments")
