"""Doubly robust policy values, average effects and the personalization gain.

Everything here works on cross-fitted AIPW scores ``Γ_{i,a}`` (one column per arm, control
included), so each estimate is a mean of per-person terms and its interval comes from their
standard deviation (normal approximation). Signs follow the project convention: outcomes are
changes in EE, an *effect* below 0 means less exhaustion, and a *policy value* is the mean EE
points avoided per person versus usual care for all (``-mean(Γ_{π(i)} - Γ_control)``), so a
higher policy value is better.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from recommender.levels import check_alpha, two_sided_z
from recommender.errors import InputError

__all__ = [
    "Estimate",
    "mean_estimate",
    "learned_policy",
    "policy_scores",
    "policy_value",
    "policy_value_table",
    "average_effects",
    "personalization_gain",
]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error and a two-sided ``1 - alpha`` interval.

    Unpacks as ``estimate, lower, upper = est``.
    """

    estimate: float
    se: float
    lower: float
    upper: float
    n: int

    def __iter__(self):
        # Unpacks as (estimate, lower, upper), the triple callers usually want.
        return iter((self.estimate, self.lower, self.upper))

    def to_dict(self) -> dict:
        return asdict(self)


def _z(alpha: float) -> float:
    return two_sided_z(check_alpha(alpha))


def mean_estimate(values, *, alpha: float = 0.1) -> Estimate:
    """Mean of per-person terms with a normal-approximation interval.

    Parameters
    ----------
    values : array-like of float
        One term per person (for example a policy's doubly robust score).
    alpha : float
        One minus the interval's coverage.

    Returns
    -------
    Estimate
        ``se`` is the sample standard deviation (ddof=1) over ``sqrt(n)``; the interval is
        ``estimate ± z_{1-alpha/2} se``.

    Examples
    --------
    >>> est = mean_estimate([1.0, 2.0, 3.0, 4.0], alpha=0.1)
    >>> round(est.estimate, 3), round(est.se, 4), round(est.lower, 4)
    (2.5, 0.6455, 1.4383)
    """
    return _estimate(values, _z(alpha))


def _estimate(values, z: float) -> Estimate:
    terms = np.asarray(values, dtype=float)
    n = terms.size
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    mean = float(terms.mean())
    se = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return Estimate(mean, se, mean - z * se, mean + z * se, int(n))


def learned_policy(
    effects: pd.DataFrame, *, control: str = "none", eligible: pd.DataFrame | None = None
) -> np.ndarray:
    """The arm each person is recommended: the lowest predicted EE effect, control if none helps.

    The service's rule, so that the evaluation and the card value the policy that is served:
    :func:`recommender.policy.best_arm` of the effects as an answer shows them
    (:func:`recommender.policy.ranked_figures`); effects that round to the same figure tie,
    and a tie goes to usual care, then to the first column.

    Parameters
    ----------
    effects : DataFrame
        Predicted effect (arm minus control, negative is better) per non-control arm.
    control : str
        Name returned for people for whom no arm is predicted to help (every effect >= 0).
    eligible : DataFrame of bool, optional
        People x arms, same row order as ``effects``: arms each person may be recommended (the
        catalog's eligibility); an ineligible arm is never chosen. Default: all arms.

    Returns
    -------
    ndarray of str
        One arm name per row.

    Examples
    --------
    >>> frame = pd.DataFrame({"a": [-1.0, 0.5, 0.0, -2.0001], "b": [-2.0, 0.1, 0.0, -2.0003]})
    >>> learned_policy(frame).tolist()
    ['b', 'none', 'none', 'a']
    """
    from recommender.policy import ranked_figures

    return best_policy(ranked_figures(effects.to_numpy(dtype=float)), effects, control, eligible)


def best_policy(values, effects: pd.DataFrame, control: str, eligible) -> np.ndarray:
    # The arm of lowest ``values`` (rows x the columns of ``effects``) each person may get, by
    # the one ordering rule (recommender.policy.best_arm); the oracle calls it on true effects
    # as they are, the learned policy on the figures an answer shows.
    from recommender.policy import best_arm

    allowed = None
    if eligible is not None:
        missing = [arm for arm in effects.columns if arm not in eligible.columns]
        if missing or len(eligible) != len(effects):
            raise InputError(
                f"eligible must have {len(effects)} rows and a column for every "
                f"arm {list(effects.columns)}; it has {len(eligible)} rows and "
                f"lacks {missing}"
            )
        allowed = eligible[list(effects.columns)].to_numpy(dtype=bool)
    return best_arm(values, list(effects.columns), control=control, allowed=allowed).astype(object)


def single_arm_policy(
    arm: str, n: int, *, control: str = "none", eligible: pd.DataFrame | None = None
) -> np.ndarray:
    """One arm for everyone the catalog offers it to (``eligible``), usual care for the rest.

    The one-arm policy a program could run: coaching "for everyone" cannot give coaching to
    nurses the catalog does not offer it to, and comparing a policy that respects eligibility
    with one that does not would call the difference a failure of personalization.

    Examples
    --------
    >>> offered = pd.DataFrame({"coaching": [True, False, True]})
    >>> single_arm_policy("coaching", 3, eligible=offered).tolist()
    ['coaching', 'none', 'coaching']
    """
    policy = np.full(n, arm, dtype=object)
    if eligible is not None and arm != control and arm in eligible.columns:
        policy[~eligible[arm].to_numpy(dtype=bool)] = control
    return policy


def policy_scores(scores: pd.DataFrame, assignment, *, control: str = "none") -> np.ndarray:
    """Per-person doubly robust EE points avoided by ``assignment`` versus control.

    ``assignment`` is either one arm name per row or a mapping row -> probability per arm given
    as a DataFrame with arm columns (a stochastic policy such as random assignment).
    """
    if control not in scores.columns:
        raise InputError(
            f"doubly robust scores have no column for the control arm {control!r}; "
            f"columns are {list(scores.columns)}"
        )
    gamma_control = scores[control].to_numpy(dtype=float)
    if isinstance(assignment, pd.DataFrame):
        missing = [arm for arm in assignment.columns if arm not in scores.columns]
        if missing:
            raise InputError(f"policy uses arms {missing} that have no doubly robust score")
        weights = assignment.to_numpy(dtype=float)
        gamma = (scores[list(assignment.columns)].to_numpy(dtype=float) * weights).sum(axis=1)
    else:
        arms = np.asarray(assignment, dtype=object)
        if arms.shape != (len(scores),):
            raise InputError(f"assignment has {arms.size} entries for {len(scores)} rows of scores")
        codes = pd.Index(scores.columns).get_indexer(arms)
        if (codes < 0).any():
            unknown = sorted(set(arms[codes < 0].tolist()), key=str)
            raise InputError(
                f"assignment names arms {unknown} that have no doubly robust score; "
                f"accepted: {list(scores.columns)}"
            )
        gamma = scores.to_numpy(dtype=float)[np.arange(len(scores)), codes]
    return -(gamma - gamma_control)


def policy_value(
    scores: pd.DataFrame, assignment, *, control: str = "none", alpha: float = 0.1
) -> Estimate:
    """Doubly robust policy value (EE points avoided per person versus control for all).

    Examples
    --------
    >>> scores = pd.DataFrame({"none": [0.0, 1.0, 2.0, 1.0], "a": [-1.0, 0.0, 0.0, -3.0]})
    >>> policy_value(scores, ["a", "none", "a", "a"]).estimate
    1.75
    """
    return mean_estimate(policy_scores(scores, assignment, control=control), alpha=alpha)


def _uniform(scores: pd.DataFrame) -> pd.DataFrame:
    share = 1.0 / scores.shape[1]
    return pd.DataFrame(share, index=scores.index, columns=scores.columns)


def policy_value_table(
    scores: pd.DataFrame,
    learned,
    *,
    control: str = "none",
    alpha: float = 0.1,
    oracle_policy=None,
    true_effects: pd.DataFrame | None = None,
    eligible: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Policy values of the learned policy, every one-arm-for-all policy and random assignment.

    With ``eligible`` (people x arms, bool), a one-arm policy gives its arm only to the people
    the catalog offers it to, usual care to the rest (:func:`single_arm_policy`). Random
    assignment draws each arm, control included, with equal probability. When
    ``oracle_policy`` is given a row ``oracle`` is added; when ``true_effects`` (oracle effects
    per non-control arm) are given, column ``true_value`` holds each policy's value computed
    from the true effects rather than estimated.

    Returns
    -------
    DataFrame
        Index ``policy`` (``learned``, ``all:<arm>``..., ``random``, ``oracle``); columns
        ``estimate, se, lower, upper, n`` and, with true effects, ``true_value``.
    """
    policies: dict[str, object] = {"learned": np.asarray(learned, dtype=object)}
    for arm in scores.columns:
        policies[f"all:{arm}"] = single_arm_policy(
            arm, len(scores), control=control, eligible=eligible
        )
    policies["random"] = _uniform(scores)
    if oracle_policy is not None:
        policies["oracle"] = np.asarray(oracle_policy, dtype=object)
    rows = {}
    for name, assignment in policies.items():
        row = policy_value(scores, assignment, control=control, alpha=alpha).to_dict()
        if true_effects is not None:
            row["true_value"] = _true_value(true_effects, assignment, control=control)
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "policy"
    return table


def _true_value(true_effects: pd.DataFrame, assignment, *, control: str) -> float:
    """Mean EE points avoided computed from the oracle's effects (0 for control)."""
    full = true_effects.copy()
    full[control] = 0.0
    return float(policy_scores(full, assignment, control=control).mean())


def average_effects(
    scores: pd.DataFrame, *, control: str = "none", alpha: float = 0.1
) -> pd.DataFrame:
    """Average effect of every non-control arm versus control (negative = less exhaustion).

    Besides the per-arm interval, ``lower_simultaneous``/``upper_simultaneous`` widen it by
    Bonferroni over the arms, so a claim "some arm is better than none" made from them holds at
    level ``alpha`` for the family, not per arm.
    """
    arms = [arm for arm in scores.columns if arm != control]
    k = max(len(arms), 1)
    rows = {}
    for arm in arms:
        terms = scores[arm].to_numpy(dtype=float) - scores[control].to_numpy(dtype=float)
        est = mean_estimate(terms, alpha=alpha)
        wide = _estimate(terms, two_sided_z(alpha / k))  # alpha was checked just above
        rows[arm] = {
            **est.to_dict(),
            "lower_simultaneous": wide.lower,
            "upper_simultaneous": wide.upper,
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "arm"
    return table


def personalization_gain(
    scores: pd.DataFrame,
    learned,
    *,
    control: str = "none",
    alpha: float = 0.1,
    n_folds: int = 5,
    n_boot: int = 200,
    random_state: int = 0,
    single_arms=None,
    eligible: pd.DataFrame | None = None,
) -> tuple[Estimate, str, list[str]]:
    """Learned policy value minus the best one-arm-for-all policy's, with a paired interval.

    Which single arm is "best" (control included) has to be estimated too, and picking the
    largest of several noisy estimates flatters it: measured on the same rows, the comparator
    looks better than it is and the gain is biased downwards (with six equal arms, by about
    the expected maximum of six noisy means), enough to call personalization "worse" when
    nothing works at all. So the choice is cross-fitted: the rows are split into ``n_folds``
    folds, on each fold the comparator is the arm with the best value on the *other* folds,
    and the gain's per-person term is the learned policy's score minus that comparator's.

    When arms are (nearly) tied the choice flips between folds, and a standard error that
    treats the choices as fixed is too small (74 % coverage for a nominal 90 % with six equal
    arms). The standard error is therefore the larger of that one and a Poisson bootstrap of
    the whole procedure (``n_boot`` resamples, folds held fixed, choices redone), which is
    slightly conservative in the tied case and equal to the plain one when a best arm stands out.

    ``single_arms`` (default: every column) are the one-arm-for-all policies compared with: an
    arm whose scores are an estimate rather than measured (or missing where it is not offered)
    is better left out. With ``eligible`` (people x arms, bool), each one-arm policy gives its
    arm only to the people the catalog offers it to, usual care to the rest
    (:func:`single_arm_policy`), as the learned policy does.

    Returns
    -------
    (Estimate, str, list of str)
        The gain; the best single arm on all the data (for naming it); the arm chosen for
        each fold.
    """
    z = _z(alpha)
    learned_terms = policy_scores(scores, learned, control=control)
    arms = list(scores.columns if single_arms is None else single_arms)
    single = np.column_stack(
        [
            policy_scores(
                scores,
                single_arm_policy(arm, len(scores), control=control, eligible=eligible),
                control=control,
            )
            for arm in arms
        ]
    )
    arms = [str(arm) for arm in arms]
    # argmax returns the first of tied arms: column order decides ties.
    best_arm = arms[int(single.mean(axis=0).argmax())]
    n = len(scores)
    folds = min(int(n_folds), n // 2)
    if folds < 2:
        return (
            mean_estimate(learned_terms - single[:, arms.index(best_arm)], alpha=alpha),
            best_arm,
            [best_arm],
        )
    rng = np.random.default_rng(random_state)
    fold = rng.permutation(n) % folds
    comparator = np.empty(n)
    fold_arms = []
    for k in range(folds):
        inside = fold == k
        choice = int(single[~inside].mean(axis=0).argmax())
        comparator[inside] = single[inside, choice]
        fold_arms.append(arms[choice])
    plain = mean_estimate(learned_terms - comparator, alpha=alpha)
    se = max(plain.se, _bootstrap_gain_sd(learned_terms, single, fold, n_boot, rng))
    gain = Estimate(plain.estimate, se, plain.estimate - z * se, plain.estimate + z * se, n)
    return gain, best_arm, fold_arms


def _bootstrap_gain_sd(
    learned_terms: np.ndarray,
    single: np.ndarray,
    fold: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
) -> float:
    """SD of the cross-fitted gain over Poisson-weighted resamples (choices redone each time)."""
    if n_boot < 2:
        return 0.0
    weights = rng.poisson(1.0, size=(n_boot, len(learned_terms))).astype(float)
    total_single = weights @ single
    total_weight = weights.sum(axis=1)
    gain = np.zeros(n_boot)
    for k in range(int(fold.max()) + 1):
        inside = fold == k
        w = weights[:, inside]
        fold_single = w @ single[inside]
        other_mean = (total_single - fold_single) / (total_weight - w.sum(axis=1))[:, None]
        choice = other_mean.argmax(axis=1)
        gain += w @ learned_terms[inside] - fold_single[np.arange(n_boot), choice]
    return float(np.std(gain / total_weight, ddof=1))
