"""Cross-fitted doubly robust (AIPW) scores for every arm, the currency of evaluation."""

from __future__ import annotations

import numpy as np  # noqa: F401 - the doctests use it
import pandas as pd
from threadpoolctl import threadpool_limits

from recommender.errors import InputError

from ._checks import check_training_inputs, parameter_problems
from ._encoding import FeatureEncoder
from ._nuisance import fit_nuisance

__all__ = ["doubly_robust_scores"]


def doubly_robust_scores(
    X,
    treatment,
    y,
    *,
    propensity=None,
    control="none",
    n_folds=5,
    random_state=0,
    design="auto",
    clip=(0.01, 1.0),
    min_arm_rows=30,
    n_jobs=1,
) -> pd.DataFrame:
    """Cross-fitted AIPW scores Γ(i, a) for every arm, control included.

    Γ(i, a) = μ̂_a(x_i) + 1[T_i = a] (y_i − μ̂_a(x_i)) / e_a(x_i), where μ̂_a is arm a's outcome
    model fitted on the other folds (LightGBM or ridge, chosen per arm by held-out error) and
    e is the propensity. The mean of Γ_a − Γ_control estimates arm a's average effect, and the
    mean of Γ(i, π(i)) the value of a policy π, without any oracle.

    Parameters
    ----------
    X : DataFrame
        Features (numeric and ``category`` columns).
    treatment : array-like
        The arm each row received.
    y : array-like of float
        The outcome (for this project the change from baseline).
    propensity : array-like of float, optional
        Probability of the arm each row received. Authoritative when given.
    control : object, default "none"
        Name of the control arm.
    n_folds : int, default 5
        Folds of the cross-fitting.
    random_state : int, default 0
        Seed of the folds and the boosters.
    design : {"auto", "randomized", "observational"}, default "auto"
        ``"randomized"`` uses the empirical arm shares as propensities; otherwise, when no
        propensity is given, a regularized multinomial logistic model estimates them.
    clip : tuple of float, default (0.01, 1.0)
        Bounds applied to estimated propensities.
    min_arm_rows : int, default 30
        Smallest arm accepted.
    n_jobs : int, default 1
        LightGBM threads.

    Returns
    -------
    DataFrame
        One column per arm (control first, then the others sorted by name), index of X.

    Raises
    ------
    InputError
        Naming every parameter not accepted (``UpliftModel``'s table, ``clip`` as its
        ``propensity_clip``) before any work, and bad inputs as ``UpliftModel.fit`` does.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=600)})
    >>> t = rng.choice(["none", "a"], size=600)
    >>> y = X["x"] + 2.0 * (t == "a") + rng.normal(size=600)
    >>> scores = doubly_robust_scores(X, t, y, design="randomized")
    >>> round(float((scores["a"] - scores["none"]).mean()))
    2
    """
    problems = parameter_problems(
        {
            "n_folds": n_folds,
            "random_state": random_state,
            "design": design,
            "clip": clip,
            "min_arm_rows": min_arm_rows,
            "n_jobs": n_jobs,
        }
    )
    if problems:
        raise InputError("invalid doubly_robust_scores parameters: " + "; ".join(problems))
    encoder = FeatureEncoder().fit(X)
    data = check_training_inputs(
        X, treatment, y, propensity, control=control, min_arm_rows=max(min_arm_rows, 2 * n_folds)
    )
    M = encoder.transform(X)
    with threadpool_limits(limits=n_jobs):
        nuisance = fit_nuisance(
            M,
            data.codes,
            data.y,
            data.arms,
            categorical=encoder.categorical_index,
            feature_names=encoder.feature_names,
            propensity=data.propensity,
            design=design,
            clip=clip,
            n_folds=n_folds,
            seed=random_state,
            n_jobs=n_jobs,
            encoder=encoder,
            refit_outcomes=False,
        )
    return pd.DataFrame(nuisance.scores, index=X.index, columns=list(data.arms))
