"""A model retrained from the program's log that keeps, for arms the log cannot yet support,
the estimates of the model it replaces.

A retraining learns an arm only from enough logged rows. An arm served too rarely (explored
among a small group, say) used to vanish from the retrained model, and a service never offers
an arm its model lacks: the log could then never gather the rows to learn it, the opposite of
what a learning loop is for. Here such an arm keeps the previous model's effect and interval
(ultimately the evidence-only model's, from the catalog's published trials), so it stays
ranked, offered and explorable within equipoise until the log supports learning it.

:func:`carry_arms` builds the model: one :class:`CarriedEffects` per outcome (the learnt
arms from the newly fitted learner, each carried arm from the learner that gave the previous
model its estimate), in a :class:`CarriedModel`, whose compiled form keeps the learnt arms'
one-pass prediction. ``metadata["arm_sources"]`` says, per arm, where its estimate comes
from; :func:`recommender.model.estimate_basis` says it in answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from recommender.levels import two_sided_z
from recommender.errors import InputError
from recommender.model._evidence import EvidenceEffects
from recommender.model._recommendation import RecommendationModel
from recommender.model._renamed import RenamedArms

__all__ = [
    "CarriedArm",
    "CarriedEffects",
    "CarriedModel",
    "arm_source",
    "carry_arms",
    "learnt_arms",
]

# The compiled form's layout (a pickled form of another one is compiled again).
_FORM = 1

# A model not yet compiled (None means: it cannot be).
_NOT_YET = object()


@dataclass(frozen=True)
class CarriedArm:
    """Where one carried arm's estimate comes from: a fitted learner and the features it reads.

    ``learner`` is None when the previous model had no estimate for this outcome (the
    evidence-only model has none for DP and PA): the arm then has no figure for it.
    ``learnt_as`` is the arm's id in ``learner`` when it differs from the id it is carried
    under (the catalog renamed it since: ``renamed_from``); None, the same id.
    """

    learner: object
    features: tuple
    learnt_as: str | None = None

    def frame(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[list(self.features)]

    def own(self, arm: str) -> str:
        """``arm``'s id in ``learner``."""
        return self.learnt_as or arm


class CarriedEffects:
    """Learner face of learnt arms plus carried ones, for one outcome.

    Has the learners' interface the recommendation bundle uses (``arms_``, ``predict_effect``,
    ``predict_interval``, ``contributions``) over the new model's feature frame.

    Parameters
    ----------
    learnt : fitted UpliftModel
        The learner fitted on the log; its arms are the learnt ones.
    carried : mapping of str to CarriedArm
        The arms kept from the previous model.
    arms : sequence of str
        Every treatment arm, in the order the model ranks them (the catalog's).
    """

    def __init__(self, learnt, carried: Mapping[str, CarriedArm], *, arms: Sequence[str]):
        self.learnt = learnt
        self.carried = dict(carried)
        self.arms_ = np.array([str(a) for a in arms], dtype=object)
        known = {str(a) for a in learnt.arms_} | set(self.carried)
        if set(self.arms_) != known or len(self.arms_) != len(known):
            raise InputError(
                f"arms {list(self.arms_)} must be the learnt arms {list(learnt.arms_)} and the "
                f"carried arms {sorted(self.carried)}, each once"
            )
        self.feature_names_ = list(learnt.feature_names_)
        for arm, source in self.carried.items():
            extra = sorted(set(source.features) - set(self.feature_names_))
            if extra:
                raise InputError(
                    f"the estimate carried for {arm!r} reads features {extra} the retrained "
                    f"model does not have ({self.feature_names_})"
                )

    @property
    def learner_(self) -> str:
        inner = getattr(self.learnt, "learner_", type(self.learnt).__name__)
        return f"{inner}; carried over: {', '.join(self.carried)}"

    @property
    def selection_(self):
        """The learnt part's model-selection table (what MLflow logs), if it has one."""
        return getattr(self.learnt, "selection_", None)

    def _columns(self, X, learnt_table, carried_value) -> pd.DataFrame:
        out = pd.DataFrame(np.nan, index=X.index, columns=list(self.arms_))
        for arm in self.learnt.arms_:
            out[str(arm)] = learnt_table[arm].to_numpy(dtype=float)
        for arm, source in self.carried.items():
            if source.learner is not None:
                out[arm] = carried_value(source, arm)
        return out

    def predict_effect(self, X: pd.DataFrame) -> pd.DataFrame:
        return self._columns(
            X,
            self.learnt.predict_effect(X),
            lambda s, arm: s.learner.predict_effect(s.frame(X))[s.own(arm)].to_numpy(dtype=float),
        )

    def predict_interval(self, X: pd.DataFrame, alpha: float = 0.1):
        lower, upper = self.learnt.predict_interval(X, alpha=alpha)
        bounds = {}

        def side(k):
            def value(source, arm):
                if id(source) not in bounds:
                    bounds[id(source)] = source.learner.predict_interval(
                        source.frame(X), alpha=alpha
                    )
                return bounds[id(source)][k][source.own(arm)].to_numpy(dtype=float)

            return value

        return self._columns(X, lower, side(0)), self._columns(X, upper, side(1))

    def contributions(self, X: pd.DataFrame, arm: str, versus: str = "none") -> pd.DataFrame:
        """Additive parts of ``effect[arm] − effect[versus]`` over this model's features."""
        columns = [*self.feature_names_, "base"]

        def versus_control(name) -> pd.DataFrame:
            if name in self.carried:
                source = self.carried[name]
                if source.learner is None:
                    raise InputError(f"arm {name!r} has no estimate for this outcome to explain")
                part = source.learner.contributions(source.frame(X), source.own(name))
                return part.reindex(columns=columns, fill_value=0.0)
            if name in {str(a) for a in self.learnt.arms_}:
                return self.learnt.contributions(X, name).reindex(columns=columns, fill_value=0.0)
            return pd.DataFrame(0.0, index=X.index, columns=columns)  # usual care

        return versus_control(str(arm)) - versus_control(str(versus))


def learnt_arms(model) -> list[str]:
    """The treatment arms whose primary estimates the model learnt from its own data."""
    learner = model.outcome_models[model.primary]
    if isinstance(learner, CarriedEffects):
        return [str(a) for a in learner.learnt.arms_]
    return [str(a) for a in model.treatment_arms]


def arm_source(model, outcome: str, arm: str) -> CarriedArm | None:
    """The learner that gives ``model`` its ``outcome`` estimate for ``arm``, or None.

    A carried arm's source is the one it was carried from, so carrying again never nests
    models inside models. ``model`` may be the view :func:`~recommender.model.served_under`
    gives (an arm the catalog in force renamed, under its new id): the source is then the
    learner of the model as learnt, which knows the arm by its former id (``learnt_as``).
    """
    if isinstance(model, RenamedArms):
        former = {new: old for old, new in model.renames.items()}.get(arm)
        if former is None:
            return arm_source(model.wrapped, outcome, arm)
        source = arm_source(model.wrapped, outcome, former)
        if source is None or source.learnt_as is not None:
            return source  # carried before: already says its learner's own id
        return replace(source, learnt_as=former)
    learner = model.outcome_models.get(outcome)
    if learner is None:
        return None
    if isinstance(learner, CarriedEffects):
        if arm in learner.carried:
            return learner.carried[arm]
        learner = learner.learnt
        if arm not in {str(a) for a in learner.arms_}:
            return None
        return CarriedArm(learner, tuple(learner.feature_names_))
    if arm not in {str(a) for a in learner.arms_}:
        return None
    return CarriedArm(learner, tuple(model.feature_names))


def carry_arms(model, carried: Mapping[str, tuple], *, arm_order: Sequence[str]) -> "CarriedModel":
    """``model`` (fitted on the log) with ``carried`` arms kept from earlier models.

    Parameters
    ----------
    model : RecommendationModel
        The model fitted on the log (plain learners, one per outcome).
    carried : mapping of str to (RecommendationModel, dict)
        Per carried arm, the model whose estimate it keeps and the facts the card and the
        answers show (``rows``, ``min_rows``, ``from``; ``citations`` per role when the
        estimate is published evidence).
    arm_order : sequence of str
        The catalog's treatment arms, in its order.
    """
    if not carried:
        return model
    learnt = {str(a) for a in model.treatment_arms}
    arms = [a for a in arm_order if a in learnt or a in carried]
    outcome_models = {}
    for outcome in model.outcomes:
        sources = {}
        for arm, (previous, _) in carried.items():
            source = arm_source(previous, outcome, arm)
            sources[arm] = source if source is not None else CarriedArm(None, ())
        outcome_models[outcome] = CarriedEffects(model.outcome_models[outcome], sources, arms=arms)
    for arm in carried:
        if outcome_models[model.primary].carried[arm].learner is None:
            raise InputError(f"the model carried for {arm!r} has no {model.primary!r} estimate")
    metadata = dict(model.metadata)
    sources = {arm: {"source": "log"} for arm in model.treatment_arms}
    citations = {}
    for arm, (_, facts) in carried.items():
        sources[arm] = {"source": "carried", **dict(facts)}
        if facts.get("citations"):
            citations[arm] = dict(facts["citations"])
    metadata["arm_sources"] = {arm: sources[arm] for arm in arms}
    if citations:
        metadata["carried_citations"] = citations
    return CarriedModel(
        outcome_models=outcome_models,
        features=model.features,
        catalog_version=model.catalog_version,
        control=model.control,
        primary=model.primary,
        metadata=metadata,
        catalog=model.catalog,
    )


class CarriedModel(RecommendationModel):
    """A :class:`RecommendationModel` some of whose arms are carried over (see the module).

    Everything is the base class's; only the compiled form differs: the learnt arms are
    compiled as any fitted learners, and the carried arms are computed beside them from the
    same encoded rows (a role lookup for published evidence, the source's own compiled form
    for an earlier learnt model). Sources that cannot be read from those rows leave the model
    uncompiled, answered learner by learner (the same figures, more slowly).
    """

    @property
    def compiled(self):
        compiled = self.__dict__.get("_compiled_carried", _NOT_YET)
        if compiled is _NOT_YET or (compiled is not None and not compiled.current):
            self._compiled_carried = _compile(self)
        return self._compiled_carried


def _compile(model: CarriedModel):
    from recommender.model._prediction import compile_model

    composites = {o: model.outcome_models[o] for o in model.outcomes}
    learnt = RecommendationModel(
        outcome_models={o: c.learnt for o, c in composites.items()},
        features=model.features,
        catalog_version=model.catalog_version,
        control=model.control,
        primary=model.primary,
    )
    inner = compile_model(learnt)
    if inner is None:
        return None
    readers = {}
    for outcome, composite in composites.items():
        for arm, source in composite.carried.items():
            reader = _reader(source, arm, outcome, inner.encoder, model.primary)
            if reader is _NOT_YET:
                return None
            readers[(outcome, arm)] = reader
    return _CompiledCarried(inner, composites, readers, model.primary)


def _reader(source: CarriedArm, arm, outcome, encoder, primary):
    """How a carried arm is read from the encoded rows: None (no estimate), an evidence role
    table, a compiled earlier learner, or ``_NOT_YET`` when it cannot be."""
    from recommender.uplift import UpliftModel, compile_effects

    if source.learner is None:
        return None
    names = list(encoder.feature_names)
    if isinstance(source.learner, EvidenceEffects):
        j = names.index("role")
        if j not in encoder.categories:
            return _NOT_YET
        return _RoleTable(source.learner, source.own(arm), list(encoder.categories[j]), j)
    learner = source.learner
    if not (isinstance(learner, UpliftModel) and hasattr(learner, "estimator_")):
        return _NOT_YET
    theirs = learner.encoder_
    columns = [names.index(name) for name in theirs.feature_names]
    for k, j in enumerate(columns):
        if theirs.categories.get(k) != encoder.categories.get(j):
            return _NOT_YET
    try:
        # every outcome's intervals; only the primary's contributions are explained
        form = compile_effects(
            {outcome: learner},
            intervals=[outcome],
            explained=[outcome] if outcome == primary else [],
        )
    except ValueError:
        return _NOT_YET
    return _LearnerColumns(
        form, outcome, [str(a) for a in learner.arms_].index(source.own(arm)), columns
    )


class _RoleTable:
    """A published estimate per role, read from the role column's codes."""

    def __init__(self, evidence: EvidenceEffects, arm: str, roles: list, column: int):
        self.column = column
        effect = evidence._effect[arm].reindex(roles).to_numpy(dtype=float)
        se = evidence._se[arm].reindex(roles).to_numpy(dtype=float)
        base = evidence._base[arm]
        self.base = float(base) if np.isfinite(base) else 0.0
        # one extra entry for a missing or unknown role: no estimate
        self.effect = np.append(effect, np.nan)
        self.se = np.append(se, np.nan)

    def _codes(self, M):
        codes = M[:, self.column]
        return np.where(np.isfinite(codes), codes, len(self.effect) - 1).astype(np.intp)

    def predict(self, M, alpha):
        codes = self._codes(M)
        effect = self.effect[codes]
        if alpha is None:
            return effect, None, None
        spread = two_sided_z(alpha) * self.se[codes]
        return effect, effect - spread, effect + spread

    def explain(self, M, p):
        out = np.zeros((M.shape[0], p + 1))
        out[:, self.column] = self.effect[self._codes(M)] - self.base
        out[:, -1] = self.base
        return out


class _LearnerColumns:
    """An earlier learnt model's arm, read from its own compiled form on the shared columns."""

    def __init__(self, form, outcome, j, columns):
        self.form, self.outcome, self.j, self.columns = form, outcome, j, columns

    def predict(self, M, alpha):
        out = self.form.predict(
            M[:, self.columns], alpha=alpha or 0.1, intervals=[] if alpha is None else None
        )[self.outcome]
        if alpha is None:
            return out["effect"][:, self.j], None, None
        return out["effect"][:, self.j], out["lower"][:, self.j], out["upper"][:, self.j]

    def explain(self, M, p):
        part = self.form.explain(M[:, self.columns], self.outcome, {self.j: np.arange(len(M))})
        out = np.zeros((M.shape[0], p + 1))
        out[:, self.columns] = part[self.j][:, :-1]
        out[:, -1] = part[self.j][:, -1]
        return out


class _CompiledCarried:
    """The compiled form of a :class:`CarriedModel`: what ``RecommendationModel`` asks of a
    compiled form (``encoder``, ``encode``, ``predict``, ``explain``, ``current``)."""

    def __init__(self, inner, composites, readers, primary):
        self.form = _FORM
        self.inner = inner
        self.encoder = inner.encoder
        self.primary = primary
        self.arms = {o: [str(a) for a in c.arms_] for o, c in composites.items()}
        self.learnt = {o: [str(a) for a in c.learnt.arms_] for o, c in composites.items()}
        self.readers = readers

    @property
    def current(self) -> bool:
        return getattr(self, "form", None) == _FORM and self.inner.current

    def encode(self, X):
        return self.inner.encode(X)

    def predict(self, M, *, alpha: float, intervals=None) -> dict:
        wanted = set(self.arms if intervals is None else intervals)
        learnt = self.inner.predict(M, alpha=alpha, intervals=wanted)
        out = {}
        for outcome, arms in self.arms.items():
            entry = {}
            keys = ("effect", "lower", "upper") if outcome in wanted else ("effect",)
            for key in keys:
                entry[key] = np.full((M.shape[0], len(arms)), np.nan)
                for k, arm in enumerate(self.learnt[outcome]):
                    entry[key][:, arms.index(arm)] = learnt[outcome][key][:, k]
            for (o, arm), reader in self.readers.items():
                if o != outcome or reader is None:
                    continue
                values = reader.predict(M, alpha if outcome in wanted else None)
                for key, value in zip(("effect", "lower", "upper"), values):
                    if key in entry:
                        entry[key][:, arms.index(arm)] = value
            out[outcome] = entry
        return out

    def explain(self, M, outcome: str, needs: Mapping) -> dict:
        arms = self.arms[outcome]
        learnt = self.learnt[outcome]
        inner_needs = {
            learnt.index(arms[j]): rows for j, rows in needs.items() if arms[j] in learnt
        }
        parts = self.inner.explain(M, outcome, inner_needs) if inner_needs else {}
        p = len(self.encoder.feature_names)
        out = {}
        for j, rows in needs.items():
            arm = arms[j]
            if arm in learnt:
                out[j] = parts[learnt.index(arm)]
                continue
            reader = self.readers.get((outcome, arm))
            if reader is None:
                raise InputError(f"arm {arm!r} has no {outcome!r} estimate to explain")
            out[j] = reader.explain(M[np.asarray(rows, dtype=np.intp)], p)
        return out
