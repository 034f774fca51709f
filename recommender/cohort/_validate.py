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
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from recommender.errors import InputError

from ._contract import (
    CRISIS_COLUMN,
    CATEGORIES,
    INTEGER_COLUMNS,
    ORACLE_PREFIX,
    OUTCOME_COLUMNS,
    PERSON_ID_MAX_LENGTH,
    PRACTICE_ACCEPTED,
    PROFILE_COLUMNS,
    PROPENSITY_COLUMN,
    RANGES,
    TRAINING_COLUMNS,
    TREATMENT_COLUMN,
    practice_begins_too_early,
    practice_problem,
)
from ._features import MAX_EXTRA_LEVELS, extra_is_number
from ._person_id import PERSON_ID_ACCEPTED, person_id_problem
from ._report import ValidationReport, _Check

__all__ = ["validate_cohort"]

# Printable ASCII with no space at either end: an id person_id_problem always accepts.
_PLAIN_ID = r"[!-~](?:[ -~]*[!-~])?"


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
        if name not in known and not name.startswith(ORACLE_PREFIX):
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


def _table(rule, column, summary, *, severity="error", value=None) -> _Check:
    return _Check(rule, column, accepted="", severity=severity, summary=summary, table_value=value)


def _person_ids(frame: pd.DataFrame) -> np.ndarray | None:
    if "person_id" not in frame.columns:
        return None
    ids = frame["person_id"].astype("string").to_numpy(dtype=object, na_value=None)
    ids[_blank(frame["person_id"])] = None
    return ids


def _blank(series: pd.Series) -> np.ndarray:
    """Missing, or a string of only whitespace (what an empty CSV cell means)."""
    missing = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.astype("string").str.strip()
        missing |= text.eq("").fillna(False).to_numpy(dtype=bool)
    return missing


class _Context:
    """The table being validated and the list its findings go to."""

    def __init__(self, frame: pd.DataFrame, person_ids, checks: list[_Check]):
        self.frame = frame
        self.person_ids = person_ids
        self.checks = checks

    def add(self, rule, column, mask, accepted, *, values=None, details=None):
        rows = np.flatnonzero(mask)
        if len(rows) == 0:
            return
        if values is None:
            values = self.frame[column].iloc[rows].to_numpy(dtype=object)
        ids = None if self.person_ids is None else self.person_ids[rows]
        self.checks.append(
            _Check(
                rule, column, accepted, rows=rows, values=values, person_ids=ids, details=details
            )
        )

    def missing(self, column) -> np.ndarray:
        blank = _blank(self.frame[column])
        self.add("missing_value", column, blank, "a value in every row")
        return blank

    def constant(self, column):
        """A feature with one value in every row (a program of nurses only, one site): a
        note, as the table is valid, but the model cannot personalise by it, and a profile
        with another value lies outside what it learnt from."""
        series = self.frame[column]
        present = series[~_blank(series)]
        if len(present) < 2:
            return
        numeric = column in PROFILE_COLUMNS or extra_is_number(series)
        if column in CATEGORIES or not numeric:
            values = present.astype("string").str.strip()
        else:
            values = pd.to_numeric(present.astype("string").str.strip(), errors="coerce")
            if values.isna().any():
                return  # not numbers: a type finding already
        if values.nunique() != 1:
            return
        value = values.iloc[0]
        shown = _num(value) if isinstance(value, (int, float, np.number)) else repr(str(value))
        self.checks.append(
            _table(
                "constant_feature",
                column,
                f"column {column!r} is {shown} in all {len(present):,} rows: the model cannot "
                "personalise by it, and a profile with another value lies outside what it "
                "learnt from",
                severity="note",
                value=value,
            )
        )

    def extra_levels(self, column):
        """A categorical extra feature with more than MAX_EXTRA_LEVELS values: reported with
        its count alone, as its values may be names (an identifier is no feature)."""
        series = self.frame[column]
        if extra_is_number(series):
            return
        levels = series[~_blank(series)].astype("string").nunique()
        if levels <= MAX_EXTRA_LEVELS:
            self.extra_spellings(column)
            return
        rows = len(series)
        like_id = (
            " (about one per row: an identifier, which must never be a feature)"
            if (levels >= 0.5 * rows)
            else ""
        )
        self.checks.append(
            _table(
                "extra_levels",
                column,
                f"extra feature {column!r} takes {levels:,} distinct values in {rows:,} rows"
                f"{like_id}; a categorical extra feature takes at most {MAX_EXTRA_LEVELS}, so "
                "group its values (e.g. units into departments) or leave it out of "
                "extra_features",
            )
        )

    def extra_spellings(self, column):
        """A categorical extra feature writing one value several ways (``'Yes'``, ``'yes '``):
        a note, since the model learns them as different values (they may be meant so)."""
        series = self.frame[column]
        text = series[~_blank(series)].astype("string")
        spellings = text.groupby(text.str.strip().str.lower().to_numpy()).unique()
        mixed = [sorted(map(str, group)) for group in spellings if len(group) > 1]
        if not mixed:
            return
        shown = "; ".join(", ".join(map(repr, group)) for group in mixed[:3])
        self.checks.append(
            _table(
                "extra_spelling",
                column,
                f"extra feature {column!r} writes one value several ways ({shown}): the model "
                "learns each as a value of its own; write each value one way if they mean one",
                severity="note",
            )
        )

    def person_id(self):
        series = self.frame["person_id"]
        blank = self.missing("person_id")
        text = series.astype("string")
        lengths = text.str.len().fillna(0).to_numpy(dtype=np.int64)
        too_long = ~blank & (lengths > PERSON_ID_MAX_LENGTH)
        self.add("id_length", "person_id", too_long, PERSON_ID_ACCEPTED)
        self.id_characters(text, ~blank & ~too_long)
        # Every later copy is reported with the row that first used the id, naming both.
        ids = pd.Series(np.where(blank, None, self.person_ids), dtype=object)
        later = ids.duplicated(keep="first").to_numpy() & ~blank
        if later.any():
            first_row = (
                pd.Series(np.arange(len(ids)))[~blank]
                .groupby(ids[~blank].to_numpy())
                .transform("min")
            )
            first = first_row.reindex(range(len(ids))).to_numpy()
            rows = np.flatnonzero(later)
            details = np.array(
                [f"same person_id as row {int(first[r])}" for r in rows], dtype=object
            )
            self.add("duplicate_id", "person_id", later, "each person_id once", details=details)

    def id_characters(self, text: pd.Series, checked: np.ndarray):
        """Ids holding a character the contract refuses (invisible, control, bidirectional,
        not NFC, a space at an end), each named by its code point."""
        # Plain ASCII ids, nearly all of them, pass in one vectorized match.
        plain = text.str.fullmatch(_PLAIN_ID).fillna(False).to_numpy(dtype=bool)
        rows = np.flatnonzero(checked & ~plain)
        found = {int(r): person_id_problem(str(text.iloc[r])) for r in rows}
        bad = [r for r, problem in found.items() if problem]
        mask = np.zeros(len(text), dtype=bool)
        mask[bad] = True
        details = np.array([found[r] for r in bad], dtype=object)
        self.add("id_characters", "person_id", mask, PERSON_ID_ACCEPTED, details=details)

    def category(self, column, allowed):
        blank = self.missing(column)
        text = self.frame[column].astype("string")
        known = text.isin(allowed).fillna(False).to_numpy(dtype=bool)
        bad = ~blank & ~known
        self.add(
            "category",
            column,
            bad,
            "one of " + ", ".join(allowed),
            details=_spelling_hints(text[bad], allowed),
        )

    def _numbers(self, column, blank, accepted="a number") -> np.ndarray:
        """The column as float64; cells that are present but not numbers become a finding."""
        series = self.frame[column]
        values = _as_numbers(series)
        bad = ~blank & np.isnan(values)
        self.add("type", column, bad, accepted, details=_decimal_comma_hints(series[bad]))
        return values

    def number(self, column, *, integer, bounds):
        kind = "whole number" if integer else "number"
        if bounds is None:
            accepted = f"a finite {kind}"
        else:
            accepted = f"a {kind} from {_num(bounds[0])} to {_num(bounds[1])}"
        blank = self.missing(column)
        values = self._numbers(column, blank, accepted)
        finite = np.isfinite(values)
        usable = ~np.isnan(values)
        if integer:
            whole = finite & (values == np.floor(np.where(finite, values, 0)))
            self.add("not_integer", column, finite & ~whole, accepted)
            usable &= whole | ~finite  # a fraction is reported once, not also as out of range
        if bounds is None:
            outside = usable & ~finite
        else:
            with np.errstate(invalid="ignore"):
                outside = usable & ~((values >= bounds[0]) & (values <= bounds[1]))
        self.add("range", column, outside, accepted)

    def practice(self):
        """years_in_practice against age (the contract's rule across them), on the rows where
        both are valid: a cell refused on its own is not refused twice."""
        age = _as_numbers(self.frame["age"])
        years = _as_numbers(self.frame["years_in_practice"])
        with np.errstate(invalid="ignore"):
            valid = (
                _within(age, RANGES["age"])
                & (age == np.floor(np.where(np.isfinite(age), age, 0)))
                & _within(years, RANGES["years_in_practice"])
            )
            early = valid & practice_begins_too_early(age, years)
        rows = np.flatnonzero(early)
        details = np.array([practice_problem(age[r], years[r]) for r in rows], dtype=object)
        self.add(
            "practice_too_early", "years_in_practice", early, PRACTICE_ACCEPTED, details=details
        )

    def propensity(self):
        blank = self.missing(PROPENSITY_COLUMN)
        values = self._numbers(PROPENSITY_COLUMN, blank)
        with np.errstate(invalid="ignore"):
            outside = ~np.isnan(values) & ~((values > 0) & (values <= 1))
        self.add(
            "propensity_range",
            PROPENSITY_COLUMN,
            outside,
            "a probability greater than 0 and at most 1",
        )

    def arms(self, arms, control, min_arm_rows, reason, *, carry=False) -> dict[str, int]:
        blank = self.missing(TREATMENT_COLUMN)
        text = self.frame[TREATMENT_COLUMN].astype("string")
        if arms is not None:
            offered = tuple(dict.fromkeys((control, *arms)))
            known = text.isin(offered).fillna(False).to_numpy(dtype=bool)
            self.add(
                "unknown_arm",
                TREATMENT_COLUMN,
                ~blank & ~known,
                "an arm of the catalog: " + ", ".join(offered),
                details=_spelling_hints(text[~blank & ~known], offered),
            )
        else:
            offered = (control,)
        observed = text[~blank].value_counts()
        counts = {arm: int(observed.get(arm, 0)) for arm in offered}
        for arm in sorted(observed.index):
            if arm not in counts and (arms is None):
                counts[arm] = int(observed[arm])
        if counts.get(control, 0) == 0:
            self.checks.append(
                _table(
                    "no_control",
                    TREATMENT_COLUMN,
                    f"no row received the control arm {control!r}; effects are measured "
                    "against it, so a training table needs it",
                    value=control,
                )
            )
        elif not any(n for arm, n in counts.items() if arm != control):
            self.checks.append(
                _table(
                    "no_treated_arm",
                    TREATMENT_COLUMN,
                    f"every row received the control arm {control!r}; an effect is the "
                    "difference another arm makes, so a training table needs rows of at "
                    "least one other arm",
                    value=control,
                )
            )
        treated = [n for arm, n in counts.items() if arm != control and n]
        if carry and treated and max(treated) < min_arm_rows:
            self.checks.append(
                _table(
                    "no_learnable_arm",
                    TREATMENT_COLUMN,
                    f"no arm besides usual care has {min_arm_rows:,} rows (most: "
                    f"{max(treated):,}), so no effect can be learnt ({reason}); train the "
                    "evidence-only model (`recommender train --evidence-only`) and let the "
                    "service's log gather rows (`recommender train --from-log` later)",
                    value=control,
                )
            )
        for arm, n in counts.items():
            if carry and arm != control and 0 < n < min_arm_rows:
                self.checks.append(
                    _table(
                        "arm_carried",
                        TREATMENT_COLUMN,
                        f"arm {arm!r} has {n:,} rows; at least {min_arm_rows:,} are needed "
                        f"to learn its effect ({reason}); training leaves its rows out and "
                        "carries its estimate from the published trials (the evidence-only "
                        "model)",
                        severity="note",
                        value=arm,
                    )
                )
            elif 0 < n < min_arm_rows:
                # Usual care cannot be left out: every effect is measured against it.
                need, remedy = (
                    (
                        "to measure every other arm's effect against it",
                        "add rows of it, or train the evidence-only model (`recommender train "
                        "--evidence-only`) meanwhile",
                    )
                    if arm == control
                    else (
                        "to learn its effect",
                        "leave its rows out (the model then has no estimate for it), or add rows",
                    )
                )
                self.checks.append(
                    _table(
                        "arm_too_small",
                        TREATMENT_COLUMN,
                        f"arm {arm!r} has {n:,} rows; at least {min_arm_rows:,} are needed "
                        f"{need} ({reason}); {remedy}",
                        value=arm,
                    )
                )
            elif n == 0 and arm != control:
                self.checks.append(
                    _table(
                        "unused_arm",
                        TREATMENT_COLUMN,
                        f"catalog arm {arm!r} has no rows; no effect can be learned for it",
                        severity="note",
                        value=arm,
                    )
                )
        return counts


def _as_numbers(series: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a cell is missing or not a number (true is no number)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    text = series.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _within(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (values >= bounds[0]) & (values <= bounds[1])


def spelling_hint(value, allowed) -> str:
    """``did you mean 'nurse'?`` when ``value`` is one of ``allowed`` but for case and spaces
    (a spreadsheet's ``'Nurse'``), else empty: the comparison files and outcomes share."""
    return str(_spelling_hints(pd.Series([value], dtype=object), allowed)[0])


def _spelling_hints(values: pd.Series, allowed) -> np.ndarray:
    """Per value, ``did you mean 'nurse'?`` when it is an allowed value but for case and
    spaces (``'Nurse'``, ``' nurse '``: a spreadsheet's spelling); else empty. Values are
    compared as written, as the service compares a request's, so the file must be corrected."""
    lowered = {str(a).lower(): a for a in allowed}
    plain = [None if pd.isna(v) else _plain(v) for v in values.astype("string")]
    return np.array(
        ["" if pd.isna(v) or v not in lowered else f"did you mean {lowered[v]!r}?" for v in plain],
        dtype=object,
    )


def _plain(text) -> str:
    """A name or value as compared for a hint: case, spaces around and between words aside."""
    return re.sub(r"[\s_]+", "_", str(text).strip().lower())


def _decimal_comma_hints(values: pd.Series) -> np.ndarray | None:
    """Per value, how to write a number given with a decimal comma (``'41,5'``: a spreadsheet
    export in a locale that writes one) with the point the contract reads; else empty."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return None
    text = values.astype("string").str.strip()
    comma = text.str.fullmatch(r"[+-]?\d*,\d+").fillna(False).to_numpy(dtype=bool)
    if not comma.any():
        return None
    return np.array(
        [f"a decimal comma; write {t.replace(',', '.')}" if c else "" for t, c in zip(text, comma)],
        dtype=object,
    )


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
