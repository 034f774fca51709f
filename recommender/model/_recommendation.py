"""RecommendationModel: the fitted learners for every outcome, bundled with what scoring needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from recommender.cohort import FEATURE_COLUMNS
from recommender.errors import InputError
from recommender.levels import check_alpha
from recommender.model._prediction import Prediction, compile_model, encode_rows
from recommender.model._schema import feature_schema, frame_from_schema
from recommender.model._support import OUTSIDE_COLUMN, support_check
from recommender.policy import JUDGEMENT_COLUMNS

__all__ = ["RecommendationModel", "Prediction", "JUDGEMENT_COLUMNS"]


# A model not yet compiled (None means: its learners cannot be).
_NOT_YET = object()

# Profile columns the catalog's eligibility rules read.
_ELIGIBILITY_COLUMNS = ("role", "specialty", "years_in_practice")


class RecommendationModel:
    """Fitted uplift models for the primary and secondary outcomes, ready to score profiles.

    The primary outcome (follow-up Emotional Exhaustion, change from baseline) decides the
    recommendation: the arm with the lowest expected change, usual care counting as 0, so a
    person is recommended ``none`` when no arm is expected to lower exhaustion. Secondary
    outcomes (Depersonalization, Personal Accomplishment) are reported beside it, each effect
    with its interval as the primary's.

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

    def __init__(
        self,
        *,
        outcome_models: Mapping,
        features,
        catalog_version: str,
        control: str = "none",
        primary: str = "ee",
        metadata: Mapping | None = None,
        catalog=None,
    ):
        if primary not in outcome_models:
            raise InputError(
                f"primary outcome {primary!r} has no model; models exist for "
                f"{sorted(outcome_models)}"
            )
        self.outcome_models = dict(outcome_models)
        self.features = (
            feature_schema(features)
            if isinstance(features, pd.DataFrame)
            else [dict(f) for f in features]
        )
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
    def extra_features(self) -> list[str]:
        """The features read besides the data contract's profile columns (a program's own,
        named in the training config's ``extra_features``): a profile table must have them."""
        return [name for name in self.feature_names if name not in FEATURE_COLUMNS]

    @property
    def outcomes(self) -> list[str]:
        """The outcomes with a fitted model, primary first."""
        return [self.primary] + [o for o in self.outcome_models if o != self.primary]

    def feature_frame(self, profiles: pd.DataFrame) -> pd.DataFrame:
        """The learners' input built from profile rows (see :func:`frame_from_schema`)."""
        if not isinstance(profiles, pd.DataFrame):
            raise InputError(f"profiles must be a pandas DataFrame, got {type(profiles).__name__}")
        return frame_from_schema(profiles, self.features)

    # -- the prediction path: encode once, predict and explain from the encoded rows ------------
    @property
    def compiled(self):
        """The learners compiled for prediction (see :func:`recommender.uplift.compile_effects`).

        Built once, when first asked (registration asks, so a registered model carries it);
        None for learners that cannot be compiled (then the learners answer one by one). A
        model pickled with an older compiled layout compiles again from its learners.
        """
        compiled = self.__dict__.get("_compiled", _NOT_YET)
        if compiled is _NOT_YET or (compiled is not None and not compiled.current):
            self._compiled = compile_model(self)
        return self._compiled

    def encode(self, profiles) -> object:
        """Profile rows (a DataFrame, or validated mappings) as the learners' input, once.

        The result is what :meth:`predict` and :meth:`explain` read: the encoded float matrix
        of the compiled model, or the feature frame of learners that are not compiled.

        Raises
        ------
        InputError
            A missing column or value, an unknown category or a number that is not one, with
            row and column.
        """
        compiled = self.compiled
        if isinstance(profiles, pd.DataFrame):
            X = self.feature_frame(profiles)
            return X if compiled is None else compiled.encode(X)
        if compiled is None:
            return self.feature_frame(pd.DataFrame(list(profiles)))
        return encode_rows(profiles, self.features, compiled.encoder)

    def predict(self, encoded, *, alpha: float = 0.1) -> Prediction:
        """Every arm's effect with its interval, for the primary and the secondary outcomes.

        Parameters
        ----------
        encoded : as returned by :meth:`encode`
        alpha : float
            Intervals are two-sided ``1 - alpha``, for every outcome.
        """
        alpha = check_alpha(alpha)
        arms = list(self.treatment_arms)
        compiled = self.compiled
        if compiled is not None:
            out = compiled.predict(encoded, alpha=alpha, intervals=self.outcomes)
        else:
            out = {}
            for outcome in self.outcomes:
                learner = self.outcome_models[outcome]
                lower, upper = learner.predict_interval(encoded, alpha=alpha)
                out[outcome] = {
                    "effect": learner.predict_effect(encoded)[arms].to_numpy(dtype=float),
                    "lower": lower[arms].to_numpy(dtype=float),
                    "upper": upper[arms].to_numpy(dtype=float),
                }
        primary, secondary = out[self.primary], self.outcomes[1:]
        return Prediction(
            arms=tuple(arms),
            effect=primary["effect"],
            lower=primary["lower"],
            upper=primary["upper"],
            secondary={o: out[o]["effect"] for o in secondary},
            secondary_lower={o: out[o]["lower"] for o in secondary},
            secondary_upper={o: out[o]["upper"] for o in secondary},
        )

    def explain(self, encoded, needs: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
        """Contributions to the primary effect of each arm versus usual care, for the rows asked.

        ``needs`` maps an arm to the positions (rows of ``encoded``) that need its
        contributions; each answer is an array (those rows x features, then ``base``) whose
        rows sum exactly to the arm's effect. Columns: :attr:`feature_names` + ``base``.
        """
        for arm in needs:
            if arm not in self.treatment_arms:
                raise InputError(
                    f"unknown arm {arm!r}; the model explains {list(self.treatment_arms)}"
                )
        compiled = self.compiled
        if compiled is not None:  # one binning of the rows for every arm
            index = {self.treatment_arms.index(arm): rows for arm, rows in needs.items()}
            parts = compiled.explain(encoded, self.primary, index)
            return {arm: parts[self.treatment_arms.index(arm)] for arm in needs}
        learner = self._learner(None)
        return {
            arm: learner.contributions(
                encoded.iloc[np.asarray(positions, dtype=np.intp)], arm, versus=self.control
            ).to_numpy(dtype=float)
            for arm, positions in needs.items()
        }

    # -- outputs ------------------------------------------------------------------------------
    def predict_effect(self, profiles: pd.DataFrame, *, outcome: str | None = None) -> pd.DataFrame:
        """Expected change in ``outcome`` (default primary) under each treatment arm versus control."""
        learner = self._learner(outcome)
        return learner.predict_effect(self.feature_frame(profiles))

    def eligibility(self, profiles: pd.DataFrame, *, catalog=None) -> pd.DataFrame | None:
        """Boolean frame (rows x treatment arms): does the catalog offer the arm to the person?

        ``catalog``: the catalog in force (an arm it lacks is offered to nobody); default the
        model's own. None when there is none (models trained before they carried one).
        """
        catalog = catalog if catalog is not None else getattr(self, "catalog", None)
        if catalog is None:
            return None
        missing = [c for c in _ELIGIBILITY_COLUMNS if c not in profiles.columns]
        if missing:
            raise InputError(
                f"profiles lack column(s) {missing}, which the catalog's "
                f"eligibility rules need; required: {list(_ELIGIBILITY_COLUMNS)}"
            )
        from recommender.policy import eligibility_matrix

        offered = set(catalog.treatment_arms)
        known = [arm for arm in self.treatment_arms if arm in offered]
        matrix = eligibility_matrix(catalog, profiles, known)
        return matrix.reindex(columns=list(self.treatment_arms), fill_value=False)

    def recommend(
        self,
        effects: pd.DataFrame,
        *,
        offered: Sequence[str] | None = None,
        eligible: pd.DataFrame | None = None,
    ) -> pd.Series:
        """The arm with the lowest expected primary change among those offered (control = 0).

        The service's rule (:func:`recommender.policy.best_arm` of the effects as an answer
        ranks them, :func:`recommender.policy.ranked_figures`): usual care wins ties, then the
        catalog's order.

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
        from recommender.policy import best_arm, ranked_figures

        candidates, mask = self._candidates(len(effects), offered, eligible)
        values = ranked_figures(effects[candidates].to_numpy(dtype=float))
        # No estimate (an evidence-only model for a role the evidence does not cover) can
        # never win.
        values = np.where(np.isnan(values), np.inf, values)
        return pd.Series(
            best_arm(values, candidates, control=self.control, allowed=mask),
            index=effects.index,
            name="recommended",
        )

    def recommendable_arms(self, *, offered: Sequence[str] | None = None, catalog=None) -> list:
        """The arms :meth:`score` may recommend: usual care, then the treatment arms it ranks,
        in the catalog's order (``offered`` and ``catalog`` as :meth:`score` takes them). The
        catalog's rules may still offer a person fewer of them."""
        arms, _ = self._candidates(0, offered, None, catalog=catalog)
        return [self.control, *arms]

    def score(
        self,
        profiles: pd.DataFrame,
        *,
        offered: Sequence[str] | None = None,
        alpha: float = 0.1,
        contributions: bool = False,
        max_overlap: float = 0.5,
        catalog=None,
    ) -> pd.DataFrame:
        """Score profile rows: recommendation, every outcome's effects with their intervals.

        Each row's ``recommended``, ``ranking_meaningful`` and ``benefit_established`` are what
        the service's answer for that person says (its ranking's best arm, its
        ``ranking_meaningful``, and whether its note leaves out "a benefit over usual care is
        not established"), for the same offered arms, ``alpha`` and ``max_overlap``: one
        function decides both (:func:`recommender.policy.rank_table`). An answer's
        ``recommended`` is another arm only when the service's exploration serves one.

        Parameters
        ----------
        profiles : DataFrame
            Profile columns of the data contract (``person_id`` optional).
        offered : sequence of str, optional
            Arms the program can offer; usual care is always a candidate.
        alpha : float, default 0.1
            Intervals are two-sided ``1 - alpha``, for every outcome.
        contributions : bool, default False
            Add ``contrib_<feature>`` and ``contrib_base``: the additive explanation of the
            recommended arm's effect versus usual care (all 0 when ``none`` is recommended).
        max_overlap : float, default 0.5
            The service's ``ranking.max_overlap``: a ranking is not meaningful when the two
            best arms' intervals overlap by more than this share of the narrower one.
        catalog : Catalog, optional
            The catalog in force (as the service answers with): only its arms may be
            recommended, to whom its rules offer them, in its order. Default: the model's own.

        Returns
        -------
        DataFrame
            ``person_id``, ``recommended`` (the best-ranked arm; ``none`` = usual care),
            ``ranking_meaningful`` (pandas' nullable boolean: False when the intervals of the
            two best arms overlap by more than ``max_overlap``, so their order is not
            meaningful; missing when usual care is the only arm ranked, so no order was made),
            ``benefit_established`` (bool: True only when the
            recommended arm's whole interval lies below 0, so its benefit over usual care is
            established; False when the interval includes no change and when ``none`` is
            recommended), then per treatment arm ``effect_<arm>``,
            ``lower_<arm>``, ``upper_<arm>`` (primary), then for each secondary outcome and arm
            ``effect_<outcome>_<arm>``, ``lower_<outcome>_<arm>``, ``upper_<outcome>_<arm>``
            (missing where the model has no estimate), then ``outside_training_data`` (the
            fields where the row lies outside the training data, ``;``-separated: empty when
            inside, missing when the model records no support, see
            :func:`recommender.model.support_check`), then the contributions if asked; on the
            index of ``profiles``.
        """
        alpha = check_alpha(alpha)
        if isinstance(max_overlap, bool) or not 0 <= max_overlap <= 1:
            raise InputError(f"max_overlap must lie between 0 and 1, got {max_overlap!r}")
        if not isinstance(profiles, pd.DataFrame):
            raise InputError(f"profiles must be a pandas DataFrame, got {type(profiles).__name__}")
        from recommender.policy import rank_table

        encoded = self.encode(profiles)
        prediction = self.predict(encoded, alpha=alpha)
        arms = list(self.treatment_arms)
        candidates, mask = self._candidates(
            len(profiles),
            offered,
            self.eligibility(profiles, catalog=catalog),
            every_row=True,
            catalog=catalog,
        )
        at = [arms.index(arm) for arm in candidates]
        ranked = rank_table(
            prediction.effect[:, at],
            prediction.lower[:, at],
            prediction.upper[:, at],
            candidates,
            mask,
            control=self.control,
            max_overlap=float(max_overlap),
        )
        recommended = pd.Series(ranked.recommended, index=profiles.index, name="recommended")

        if "person_id" in profiles.columns:
            person_id = profiles["person_id"].astype(str).to_numpy()
        else:
            person_id = profiles.index.astype(str).to_numpy()
        out = {"person_id": person_id, "recommended": ranked.recommended}
        # nullable: no order to judge where usual care alone is ranked, as the answer's null
        meaningful = pd.array(ranked.ranking_meaningful, dtype="boolean")
        out.update(zip(JUDGEMENT_COLUMNS, (meaningful, ranked.benefit_established)))
        for j, arm in enumerate(arms):
            out[f"effect_{arm}"] = prediction.effect[:, j]
            out[f"lower_{arm}"] = prediction.lower[:, j]
            out[f"upper_{arm}"] = prediction.upper[:, j]
        for outcome in self.outcomes[1:]:
            for j, arm in enumerate(arms):
                out[f"effect_{outcome}_{arm}"] = prediction.secondary[outcome][:, j]
                out[f"lower_{outcome}_{arm}"] = prediction.secondary_lower[outcome][:, j]
                out[f"upper_{outcome}_{arm}"] = prediction.secondary_upper[outcome][:, j]
        support = support_check(self)
        # Typed text either way: a column of nothing but missing values has no type to log.
        out[OUTSIDE_COLUMN] = pd.array(
            [None] * len(profiles)
            if support is None
            else [";".join(item["field"] for item in row) for row in support.outside(encoded)],
            dtype="string",
        )
        table = pd.DataFrame(out, index=profiles.index)
        if contributions:
            table = pd.concat(
                [table, self._recommended_contributions(encoded, recommended)], axis=1
            )
        return table

    def contributions(
        self,
        profiles: pd.DataFrame,
        arm: str,
        versus: str | None = None,
        *,
        outcome: str | None = None,
    ) -> pd.DataFrame:
        """Additive per-feature contributions to ``effect[arm] - effect[versus]`` (delegated)."""
        versus = self.control if versus is None else versus
        for name in (arm, versus):
            if name not in self.arms:
                raise InputError(f"unknown arm {name!r}; the model knows {list(self.arms)}")
        return self._learner(outcome).contributions(
            self.feature_frame(profiles), arm, versus=versus
        )

    # -- helpers ------------------------------------------------------------------------------
    def _learner(self, outcome):
        outcome = self.primary if outcome is None else outcome
        if outcome not in self.outcome_models:
            raise InputError(f"unknown outcome {outcome!r}; the model has {self.outcomes}")
        return self.outcome_models[outcome]

    def _offered(self, offered, catalog=None):
        if catalog is not None:  # the catalog in force: its arms the model learnt
            arms = [catalog.control, *(a for a in catalog.treatment_arms if a in self.arms)]
            unknown = [a for a in offered or () if a not in catalog.arm_ids]
            if unknown:
                raise InputError(
                    f"offered: arm(s) {unknown} not in intervention catalog {catalog.version} "
                    f"in force; accepted: {', '.join(catalog.arm_ids)}"
                )
            unlearnt = [a for a in offered or () if a not in arms]
            if unlearnt:
                raise InputError(
                    f"offered: arm(s) {unlearnt} the model never learnt; accepted: "
                    f"{', '.join(arms)}"
                )
            return set(arms if offered is None else offered) | {self.control}
        if offered is None:
            return set(self.arms)
        unknown = [a for a in offered if a not in self.arms]
        if unknown:
            raise InputError(
                f"offered arm(s) {unknown} are not in the model; it knows {list(self.arms)}"
            )
        return set(offered) | {self.control}

    def _candidates(self, rows: int, offered, eligible, *, every_row: bool = False, catalog=None):
        """``(arms, mask)``: the treatment arms that may be recommended, in the catalog's order
        (which breaks ties, as in the service), and which of them each row may get (rows x
        arms, from ``eligible``; None when every row may get every one, unless ``every_row``).
        ``catalog``: the catalog in force, whose arms alone may be (default: the model's)."""
        allowed = self._offered(offered, catalog)
        catalog = catalog if catalog is not None else getattr(self, "catalog", None)
        order = list(catalog.treatment_arms) if catalog is not None else []
        arms = [a for a in order if a in self.treatment_arms]
        arms += [a for a in self.treatment_arms if a not in arms]
        candidates = [a for a in arms if a in allowed]
        if eligible is None:
            return candidates, np.ones((rows, len(candidates)), dtype=bool) if every_row else None
        if len(eligible) != rows:
            raise InputError(f"eligible has {len(eligible)} rows but effects has {rows}")
        # An arm the catalog does not offer this person can never win.
        return candidates, eligible[candidates].to_numpy(dtype=bool)

    def _recommended_contributions(self, encoded, recommended):
        columns = [f"contrib_{name}" for name in self.feature_names] + ["contrib_base"]
        values = np.zeros((len(recommended), len(columns)))
        chosen = recommended.to_numpy()
        needs = {arm: np.flatnonzero(chosen == arm) for arm in self.treatment_arms}
        needs = {arm: rows for arm, rows in needs.items() if rows.size}
        for arm, part in self.explain(encoded, needs).items():
            values[needs[arm]] = part
        return pd.DataFrame(values, index=recommended.index, columns=columns)

    def __repr__(self) -> str:
        learners = {
            o: getattr(m, "learner_", type(m).__name__) for o, m in self.outcome_models.items()
        }
        return (
            f"RecommendationModel(arms={list(self.arms)}, outcomes={learners}, "
            f"catalog_version={self.catalog_version!r}, features={len(self.features)})"
        )
