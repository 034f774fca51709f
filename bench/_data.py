"""Cohorts, feature frames and data sets the benchmarks share.

The benchmarks feed every method the same rows: our learners get the contract's feature frame
(categoricals as pandas ``category``), the anchors that need numbers get the same frame one-hot
encoded. Nothing here is imported by the product.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# The product's own feature frame (contract order, fixed categories), so a benchmark measures
# exactly what the learners are fed and one-hot columns are identical across cohorts.
from recommender.cohort import FEATURE_COLUMNS as FEATURES
from recommender.cohort import feature_frame

__all__ = [
    "FEATURES",
    "CONTROL",
    "Rows",
    "Split",
    "feature_frame",
    "numeric_frame",
    "simulated_split",
    "ihdp_dir",
    "load_ihdp",
]

CONTROL = "none"


def numeric_frame(features: pd.DataFrame) -> pd.DataFrame:
    """One-hot encodes the ``category`` columns for the anchors that take only numbers.

    All categories are kept (no dropped level): the anchors here fit trees and regularized
    models, and fixed categories give the same columns for every cohort.
    """
    categorical = [
        c for c in features.columns if isinstance(features[c].dtype, pd.CategoricalDtype)
    ]
    encoded = pd.get_dummies(features, columns=categorical, dtype="float64")
    return encoded.astype("float64")


@dataclass(frozen=True)
class Split:
    """A training cohort and a separate test cohort, with what every method needs."""

    train: pd.DataFrame
    test: pd.DataFrame
    arms: tuple[str, ...]  # non-control arms, sorted by name
    outcome: str = "ee"

    def y(self, cohort: pd.DataFrame) -> np.ndarray:
        return (cohort[f"{self.outcome}_followup"] - cohort[self.outcome]).to_numpy(float)

    def oracle(self, cohort: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {arm: cohort[f"true_effect_{arm}"].to_numpy(float) for arm in self.arms},
            index=cohort.index,
        )

    def design_shares(self) -> dict[str, float]:
        """Arm shares of a randomized design, read from the logged propensities."""
        shares = self.train.groupby("intervention", observed=True)["propensity"].median()
        return {str(arm): float(share) for arm, share in shares.items()}


def simulated_split(
    n: int,
    *,
    assignment: str,
    seed: int = 0,
    n_test: int = 10_000,
    scenario: str = "default",
) -> Split:
    """Training cohort of ``n`` and a test cohort of ``n_test`` drawn with another seed."""
    from recommender.simulate import load_scenario, simulate_cohort

    loaded = load_scenario(scenario)
    train = simulate_cohort(loaded, n, seed=seed, assignment=assignment)
    test = simulate_cohort(loaded, n_test, seed=seed + 10_007, assignment=assignment)
    arms = tuple(
        sorted(c.removeprefix("true_effect_") for c in train.columns if _is_primary_oracle(c))
    )
    return Split(train=train, test=test, arms=arms)


def _is_primary_oracle(column: str) -> bool:
    return column.startswith("true_effect_") and not column.startswith(
        ("true_effect_dp_", "true_effect_pa_")
    )


def ihdp_dir() -> Path:
    """Folder of the IHDP realizations: env ``IHDP_DIR`` or ``../shared/data/ihdp`` of the repo."""
    if os.environ.get("IHDP_DIR"):
        return Path(os.environ["IHDP_DIR"])
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "ihdp"


def load_ihdp(realization: int, folder: Path | None = None) -> pd.DataFrame:
    """One IHDP realization: treatment, y_factual, y_cfactual, mu0, mu1, x1..x25."""
    path = (folder or ihdp_dir()) / f"ihdp_npci_{realization}.csv"
    columns = ["treatment", "y_factual", "y_cfactual", "mu0", "mu1"] + [
        f"x{i}" for i in range(1, 26)
    ]
    frame = pd.read_csv(path, header=None, names=columns)
    frame["treatment"] = frame["treatment"].astype(int)
    return frame


@dataclass(frozen=True)
class Rows:
    """The same people twice: the contract's frame for ours and LightGBM, one-hot for anchors."""

    features: pd.DataFrame
    numeric: pd.DataFrame

    @classmethod
    def of(cls, features: pd.DataFrame) -> "Rows":
        return cls(features=features, numeric=numeric_frame(features))

    def __len__(self) -> int:
        return len(self.features)

    def head(self, n: int) -> "Rows":
        return Rows(self.features.iloc[:n], self.numeric.iloc[:n])
