"""RecommendationModel: the fitted learners for every outcome, bundled with what scoring needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.model._schema import feature_schema, frame_from_schema

__all__ = ["RecommendationModel"]

# Profile columns the catalog's eligibility rules read.
_ELIGIBILITY_COLUMNS = ("role", "specialty", "years_in_practice")


class RecommendationModel:
    """Fitted uplift models for the primary and secondary outcomes, ready to score profiles.

    The primary outcome (follow-up Emotional Exhaustion, change from baseline) decides the
    recommendation: the arm with the lowest expected change, usual care counting as 0, so a
    person is recommended ``none`` when no arm is expected to lower exhaustion. Secondary
    outcomes (Depersonalization, Personal Accomplishment) are reported beside it.

    Parameters
    ----------
    outcome_models : mapping of str to fitted UpliftModel
        Keyed by outcome (``"ee"``, ``"dp"``, ``"pa"``); each exposes ``arms_``,
        ``predict_effect``, ``predict_interval`` and ``contributions``.
    features : list of dict or DataFrame
        The feature schema (see :func:`recommender.model.feature_schema`), or the fitted feature
        frame from which it is taken.
    catalog_version : str
        Version of the intervention catalog the arms come from.
    control : str, default "none"
        The usual-care arm.
    primary : str, default "ee"
        The outcome whose effects decide the recommendation.
    metadata : mapping, optional
        Free facts carried with the model (training run, data hash); JSON-safe values.
    catalog : Catalog, optional
        The intervention catalog the model was trained under; its eligibility rules decide, row
        by row, which arms may be recommended (as the service does). None: every arm may.

    Attributes
    ----------
    arms : tuple of str
        The control arm followed by the treatment arms of the primary model.
    treatment_arms : tuple of str
        The arms other than control, in the primary model's column order.

    Examples
    --------
    >>> model = RecommendationModel(outcome_models=models, features=X, catalog_version="1")  # doctest: +SKIP
    >>> model.score(profiles).columns[:2].tolist()  # doctest: +SKIP
    ['person_id', 'recommended']
    """

    def __init__(self, *, outcome_models: Mapping, features, catalog_version: str,
                 control: str = "none", primary: str = "ee", metadata: Mapping | None = None,
                 catalog=None):
        if primary not in outcome_models:
            raise InputError(
                f"primary outcome {primary!r} has no model; models exist for "
                f"{sorted(outcome_models)}"
            )
        self.outcome_models = dict(outcome_models)
        self.features = (feature_schema(features) if isinstance(features, pd.DataFrame)
                         else [dict(f) for f in features])
        self.catalog_version = str(catalog_version)
        self.control = control
        self.primary = primary
        self.metadata = dict(metadata or {})
        self.catalog = catalog
        primary_arms = [str(a) for a in self.outcome_models[primary].arms_]
        for outcome, learner in self.outcome_models.items():
            if [str(a) for a in learner.arms_] != primary_arms:
                raise InputError(
                    f"the {outcome!r} model has arms {list(learner.arms_)} but the primary "
                    f"{primary!r} model has {primary_arms}; all outcomes must share the arms"
                )
        if control in primary_arms:
            raise InputError(f"control arm {control!r} appears among the treatment arms")
        self.treatment_arms = tuple(primary_arms)
        self.arms = (control, *primary_arms)

    # -- inputs -------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """The feature columns in the order the learners expect."""
        return [f["name"] for f in self.features]

    @property
    def outcomes(self) -> list[str]:
        """The outcomes with a fitted model, primary first."""
        return [self.primary] + [o for o in self.outcome_models if o != self.primary]

    def feature_frame(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """The learners' input built from profile rows (see :func:`frame_from_schema`)."""
        if not isinstance(profiles, pd.DataFrame):
            raise InputError(f"profiles must be a pandas DataFrame, got {type(profiles).__name__}")
        return frame_from_schema(profiles, self.features)

    # -- outputs ------------------------------------------------------------------------------
    def predict_effect(self, profiles: pd.DataFrame, *, outcome: str | None = None) -> pd.DataFrame:
        """Expected change in ``outcome`` (default primary) under each treatment arm versus control."""
        learner = self._learner(outcome)
        return learner.predict_effect(self.feature_frame(profiles))

    def eligibility(self, profiles: pd.DataFrame) -> pd.DataFrame | None:
        """Boolean frame (rows x treatment arms): does the catalog offer the arm to the person?

        None when the model carries no catalog (models trained before it did).
        """
        catalog = getattr(self, "catalog", None)
        if catalog is None:
            return None
        missing = [c for c in _ELIGIBILITY_COLUMNS if c not in profiles.columns]
        if missing:
            raise InputError(f"profiles lack column(s) {missing}, which the catalog's "
                             f"eligibility rules need; required: {list(_ELIGIBILITY_COLUMNS)}")
        from recommender.policy._allocation import eligibility_matrix

        return eligibility_matrix(catalog, profiles, self.treatment_arms)

    def recommend(self, effects: pd.DataFrame, *, offered: Sequence[str] | None = None,
                  eligible: pd.DataFrame | None = None) -> pd.Series:
        """The arm with the lowest expected primary change among those offered (control = 0).

        Parameters
        ----------
        effects : DataFrame
            Primary-outcome effects, one column per treatment arm.
        offered : sequence of str, optional
            Arms that may be recommended; usual care always may. Default: every arm.
        eligible : DataFrame of bool, optional
            Rows x treatment arms (same row order as ``effects``): arms a person may be
            recommended, see :meth:`eligibility`. Default: every arm for everyone.
        """
        allowed = self._offered(offered)
        candidates = [a for a in self.treatment_arms if a in allowed]
        table = np.zeros((len(effects), 1 + len(candidates)))
        if candidates:
            table[:, 1:] = effects[candidates].to_numpy(dtype=float)
            # No estimate (an evidence-only model for a role the evidence does not cover) can
            # never win.
            table[:, 1:] = np.where(np.isnan(table[:, 1:]), np.inf, table[:, 1:])
            if eligible is not None:
                if len(eligible) != len(effects):
                    raise InputError(f"eligible has {len(eligible)} rows but effects has "
                                     f"{len(effects)}")
                mask = eligible[candidates].to_numpy(dtype=bool)
                # An arm the catalog does not offer this person can never win.
                table[:, 1:] = np.where(mask, table[:, 1:], np.inf)
        # argmin takes the first of equal values, and control is first: a tie keeps usual care.
        names = np.array([self.control, *candidates], dtype=object)
        return pd.Series(names[np.argmin(table, axis=1)], index=effects.index, name="recommended")

    def score(self, profiles: pd.DataFrame, *, offered: Sequence[str] | None = None,
              alpha: float = 0.1, contributions: bool = False) -> pd.DataFrame:
        """Score profile rows: recommendation, effects with intervals, secondary effects.

        Parameters
        ----------
        profiles : DataFrame
            Profile columns of the data contract (``person_id`` optional).
        offered : sequence of str, optional
            Arms the program can offer; usual care is always a candidate.
        alpha : float, default 0.1
            Intervals are two-sided ``1 - alpha``.
        contributions : bool, default False
            Add ``contrib_<feature>`` and ``contrib_base``: the additive explanation of the
            recommended arm's effect versus usual care (all 0 when ``none`` is recommended).

        Returns
        -------
        DataFrame
            ``person_id``, ``recommended``, then per treatment arm ``effect_<arm>``,
            ``lower_<arm>``, ``upper_<arm>`` (primary), then ``effect_<outcome>_<arm>`` for each
            secondary outcome, then the contributions if asked; on the index of ``profiles``.
        """
        if not 0 < alpha < 1:
            raise InputError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
        X = self.feature_frame(profiles)
        learner = self._learner(None)
        effects = learner.predict_effect(X)[list(self.treatment_arms)]
        lower, upper = learner.predict_interval(X, alpha=alpha)
        recommended = self.recommend(effects, offered=offered,
                                     eligible=self.eligibility(profiles))

        if "person_id" in profiles.columns:
            person_id = profiles["person_id"].astype(str).to_numpy()
        else:
            person_id = X.index.astype(str).to_numpy()
        out = {"person_id": person_id, "recommended": recommended.to_numpy()}
        for arm in self.treatment_arms:
            out[f"effect_{arm}"] = effects[arm].to_numpy(dtype=float)
            out[f"lower_{arm}"] = lower[arm].to_numpy(dtype=float)
            out[f"upper_{arm}"] = upper[arm].to_numpy(dtype=float)
        for outcome in self.outcomes[1:]:
            secondary = self.outcome_models[outcome].predict_effect(X)
            for arm in self.treatment_arms:
                out[f"effect_{outcome}_{arm}"] = secondary[arm].to_numpy(dtype=float)
        table = pd.DataFrame(out, index=X.index)
        if contributions:
            table = pd.concat([table, self._recommended_contributions(X, recommended)], axis=1)
        return table

    def contributions(self, profiles: pd.DataFrame, arm: str, versus: str | None = None, *,
                      outcome: str | None = None) -> pd.DataFrame:
        """Additive per-feature contributions to ``effect[arm] - effect[versus]`` (delegated)."""
        versus = self.control if versus is None else versus
        for name in (arm, versus):
            if name not in self.arms:
                raise InputError(f"unknown arm {name!r}; the model knows {list(self.arms)}")
        return self._learner(outcome).contributions(self.feature_frame(profiles), arm,
                                                    versus=versus)

    # -- helpers ------------------------------------------------------------------------------
    def _learner(self, outcome):
        outcome = self.primary if outcome is None else outcome
        if outcome not in self.outcome_models:
            raise InputError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        return self.outcome_models[outcome]

    def _offered(self, offered):
        if offered is None:
            return set(self.arms)
        unknown = [a for a in offered if a not in self.arms]
        if unknown:
            raise InputError(f"offered arm(s) {unknown} are not in the model; it knows "
                             f"{list(self.arms)}")
        return set(offered) | {self.control}

    def _recommended_contributions(self, X, recommended):
        columns = [f"contrib_{name}" for name in self.feature_names] + ["contrib_base"]
        table = pd.DataFrame(0.0, index=X.index, columns=columns)
        learner = self._learner(None)
        for arm in self.treatment_arms:
            rows = (recommended == arm).to_numpy()
            if not rows.any():
                continue
            part = learner.contributions(X.loc[rows], arm, versus=self.control)
            part = part.rename(columns=lambda c: f"contrib_{c}")
            table.loc[rows, columns] = part[columns].to_numpy(dtype=float)
        return table

    def __repr__(self) -> str:
        learners = {o: getattr(m, "learner_", type(m).__name__) for o, m in self.outcome_models.items()}
        return (f"RecommendationModel(arms={list(self.arms)}, outcomes={learners}, "
                f"catalog_version={self.catalog_version!r}, features={len(self.features)})")
