"""The per-column rules of the data contract, each a vectorized mask over a whole column.

:class:`_Context` holds the table being validated and the list its findings go to; each of its
methods checks one column (or one rule across columns: ``practice``, the arms of ``intervention``)
and adds one finding per rule broken, naming every row. Which checks run on which columns is
decided by :func:`~recommender.cohort._validate.validate_cohort`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._cells import (
    _as_numbers,
    _blank,
    _decimal_comma_hints,
    _num,
    _spelling_hints,
    _within,
)
from ._contract import (
    CATEGORIES,
    PERSON_ID_MAX_LENGTH,
    PRACTICE_ACCEPTED,
    PROFILE_COLUMNS,
    PROPENSITY_COLUMN,
    RANGES,
    TREATMENT_COLUMN,
    practice_begins_too_early,
    practice_problem,
)
from ._features import MAX_EXTRA_LEVELS, extra_is_number
from ._person_id import PERSON_ID_ACCEPTED, person_id_problem
from ._report import _Check

# Printable ASCII with no space at either end: an id person_id_problem always accepts.
_PLAIN_ID = r"[!-~](?:[ -~]*[!-~])?"


def _table(rule, column, summary, *, severity="error", value=None) -> _Check:
    return _Check(rule, column, accepted="", severity=severity, summary=summary, table_value=value)


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
