"""An index over the crisis answers and plan lines of each person, for linking outcomes.

Linking an outcome checks the person's crisis answers and plan lines since their
recommendation; without an index that read every record of the log (360 ms on a store of a
million records). Partial: answers that are neither are not in it, so the answer path's writes
of ranked answers do not grow (their person is found through ``assignments``, indexed since
0003). Built in this revision's transaction: on PostgreSQL it holds off writes to
``recommendations`` while it reads the table once.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# As written here, not imported: a revision stays what it was when the code changes.
_NAME = "ix_recommendations_unlinkable_person"
_WHERE = sa.text("safety_level = 'crisis' OR batch_id LIKE 'plan-%'")


def upgrade() -> None:
    op.create_index(
        _NAME,
        "recommendations",
        ["person_hash"],
        sqlite_where=_WHERE,
        postgresql_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index(_NAME, table_name="recommendations")
