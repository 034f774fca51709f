"""The recommended arm's DP and PA effects and bounds beside its EE figures in the audit log.

Nullable, without a default: a record written before this revision keeps null there (its answer
is not known to this revision), as does one whose answer showed none. SQLite adds the columns in
place (no copy of the table).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# As written here, not imported: a revision stays what it was when the code changes.
_COLUMNS = ("dp_effect", "dp_lower", "dp_upper", "pa_effect", "pa_lower", "pa_upper")


def upgrade() -> None:
    with op.batch_alter_table("recommendations") as table:
        for name in _COLUMNS:
            table.add_column(sa.Column(name, sa.Float, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as table:
        for name in reversed(_COLUMNS):
            table.drop_column(name)
