"""A tiny uplift model with the UpliftModel interface, for registry and card tests.

Effects are linear in baseline exhaustion, so tests can state exactly what the model must
recommend; it pickles by reference to this module (tests/ is on sys.path under pytest).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ARMS = ("coaching", "mindfulness", "peer_group")


class LinearUplift:
    """effect[arm] = intercept[arm] + slope[arm] * (ee - 27) / 10; interval = effect +/- width."""

    def __init__(self, *, intercepts=None, slopes=None, control="none", width=1.0):
        self.intercepts = intercepts
        self.slopes = slopes
        self.control = control
        self.width = width

    def fit(self, X, treatment, y, *, propensity=None):
        self.intercepts_ = dict(
            self.intercepts or {"coaching": -2.0, "mindfulness": -1.0, "peer_group": 0.5}
        )
        self.slopes_ = dict(
            self.slopes or {"coaching": 1.0, "mindfulness": -1.5, "peer_group": 0.0}
        )
        self.arms_ = sorted(self.intercepts_)
        self.control_ = self.control
        self.learner_ = "linear-fake"
        self.feature_names_ = list(X.columns)
        return self

    def predict_effect(self, X):
        z = (X["ee"].to_numpy(dtype=float) - 27.0) / 10.0
        return pd.DataFrame(
            {a: self.intercepts_[a] + self.slopes_[a] * z for a in self.arms_}, index=X.index
        )

    def predict_interval(self, X, alpha=0.1):
        effect = self.predict_effect(X)
        return effect - self.width, effect + self.width

    def contributions(self, X, arm, versus="none"):
        z = (X["ee"].to_numpy(dtype=float) - 27.0) / 10.0

        def parts(name):
            if name == self.control_:
                return 0.0, np.zeros(len(X))
            return self.intercepts_[name], self.slopes_[name] * z

        base_a, ee_a = parts(arm)
        base_b, ee_b = parts(versus)
        table = pd.DataFrame(0.0, index=X.index, columns=self.feature_names_)
        table["ee"] = ee_a - ee_b
        table["base"] = base_a - base_b
        return table


def profiles(n=40, seed=0):
    """Profile rows in the data contract's plain types."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "person_id": [f"p{i:04d}" for i in range(n)],
            "age": rng.integers(25, 65, n),
            "gender": rng.choice(["female", "male", "nonbinary", "undisclosed"], n),
            "role": rng.choice(["physician", "resident", "nurse", "app"], n),
            "specialty": rng.choice(["primary_care", "surgery", "oncology", "other"], n),
            "setting": rng.choice(["academic", "community", "rural"], n),
            "years_in_practice": rng.uniform(0, 30, n).round(1),
            "weekly_hours": rng.uniform(30, 80, n).round(1),
            "ee": rng.integers(0, 55, n),
            "dp": rng.integers(0, 31, n),
            "pa": rng.integers(0, 49, n),
        }
    )
    # The contract's rule across two fields: no one practises before 16 (years <= age - 16).
    table["years_in_practice"] = np.minimum(table["years_in_practice"], table["age"] - 16)
    return table


CATEGORIES = {
    "gender": ["female", "male", "nonbinary", "undisclosed"],
    "role": ["physician", "resident", "nurse", "app"],
    "specialty": [
        "primary_care",
        "internal_medicine",
        "surgery",
        "emergency_medicine",
        "pediatrics",
        "psychiatry",
        "oncology",
        "critical_care",
        "other",
    ],
    "setting": ["academic", "community", "rural"],
}


def features(frame):
    """The feature frame in the contract's order with fixed categories."""
    X = frame[
        [
            "age",
            "gender",
            "role",
            "specialty",
            "setting",
            "years_in_practice",
            "weekly_hours",
            "ee",
            "dp",
            "pa",
        ]
    ].copy()
    for column, allowed in CATEGORIES.items():
        X[column] = pd.Categorical(X[column], categories=allowed)
    return X


def fake_model(*, intercepts=None, slopes=None, catalog_version=None):
    """A RecommendationModel over LinearUplift learners for ee, dp and pa, of the installed
    catalog's version unless ``catalog_version`` is given (promote refuses another)."""
    from recommender.catalog import load_catalog
    from recommender.model import RecommendationModel

    X = features(profiles())
    learners = {
        o: LinearUplift(intercepts=intercepts, slopes=slopes).fit(X, None, None)
        for o in ("ee", "dp", "pa")
    }
    version = load_catalog().version if catalog_version is None else catalog_version
    return RecommendationModel(outcome_models=learners, features=X, catalog_version=version)
