"""The cohort data contract: its columns, one validation reporting every problem, typed loading.

See ``shared/design/data-contract.md``. Validate once at the edge with :func:`load_cohort` or
:func:`validate_cohort`; everything downstream may trust the table.
"""

from ._cells import spelling_hint
from ._contract import (
    CRISIS_COLUMN,
    is_crisis_name,
    CATEGORIES,
    FEATURE_COLUMNS,
    INTEGER_COLUMNS,
    MBI_ITEMS_REFUSED,
    OUTCOME_COLUMNS,
    PERSON_ID_MAX_LENGTH,
    PRACTICE_ACCEPTED,
    PRACTICE_START_AGE,
    PROFILE_COLUMNS,
    RANGES,
    ROLE_NAMES,
    SCORE_COLUMNS,
    TRAINING_COLUMNS,
    looks_like_mbi_item,
    practice_begins_too_early,
    practice_problem,
)
from ._features import MAX_EXTRA_LEVELS, feature_frame
from ._person_id import (
    PERSON_ID_ACCEPTED,
    person_id_problem,
    shown_id,
    unhashable_id_problem,
)
from ._io import (
    check_table_output,
    load_cohort,
    read_cohort,
    read_csv_header,
    typed_cohort,
    not_utf8,
    without_empty_margins,
    unnamed_column,
    check_utf8,
    TEXT_SUFFIXES,
    empty_file_error,
    open_decompressed,
    write_cohort,
    write_cohorts,
)
from ._report import RULES, Problem, ValidationReport
from ._validate import validate_cohort

__all__ = [
    "spelling_hint",
    "empty_file_error",
    "CRISIS_COLUMN",
    "is_crisis_name",
    "PROFILE_COLUMNS",
    "FEATURE_COLUMNS",
    "CATEGORIES",
    "RANGES",
    "PRACTICE_START_AGE",
    "PRACTICE_ACCEPTED",
    "practice_begins_too_early",
    "practice_problem",
    "ROLE_NAMES",
    "INTEGER_COLUMNS",
    "PERSON_ID_MAX_LENGTH",
    "PERSON_ID_ACCEPTED",
    "person_id_problem",
    "unhashable_id_problem",
    "shown_id",
    "SCORE_COLUMNS",
    "OUTCOME_COLUMNS",
    "TRAINING_COLUMNS",
    "MBI_ITEMS_REFUSED",
    "looks_like_mbi_item",
    "RULES",
    "Problem",
    "ValidationReport",
    "validate_cohort",
    "read_cohort",
    "read_csv_header",
    "write_cohort",
    "write_cohorts",
    "check_table_output",
    "load_cohort",
    "typed_cohort",
    "not_utf8",
    "without_empty_margins",
    "unnamed_column",
    "check_utf8",
    "TEXT_SUFFIXES",
    "open_decompressed",
    "feature_frame",
    "MAX_EXTRA_LEVELS",
]
