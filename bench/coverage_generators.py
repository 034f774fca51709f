"""The cohort generators of ``bench.coverage``: cohorts with known per-person effects that share
nothing with ``recommender.simulate``.

The four setups of Nie and Wager's R-learner paper (written here from the paper's definitions,
Y = b(X) + (W − ½) τ(X) + σ ε), CausalML's and EconML's synthetic generators, the IHDP
realizations (truth mu1 − mu0), and multi-arm designs of our own making. Each generator is a
function (n_train, n_test, seed) -> ``Cohort``; ``bench.coverage_families`` names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench._data import CONTROL, load_ihdp

__all__ = ["Cohort", "nie_wager", "causalml_synthetic", "econml_ihdp", "multi_arm", "ihdp"]


@dataclass
class Cohort:
    """Training rows, test rows and the truth on the test rows."""

    X: pd.DataFrame
    treatment: np.ndarray
    y: np.ndarray
    propensity: np.ndarray | None  # of the arm received; None when not known
    X_test: pd.DataFrame
    oracle: pd.DataFrame  # true effects on X_test, one column per non-control arm
    design: str  # "rct" or "observational"


def _split(X, treatment, y, propensity, oracle, n_train, design) -> Cohort:
    return Cohort(
        X.iloc[:n_train].reset_index(drop=True),
        treatment[:n_train],
        y[:n_train],
        None if propensity is None else propensity[:n_train],
        X.iloc[n_train:].reset_index(drop=True),
        oracle.iloc[n_train:].reset_index(drop=True),
        design,
    )


def _two_arm(X, w, b, tau, e, sigma, rng, n_train, design, noise=None) -> Cohort:
    """Nie & Wager's outcome model: Y = b(X) + (W − ½) τ(X) + σ ε."""
    eps = rng.normal(size=len(w)) if noise is None else noise
    y = b + (w - 0.5) * tau + sigma * eps
    treatment = np.where(w == 1, "treated", CONTROL).astype(object)
    received = np.where(w == 1, e, 1 - e)
    frame = pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(X.shape[1])])
    return _split(frame, treatment, y, received, pd.DataFrame({"treated": tau}), n_train, design)


# ----------------------------------------------------------- Nie & Wager (2021), setups A-D
def nie_wager(setup: str, *, d: int = 6, sigma: float = 1.0):
    """Setups A-D of Nie & Wager, 'Quasi-oracle estimation of heterogeneous treatment effects'
    (Biometrika 2021), section 6: d covariates, noise sd sigma."""

    def generate(n_train, n_test, seed) -> Cohort:
        rng = np.random.default_rng(seed)
        n = n_train + n_test
        if setup == "A":  # difficult nuisance, easy effect; confounded
            X = rng.uniform(size=(n, d))
            b = (
                np.sin(np.pi * X[:, 0] * X[:, 1])
                + 2 * (X[:, 2] - 0.5) ** 2
                + X[:, 3]
                + 0.5 * X[:, 4]
            )
            e = np.clip(np.sin(np.pi * X[:, 0] * X[:, 1]), 0.1, 0.9)
            tau = (X[:, 0] + X[:, 1]) / 2
        else:
            X = rng.normal(size=(n, d))
            if setup == "B":  # randomized trial
                b = np.maximum.reduce([X[:, 0] + X[:, 1], X[:, 2], np.zeros(n)]) + np.maximum(
                    X[:, 3] + X[:, 4], 0
                )
                e = np.full(n, 0.5)
                tau = X[:, 0] + np.log1p(np.exp(X[:, 1]))
            elif setup == "C":  # easy propensity, difficult baseline, constant effect
                b = 2 * np.log1p(np.exp(X[:, 0] + X[:, 1] + X[:, 2]))
                e = 1 / (1 + np.exp(X[:, 1] + X[:, 2]))
                tau = np.ones(n)
            else:  # D: unrelated treated and control arms
                b = (
                    np.maximum(X[:, 0] + X[:, 1] + X[:, 2], 0) + np.maximum(X[:, 3] + X[:, 4], 0)
                ) / 2
                e = 1 / (1 + np.exp(-X[:, 0]) + np.exp(-X[:, 1]))
                tau = np.maximum(X[:, 0] + X[:, 1] + X[:, 2], 0) - np.maximum(X[:, 3] + X[:, 4], 0)
        w = (rng.random(n) < e).astype(int)
        return _two_arm(
            X, w, b, tau, e, sigma, rng, n_train, "rct" if setup == "B" else "observational"
        )

    return generate


# ------------------------------------------------------------------------ CausalML, EconML
def causalml_synthetic(mode: int, *, p: int = 8, sigma: float = 1.0, adj: float = 0.0):
    """``causalml.dataset.synthetic_data`` (its own implementation of the same paper's
    setups, with ``adj`` shifting the propensity towards control: a small treated arm)."""

    def generate(n_train, n_test, seed) -> Cohort:
        from causalml.dataset import synthetic_data

        np.random.seed(seed)  # CausalML draws from numpy's global generator
        y, X, w, tau, _b, e = synthetic_data(
            mode=mode, n=n_train + n_test, p=p, sigma=sigma, adj=adj
        )
        treatment = np.where(w == 1, "treated", CONTROL).astype(object)
        received = np.where(w == 1, e, 1 - e)
        frame = pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(X.shape[1])])
        return _split(
            frame,
            treatment,
            y,
            received,
            pd.DataFrame({"treated": tau}),
            n_train,
            "rct" if mode == 2 else "observational",
        )

    return generate


def econml_ihdp(surface: str):
    """EconML's ``ihdp_surface_A`` / ``ihdp_surface_B`` (econml.data.dgps): Hill's (2011)
    response surfaces on the IHDP covariates (A: a constant effect of 4; B: heterogeneous,
    exponential control surface). Scored within sample, like IHDP (no fresh people exist)."""

    def generate(n_train, n_test, seed) -> Cohort:
        from econml.data import dgps

        draw = dgps.ihdp_surface_A if surface == "A" else dgps.ihdp_surface_B
        y, w, X, tau = draw(random_state=seed)
        X = np.asarray(X, float)[:, 1:]  # its first column is an intercept
        frame = pd.DataFrame(X, columns=[f"x{i + 1}" for i in range(X.shape[1])])
        treatment = np.where(np.asarray(w) == 1, "treated", CONTROL).astype(object)
        oracle = pd.DataFrame({"treated": np.asarray(tau, float)})
        return Cohort(
            frame, treatment, np.asarray(y, float).ravel(), None, frame, oracle, "observational"
        )

    return generate


# ------------------------------------------------------------------ multi-arm, our designs
ROLES = ("doctor", "nurse", "other")


def multi_arm(
    *,
    arms: int,
    shape: str,
    noise: str = "normal",
    confounded: bool = False,
    small_arm: float | None = None,
):
    """People with a score S (0-54), weekly hours H and a role; ``arms`` arms besides control.

    ``shape="smooth"``: effects vary smoothly with S, H and role (a different mix per arm);
    ``"step"``: effects jump at thresholds of S and H. ``noise="t3"``: Student-t, 3 degrees
    of freedom (scaled to sd 3). ``confounded``: assignment depends on S and role through a
    softmax, and the cohort logs the probability of the arm received. ``small_arm``: the share
    of the last arm (the others split the rest).
    """

    def generate(n_train, n_test, seed) -> Cohort:
        rng = np.random.default_rng(seed)
        n = n_train + n_test
        role = rng.choice(len(ROLES), size=n, p=[0.4, 0.4, 0.2])
        S = np.clip(rng.gamma(4.0, 5.0, size=n), 0, 54)
        H = np.clip(rng.normal(45, 9, size=n), 15, 90)
        age = rng.uniform(22, 67, size=n)
        s, h = (S - 20) / 10, (H - 45) / 9
        effects = []
        for k in range(arms):
            if shape == "smooth":
                coef = np.array([-1.0, 0.6, -0.4, 0.8, -0.3, 0.5])[k % 6]
                effect = (
                    -1.0
                    + 0.3 * k % 1.2
                    + coef * np.tanh(s)
                    + 0.5 * np.sin(h + k)
                    + (0.6 if k % 2 else -0.6) * (role == k % 3)
                )
            else:
                effect = (
                    -0.5
                    - 1.5 * (S > 18 + 4 * k)
                    + 1.0 * (H > 50) * (k % 2)
                    - 0.8 * ((role == 1) & (k % 3 == 0))
                )
            effects.append(effect)
        tau = np.column_stack(effects)
        if confounded:
            logits = np.zeros((n, arms + 1))
            logits[:, 1:] = 0.5 * s[:, None] * np.linspace(-1, 1, arms)[None, :] + 0.7 * (
                role[:, None] == (np.arange(arms)[None, :] % 3)
            )
        else:
            logits = np.zeros((n, arms + 1))
        if small_arm is not None:
            logits[:, -1] += np.log(small_arm * arms / (1 - small_arm))
        prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        codes = (prob.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
        baseline = 1.0 - 0.3 * s + 0.2 * h + 0.5 * s * h + 0.4 * (role == 1) + 0.02 * (age - 45)
        eps = (
            rng.standard_t(3, size=n) / np.sqrt(3.0) * 3.0
            if noise == "t3"
            else rng.normal(0, 3.0, size=n)
        )
        received = np.zeros(n)
        treated = codes > 0
        received[treated] = tau[np.flatnonzero(treated), codes[treated] - 1]
        y = baseline + received + eps
        names = [f"arm{k + 1}" for k in range(arms)]
        treatment = np.asarray([CONTROL, *names], dtype=object)[codes]
        X = pd.DataFrame(
            {
                "score": S.round(),
                "hours": H,
                "age": age,
                "role": pd.Categorical(np.asarray(ROLES)[role], categories=ROLES),
            }
        )
        propensity = prob[np.arange(n), codes]
        return _split(
            X,
            treatment,
            y,
            propensity,
            pd.DataFrame(tau, columns=names),
            n_train,
            "observational" if confounded else "rct",
        )

    return generate


def ihdp(realization: int) -> Cohort:
    frame = load_ihdp(realization)
    X = frame[[f"x{i}" for i in range(1, 26)]].astype(float)
    treatment = np.where(frame["treatment"] == 1, "treated", CONTROL).astype(object)
    oracle = pd.DataFrame({"treated": (frame["mu1"] - frame["mu0"]).to_numpy()})
    return Cohort(
        X, treatment, frame["y_factual"].to_numpy(float), None, X, oracle, "observational"
    )
