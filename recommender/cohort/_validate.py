"""One validation of a cohort table against the data contract, reporting every problem.

Each rule is a vectorized mask over a whole column, so a million rows validate in seconds and
a file with many faults is described in one pass instead of one crash at a time.

Columns are sorted into four kinds:

- required: the profile columns, plus the training columns when ``training=True``, plus any
  ``extra_features`` the caller names; absent ones are errors;
- known optional: ``propensity`` and the simulator's ``true_effect_*`` oracle columns, checked
  when present (training columns are known too and are only checked when ``training=True``);
- named extras (``extra_features``): free-form numeric or categorical, checked for presence and
  missing values, and in a training table a categorical one for at most ``MAX_EXTRA_LEVELS``
  distinct values;
- anything else: reported as a *note* and ignored; it never makes a table invalid, because a
  program's export may carry columns the project does not use.

This module decides which checks run on which columns, and owns the checks of the table as a
whole (duplicate, missing and unknown columns); each column's rules are in
:mod:`._column_checks`, and how a cell is read and hinted at in :mod:`._cells`.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from recommender.errors import InputError

from ._cells import _blank, _plain
from ._column_checks import _Context, _table
from ._contract import (
    CRISIS_COLUMN,
    CATEGORIES,
    INTEGER_COLUMNS,
    ORACLE_PREFIX,
    OUTCOME_COLUMNS,
    PROFILE_COLUMNS,
    PROPENSITY_COLUMN,
    RANGES,
    TRAINING_COLUMNS,
    TREATMENT_COLUMN,
    is_crisis_name,
)
from ._report import ValidationReport

__all__ = ["validate_cohort"]


def validate_cohort(
    frame: pd.DataFrame,
    *,
    training: bool = False,
    arms: Iterable[str] | None = None,
    control: str = "none",
    min_arm_rows: int = 30,
    extra_features: Iterable[str] = (),
    min_arm_rows_reason: str = "min_arm_rows",
    carry_small_arms: bool = False,
) -> ValidationReport:
    """Check a cohort table against the data contract and report every problem.

    Parameters
    ----------
    frame : DataFrame
        The table, typed or as strings (as :func:`read_cohort` returns it from CSV).
    training : bool
        Require and check the training columns (``intervention`` and the follow-up scores).
    arms : iterable of str, optional
        The arms a catalog offers (control included or not); other ``intervention`` values
        are reported. None accepts any arm name.
    control : str
        The control arm; a training table needs at least one row of it.
    min_arm_rows : int
        Fewest rows an arm present in a training table may have.
    extra_features : iterable of str
        Optional profile columns the training config names; required and checked for
        missing values.
    min_arm_rows_reason : str
        Where ``min_arm_rows`` comes from, said in the finding of an arm with fewer rows.
    carry_small_arms : bool
        What training does with a treatment arm that has some rows but fewer than
        ``min_arm_rows``: when True it is a note (``arm_carried``; training leaves its rows out
        and carries the published estimate, and ``report.carried_arms`` names it), and only
        usual care below the minimum, or no other arm reaching it, is an error; when False
        every such arm is an error.

    Returns
    -------
    ValidationReport
        ``report.ok`` is True when nothing is wrong; ``report.raise_if_invalid()`` raises.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"person_id": ["p1"], "age": ["abc"], "gender": ["female"],
    ...     "role": ["nurse"], "specialty": ["other"], "setting": ["rural"],
    ...     "years_in_practice": [3.0], "weekly_hours": [40.0], "ee": [61], "dp": [4], "pa": [40]})
    >>> report = validate_cohort(frame)
    >>> [(p.column, p.rule) for p in report.problems]
    [('age', 'type'), ('ee', 'range')]
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"a cohort must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(min_arm_rows, bool) or not isinstance(min_arm_rows, (int, np.integer)):
        raise InputError(f"min_arm_rows must be a whole number >= 1, got {min_arm_rows!r}")
    if min_arm_rows < 1:
        raise InputError(f"min_arm_rows must be a whole number >= 1, got {min_arm_rows!r}")
    extra_features = tuple(extra_features)
    arms = None if arms is None else tuple(arms)

    report = ValidationReport(n_rows=len(frame), n_columns=frame.shape[1], training=training)
    checks = report.checks
    columns = [str(c) for c in frame.columns]

    for name in sorted({c for c in columns if columns.count(c) > 1}):
        checks.append(
            _table(
                "duplicate_column",
                name,
                f"column {name!r} appears {columns.count(name)} times; each column once",
            )
        )
    # Positional row numbers, whatever the index, and one copy per column name.
    frame = frame.loc[:, ~frame.columns.duplicated()].copy()
    frame.columns = [str(c) for c in frame.columns]
    frame.index = pd.RangeIndex(len(frame))

    required = list(PROFILE_COLUMNS) + (list(TRAINING_COLUMNS) if training else [])
    required += [c for c in extra_features if c not in required]
    # A spreadsheet's header for a contract column ('Person ID', ' age'), named beside it.
    written = {_plain(c): c for c in frame.columns if c not in required}
    for name in required:
        if name not in frame.columns:
            kind = (
                "training"
                if name in TRAINING_COLUMNS
                else ("extra feature" if name in extra_features else "profile")
            )
            found = written.get(_plain(name))
            hint = "" if found is None else f"; the table has {found!r}: rename it {name!r}"
            checks.append(
                _table("missing_column", name, f"{kind} column {name!r} is missing{hint}")
            )
    known = {*PROFILE_COLUMNS, *TRAINING_COLUMNS, PROPENSITY_COLUMN, CRISIS_COLUMN, *extra_features}
    for name in frame.columns:
        if name not in known and is_crisis_name(name):
            # Ignored, its flagged people would be ranked: the crisis flag's is no column to
            # guess at, as the service reads such a key as the flag.
            checks.append(
                _table(
                    "crisis_column_misnamed",
                    name,
                    f"column {name!r} names the crisis flag but is not spelled "
                    f"{CRISIS_COLUMN!r}; rename it {CRISIS_COLUMN!r}",
                )
            )
        elif name not in known and not name.startswith(ORACLE_PREFIX):
            checks.append(
                _table(
                    "unknown_column",
                    name,
                    f"column {name!r} is not in the contract and is ignored "
                    "(name it in extra_features to use it as a feature)",
                    severity="note",
                )
            )
    if len(frame) == 0:
        checks.append(_table("empty_table", None, "the table has no rows; at least 1 needed"))
        return report

    person_ids = _person_ids(frame)
    context = _Context(frame, person_ids, checks)

    if "person_id" in frame.columns:
        context.person_id()
    for name in PROFILE_COLUMNS[1:]:
        if name not in frame.columns:
            continue
        if name in CATEGORIES:
            context.category(name, CATEGORIES[name])
        else:
            context.number(name, integer=name in INTEGER_COLUMNS, bounds=RANGES[name])
    if {"age", "years_in_practice"} <= set(frame.columns):
        context.practice()
    for name in extra_features:
        if name in frame.columns and name not in PROFILE_COLUMNS:
            context.missing(name)
            if training:
                context.extra_levels(name)
    for name in frame.columns:
        if name.startswith(ORACLE_PREFIX):
            context.number(name, integer=False, bounds=None)

    if training:
        for name in OUTCOME_COLUMNS:
            if name in frame.columns:
                context.number(name, integer=True, bounds=RANGES[name])
        if PROPENSITY_COLUMN in frame.columns:
            context.propensity()
        if TREATMENT_COLUMN in frame.columns:
            report.arm_counts = context.arms(
                arms, control, min_arm_rows, min_arm_rows_reason, carry=carry_small_arms
            )
            if carry_small_arms:
                report.carried_arms = [c.table_value for c in checks if c.rule == "arm_carried"]
        for name in dict.fromkeys((*PROFILE_COLUMNS[1:], *extra_features)):
            if name in frame.columns:
                context.constant(name)
    return report


def _person_ids(frame: pd.DataFrame) -> np.ndarray | None:
    if "person_id" not in frame.columns:
        return None
    ids = frame["person_id"].astype("string").to_numpy(dtype=object, na_value=None)
    ids[_blank(frame["person_id"])] = None
    return ids
