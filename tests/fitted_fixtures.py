"""Uplift learners fitted once per test process, shared by every module that fits the same one.

Module-scoped fixtures are rebuilt in each module (and each xdist worker), so two modules that
fit the same learner on the same synthetic cohort paid for it twice. :func:`fitted_uplift`
keys a fit by everything that decides it (the cohort's arguments, the learner's parameters,
whether the logged propensity is passed) and fits it the first time it is asked for.

A fixed ``random_state`` (UpliftModel's default included) makes a fit a pure function of that
key, so a shared model is the one each module would have fitted itself
(tests/test_uplift_contract.py's ``test_same_seed_gives_identical_effects`` refits one afresh
and compares). Callers only read the model: none may refit it or set its parameters.
"""

from __future__ import annotations

from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort

__all__ = ["fitted_uplift"]

_FITTED: dict[tuple, UpliftModel] = {}


def fitted_uplift(cohort: dict, *, propensity: bool = True, **params) -> UpliftModel:
    """An ``UpliftModel(**params)`` fitted on ``make_uplift_cohort(**cohort)``, shared.

    ``cohort`` holds make_uplift_cohort's arguments (``n`` among them); ``propensity`` says
    whether the cohort's logged propensity is passed to fit.
    """
    key = (_frozen(cohort), propensity, _frozen(params))
    if key not in _FITTED:
        X, t, y, p, _ = make_uplift_cohort(**cohort)
        model = UpliftModel(**params)
        _FITTED[key] = model.fit(X, t, y, propensity=p if propensity else None)
    return _FITTED[key]


def _frozen(mapping: dict) -> tuple:
    # repr: parameter values such as candidate specs or tuples of arms need not be hashable
    return tuple(sorted((name, repr(value)) for name, value in mapping.items()))
