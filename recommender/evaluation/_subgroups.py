"""Subgroup tables with small-cell suppression.

Each table row is one cell of one grouping (role, gender, age band, setting, and role × gender
when both are given): its size, the recommendation mix, the mean predicted effect of the
recommended arm (with the interval of :func:`~recommender.evaluation.predicted_mean`: the
model's own uncertainty, not a measured outcome) and the doubly robust value of the learned
policy within the cell. A cell with
fewer than ``MIN_CELL`` people is suppressed, a privacy rule: every number, its size included,
is blanked and ``suppressed`` is true (a visible small ``n`` is itself the disclosure). When a
published total (a grouping's total; for role × gender also each role's and each gender's
total) covers exactly one suppressed cell, that cell's size could be recovered by subtraction,
so the smallest other cell under that total is suppressed too (complementary suppression;
``suppression`` says which rule applied). Adding and subtracting totals can also single out
a set of hidden cells (two small cells of one role, or the corners of a rectangle of hidden
cells); its size and, the figures being means, its figures would be read as a cell's, so
such a set must hold ``min_cell`` people too, else one more cell is hidden.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.evaluation._policy_value import _z, mean_estimate
from recommender.evaluation._predicted import predicted_mean

__all__ = [
    "MIN_CELL",
    "AGE_BANDS",
    "age_band",
    "subgroup_frame",
    "subgroup_labels",
    "subgroup_table",
]

MIN_CELL = 11
# A shown cell's figures, each an estimate and its interval: the model's mean predicted effect
# of the recommended arm, the learned policy's doubly robust value, and that value's difference
# from the value among everyone else held out (a group compared with the others, with the
# interval of the comparison itself).
_FIGURES = (
    "mean_predicted_effect",
    "effect_lower",
    "effect_upper",
    "policy_value",
    "lower",
    "upper",
    "difference",
    "difference_lower",
    "difference_upper",
)
AGE_BANDS = (
    (18, 29, "18-29"),
    (30, 39, "30-39"),
    (40, 49, "40-49"),
    (50, 59, "50-59"),
    (60, 90, "60+"),
)


def age_band(age) -> pd.Categorical:
    """Ten-year age bands (``18-29`` ... ``60+``) as an ordered categorical.

    Examples
    --------
    >>> list(age_band([18, 29, 30, 61]))
    ['18-29', '18-29', '30-39', '60+']
    """
    ages = np.asarray(age, dtype=float)
    edges = [lo for lo, _, _ in AGE_BANDS[1:]]
    labels = [label for _, _, label in AGE_BANDS]
    codes = np.searchsorted(edges, ages, side="right")
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


def subgroup_frame(cohort: pd.DataFrame) -> pd.DataFrame:
    """The grouping columns the evaluation reports on, taken from a cohort table.

    Uses ``role``, ``gender``, ``setting`` as they are and derives ``age_band`` from ``age``;
    columns the cohort lacks are left out.
    """
    groups = pd.DataFrame(index=cohort.index)
    for column in ("role", "gender"):
        if column in cohort.columns:
            groups[column] = cohort[column]
    if "age" in cohort.columns:
        groups["age_band"] = age_band(cohort["age"].to_numpy())
    if "setting" in cohort.columns:
        groups["setting"] = cohort["setting"]
    return groups


def subgroup_labels(groups: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each person's cell in every grouping the tables report: the columns of ``groups`` (see
    :func:`subgroup_frame`) and ``role x gender`` when both are given.

    Examples
    --------
    >>> groups = pd.DataFrame({"role": ["nurse"], "gender": ["male"]})
    >>> {k: v.tolist() for k, v in subgroup_labels(groups).items()}
    {'role': ['nurse'], 'gender': ['male'], 'role x gender': ['nurse x male']}
    """
    labels = {column: groups[column].astype(str).to_numpy() for column in groups.columns}
    if "role" in labels and "gender" in labels:
        labels["role x gender"] = np.char.add(
            np.char.add(labels["role"].astype(str), " x "), labels["gender"].astype(str)
        ).astype(object)
    return labels


def subgroup_table(
    groups: pd.DataFrame,
    recommended,
    recommended_effect,
    policy_terms,
    *,
    arms,
    effect_lower=None,
    effect_upper=None,
    alpha: float = 0.1,
    min_cell: int = MIN_CELL,
) -> pd.DataFrame:
    """One row per cell of every grouping column and of role × gender.

    Parameters
    ----------
    groups : DataFrame
        Grouping columns, one row per person, in the same order as the other arguments.
    recommended : array-like of str
        The learned policy's arm per person.
    recommended_effect : array-like of float
        Predicted effect of the recommended arm (0 for control).
    policy_terms : array-like of float
        Per-person doubly robust EE points avoided by the learned policy.
    arms : sequence of str
        All arms, control included, for the ``share_<arm>`` columns.
    effect_lower, effect_upper : array-like of float, optional
        The model's ``1 - alpha`` interval of ``recommended_effect`` (0 and 0 for control);
        without them ``effect_lower`` and ``effect_upper`` are NaN.
    min_cell : int
        Cells with fewer people are suppressed.

    Returns
    -------
    DataFrame
        Columns ``grouping, cell, suppressed, suppression`` (``""``, ``"small cell"`` or
        ``"complementary"``), ``n, share_<arm>..., mean_predicted_effect, effect_lower,
        effect_upper, policy_value, lower, upper, difference, difference_lower,
        difference_upper``: the difference is the cell's policy value minus that of every
        other held-out person, with the normal interval of two independent means (NaN for a
        cell holding everyone).
    """
    recommended = np.asarray(recommended, dtype=object)
    effect = np.asarray(recommended_effect, dtype=float)
    terms = np.asarray(policy_terms, dtype=float)
    bounds = None
    if effect_lower is not None and effect_upper is not None:
        bounds = (np.asarray(effect_lower, dtype=float), np.asarray(effect_upper, dtype=float))
    groupings = subgroup_labels(groups)
    hidden: dict[str, set[str]] = {}  # each grouping's suppressed cells, as it is tabled
    rows = []
    for grouping, labels in groupings.items():
        cells = _cells(groups, grouping, labels)
        sizes = {cell: int((labels == cell).sum()) for cell in cells}
        # Margins before the grand total: fixing rows and columns usually fixes the total too,
        # whereas hiding a cell for the total first can cascade through every row.
        margins = _published_margins(groups, hidden) if grouping == "role x gender" else []
        reason = _suppression(sizes, [*margins, cells], min_cell)
        hidden[grouping] = {cell for cell in cells if reason[cell]}
        for cell in cells:
            members = labels == cell
            n = sizes[cell]
            row: dict = {
                "grouping": grouping,
                "cell": cell,
                "suppressed": bool(reason[cell]),
                "suppression": reason[cell],
            }
            if reason[cell]:
                row["n"] = np.nan
                row.update({f"share_{arm}": np.nan for arm in arms})
                row.update(dict.fromkeys(_FIGURES, np.nan))
            else:
                est = mean_estimate(terms[members], alpha=alpha)
                rest = mean_estimate(terms[~members], alpha=alpha)
                predicted = predicted_mean(
                    effect[members],
                    *((None, None) if bounds is None else (b[members] for b in bounds)),
                    alpha=alpha,
                )
                row["n"] = n
                row.update(
                    {f"share_{arm}": float(np.mean(recommended[members] == arm)) for arm in arms}
                )
                row.update(zip(_FIGURES, (*predicted, *est, *_difference(est, rest, alpha))))
            rows.append(row)
    return pd.DataFrame(rows)


def _published_margins(groups: pd.DataFrame, hidden: dict[str, set[str]]) -> list[list[str]]:
    """The role x gender cells whose totals the role and gender tables publish: each shown
    role's row and each shown gender's column, and for the hidden ones their union alone (the
    total less the shown ones); the table of roles (genders) is made before this one."""
    role = groups["role"].astype(str).tolist()
    gender = groups["gender"].astype(str).tolist()
    pairs = sorted(set(zip(role, gender)))
    lines = []
    for at, grouping in ((0, "role"), (1, "gender")):
        values = sorted({pair[at] for pair in pairs})
        secret = hidden.get(grouping, set())
        for value in values:
            if value not in secret:
                lines.append([f"{r} x {g}" for r, g in pairs if (r, g)[at] == value])
        if secret & set(values):
            lines.append([f"{r} x {g}" for r, g in pairs if (r, g)[at] in secret])
    return lines


def _difference(group, rest, alpha: float) -> tuple[float, float, float]:
    """``group`` minus ``rest`` (two :class:`Estimate` of different people) with its ``1 -
    alpha`` normal interval, the standard errors added in quadrature."""
    if not rest.n or not np.isfinite(group.se) or not np.isfinite(rest.se):
        return (float("nan"),) * 3
    diff = group.estimate - rest.estimate
    half = _z(alpha) * float(np.hypot(group.se, rest.se))
    return diff, diff - half, diff + half


def _suppression(sizes: dict[str, int], lines: list[list[str]], min_cell: int) -> dict[str, str]:
    """Why each cell is hidden: ``"small cell"``, ``"complementary"`` or ``""`` (shown).

    ``lines`` are sets of cells whose total is published (the grouping's total, and for an
    intersection each row and column margin). A line with exactly one hidden cell would give
    it away by subtraction, so its smallest shown cell is hidden too, until no line has one;
    and any set of hidden cells the lines determine (see :func:`_small_derivable_set`) must
    hold ``min_cell`` people or none, else the smallest shown cell of a line through it is
    hidden too.
    """
    reason = {cell: "small cell" if size < min_cell else "" for cell, size in sizes.items()}
    while True:
        _hide_lone_cells(sizes, lines, reason)
        exposed = _small_derivable_set(sizes, lines, reason, min_cell)
        if exposed is None:
            return reason
        near = {cell for line in lines if exposed & set(line) for cell in line}
        shown = [cell for cell in near if not reason[cell]]
        if not shown:  # every cell near it hidden already: a published total is that small
            return reason
        reason[min(shown, key=lambda cell: (sizes[cell], cell))] = "complementary"


# Sets of hidden cells are enumerated: 2**16 for the 4 roles x 4 genders of the data contract.
_MAX_ENUMERATED = 16


def _small_derivable_set(
    sizes: dict[str, int], lines: list[list[str]], reason: dict[str, str], min_cell: int
) -> set[str] | None:
    """A set of hidden cells with 1 to ``min_cell - 1`` people whose total the published
    totals determine (a sum of them minus others and minus the shown cells), or None.

    A set's total is determined exactly when its indicator lies in the span of the lines'
    indicators over the hidden cells; every figure of the tables being a mean over people,
    its figures are then determined too.
    """
    hidden = sorted(cell for cell in sizes if reason[cell])
    if not hidden or len(hidden) > _MAX_ENUMERATED:
        return None
    at = {cell: i for i, cell in enumerate(hidden)}
    basis = np.zeros((len(lines), len(hidden)))
    for row, line in enumerate(lines):
        for cell in line:
            if cell in at:
                basis[row, at[cell]] = 1.0
    projection = np.linalg.pinv(basis) @ basis
    codes = np.arange(1, 2 ** len(hidden))
    subsets = ((codes[:, None] >> np.arange(len(hidden))) & 1).astype(float)
    determined = np.abs(subsets @ projection - subsets).max(axis=1) < 1e-8
    people = subsets @ np.array([sizes[cell] for cell in hidden], dtype=float)
    small = np.flatnonzero(determined & (people > 0) & (people < min_cell))
    if not len(small):
        return None
    first = small[np.argmin(people[small])]
    return {cell for cell, bit in zip(hidden, subsets[first]) if bit}


def _hide_lone_cells(sizes: dict[str, int], lines: list[list[str]], reason: dict[str, str]) -> None:
    """The line rule: a line with exactly one hidden cell has its smallest shown cell hidden
    (preferring one that also completes another such line), until no line has one."""
    changed = True
    while changed:
        changed = False
        for line in lines:
            hidden = [cell for cell in line if reason[cell]]
            shown = [cell for cell in line if not reason[cell]]
            if len(hidden) == 1 and shown:
                reason[
                    min(
                        shown,
                        key=lambda cell: (
                            not _mends_another(cell, line, lines, reason),
                            sizes[cell],
                            cell,
                        ),
                    )
                ] = "complementary"
                changed = True


def _mends_another(
    cell: str, line: list[str], lines: list[list[str]], reason: dict[str, str]
) -> bool:
    """Whether hiding ``cell`` also completes another line that has exactly one hidden cell."""
    return any(
        cell in other and other is not line and sum(bool(reason[c]) for c in other) == 1
        for other in lines
    )


def _cells(groups: pd.DataFrame, grouping: str, labels: np.ndarray) -> list[str]:
    """Cells in category order when the column is categorical, else sorted; empty ones skipped."""
    present = set(labels.tolist())
    if grouping in groups.columns and isinstance(groups[grouping].dtype, pd.CategoricalDtype):
        ordered = [str(c) for c in groups[grouping].cat.categories]
        return [c for c in ordered if c in present]
    return sorted(present)
