"""The recommendation service: auth, request models, audit log, and the BentoML service.

Importing this package does not import BentoML; only :mod:`recommender.service.service` does
(serve it with ``recommender serve``). The parts below work without HTTP.
"""

from recommender.service._audit import (
    AuditLog,
    AuditSaltMismatch,
    AuditSaltMissing,
    AuditUrlRefused,
    SALT_ENV,
    resolve_salt,
)
from recommender.service._audit_export import (
    audit_csv,
    audit_csv_chunks,
    parse_since,
    rows_csv_chunks,
)
from recommender.service._audit_store import reach_audit_store
from recommender.service._audit_tables import AUDIT_TABLE_NAMES
from recommender.service._auth import (
    API_KEYS_ENV,
    ROLES,
    KeyRing,
    authorize,
    hash_key,
    parse_env_keys,
    secret_api_keys,
)
from recommender.service._config import (
    WORKER_ENV,
    ServeConfig,
    check_before_serving,
    load_serve_config,
    worker_settings,
)
from recommender.service._engine import AuditUnavailable, RecommendationEngine
from recommender.service._erasure import (
    ERASURE_COLUMNS,
    ErasureReport,
    erase_people,
    erasure_history,
    erasure_history_csv,
)
from recommender.service._outcomes import (
    OutcomeRefused,
    OutcomeReport,
    record_outcomes,
)
from recommender.service._outcome_log import (
    OUTCOME_HISTORY_COLUMNS,
    logged_cohort,
    outcome_history,
    outcome_history_csv,
    outcome_history_rows,
)
from recommender.service._outcome_file import read_outcome_file
from recommender.service._proxy_fallback import proxy_fallbacks
from recommender.service._metrics import forget_dead_workers
from recommender.service._model_loading import give_up_on_registry_soon
from recommender.service._migrate import upgrade_schema
from recommender.service._requests import example_profile
from recommender.service._sqlite import sqlite_file

__all__ = [
    "SALT_ENV",
    "API_KEYS_ENV",
    "AUDIT_TABLE_NAMES",
    "ROLES",
    "AuditLog",
    "reach_audit_store",
    "AuditSaltMismatch",
    "AuditSaltMissing",
    "AuditUrlRefused",
    "AuditUnavailable",
    "ERASURE_COLUMNS",
    "ErasureReport",
    "KeyRing",
    "OutcomeRefused",
    "OutcomeReport",
    "RecommendationEngine",
    "ServeConfig",
    "WORKER_ENV",
    "audit_csv",
    "audit_csv_chunks",
    "rows_csv_chunks",
    "outcome_history_rows",
    "OUTCOME_HISTORY_COLUMNS",
    "check_before_serving",
    "authorize",
    "erase_people",
    "erasure_history",
    "erasure_history_csv",
    "example_profile",
    "forget_dead_workers",
    "give_up_on_registry_soon",
    "hash_key",
    "sqlite_file",
    "load_serve_config",
    "logged_cohort",
    "outcome_history",
    "outcome_history_csv",
    "parse_env_keys",
    "secret_api_keys",
    "parse_since",
    "proxy_fallbacks",
    "read_outcome_file",
    "record_outcomes",
    "resolve_salt",
    "upgrade_schema",
    "worker_settings",
]
