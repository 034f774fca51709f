"""``UpliftModel``: the one estimator the project fits, predicts, explains and intervals with."""

from __future__ import annotations


import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from recommender.levels import check_alpha
from recommender.errors import InputError

from ._auto import DEFAULT_FINAL_CANDIDATES, HETEROGENEITY_Z, select_learner
from ._checks import (
    candidate_feature_problems,
    candidate_problems,
    check_training_inputs,
    parameter_problems,
    warn_constant_features,
)
from ._encoding import FeatureEncoder
from ._intervals import (
    AVERAGE_ROWS,
    calibrate_scale,
    dr_squared_error,
    error_floor,
    combine,
    extra_variance,
    held_out_bias_terms,
    jackknife_variance,
)
from ._nuisance import DEFAULT_OUTCOME_CANDIDATES, fit_nuisance

__all__ = ["UpliftModel"]


def _check_parameters(model: "UpliftModel") -> None:
    """The constraint tables (``_checks.PARAMETERS``, the candidates' ``SPEC_FIELDS``),
    checked in one place when fitting."""
    problems = parameter_problems(
        {
            name: getattr(model, name)
            for name in (
                "learner",
                "n_folds",
                "random_state",
                "design",
                "propensity_clip",
                "min_arm_rows",
                "ensemble_size",
                "calibrate_intervals",
                "heterogeneity_z",
                "n_jobs",
            )
        }
    )
    for name in ("outcome_candidates", "final_candidates"):
        problems += candidate_problems(name, getattr(model, name))
    if problems:
        raise InputError("invalid UpliftModel parameters: " + "; ".join(problems))


class UpliftModel(BaseEstimator):
    """Multi-arm uplift model: each arm's effect versus control, with intervals and reasons.

    The first stage (one outcome model per arm, control's fitted once; propensities) is fitted
    once with K-fold cross-fitting and shared by the T-, X- and DR-learners. ``learner="auto"``
    fits every learner and final-stage setting out of fold and keeps the one with the smallest
    cross-validated doubly robust loss (``selection_``); no oracle is read.

    Parameters
    ----------
    learner : {"auto", "t", "x", "dr"}, default "auto"
        Which learner, or choose by the doubly robust criterion.
    control : object, default "none"
        Name of the control (usual care) arm in ``treatment``.
    n_folds : int, default 3
        Folds of the cross-fitting (also the K of the jackknife intervals). Three rather than
        five: on the default scenario (n = 20,000, 6 arms) the same PEHE and policy value in
        half the fitting time; the interval scale is calibrated either way.
    random_state : int, default 0
        Seed of folds and boosters; the same seed gives identical effects.
    design : {"auto", "randomized", "observational"}, default "auto"
        ``"randomized"``: propensities are the arm shares of the data. Otherwise a given
        propensity column is used as is and, without one, a regularized multinomial logistic
        model estimates them (clipped, with a warning naming arms and regions of poor overlap).
    propensity_clip : tuple of float, default (0.01, 1.0)
        Bounds for estimated propensities.
    min_arm_rows : int, default 30
        Smallest arm accepted (at least twice ``n_folds`` is required in any case).
    outcome_candidates : list or tuple of specs, optional
        Regressors tried for each arm's outcome model (defaults: two LightGBM, one ridge and,
        for an arm whose outcomes are all positive, a log-linear model): ``GBMSpec``,
        ``RidgeSpec`` or ``LogLinearSpec``, whose fields ``fit`` checks (``num_leaves >= 2``,
        ``alpha > 0``, ...; see ``_checks.SPEC_FIELDS``).
    final_candidates : list or tuple of specs, optional
        Regressors tried for the X- and DR-learners' final stage: ``GBMSpec`` or
        ``RidgeSpec`` (effects can be negative: no log link), checked likewise.
    heterogeneity_z : float or None, default 1.0
        With the DR-learner among the candidates, an arm is personalized only when its best
        personalized DR final stage beats one effect for everyone by this many standard errors
        of the paired out-of-fold loss; otherwise the arm gets its doubly robust average. None
        personalizes every arm.
    ensemble_size : int, default 3
        Per arm, the effect is the average of up to this many best candidates by the doubly
        robust loss, leaving out any worse than the best by more than two standard errors of
        the paired difference (1 keeps the best alone).
    calibrate_intervals : bool, default True
        Scale the jackknife intervals by a parametric bootstrap of the chosen learners (1.28
        times the fitting time at n = 20,000, ``python -m bench.coverage --interval-cost``; up
        to four replicates on smaller cohorts);
        False keeps the jackknife unscaled (the floor and the held-out bias term still apply).
    n_jobs : int, default 1
        LightGBM threads while fitting (prediction always uses one).

    Attributes
    ----------
    arms_ : list
        Non-control arms, sorted by name; the columns of ``predict_effect``.
    control_ : object
        The control arm.
    learner_ : str
        The learner used ("t", "x" or "dr"; "mixed" when several contribute).
    arm_learners_ : dict
        The learner(s) averaged for each arm, e.g. "x" or "dr+x".
    feature_names_ : list of str
        Feature columns seen at fit.
    selection_ : DataFrame
        Doubly robust loss of every candidate (learner, settings) for every arm, best first;
        ``chosen`` marks the candidates averaged.
    outcome_selection_ : DataFrame
        Held-out error of every outcome-model candidate per arm.
    propensity_source_ : str
        "design shares", "given" or "estimated".
    interval_scale_ : ndarray
        Per-arm factor (>= 1) on the jackknife variance: the arm's ratio of squared error to
        jackknife variance in the parametric bootstrap (see ``_intervals``).
    variance_floor_ : ndarray
        Per-arm sampling variance of the doubly robust average effect; no interval is
        narrower than this.
    error_floor_ : ndarray
        Per-arm least variance of any person's interval (extra terms included): the held-out
        rows' doubly robust estimate of the arm's squared error plus what that estimate
        misses in the bootstrap's worlds, where the worlds agree (0 elsewhere, and with one
        replicate; ``_intervals.error_floor``). ``interval_calibration_`` keeps its parts
        (``held_out_mse``, ``held_out_mse_se``, ``world_miss`` per replicate).
    undetected_variance_ : ndarray
        Per arm given one effect for everyone: the spread of effects it could not rule out
        (0 for personalized arms); times the scale, or half the disagreement or the held-out
        slope term if larger, it is added to every person's variance
        (``_intervals.extra_variance``).
    bias_variance_ : ndarray
        Per-arm squared bias of the out-of-fold effects that the doubly robust pseudo-outcomes
        of the training rows show (their residuals clipped at their 2.5 and 97.5 %
        quantiles): ``bias_average_variance_`` (on average, added to every person's variance)
        plus ``bias_slope_variance_`` (along the effect's ordering: added for a personalized
        arm, one of three candidates for the largest for an arm given one effect for
        everyone; see ``_intervals.held_out_bias_terms``).
    disagreement_variance_ : ndarray
        Per-arm mean squared distance of the candidates whose doubly robust loss is not
        clearly worse than the best's from the chosen effect, out of fold; half of it is added
        to every person's variance (for an arm given one effect for everyone, if the largest
        of three; see ``_intervals``).

    Examples
    --------
    >>> from recommender.uplift._synthetic import make_uplift_cohort
    >>> X, t, y, p, oracle = make_uplift_cohort(1500, arms=("none", "a", "b"), seed=1)
    >>> model = UpliftModel(learner="t", n_folds=3).fit(X, t, y, propensity=p)
    >>> model.predict_effect(X.head(2)).columns.tolist()
    ['a', 'b']
    >>> parts = model.contributions(X.head(2), "a")
    >>> bool(np.allclose(parts.sum(axis=1), model.predict_effect(X.head(2))["a"]))
    True
    """

    def __init__(
        self,
        *,
        learner="auto",
        control="none",
        n_folds=3,
        random_state=0,
        design="auto",
        propensity_clip=(0.01, 1.0),
        min_arm_rows=30,
        outcome_candidates=None,
        final_candidates=None,
        ensemble_size=3,
        heterogeneity_z=HETEROGENEITY_Z,
        calibrate_intervals=True,
        n_jobs=1,
    ):
        self.learner = learner
        self.control = control
        self.n_folds = n_folds
        self.random_state = random_state
        self.design = design
        self.propensity_clip = propensity_clip
        self.min_arm_rows = min_arm_rows
        self.outcome_candidates = outcome_candidates
        self.final_candidates = final_candidates
        self.ensemble_size = ensemble_size
        self.heterogeneity_z = heterogeneity_z
        self.calibrate_intervals = calibrate_intervals
        self.n_jobs = n_jobs

    def check_parameters(self) -> "UpliftModel":
        """Raise :class:`~recommender.errors.InputError` naming every parameter that is not
        accepted, with what is (what :meth:`fit` checks first); returns ``self``. For callers
        that take parameters from a file and must refuse them before any work starts."""
        _check_parameters(self)
        return self

    # ------------------------------------------------------------------ fit
    def fit(self, X, treatment, y, *, propensity=None):
        """Fit the first stage, the learner(s), and the interval scale.

        Parameters
        ----------
        X : DataFrame
            Features (no identifiers, no oracle): number and boolean columns, and text,
            ``string`` or ``category`` columns (categories). Missing values (NaN, None,
            ``pd.NA``) are accepted: the boosters send them down their missing branch, the
            ridge stages use a number's training mean and no category. Refused: infinite
            values, dates and durations (convert them to numbers), complex numbers,
            duplicated column names, a column named ``"base"`` (the baseline column of
            :meth:`contributions`).
        treatment : array-like
            Arm received by each row; must include ``control``. Arms are told apart by their
            text, so ``1`` and ``"1"`` are one arm (and ``1.0`` another); ``arms_`` keeps the
            objects given.
        y : array-like of float
            Outcome (the change from baseline in this project). No missing values.
        propensity : array-like of float, optional
            Probability of the arm each row received, in (0, 1] (1 for a row that could only
            get its arm); used as given. One number per row, not a table of every arm's
            probability, and so nothing that sums to 1 across arms is expected. There are no
            sample weights.

        ``treatment``, ``y`` and ``propensity`` are matched to X's rows by position: one given
        as a pandas Series must have X's index (in X's order), or it is refused rather than
        paired with other people's rows. Every refusal is an
        :class:`~recommender.errors.InputError` (a ``ValueError``) naming the column, arm or
        rows and what is accepted; parameters are checked first (:meth:`check_parameters`).

        Returns
        -------
        self
        """
        self.check_parameters()
        # BLAS threads beyond n_jobs only spin against LightGBM's on a shared machine
        with threadpool_limits(limits=self.n_jobs):
            return self._fit(X, treatment, y, propensity)

    def _fit(self, X, treatment, y, propensity):
        encoder = FeatureEncoder().fit(X)
        problems = [
            said
            for name in ("outcome_candidates", "final_candidates")
            for said in candidate_feature_problems(name, getattr(self, name), encoder.feature_names)
        ]
        if problems:  # before any fit: LightGBM would print its own refusal mid-fit
            raise InputError("invalid UpliftModel parameters: " + "; ".join(problems))
        data = check_training_inputs(
            X,
            treatment,
            y,
            propensity,
            control=self.control,
            min_arm_rows=max(self.min_arm_rows, 2 * self.n_folds),
        )
        M = encoder.transform(X)
        warn_constant_features(M, encoder.feature_names)
        nuisance = fit_nuisance(
            M,
            data.codes,
            data.y,
            data.arms,
            categorical=encoder.categorical_index,
            feature_names=encoder.feature_names,
            propensity=data.propensity,
            design=self.design,
            clip=tuple(self.propensity_clip),
            n_folds=self.n_folds,
            seed=self.random_state,
            n_jobs=self.n_jobs,
            encoder=encoder,
            candidates=tuple(self.outcome_candidates or DEFAULT_OUTCOME_CANDIDATES),
            refit_outcomes=False,
        )
        learners = ("t", "x", "dr") if self.learner == "auto" else (self.learner,)
        estimator, table = select_learner(
            nuisance,
            learners,
            tuple(self.final_candidates or DEFAULT_FINAL_CANDIDATES),
            ensemble_size=self.ensemble_size,
            heterogeneity_z=self.heterogeneity_z,
        )
        self.encoder_ = encoder
        self.all_arms_ = list(data.arms)
        self.control_ = data.control
        self.arms_ = list(data.arms[1:])
        self.feature_names_ = list(encoder.feature_names)
        self.n_features_in_ = len(self.feature_names_)
        self.learner_ = estimator.name
        self.arm_learners_ = dict(zip(self.arms_, estimator.arm_learners))
        self.selection_ = table
        self.outcome_selection_ = pd.DataFrame(
            nuisance.outcome_table, columns=["arm", "settings", "held_out_mse", "chosen"]
        )
        self.propensity_source_ = nuisance.propensity.source
        estimator.merge_boosters()
        self.estimator_ = estimator
        sample = np.random.default_rng(self.random_state).permutation(len(M))[:AVERAGE_ROWS]
        self.typical_variance_ = jackknife_variance(
            estimator.fold_effects(M[np.sort(sample)])
        ).mean(axis=0)
        # no person's effect is known more precisely than the arms' average effect is: the
        # doubly robust average's sampling variance is a floor under every interval
        pseudo = nuisance.pseudo_effects()
        self.variance_floor_ = pseudo.var(axis=0, ddof=1) / len(pseudo)
        # an arm given one effect for everyone: its interval is for a person, not the average
        self.undetected_variance_ = np.asarray(estimator.undetected_variance, dtype=float)
        # bias the re-simulated world cannot show, read off the real data out of fold
        self.bias_average_variance_, self.bias_slope_variance_ = held_out_bias_terms(
            pseudo, estimator.oof, estimator.ranking_oof
        )
        self.bias_variance_ = self.bias_average_variance_ + self.bias_slope_variance_
        # ...and the choice among learners that fit the data about as well
        self.disagreement_variance_ = np.asarray(estimator.disagreement, dtype=float)
        self.interval_scale_ = np.ones(len(self.arms_))
        self.interval_calibration_ = {}
        self.error_floor_ = np.zeros(len(self.arms_))
        if self.calibrate_intervals:
            self.interval_scale_, self.interval_calibration_ = calibrate_scale(
                nuisance,
                estimator,
                design=self.design,
                clip=tuple(self.propensity_clip),
                n_folds=self.n_folds,
                seed=self.random_state,
            )
            # the arm's squared error as the held-out rows read it, corrected by what that
            # reading misses in the bootstrap's worlds where they agree: no person's
            # variance below it
            held_out, held_out_se = dr_squared_error(
                pseudo,
                estimator.oof,
                nuisance.codes,
                nuisance.y,
                nuisance.mu,
                nuisance.propensity.received,
            )
            self.interval_calibration_["held_out_mse"] = held_out
            self.interval_calibration_["held_out_mse_se"] = held_out_se
            self.error_floor_ = error_floor(
                held_out, held_out_se, self.interval_calibration_["world_miss"]
            )
        estimator.release_training_data()
        return self

    # -------------------------------------------------------------- predict
    def _matrix(self, X) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.encoder_.transform(X)

    def predict_effect(self, X) -> pd.DataFrame:
        """Expected outcome under each non-control arm minus under control, per row.

        ``X`` is a DataFrame with the columns seen at fit (``feature_names_``), matched by
        name in any order; a missing or an extra column is refused. A category not seen at
        fit counts as missing; a value of the other kind (a number in a column whose
        categories were text, or text where they were numbers) is refused, as a whole column
        of them would silently be missing. Zero rows give an empty frame. The same holds for
        :meth:`predict_interval` and :meth:`contributions`.

        Returns
        -------
        DataFrame
            Columns ``arms_``, index ``X.index``.
        """
        M = self._matrix(X)
        return pd.DataFrame(self.estimator_.effect(M), index=X.index, columns=self.arms_)

    def predict_interval(self, X, alpha=0.1) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lower and upper bounds of a (1 − alpha) interval for each row's effect.

        Returns
        -------
        (DataFrame, DataFrame)
            Same shape, columns and index as ``predict_effect``.
        """
        alpha = check_alpha(alpha)
        M = self._matrix(X)
        _, lower, upper = self._combine(
            self.estimator_.effect(M), self.estimator_.fold_effects(M), alpha
        )
        return (
            pd.DataFrame(lower, index=X.index, columns=self.arms_),
            pd.DataFrame(upper, index=X.index, columns=self.arms_),
        )

    def combine(self, effect: np.ndarray, fold_effects: np.ndarray, alpha: float):
        """``(lower, upper)`` from the effects (n, arms) and fold effects (K, n, arms): the
        compiled prediction form (``recommender.uplift.compile_effects``) calls this, so its
        intervals are :meth:`predict_interval`'s (see :meth:`_combine`)."""
        _, lower, upper = self._combine(effect, fold_effects, alpha)
        return lower, upper

    def _combine(self, effect: np.ndarray, fold_effects: np.ndarray, alpha: float = 0.1):
        """``(effect, lower, upper)`` from the members' predictions, as ``predict_interval``.

        ``effect``: (n, arms) from the models of all rows; ``fold_effects``: (K, n, arms), each
        fold's models (trained without fold k). A faster path that predicts the members its own
        way calls this to make the very same intervals.
        """
        arms = len(self.arms_)
        # (a model fitted before the bias terms were kept apart: its whole bias as the average)
        extra = extra_variance(
            undetected=getattr(self, "undetected_variance_", np.zeros(arms)),
            scale=self.interval_scale_,
            disagreement=getattr(self, "disagreement_variance_", np.zeros(arms)),
            bias_average=getattr(
                self,
                "bias_average_variance_",
                getattr(self, "bias_variance_", np.zeros(arms)),
            ),
            bias_slope=getattr(self, "bias_slope_variance_", np.zeros(arms)),
        )
        # every person's whole variance at least the arm's error floor (a model fitted before
        # the floor was kept: none)
        error = getattr(self, "error_floor_", np.zeros(arms))
        return combine(
            effect,
            fold_effects,
            typical=self.typical_variance_,
            scale=self.interval_scale_,
            floor=np.maximum(self.variance_floor_, error - extra),
            extra=extra,
            alpha=alpha,
        )

    def _arm_index(self, arm, role: str) -> int:
        for k, known in enumerate(self.all_arms_):
            if str(known) == str(arm):
                return k
        raise InputError(
            f"unknown {role}arm {arm!r}; the model knows {[str(a) for a in self.all_arms_]}"
        )

    def contributions(self, X, arm, versus=None) -> pd.DataFrame:
        """Per-feature contributions to ``effect[arm] − effect[versus]``, plus ``base``.

        Row sums equal ``predict_effect(X)[arm] − predict_effect(X)[versus]`` (an arm's
        effect is 0 for the control) to floating-point precision. The contributions are
        LightGBM's exact TreeSHAP values (or coefficient × centred value for a ridge stage) of
        the very models whose predictions make the effect.

        Parameters
        ----------
        X : DataFrame
        arm : object
            Arm whose effect is explained (matched by its text, as at fit; the control gives
            zeros).
        versus : object, optional
            Arm to compare with; default the control.

        Returns
        -------
        DataFrame
            Columns ``feature_names_`` then ``"base"`` (the part no feature explains), index
            ``X.index``.
        """
        M = self._matrix(X)
        a = self._arm_index(arm, "")
        b = 0 if versus is None else self._arm_index(versus, "versus ")
        out = np.zeros((M.shape[0], len(self.feature_names_) + 1))
        # no rows: nothing to explain (LightGBM's contributions divide by the row count)
        if a != b and len(M):
            if a > 0:
                out += self.estimator_.contrib(M, a - 1)
            if b > 0:
                out -= self.estimator_.contrib(M, b - 1)
        return pd.DataFrame(out, index=X.index, columns=[*self.feature_names_, "base"])
