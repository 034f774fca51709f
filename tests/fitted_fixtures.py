"""What tests fit or compute once and share: uplift learners per process, costly tables per run.

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

import fcntl
import os
import pickle
from pathlib import Path

from recommender.uplift import UpliftModel
from recommender.uplift._synthetic import make_uplift_cohort

__all__ = ["fitted_uplift", "once_per_run", "run_folder"]

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


def once_per_run(tmp_path_factory, name: str, compute):
    """``compute()``'s value, computed once for the whole run, xdist workers included.

    Under ``-n 2`` the cases of one parametrized test are dealt to both workers, and each
    built the module's fixture (and built it again when it came back to the module after
    other work). The first worker to ask computes and writes the value beside the workers'
    temporary folders; the others wait on the lock (not on a timer) and read it. ``name``
    must say everything that decides the value.
    """
    root = run_folder(tmp_path_factory)
    path = root / f"{name}.pickle"
    with open(root / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                return pickle.loads(path.read_bytes())
            value = compute()
            partial = path.with_suffix(".partial")
            partial.write_bytes(pickle.dumps(value))
            partial.replace(path)
            return value
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def run_folder(tmp_path_factory) -> Path:
    """The run's temporary folder, shared by its xdist workers (each worker's own is inside):
    where a value :func:`once_per_run` computes may keep files its pickle names."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    return root
