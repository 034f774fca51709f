"""Per-person reasons: which profile features drive the recommended arm's effect, in EE points.

The uplift models give additive contributions: one value per feature plus a ``base`` that
together sum to the difference in expected EE change between two arms. Two comparisons answer
the questions a program asks: why this arm rather than nothing (versus usual care), and why this
arm rather than the next best (versus the runner-up). The sentence says the same in words.

A contribution is the feature's share of how far this person's figure lies from the arm's (or
the lead's) average, not of the figure itself: the sentence says which features make it larger
and which make it smaller, never that a feature pulling the other way is a reason for it.
Contributions under half a tenth of a point (which the sentence would show as 0.0, such as the
rounding left in an arm given one effect for everyone) are no reasons and are not listed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from recommender.explain._labels import ArmLabels

__all__ = [
    "Contribution",
    "Explanation",
    "top_contributions",
    "top_contributions_many",
    "explain",
    "explain_many",
    "FEATURE_LABELS",
]

# Plain words for the contract's feature columns; extra features keep their own names.
FEATURE_LABELS: dict[str, str] = {
    "age": "age",
    "gender": "gender",
    "role": "role",
    "specialty": "specialty",
    "setting": "practice setting",
    "years_in_practice": "years in practice",
    "weekly_hours": "weekly hours",
    "ee": "emotional exhaustion score",
    "dp": "depersonalization score",
    "pa": "personal accomplishment score",
}


class Contribution(NamedTuple):
    """One feature's share of an EE effect difference (negative = less exhaustion).

    A named tuple: every answer builds six, and a frozen dataclass costs four times as much.
    """

    feature: str
    value: object
    points: float


@dataclass(frozen=True)
class Explanation:
    """Why one arm was recommended for one person."""

    recommended: str
    runner_up: str | None
    versus_usual_care: tuple[Contribution, ...]
    versus_runner_up: tuple[Contribution, ...]
    sentence: str


def _new_explanation(recommended, runner_up, versus_usual_care, versus_runner_up, sentence):
    # Explanation(...) with its fields set as its frozen __init__ sets them (in field order), at
    # a third of the cost: a batch makes one per person.
    made = object.__new__(Explanation)
    made.__dict__.update(
        recommended=recommended,
        runner_up=runner_up,
        versus_usual_care=versus_usual_care,
        versus_runner_up=versus_runner_up,
        sentence=sentence,
    )
    return made


def top_contributions(
    contributions: Mapping[str, float] | pd.Series,
    profile: Mapping,
    *,
    top: int = 3,
) -> tuple[Contribution, ...]:
    """The ``top`` features with the largest absolute contribution, largest first.

    ``base`` (the part no feature accounts for) is never listed; features contributing less
    than :data:`SHOWN` points (0.0 at the sentence's one decimal) are left out.

    Examples
    --------
    >>> top_contributions({"role": -1.5, "age": 0.2, "ee": -0.7, "base": -3.0},
    ...                   {"role": "physician", "age": 40, "ee": 35}, top=2)
    (Contribution(feature='role', value='physician', points=-1.5), Contribution(feature='ee', value=35, points=-0.7))
    """
    # A plain loop and a module-level sort key: the service explains two comparisons for every
    # person of a 1,000-row batch, where generator and lambda overheads add up.
    items = []
    for k, v in (contributions if isinstance(contributions, dict) else dict(contributions)).items():
        if k != "base" and math.isfinite(v) and abs(round(v, 3)) >= SHOWN:
            items.append((str(k), float(v)))
    if len(items) > 1:
        items.sort(key=_largest_first)
    return tuple(Contribution(k, _plain(profile.get(k)), round(v, 3)) for k, v in items[:top])


def top_contributions_many(
    table, names: Sequence[str], profiles: Sequence[Mapping], *, top: int = 3
) -> list[tuple[Contribution, ...]]:
    """:func:`top_contributions` for many rows at once, from a table of contributions.

    Parameters
    ----------
    table : array-like (rows x (features + 1))
        Each row's contributions, the last column ``base``.
    names : sequence of str
        The feature names of the columns before ``base``.
    profiles : sequence of mappings
        Each row's profile, to show the features' values.
    top : int
        Features listed per row.

    Returns
    -------
    list of tuple of Contribution
        Per row, the ``top`` columns of largest absolute contribution are picked first (in one
        sort of the whole table; among equal ones the earlier column), then
        :func:`top_contributions` is applied to them: the same tuple, bit for bit
        (``tests/test_fastpath5_equivalence.py``). For rows whose contributions are finite and
        do not tie at the cut, that is ``top_contributions`` of the whole row.
    """
    values = np.asarray(table, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(names) + 1:
        raise ValueError(f"table must be rows x {len(names) + 1} (the features, then base)")
    if not len(values):
        return []
    features = values[:, :-1]
    picked = np.argsort(-np.abs(features), axis=1, kind="stable")[:, :top]
    shown = np.take_along_axis(features, picked, axis=1)
    labels = [str(name) for name in names]
    if len(values) < _FEW_ROWS:  # numpy's per-call cost exceeds a few rows' Python
        return [
            top_contributions({labels[j]: v for j, v in zip(p, s)}, profile, top=top)
            for profile, p, s in zip(profiles, picked.tolist(), shown.tolist())
        ]
    # top_contributions' order among the picked: largest |points| first, then by name.
    by_name = {name: rank for rank, name in enumerate(sorted(map(str, names)))}
    name_rank = np.array([by_name[str(name)] for name in names], dtype=np.intp)
    order = np.lexsort((name_rank[picked], -np.abs(shown)), axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    shown = np.take_along_axis(shown, order, axis=1)
    rounded = _rounded(shown)
    # Listed: finite, and not shown as 0.0.
    keep = np.isfinite(shown) & (np.abs(rounded) >= SHOWN)
    new = tuple.__new__  # Contribution's own __new__ handles keywords: slower, per item
    out = []
    for profile, columns, points, kept in zip(
        profiles, picked.tolist(), rounded.tolist(), keep.tolist()
    ):
        items = []
        for j, points_shown, ok in zip(columns, points, kept):
            if ok:
                name = labels[j]
                value = profile.get(name)
                if isinstance(value, np.generic):  # _plain, inline: three calls per row
                    value = value.item()
                items.append(new(Contribution, (name, value, points_shown)))
        out.append(tuple(items))
    return out


def _rounded(values: np.ndarray) -> np.ndarray:
    """``round(v, 3)`` of every value, as Python rounds it, without a call per value.

    Python's round is the double nearest ``m / 1000``, ``m`` the exact value times 1,000
    rounded half to even; so is ``rint(v * 1000) / 1000`` (an IEEE division of exact numbers)
    whenever ``rint`` finds the same ``m``: always, unless the product lies within its own
    rounding error (under 1e-6 here) of a half, where Python's round decides. Non-finite
    values stay as they are.
    """
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: doubtful, decided below
        scaled = values * 1000.0
        whole = np.rint(scaled)
        out = whole / 1000.0
        doubtful = ~(np.abs(np.abs(scaled - whole) - 0.5) > 1e-6) | ~(np.abs(scaled) < 2.0**30)
    if doubtful.any():
        for at in zip(*np.nonzero(doubtful)):
            out[at] = round(float(values[at]), 3)
    return out


# Fewer rows than this are ordered one by one (one answer's request, say).
_FEW_ROWS = 8

# The smallest contribution that is a reason: the sentence shows points to one decimal, so
# anything smaller reads "+0.0" (an arm given one effect for everyone leaves such rounding).
SHOWN = 0.05


def _chosen(contributions, profile: Mapping, top: int) -> tuple[Contribution, ...]:
    # A tuple is already chosen (top_contributions_many); a mapping is chosen here.
    if isinstance(contributions, tuple):
        return contributions
    return top_contributions(contributions, profile, top=top)


def _largest_first(item):
    return -abs(item[1]), item[0]


def _plain(value):
    # numpy scalars do not survive JSON; profiles may carry them after a DataFrame round trip.
    return value.item() if isinstance(value, np.generic) else value


class _Formatted(dict):
    """``format(number, spec)``, each number's text worked out once: formatting a float to a
    precision costs about a microsecond, and a batch's sentences hold thousands of them, most
    recurring (figures rounded to 0.001 points). A key stands for every number equal to it,
    which formats alike but for the sign of a zero: zeros (and NaN, never equal to itself) are
    formatted every time. At most ``_FORMATTED`` numbers are kept."""

    def __init__(self, spec: str):
        super().__init__()
        self.spec = spec

    def __missing__(self, number) -> str:
        text = format(number, self.spec)
        if number and number == number and len(self) < _FORMATTED:
            self[number] = text
        return text


_FORMATTED = 1 << 16
_signed_tenths = _Formatted("+.1f")
_tenths = _Formatted(".1f")
_percent = _Formatted(".0%")


def _value_text(feature: str, kind: type, value) -> str:
    label = FEATURE_LABELS.get(feature, feature.replace("_", " "))
    if isinstance(value, str):
        value = value.replace("_", " ")
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"{label} {value}"


# The same feature and value recur across people (roles, integer scores), so their words are
# cached; the type is part of the key so that 1 and True (equal, equally hashed) stay apart.
_cached_value_text = functools.lru_cache(maxsize=4096)(_value_text)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _pulls(contributions, toward: tuple[str, str], away: tuple[str, str]) -> str:
    """The contributions in words, split by the way they pull: ``"A (-1.0) and B (-0.8) widen
    the lead and C (+1.3) narrows it"``. Negative points pull ``toward`` (the claim: a larger
    benefit, a wider lead), positive ones ``away``; each pair is (singular, plural) verb
    phrases. Empty when there are none."""
    if not contributions:
        return ""
    pulling, pushing = [], []
    cached, signed = _cached_value_text, _signed_tenths
    for feature, value, points in contributions:  # one pass, each side in their order
        kind = type(value)  # _feature_text, inline: three calls per comparison
        if kind is str or kind is int:
            words = cached(feature, kind, value)
        else:  # floats are not cached: -0.0 equals 0.0 but reads "-0"
            words = _value_text(feature, kind, value)
        (pulling if points < 0 else pushing).append(f"{words} ({signed[points]})")
    if not pushing:
        one, many = toward
        return f"{_join(pulling)} {one if len(pulling) == 1 else many}"
    if not pulling:
        one, many = away
        return f"{_join(pushing)} {one if len(pushing) == 1 else many}"
    one, many = toward
    first = f"{_join(pulling)} {one if len(pulling) == 1 else many}"
    one, many = away
    return f"{first} and {_join(pushing)} {one if len(pushing) == 1 else many}"


# The verb phrases of the sentences' comparisons, as (singular, plural) pairs: towards the
# claim, then away from it (see _pulls).
_LOWERS = (
    ("makes the benefit larger than its average", "make the benefit larger than its average"),
    ("makes it smaller", "make it smaller"),
)
_RAISES = (
    ("makes the rise smaller than its average", "make the rise smaller than its average"),
    ("makes it larger", "make it larger"),
)
_LEAD = (("widens the lead", "widen the lead"), ("narrows it", "narrow it"))
_CLOSEST = (("holds it back", "hold it back"), ("works for it", "work for it"))


class _Sentences:
    """The sentences of one service's explanations: what they share (the arms' labels, the
    interval's level) worked out once, for one explanation or a batch's thousand."""

    def __init__(self, control: str, names: Mapping[str, str] | None, coverage: float):
        self.control = control
        self.level = _percent[coverage]
        self.label = ArmLabels(names).__getitem__

    def __call__(
        self, recommended, runner_up, effect, lower, upper, runner_up_effect, vs_care, vs_next
    ) -> str:
        """The sentence of one explanation (see :func:`explain`), its contributions chosen."""
        if recommended == self.control:
            if runner_up is None:
                return "Only usual care is ranked for this person, so there is nothing to compare."
            sentence = (
                f"No offered intervention is expected to lower emotional exhaustion more "
                f"than usual care for this profile; the closest is {self.label(runner_up)} "
                f"({_signed_tenths[runner_up_effect]} points against usual care)"
            )
            # Points of usual care minus the runner-up: negative ones raise the runner-up's EE.
            pulls = _pulls(vs_next, *_CLOSEST)
            return sentence + (f", and for this profile {pulls}." if pulls else ".")
        if upper <= 0:  # _interval_text, inline
            interval = f"between {_tenths[abs(upper)]} and {_tenths[abs(lower)]} points lower"
        elif lower >= 0:
            interval = f"between {_tenths[lower]} and {_tenths[upper]} points higher"
        else:
            interval = f"from {_tenths[abs(lower)]} points lower to {_tenths[upper]} points higher"
        if effect < 0:
            direction, phrases = "lower", _LOWERS
        else:
            direction, phrases = "raise", _RAISES
        pulls = _pulls(vs_care, *phrases)
        sentence = (
            f"{self.label(recommended).capitalize()} is expected to {direction} emotional "
            f"exhaustion by {_tenths[abs(effect)]} points ({self.level} interval: "
            f"{interval}) compared with usual care"
        )
        sentence += f"; for this profile {pulls}." if pulls else "."
        # When the runner-up is usual care, the first sentence already made that comparison.
        if runner_up is None or runner_up_effect is None or runner_up == self.control:
            return sentence
        lead = runner_up_effect - effect
        if _tenths[abs(lead)] == "0.0":  # "0.0 points better" would claim an order
            sentence += (
                f" It is expected to do about as well as {self.label(runner_up)} (less than "
                "0.1 points apart)"
            )
        else:
            sentence += (
                f" It is expected to do {_tenths[lead]} points better than {self.label(runner_up)}"
            )
        pulls = _pulls(vs_next, *_LEAD)
        return sentence + (f"; for this profile {pulls}." if pulls else ".")


def explain(
    *,
    recommended: str,
    runner_up: str | None,
    effect: float,
    lower: float,
    upper: float,
    runner_up_effect: float | None,
    versus_usual_care: Mapping[str, float] | pd.Series | None,
    versus_runner_up: Mapping[str, float] | pd.Series | None,
    profile: Mapping,
    control: str = "none",
    names: Mapping[str, str] | None = None,
    coverage: float = 0.9,
    top: int = 3,
) -> Explanation:
    """Build the explanation of one recommendation.

    Parameters
    ----------
    recommended, runner_up : str
        The best and second-best arm (either may be the control arm).
    effect, lower, upper : float
        The recommended arm's EE effect against usual care and its interval.
    runner_up_effect : float or None
        The runner-up's EE effect against usual care.
    versus_usual_care, versus_runner_up : mapping or Series, optional
        Contributions (feature -> EE points, plus ``base``) of ``recommended - control`` and of
        ``recommended - runner_up``; or a tuple of :class:`Contribution`, already chosen by
        :func:`top_contributions_many` (a batch's, in one sort).
    profile : mapping
        The person's profile, to show each feature's value.
    control : str
        Id of usual care.
    names : mapping, optional
        Readable arm names (``arm id -> name``).
    coverage : float
        Coverage of the interval, for the sentence.
    top : int
        Features listed per comparison.

    Examples
    --------
    >>> e = explain(recommended="coaching", runner_up="peer_group", effect=-4.2, lower=-7.0,
    ...             upper=-1.4, runner_up_effect=-1.0,
    ...             versus_usual_care={"role": -2.0, "ee": -1.0, "base": -1.2},
    ...             versus_runner_up={"role": -2.5, "base": -0.7},
    ...             profile={"role": "physician", "ee": 33})
    >>> print(e.sentence)
    Coaching is expected to lower emotional exhaustion by 4.2 points (90% interval: between 1.4 and 7.0 points lower) compared with usual care; for this profile role physician (-2.0) and emotional exhaustion score 33 (-1.0) make the benefit larger than its average. It is expected to do 3.2 points better than peer group; for this profile role physician (-2.5) widens the lead.
    """
    return explain_many(
        [(recommended, runner_up, effect, lower, upper, runner_up_effect)],
        [versus_usual_care],
        [versus_runner_up],
        [profile],
        control=control,
        names=names,
        coverage=coverage,
        top=top,
    )[0]


def explain_many(
    figures: Sequence[tuple],
    versus_usual_care: Sequence,
    versus_runner_up: Sequence,
    profiles: Sequence[Mapping],
    *,
    control: str = "none",
    names: Mapping[str, str] | None = None,
    coverage: float = 0.9,
    top: int = 3,
) -> list[Explanation]:
    """:func:`explain` for many recommendations of one service at once: the same
    explanations, with what their sentences share (labels, level) worked out once.

    Parameters
    ----------
    figures : sequence of tuples
        Per recommendation ``(recommended, runner_up, effect, lower, upper,
        runner_up_effect)``, as :func:`explain` takes them.
    versus_usual_care, versus_runner_up : sequences
        Per recommendation, its contributions (or ``None``) as :func:`explain` takes them.
    profiles : sequence of mappings
        Per recommendation, the person's profile.
    control, names, coverage, top
        As for :func:`explain`, shared by all.
    """
    sentence = _Sentences(control, names, coverage)
    out = []
    for (
        recommended,
        runner_up,
        effect,
        lower,
        upper,
        runner_up_effect,
    ), care, lead, profile in zip(figures, versus_usual_care, versus_runner_up, profiles):
        vs_care = () if recommended == control or care is None else _chosen(care, profile, top)
        vs_next = () if runner_up is None or lead is None else _chosen(lead, profile, top)
        text = sentence(
            recommended, runner_up, effect, lower, upper, runner_up_effect, vs_care, vs_next
        )
        out.append(_new_explanation(recommended, runner_up, vs_care, vs_next, text))
    return out
