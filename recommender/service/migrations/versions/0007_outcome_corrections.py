"""Outcome corrections: a row that replaces an earlier outcome of the same recommendation.

Outcomes were one per recommendation (`request_id` unique). A correction is a row of its own,
naming the row it replaces in `corrects`; the replaced row is kept as it was. So `request_id`
is unique only among first outcomes (`corrects` null), and a row is corrected at most once
(the latest correction is the recommendation's outcome): both as unique indexes, which hold
when two submissions race. SQLite copies the table to drop its unnamed unique constraint.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# As written here, not imported: a revision stays what it was when the code changes.
_FIRST = "uq_outcomes_first_per_request"
_ONCE = "uq_outcomes_corrects"
_FIRST_ONLY = sa.text("corrects IS NULL")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # 0003 wrote the constraint unnamed; the convention names it as the copy reads it.
        with op.batch_alter_table(
            "outcomes",
            recreate="always",
            naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"},
        ) as table:
            table.drop_constraint("uq_outcomes_request_id", type_="unique")
            table.add_column(sa.Column("corrects", sa.Integer, nullable=True))
    else:
        for constraint in sa.inspect(bind).get_unique_constraints("outcomes"):
            if constraint["column_names"] == ["request_id"]:
                op.drop_constraint(constraint["name"], "outcomes", type_="unique")
        op.add_column("outcomes", sa.Column("corrects", sa.Integer, nullable=True))
    op.create_index(
        _FIRST,
        "outcomes",
        ["request_id"],
        unique=True,
        sqlite_where=_FIRST_ONLY,
        postgresql_where=_FIRST_ONLY,
    )
    op.create_index(_ONCE, "outcomes", ["corrects"], unique=True)


def downgrade() -> None:
    # Only a store without corrections goes back: the earlier schema holds one row a request.
    # Refused before anything changes (a unique constraint failing half-way says neither why
    # nor what to do).
    corrections = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM outcomes WHERE corrects IS NOT NULL"))
        .scalar()
    )
    if corrections:
        raise CommandError(
            f"revision 0007 cannot be downgraded: the outcomes table holds {corrections} "
            "correction(s) (rows whose corrects is set), and revision 0006 keeps one outcome "
            "per recommendation, so going back would lose them; nothing was changed. Keep "
            "this release, or export the outcomes first (recommender audit export --table "
            "outcomes) and downgrade a copy of the store without its corrections"
        )
    op.drop_index(_ONCE, table_name="outcomes")
    op.drop_index(_FIRST, table_name="outcomes")
    with op.batch_alter_table("outcomes") as table:
        table.drop_column("corrects")
        table.create_unique_constraint("uq_outcomes_request_id", ["request_id"])
