"""Capture, once per cohort, everything an interval rule is made of, so rules replay in seconds.

``UpliftModel(learner="auto")`` is fitted exactly as ``bench.coverage`` fits it, on the same
cohorts (``bench.coverage.draw``). Besides the truth and the model's effects on the test rows,
the capture keeps:

- the fold models' effects on the test rows (their jackknife variance is the interval's core);
- the fitted interval attributes, including the parametric bootstrap's raw per-arm squared
  error and jackknife variance, whose ratio is the variance scale *before* its floor at 1;
- the training rows' doubly robust pseudo-outcomes, the chosen effect out of fold and the
  effect the held-out bias is sought along;
- per selection candidate (every T, X and DR setting and the one-effect-for-everyone DR), its
  out-of-fold effects, its effect on the test rows (the mean of its fold models: a candidate
  not chosen is never refitted on all rows), its loss gap to the best personalized candidate
  and that gap's standard error, and whether it was averaged into an arm;
- per training row, what the pseudo-outcome's noise is made of: the arm received, y, the
  cross-fitted outcome of every arm and the propensity of the arm received (captures made before these fields
  load with them None).
- in the parametric bootstrap's worlds, where the truth is known (ninth pass; None in older
  captures): what the doubly robust estimate of an arm's squared error misses there
  (``world_errors``), and the variance ratio in a second world that plants each personalized
  arm's farthest plausible candidate as truth (``rivals``). The second world is the capture's
  own extra work: its CPU is taken off ``fit_s`` (``with_rival=False`` skips it).
- the same world readings per replicate, and the row-level standard error of what the
  estimate misses in each world (tenth pass; None in older captures): how stable the
  correction is, replicate to replicate and row to row.

The selection's candidates are local to ``select_learner``: the capture records them by
wrapping the learners' constructors in ``recommender.uplift._auto`` for the duration of one
fit (nothing is changed in what they compute; ``tests/test_bench_interval_replay.py`` checks
that the replayed shipped rule gives ``predict_interval``'s bounds bit for bit).
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from unittest import mock

import numpy as np

__all__ = [
    "CohortCapture",
    "capture_cohort",
    "mean_with_error",
    "save",
    "load",
    "load_dir",
    "capture_path",
]


@dataclass
class CohortCapture:
    """One fitted cohort, as the replay needs it. Shapes: ``n`` test rows, ``m`` training
    rows, ``K`` folds, ``C`` candidates, per non-control arm."""

    family: str
    seed: int
    arms: list  # non-control arms, the model's order
    fit_s: float  # CPU seconds of the fit
    truth: np.ndarray  # (n, arms) true effects on the test rows
    effect: np.ndarray  # (n, arms) the model's effects on the test rows
    fold_effects: np.ndarray  # (K, n, arms) the fold models' effects on the test rows
    jackknife: np.ndarray  # (n, arms) their jackknife variance (before shrinking)
    typical_variance: np.ndarray  # (arms,) the fitted attributes, as ``UpliftModel`` names them
    interval_scale: np.ndarray
    variance_floor: np.ndarray
    undetected_variance: np.ndarray
    bias_variance: np.ndarray
    disagreement_variance: np.ndarray
    bootstrap_mse: np.ndarray  # (arms,) the bootstrap's raw figures (``interval_calibration_``)
    bootstrap_jackknife_variance: np.ndarray
    pooled_ratio: float
    replicates: int
    pseudo: np.ndarray  # (m, arms) doubly robust pseudo-effects of the training rows
    oof: np.ndarray  # (m, arms) the chosen effect out of fold
    ranking_oof: np.ndarray  # (m, arms) the effect the held-out bias is sought along
    candidate_names: list  # (C,) "t", "x", "dr"
    candidate_labels: list  # (C,) their settings
    candidate_constant: np.ndarray  # (C,) bool, the one-effect-for-everyone DR
    candidate_oof: np.ndarray  # (C, m, arms)
    candidate_test: np.ndarray  # (C, n, arms) mean of each candidate's fold models
    candidate_loss: np.ndarray  # (C, arms) doubly robust loss out of fold
    candidate_gap: np.ndarray  # (C, arms) loss minus the best personalized candidate's
    candidate_gap_se: np.ndarray  # (C, arms) standard error of the paired difference
    candidate_chosen: np.ndarray  # (C, arms) bool, averaged into the arm's effect
    # what the pseudo-outcome's own noise is made of (eighth pass; None in older captures):
    # per training row the arm received (0: control), y, the cross-fitted outcome of every arm
    # (control first) and the propensity ψ divides by (``Propensity.received``)
    codes: np.ndarray | None = None  # (m,)
    y: np.ndarray | None = None  # (m,)
    mu: np.ndarray | None = None  # (m, arms + 1)
    received: np.ndarray | None = None  # (m,)
    # the parametric bootstrap's world, where the truth (the planted effect) is known (ninth
    # pass; None in older captures), per arm, averaged over the replicates: the world's
    # cross-fitted plug-in μ*_a − μ*_0 against the planted effect (E[δ*²]), the refitted
    # chosen effect out of fold against it, and the world's doubly robust estimate of that
    # squared error (``bench.interval_errors.dr_error``'s formula on the world's rows)
    world_plugin_mse: np.ndarray | None = None  # (arms,)
    world_oof_mse: np.ndarray | None = None  # (arms,)
    world_dr: np.ndarray | None = None  # (arms,)
    # ...and a second world whose truth is, for each personalized arm, a rival's effect: the
    # plausible candidate (personalized, not clearly worse than the best; a member of the
    # arm's ensemble counts) farthest out of fold from the chosen effect, its fold models' mean on the
    # training rows (``rival_world``); the chosen learners refitted there, as many replicates
    # as the shipped bootstrap, the same reshuffles. Arms with no rival plant the chosen effect.
    rival: np.ndarray | None = None  # (arms,) index of the rival candidate, -1: none
    rival_distance: np.ndarray | None = None  # (arms,) its mean squared distance out of fold
    rival_mse: np.ndarray | None = None  # (arms,) squared error against the planted rival
    rival_jackknife_variance: np.ndarray | None = None  # (arms,) mean shrunk jackknife there
    # the world readings per replicate (tenth pass; None in older captures), (R, arms) each:
    # E[δ*²], the refitted effect's squared error out of fold, the world's DR estimate of it,
    # and the standard error over the world's rows of what that estimate misses (``world_miss``)
    replicate_plugin_mse: np.ndarray | None = None
    replicate_oof_mse: np.ndarray | None = None
    replicate_dr: np.ndarray | None = None
    replicate_miss_se: np.ndarray | None = None
    # the held-out bias terms as each world reads them (eleventh pass; None in older
    # captures), (R, arms) each: ``_intervals.held_out_bias_terms`` of the world's
    # pseudo-outcomes against the refitted effect out of fold, along that effect itself (for
    # an arm given one effect for everyone the effect is constant and both terms are about 0)
    replicate_bias_average: np.ndarray | None = None
    replicate_bias_slope: np.ndarray | None = None

    @property
    def raw_scale(self) -> np.ndarray:
        """The bootstrap's per-arm ratio of squared error to jackknife variance before the
        floor at 1 (a ratio that is not finite takes the pooled one, as ``calibrate_scale``)."""
        if self.replicates == 0:  # not calibrated
            return np.ones(len(self.arms))
        ratio = self.bootstrap_mse / np.maximum(self.bootstrap_jackknife_variance, 1e-12)
        pooled = self.pooled_ratio if np.isfinite(self.pooled_ratio) else 1.0
        return np.where(np.isfinite(ratio), ratio, pooled)


def _loss_gaps(pseudo, candidate_oof, constant):
    """(loss, gap, se), each (C, arms): each candidate's doubly robust loss, its gap to the best
    personalized candidate of the arm and the standard error of the paired difference (as the
    selection's ``_clearly_worse`` computes them)."""
    squared = (pseudo[None] - candidate_oof) ** 2
    loss = squared.mean(axis=1)
    loss[~np.isfinite(loss)] = np.inf
    gap = np.full(loss.shape, np.inf)
    se = np.full(loss.shape, np.nan)
    personalized = np.flatnonzero(~constant)
    for j in range(loss.shape[1]):
        finite = [c for c in personalized if np.isfinite(loss[c, j])]
        if not finite:
            continue
        best = min(finite, key=lambda c: loss[c, j])
        for c in range(loss.shape[0]):
            difference = squared[c, :, j] - squared[best, :, j]
            gap[c, j] = difference.mean()
            se[c, j] = difference.std(ddof=1) / np.sqrt(len(difference))
    return loss, gap, se


def world_errors(world, planted, oof) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per arm, in one re-simulated world with known truth ``planted`` (m, arms): the
    cross-fitted plug-in's mean squared error, the refitted effect's out of fold (``oof``),
    and the doubly robust estimate of the latter, mean((ψ* − τ̂*_oof)² − r*²)."""
    codes = np.asarray(world.codes)
    rows = np.arange(len(codes))
    mu = np.asarray(world.mu, float)
    plugin = mu[:, 1:] - mu[:, :1]
    residual = (world.y - mu[rows, codes]) / world.propensity.received
    pseudo = world.pseudo_effects()
    dr = np.zeros(planted.shape[1])
    for j in range(planted.shape[1]):
        noise = np.where((codes == 0) | (codes == j + 1), residual**2, 0.0)
        per_row = (pseudo[:, j] - oof[:, j]) ** 2 - noise
        dr[j] = per_row[np.isfinite(per_row)].mean()
    return (
        ((plugin - planted) ** 2).mean(axis=0),
        ((oof - planted) ** 2).mean(axis=0),
        dr,
    )


def world_miss(world, planted, oof) -> tuple[np.ndarray, np.ndarray]:
    """Per arm, in one re-simulated world: what the doubly robust estimate of the refitted
    effect's squared error misses there, κ* = mean((τ̂*_oof − τ*)² − ((ψ* − τ̂*_oof)² − r*²))
    (``world_errors``' second figure minus its third, on the rows where both are finite), and
    its standard error over those rows (ddof 1; fewer than 3 rows: inf)."""
    codes = np.asarray(world.codes)
    rows = np.arange(len(codes))
    mu = np.asarray(world.mu, float)
    residual = (world.y - mu[rows, codes]) / world.propensity.received
    pseudo = world.pseudo_effects()
    miss, se = np.zeros(planted.shape[1]), np.full(planted.shape[1], np.inf)
    for j in range(planted.shape[1]):
        noise = np.where((codes == 0) | (codes == j + 1), residual**2, 0.0)
        per_row = (oof[:, j] - planted[:, j]) ** 2 - ((pseudo[:, j] - oof[:, j]) ** 2 - noise)
        miss[j], se[j] = mean_with_error(per_row)
    return miss, se


def world_bias_terms(world, oof) -> tuple[np.ndarray, np.ndarray]:
    """Per arm, in one re-simulated world: the held-out bias terms (average, slope) that the
    library reads off real data (``_intervals.held_out_bias_terms``), read off the world's
    pseudo-outcomes against the refitted effect out of fold, along that effect. The world's
    truth is the planted effect, so what these terms read there is shrinkage and offset that
    the world reproduces, and that its variance scale already holds."""
    from recommender.uplift._intervals import held_out_bias_terms

    return held_out_bias_terms(np.asarray(world.pseudo_effects(), float), oof, oof)


def mean_with_error(per_row: np.ndarray) -> tuple[float, float]:
    """The mean of the finite values and its standard error (ddof 1); (0, inf) with fewer
    than 3 finite values."""
    per_row = per_row[np.isfinite(per_row)]
    if len(per_row) < 3:
        return 0.0, np.inf
    return float(per_row.mean()), float(per_row.std(ddof=1) / np.sqrt(len(per_row)))


@contextmanager
def _recording_worlds():
    """Within the block, every re-simulated world of the parametric bootstrap is measured
    against its planted effect (``world_errors``) and appended to the yielded list."""
    from recommender.uplift import _intervals

    worlds: list = []
    real_refit = _intervals.refit_chosen

    def refit(world, chosen):
        refitted = real_refit(world, chosen)
        planted = np.asarray(chosen.effect(world.M), float)
        oof = np.asarray(refitted.oof, float)
        worlds.append(
            (
                *world_errors(world, planted, oof),
                world_miss(world, planted, oof)[1],
                *world_bias_terms(world, oof),
            )
        )
        return refitted

    with mock.patch.object(_intervals, "refit_chosen", refit):
        yield worlds


class _Planted:
    """The chosen learners with another effect planted as the re-simulated world's truth
    (what ``_intervals._replicate`` reads of ``chosen``: its learners and ``effect(M)``)."""

    def __init__(self, chosen, planted):
        self.chosen = chosen.chosen
        self._planted = planted

    def effect(self, M):
        assert len(M) == len(self._planted)
        return self._planted


def rivals(candidates, pseudo, chosen_oof, chosen_ids, constant) -> tuple[list, np.ndarray]:
    """Per arm, the index of the plausible candidate farthest from the chosen effect out of
    fold (-1: none) and that distance. Plausible: personalized, finite loss, not clearly worse
    than the best personalized candidate (the selection's ``_clearly_worse``). A candidate
    averaged into the arm counts (the roughest member of an ensemble is a rival of the
    average); the chosen effect itself is at distance 0 and never picked. ``chosen_ids`` is
    kept for the record's shape (per arm, the ids of the candidates averaged)."""
    from recommender.uplift._auto import _clearly_worse

    arms = chosen_oof.shape[1]
    picked, distance = [-1] * arms, np.zeros(arms)
    for j in range(arms):
        squared = {
            c: (pseudo[:, j] - learner.oof[:, j]) ** 2
            for c, learner in enumerate(candidates)
            if not constant[c] and np.isfinite(((pseudo[:, j] - learner.oof[:, j]) ** 2).mean())
        }
        if not squared:
            continue
        best = min(squared, key=lambda c: squared[c].mean())
        for c in squared:
            if _clearly_worse(squared[c], squared[best]):
                continue
            d = float(np.mean((candidates[c].oof[:, j] - chosen_oof[:, j]) ** 2))
            if d > distance[j]:
                picked[j], distance[j] = c, d
    return picked, distance


@contextmanager
def _recording_rival_world(record):
    """After the shipped bootstrap, the same replicates once more with each personalized arm's
    rival effect planted (``rivals``); the results go into ``record["rival_world"]``."""
    from recommender.uplift import _intervals, _model
    from recommender.uplift._regressors import ConstantSpec

    real = _model.calibrate_scale

    def calibrate(nuisance, chosen, **kwargs):
        scale, details = real(nuisance, chosen, **kwargs)
        start = time.process_time()
        candidates = record["candidates"]
        constant = [isinstance(getattr(c, "spec", None), ConstantSpec) for c in candidates]
        picked, distance = rivals(
            candidates, record["pseudo"], np.asarray(chosen.oof, float), record["chosen"], constant
        )
        planted = np.array(chosen.effect(nuisance.M), dtype=float)
        for j, c in enumerate(picked):
            if c >= 0 and chosen.undetected_variance[j] == 0:
                planted[:, j] = candidates[c].fold_effects(nuisance.M).mean(axis=0)[:, j]
            else:
                picked[j] = -1
        replicates = details.get("replicates", 0)
        error, variance = 0.0, 0.0
        for r in range(replicates):
            e, v, _ = _intervals._replicate(
                nuisance,
                _Planted(chosen, planted),
                design=kwargs["design"],
                clip=kwargs["clip"],
                n_folds=kwargs["n_folds"],
                seed=kwargs["seed"],
                replicate=r,
                max_rows=_intervals.AVERAGE_ROWS,
            )
            error, variance = error + e, variance + v
        record["rival_s"] = time.process_time() - start  # not the model's: off its fit time
        record["rival_world"] = (
            np.array(picked),
            distance,
            np.asarray(error / max(replicates, 1), float),
            np.asarray(variance / max(replicates, 1), float),
        )
        return scale, details

    with mock.patch.object(_model, "calibrate_scale", calibrate):
        yield


@contextmanager
def _recording_selection():
    """Within the block, every candidate ``select_learner`` builds and what the selection
    saw (pseudo-outcomes, the chosen effect out of fold) are recorded in the yielded dict."""
    from recommender.uplift import _auto, _model

    record: dict = {"candidates": []}

    def recording(cls):
        def build(*args, **kwargs):
            learner = cls(*args, **kwargs)
            record["candidates"].append(learner)
            return learner

        return build

    real_select = _model.select_learner

    def select(nuisance, *args, **kwargs):
        chosen, table = real_select(nuisance, *args, **kwargs)
        # copied now: the model drops its training arrays at the end of fit
        record["pseudo"] = np.array(nuisance.pseudo_effects(), dtype=float)
        record["codes"] = np.array(nuisance.codes, dtype=np.int64)
        record["y"] = np.array(nuisance.y, dtype=float)
        record["mu"] = np.array(nuisance.mu, dtype=float)
        record["received"] = np.array(nuisance.propensity.received, dtype=float)
        record["oof"] = np.array(chosen.oof, dtype=float)
        record["ranking_oof"] = np.array(chosen.ranking_oof, dtype=float)
        record["candidate_oof"] = np.stack(
            [np.array(c.oof, dtype=float) for c in record["candidates"]]
        )
        record["chosen"] = [[id(learner) for learner in arm] for arm in chosen.chosen]
        return chosen, table

    with ExitStack() as stack:
        for name in ("TLearner", "XLearner", "DRLearner"):
            stack.enter_context(mock.patch.object(_auto, name, recording(getattr(_auto, name))))
        stack.enter_context(mock.patch.object(_model, "select_learner", select))
        yield record


def capture_cohort(
    cohort, *, family: str = "", seed: int = -1, with_rival: bool = True, **model_params
) -> CohortCapture:
    """Fit ``UpliftModel(learner="auto", **model_params)`` on ``cohort`` (a
    ``bench.coverage.Cohort``) as ``bench.coverage`` does, and capture it (``with_rival``:
    also the second, rival world, which doubles the bootstrap's work)."""
    from recommender.uplift import UpliftModel
    from recommender.uplift._intervals import jackknife_variance
    from recommender.uplift._regressors import ConstantSpec

    model = UpliftModel(learner="auto", **model_params)
    with _recording_selection() as record, _recording_worlds() as worlds:
        with _recording_rival_world(record) if with_rival else ExitStack():
            start = time.process_time()
            model.fit(cohort.X, cohort.treatment, cohort.y, propensity=cohort.propensity)
            fit_s = time.process_time() - start - record.pop("rival_s", 0.0)
    # the shipped bootstrap's worlds come first; the rival world's replicates after them
    rival_world = record.pop("rival_world", None)
    worlds = worlds[
        : len(worlds)
        - (rival_world is not None) * int(model.interval_calibration_.get("replicates", 0))
    ]
    arms = list(model.arms_)
    M = model._matrix(cohort.X_test)
    effect = model.estimator_.effect(M)
    fold_effects = model.estimator_.fold_effects(M)
    candidates = record.pop("candidates")
    constant = np.array([isinstance(getattr(c, "spec", None), ConstantSpec) for c in candidates])
    chosen = np.array([[id(c) in arm for arm in record["chosen"]] for c in candidates], dtype=bool)
    loss, gap, se = _loss_gaps(record["pseudo"], record["candidate_oof"], constant)
    calibration = model.interval_calibration_
    return CohortCapture(
        family=family,
        seed=int(seed),
        arms=[str(a) for a in arms],
        fit_s=float(fit_s),
        truth=cohort.oracle[arms].to_numpy(float),
        effect=effect,
        fold_effects=fold_effects,
        jackknife=jackknife_variance(fold_effects),
        typical_variance=np.asarray(model.typical_variance_, float),
        interval_scale=np.asarray(model.interval_scale_, float),
        variance_floor=np.asarray(model.variance_floor_, float),
        undetected_variance=np.asarray(model.undetected_variance_, float),
        bias_variance=np.asarray(model.bias_variance_, float),
        disagreement_variance=np.asarray(model.disagreement_variance_, float),
        bootstrap_mse=np.asarray(calibration.get("bootstrap_mse", np.ones(len(arms))), float),
        bootstrap_jackknife_variance=np.asarray(
            calibration.get("bootstrap_jackknife_variance", np.ones(len(arms))), float
        ),
        pooled_ratio=float(calibration.get("pooled_ratio", 1.0)),
        replicates=int(calibration.get("replicates", 0)),
        pseudo=record["pseudo"],
        oof=record["oof"],
        ranking_oof=record["ranking_oof"],
        candidate_names=[c.name for c in candidates],
        candidate_labels=[str(c.label) for c in candidates],
        candidate_constant=constant,
        candidate_oof=record["candidate_oof"],
        candidate_test=np.stack([c.fold_effects(M).mean(axis=0) for c in candidates]),
        candidate_loss=loss,
        candidate_gap=gap,
        candidate_gap_se=se,
        candidate_chosen=chosen,
        codes=record["codes"],
        y=record["y"],
        mu=record["mu"],
        received=record["received"],
        world_plugin_mse=np.mean([w[0] for w in worlds], axis=0) if worlds else None,
        world_oof_mse=np.mean([w[1] for w in worlds], axis=0) if worlds else None,
        world_dr=np.mean([w[2] for w in worlds], axis=0) if worlds else None,
        rival=rival_world[0] if rival_world else None,
        rival_distance=rival_world[1] if rival_world else None,
        rival_mse=rival_world[2] if rival_world else None,
        rival_jackknife_variance=rival_world[3] if rival_world else None,
        replicate_plugin_mse=np.array([w[0] for w in worlds]) if worlds else None,
        replicate_oof_mse=np.array([w[1] for w in worlds]) if worlds else None,
        replicate_dr=np.array([w[2] for w in worlds]) if worlds else None,
        replicate_miss_se=np.array([w[3] for w in worlds]) if worlds else None,
        replicate_bias_average=np.array([w[4] for w in worlds]) if worlds else None,
        replicate_bias_slope=np.array([w[5] for w in worlds]) if worlds else None,
    )


# ------------------------------------------------------------------------------ storage
_META = ("family", "seed", "arms", "fit_s", "pooled_ratio", "replicates")
_LISTS = ("candidate_names", "candidate_labels")


def capture_path(directory, family: str, seed: int) -> Path:
    return Path(directory) / f"{family}__{seed}.npz"


def save(capture: CohortCapture, path) -> None:
    """One compressed ``.npz`` per cohort, written whole or not at all."""
    meta = {name: getattr(capture, name) for name in (*_META, *_LISTS)}
    arrays = {
        f.name: getattr(capture, f.name)
        for f in fields(capture)
        if f.name not in _META and f.name not in _LISTS and getattr(capture, f.name) is not None
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(partial, meta=np.array(json.dumps(meta)), **arrays)
    partial.replace(path)


def load(path) -> CohortCapture:
    with np.load(path, allow_pickle=False) as stored:
        meta = json.loads(str(stored["meta"]))
        arrays = {name: stored[name] for name in stored.files if name != "meta"}
    return CohortCapture(**meta, **arrays)


def load_dir(directory) -> dict[str, list[CohortCapture]]:
    """Every capture under ``directory``, by family (bench.coverage's order), seeds ascending."""
    from bench.coverage import FAMILIES

    captures: dict[str, list[CohortCapture]] = {}
    for path in sorted(Path(directory).glob("*__*.npz")):
        if path.name.endswith(".partial.npz"):
            continue
        capture = load(path)
        captures.setdefault(capture.family, []).append(capture)
    order = [f.name for f in FAMILIES]
    return {
        name: sorted(captures[name], key=lambda c: c.seed)
        for name in sorted(captures, key=lambda n: order.index(n) if n in order else len(order))
    }
