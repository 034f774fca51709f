"""Interval for each person's effect from the spread of the fold models (grouped jackknife).

Each of the K fold models is the whole learner refitted without one fold. The delete-a-group
jackknife turns their spread into the variance of the all-rows estimate,
V(x) = (K − 1) / K · Σ_k (τ̂_(k)(x) − τ̂_(·)(x))², and the interval is τ̂(x) ± z sqrt(c V(x)),
where the scale c is calibrated on held-out rows (see ``calibrate_scale``).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["jackknife_variance", "interval"]


def jackknife_variance(fold_effects: np.ndarray) -> np.ndarray:
    """(K, n, arms) fold effects to (n, arms) jackknife variances."""
    k = fold_effects.shape[0]
    centred = fold_effects - fold_effects.mean(axis=0, keepdims=True)
    return (k - 1) / k * (centred**2).sum(axis=0)


def interval(effect: np.ndarray, variance: np.ndarray, alpha: float, scale: np.ndarray):
    z = norm.ppf(1 - alpha / 2)
    half = z * np.sqrt(variance * scale)
    return effect - half, effect + half
