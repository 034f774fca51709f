"""The evaluation report: one object that MLflow, the model card and the tests all read."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recommender._json import json_safe as _json_safe
from recommender.evaluation._policy_value import Estimate

__all__ = ["EvaluationReport", "metric_key"]

_NOT_IN_KEY = re.compile(r"[^A-Za-z0-9_./ -]")


def metric_key(name: str) -> str:
    """``name`` with every character MLflow refuses in a metric key replaced by ``_``.

    Examples
    --------
    >>> metric_key("policy_value.all:peer group")
    'policy_value.all_peer group'
    """
    return _NOT_IN_KEY.sub("_", name)


def _records(table: pd.DataFrame) -> dict:
    return {str(k): _json_safe(v) for k, v in table.to_dict(orient="index").items()}


def _phrase_single(arm: str, control: str, offered_only: bool = False) -> str:
    if arm == control:
        return "usual care (no intervention) for all"
    if offered_only:
        return f"giving {arm.replace('_', ' ')} to everyone it is offered to"
    return f"giving everyone {arm.replace('_', ' ')}"


def _num(x: float) -> str:
    return f"{x:.2f}"


@dataclass
class EvaluationReport:
    """Everything :func:`recommender.evaluation.evaluate` measured, with its intervals.

    Policy values are mean EE points avoided per person versus usual care for all (higher is
    better); effects are changes in EE versus control (lower is better). Intervals are two-sided
    at level ``1 - alpha``.

    Attributes
    ----------
    policy_values : DataFrame
        Index ``learned``, ``all:<arm>`` for every arm, ``random`` and (with an oracle)
        ``oracle``; columns ``estimate, se, lower, upper, n`` (+ ``true_value``).
    gain : Estimate
        Learned policy value minus the best one-arm-for-all policy value (paired).
    best_single_arm : str
        The single arm with the best value on all the evaluation data.
    comparator_arms : list of str
        The single arm chosen out of fold for each fold of the gain (usually all the same).
    average_effects : DataFrame
        Per arm, mean effect versus control with per-arm and Bonferroni-simultaneous intervals.
    qini : DataFrame
        Per arm, Qini coefficient with interval, ``auuc`` and ``auuc_random``.
    qini_curves : dict[str, DataFrame]
    calibration : DataFrame
        Long table of quantile bins (``arm, bin, n, predicted, observed, se, lower, upper``).
    calibration_slopes : DataFrame
    recommendation_mix : Series
        Share of people recommended each arm (control included).
    pehe : DataFrame or None
        With an oracle: root PEHE, bias, coverage and mean width per arm.
    oracle : dict or None
        With an oracle: ``pehe_mean``, true values, ``regret``, ``share_of_oracle``, coverage.
    subgroups : DataFrame or None
    notes : list of str
        How each number was obtained where a choice was made.
    offered_only : bool
        Whether the one-arm policies and the oracle gave each arm only to the people the
        catalog offers it to (evaluated with the catalog's eligibility).
    """

    alpha: float
    control: str
    arms: tuple[str, ...]
    n: int
    policy_values: pd.DataFrame
    gain: Estimate
    best_single_arm: str
    comparator_arms: list
    average_effects: pd.DataFrame
    qini: pd.DataFrame
    qini_curves: dict
    calibration: pd.DataFrame
    calibration_slopes: pd.DataFrame
    recommendation_mix: pd.Series
    pehe: pd.DataFrame | None = None
    oracle: dict | None = None
    subgroups: pd.DataFrame | None = None
    notes: list = field(default_factory=list)
    offered_only: bool = False

    # ---------------------------------------------------------------- headline answers
    @property
    def personalization_gain(self) -> Estimate:
        """Gain over the best single arm; unpacks as ``(estimate, lower, upper)``."""
        return self.gain

    @property
    def personalization_adds_value(self) -> bool:
        """True only when the gain's lower bound is above 0."""
        return bool(self.gain.lower > 0)

    @property
    def level(self) -> int:
        return round(100 * (1 - self.alpha))

    @property
    def personalization_statement(self) -> str:
        est, lower, upper = self.gain
        versus = _phrase_single(self.best_single_arm, self.control, self.offered_only)
        if set(self.comparator_arms) != {self.best_single_arm}:
            counts = pd.Series(self.comparator_arms).value_counts()
            chosen = ", ".join(f"{arm.replace('_', ' ')} in {k}" for arm, k in counts.items())
            versus = (
                f"the best single arm chosen out of fold ({chosen} of "
                f"{len(self.comparator_arms)} folds)"
            )
        ci = f"{self.level}% CI {_num(lower)} to {_num(upper)}"
        if self.personalization_adds_value:
            return f"Personalization adds {_num(est)} EE points per person ({ci}) over {versus}."
        if upper < 0:
            return (
                f"Personalization does measurably worse than {versus}: gain {_num(est)} "
                f"EE points per person ({ci})."
            )
        return (
            f"Personalization adds nothing measurable over {versus}: gain {_num(est)} "
            f"EE points per person ({ci})."
        )

    @property
    def arms_statement(self) -> str:
        """Which arms are measurably better (or worse) than control, simultaneous intervals."""
        table = self.average_effects
        k = len(table)
        where = f"simultaneous {self.level}% intervals over {k} arm{'s' if k != 1 else ''}"

        def listing(rows):
            return "; ".join(
                f"{arm.replace('_', ' ')} {_num(r.estimate)} EE points "
                f"({_num(r.lower_simultaneous)} to {_num(r.upper_simultaneous)})"
                for arm, r in rows.iterrows()
            )

        better = table[table["upper_simultaneous"] < 0]
        worse = table[table["lower_simultaneous"] > 0]
        parts = []
        if better.empty:
            parts.append(f"No arm is measurably better than {self.control} ({where}).")
        else:
            parts.append(f"Measurably better than {self.control} ({where}): {listing(better)}.")
        if not worse.empty:
            parts.append(f"Measurably worse than {self.control}: {listing(worse)}.")
        return " ".join(parts)

    @property
    def statement(self) -> str:
        """Plain-language honesty statement: the personalization gain, then the arms."""
        return f"{self.personalization_statement} {self.arms_statement}"

    # ---------------------------------------------------------------- tables
    def summary(self) -> pd.DataFrame:
        """One row per headline metric: ``metric, estimate, lower, upper`` (NaN when none)."""
        nan = float("nan")
        rows: list[tuple[str, float, float, float]] = []
        for policy, r in self.policy_values.iterrows():
            rows.append((f"policy_value.{policy.replace(':', '_')}", r.estimate, r.lower, r.upper))
        rows.append(("personalization_gain", *self.gain))
        for arm, r in self.average_effects.iterrows():
            rows.append((f"ate.{arm}", r.estimate, r.lower, r.upper))
        for arm, share in self.recommendation_mix.items():
            rows.append((f"recommendation_share.{arm}", share, nan, nan))
        for arm, r in self.qini.iterrows():
            rows.append((f"qini.{arm}", r.qini, r.lower, r.upper))
            rows.append((f"auuc.{arm}", r.auuc, nan, nan))
        for arm, r in self.calibration_slopes.iterrows():
            rows.append((f"calibration_slope.{arm}", r.estimate, r.lower, r.upper))
        if self.oracle is not None:
            for policy, r in self.policy_values.iterrows():
                rows.append((f"true_value.{policy.replace(':', '_')}", r.true_value, nan, nan))
            for arm, r in self.pehe.iterrows():
                rows.append((f"pehe.{arm}", r.pehe, nan, nan))
                if "coverage" in r.index:
                    rows.append((f"coverage.{arm}", r.coverage, nan, nan))
                    rows.append((f"interval_width.{arm}", r.mean_width, nan, nan))
            if "qini_oracle" in self.qini.columns:
                for arm, r in self.qini.iterrows():
                    rows.append((f"qini_oracle.{arm}", r.qini_oracle, nan, nan))
            for name in ("pehe_mean", "coverage_mean", "mean_width", "regret", "share_of_oracle"):
                if name in self.oracle:
                    rows.append((name, self.oracle[name], nan, nan))
        table = pd.DataFrame(rows, columns=["metric", "estimate", "lower", "upper"])
        table["metric"] = table["metric"].map(metric_key)
        return table.set_index("metric").astype(float)

    def metrics(self) -> dict[str, float]:
        """Flat finite metrics for MLflow: ``<metric>``, ``<metric>.lower``, ``<metric>.upper``.

        Keys use only ``[A-Za-z0-9_./ -]``; ``personalization_adds_value`` is 0 or 1, and so is
        ``personalized.<arm>``: 1 when the arm's predicted effect varies over the rows
        evaluated, 0 when it is one effect for everyone (then ``calibration_slope.<arm>`` has
        no slope to measure and is not logged). MLflow would store a NaN slope, but its searches and
        charts skip NaN, so the run's blank slope beside the 0 says why it is blank.
        """
        out: dict[str, float] = {}
        for name, r in self.summary().iterrows():
            for suffix, value in (("", r.estimate), (".lower", r.lower), (".upper", r.upper)):
                if math.isfinite(value):
                    out[f"{name}{suffix}"] = float(value)
        out["personalization_adds_value"] = float(self.personalization_adds_value)
        if len(self.calibration):
            from recommender.evaluation._constant import is_constant

            # the bins' mean predictions (sorted by prediction) vary iff the predictions do
            for arm, bins in self.calibration.groupby("arm", sort=False):
                one = is_constant(bins["predicted"].to_numpy(dtype=float))
                out[metric_key(f"personalized.{arm}")] = 0.0 if one else 1.0
        return out

    def to_dict(self) -> dict:
        """Nested, JSON-safe (strict: no NaN) view of the whole report."""
        curves = {
            arm: {c: curve[c].tolist() for c in curve.columns}
            for arm, curve in self.qini_curves.items()
        }
        calibration = {
            arm: {
                "slope": self.calibration_slopes.loc[arm].to_dict(),
                "bins": self.calibration[self.calibration["arm"] == arm]
                .drop(columns="arm")
                .to_dict(orient="records"),
            }
            for arm in self.calibration_slopes.index
        }
        body = {
            "alpha": self.alpha,
            "control": self.control,
            "arms": list(self.arms),
            "n": self.n,
            "statement": self.statement,
            "personalization": {
                **self.gain.to_dict(),
                "best_single_arm": self.best_single_arm,
                "comparator_arms": list(self.comparator_arms),
                "adds_value": self.personalization_adds_value,
            },
            "policy_values": _records(self.policy_values),
            "average_effects": _records(self.average_effects),
            "recommendation_mix": self.recommendation_mix.to_dict(),
            "qini": {
                arm: {**row, "curve": curves.get(arm)} for arm, row in _records(self.qini).items()
            },
            "calibration": calibration,
            "oracle": None
            if self.oracle is None
            else {**self.oracle, "per_arm": _records(self.pehe)},
            "subgroups": None
            if self.subgroups is None
            else self.subgroups.to_dict(orient="records"),
            "notes": list(self.notes),
            "metrics": self.metrics(),
        }
        return _json_safe(body)

    # ---------------------------------------------------------------- plots
    def figures(self) -> dict:
        """Matplotlib figures by name: ``policy_values``, ``qini``, ``calibration``, and
        ``subgroups`` when subgroup tables exist. Rendered with Agg, no pyplot state."""
        from recommender.evaluation._plots import report_figures

        return report_figures(self)

    def save_plots(self, folder) -> list[Path]:
        """Write every figure as ``<folder>/<name>.png`` and return the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, figure in self.figures().items():
            path = folder / f"{name}.png"
            figure.savefig(path, dpi=100)  # fixed margins (see _plots): no tight bbox pass
            paths.append(path)
        return paths
