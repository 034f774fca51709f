"""Alembic migrations of the service's own tables (the audit log; see docs/migrations.md).

Applied by :func:`recommender.service.upgrade_schema` whenever a store is opened, so a new
version of the service brings an existing database up to date before it writes to it.
"""
