"""Where in the log the answers with no assignment end, so refusing an outcome reads no further.

A POST /outcomes row about to be refused says why: whether the person was served only by a
release older than the learning loop (a ranked answer with no assignment), or answered at all.
``recommendations.person_hash`` has no full index (every answer would pay for it), so both
questions read the whole log (0.3 s on a 760 MB store). Every answer the service writes since
revision 0003 is a crisis answer, a plan line (both in the partial index of 0006) or has an
assignment (indexed by person since 0003); what is left, answers with none, is found by row id
at or below the bound kept in ``store_facts``: one row named ``unassigned_answers_through:<id>``
for the highest such answer found here, and one more for each later write of records without
assignment (:meth:`AuditLog.append` takes them), so the service only ever inserts. No row: the
store holds no such answer. Erased answers (person ``erased``) match no one and are left out.
Data only: the schema does not change. The read is one pass over the log in the migration's
transaction (about 0.1 s for 200,000 answers on SQLite), taking no lock beyond a read's.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# As written here, not imported: a revision stays what it was when the code changes.
_PREFIX = "unassigned_answers_through:"
_LAST_UNASSIGNED = sa.text(
    "SELECT MAX(r.id) FROM recommendations r "
    "WHERE r.safety_level <> 'crisis' AND (r.batch_id IS NULL OR r.batch_id NOT LIKE 'plan-%') "
    "AND r.person_hash <> 'erased' "
    "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.request_id = r.request_id)"
)


def upgrade() -> None:
    bind = op.get_bind()
    last = bind.execute(_LAST_UNASSIGNED).scalar()
    if last is not None:
        bind.execute(
            sa.text("INSERT INTO store_facts (name, value) VALUES (:name, :value)"),
            {"name": f"{_PREFIX}{last}", "value": str(last)},
        )


def downgrade() -> None:
    op.execute(sa.text(f"DELETE FROM store_facts WHERE name LIKE '{_PREFIX}%'"))
