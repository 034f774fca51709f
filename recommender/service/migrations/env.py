"""Alembic's entry point for the service's tables.

Called with a connection by :func:`recommender.service.upgrade_schema` (the service, the CLI,
the tests), or from the command line with the database in ``-x url=...`` or
``$RECOMMENDER_AUDIT_URL`` (``alembic -c alembic.ini upgrade head``, ``... revision
--autogenerate -m "..."``; see docs/migrations.md).
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from recommender.service._audit_tables import _metadata
from recommender.service._migrate import (
    VERSION_TABLE,
    begin_atomically,
    bound_lock_waits,
    migration_failure,
    schema_revision,
)


def _run(connection) -> None:
    begin_atomically(connection)
    bound_lock_waits(connection)
    context.configure(
        connection=connection,
        target_metadata=_metadata,
        version_table=VERSION_TABLE,
        # SQLite alters a table by copying it; batch mode does that for every later revision.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "RECOMMENDER_AUDIT_URL"
    )
    if not url:
        raise SystemExit("give the database as -x url=... or RECOMMENDER_AUDIT_URL")
    engine = sa.create_engine(url)
    found = None
    try:
        found = schema_revision(engine)
        with engine.begin() as opened:
            _run(opened)
    except sa.exc.DBAPIError as error:
        # One paragraph naming the revision that failed and what to do, not a traceback.
        failure = migration_failure(engine.url, error, found=found)
        if failure is None:
            raise
        raise SystemExit(f"error: {failure}") from None
    finally:
        engine.dispose()
