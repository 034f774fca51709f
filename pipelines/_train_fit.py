"""The fit stage: one uplift model per outcome on the training part of the cohort."""

from __future__ import annotations

import contextlib

from pipelines._train_cohort import Cohort, Split, _outcome_change, _propensity, learner_design
from pipelines._train_overlap import warnings_of
from pipelines._train_key import key_fingerprint, person_hashes, trained_people, training_key
from recommender.errors import InputError

__all__ = ["learner_params", "fit_stage", "constant_features_noted"]


@contextlib.contextmanager
def constant_features_noted(cohort: Cohort, display):
    """Say once, as a note, the features the learners found constant in the training part.

    Each outcome's learner warned of them (Python's warning, with a file path, three times a
    run). A feature constant in the whole cohort is not said again: validation's note
    (``constant_feature``) already said it; what is left is one constant only in the training
    part (a role of three people, all held out). Other warnings are shown as they were.
    """
    from recommender.uplift import ConstantFeatureWarning

    noted = set(cohort.constant_columns)
    warned: list = []
    with warnings_of(ConstantFeatureWarning, warned):
        yield
    found = list(dict.fromkeys(f for message in warned for f in message.features))
    left = [f for f in found if f not in noted]
    if left:
        display.note(
            "note: one value only in the training part, so the model cannot personalise by "
            f"{', '.join(left)}; profiles with another value lie outside what it learnt from"
        )


def learner_params(params: dict | None) -> dict:
    """UpliftModel keyword arguments from the config's ``learner.params``.

    ``outcome_candidates`` and ``final_candidates`` are written in YAML as lists of
    ``{gbm: {...GBMSpec fields}}`` or ``{ridge: {alpha: ...}}``; everything else passes as is.
    """
    from recommender.uplift import GBMSpec, RidgeSpec

    kinds = {"gbm": GBMSpec, "ridge": RidgeSpec}
    out = dict(params or {})
    for key in ("outcome_candidates", "final_candidates"):
        if key not in out or out[key] is None:
            continue
        specs = []
        for position, entry in enumerate(out[key]):
            if not (isinstance(entry, dict) and len(entry) == 1 and next(iter(entry)) in kinds):
                raise InputError(
                    f"learner.params.{key}[{position}] = {entry!r}; accepted: "
                    "{gbm: {num_leaves: .., max_rounds: ..}} or {ridge: {alpha: ..}}"
                )
            kind, settings = next(iter(entry.items()))
            try:
                specs.append(kinds[kind](**(settings or {})))
            except TypeError as error:
                raise InputError(f"learner.params.{key}[{position}]: {error}") from None
        out[key] = tuple(specs)
    return out


def fit_stage(split: Split, cohort: Cohort, config: dict):
    """Fit one uplift model per outcome on the training part; returns a RecommendationModel."""
    from recommender.cohort import CATEGORIES, feature_frame
    from recommender.model import (
        ARM_ROLE_KEY,
        RecommendationModel,
        arm_rows_within_role,
        data_source,
        one_effect_arms,
        training_support,
    )
    from recommender.uplift import UpliftModel

    key = training_key()
    # Excluded features (e.g. gender) stay in the data contract but never reach the learners,
    # so the fitted schema, and with it every later prediction, ignores them.
    X = feature_frame(split.train, config["extra_features"]).drop(
        columns=config.get("exclude_features") or []
    )
    treatment = split.train["intervention"].astype(str).to_numpy()
    learner = config["learner"]
    models = {}
    for outcome in [config["primary"], *[o for o in config["outcomes"] if o != config["primary"]]]:
        model = UpliftModel(
            learner=learner["learner"],
            control=cohort.catalog.control,
            n_folds=learner["n_folds"],
            random_state=config["seed"],
            design=learner_design(cohort),
            **learner_params(learner.get("params")),
        )
        models[outcome] = model.fit(
            X, treatment, _outcome_change(split.train, outcome), propensity=_propensity(split.train)
        )
    return RecommendationModel(
        outcome_models=models,
        features=X,
        catalog_version=cohort.catalog.version,
        control=cohort.catalog.control,
        primary=config["primary"],
        catalog=cohort.catalog,
        metadata={
            "data_sha256": cohort.sha256,
            "data": cohort.description,
            # what every answer says of the data and of arms given one effect for all
            "data_source": data_source(cohort.source),
            "one_effect_arms": one_effect_arms(models[config["primary"]]),
            "seed": config["seed"],
            # whom it was trained on: the people, for a log's rows (every cycle of theirs)
            "training_person_hashes": person_hashes(trained_people(split.train, cohort), key),
            "training_key_id": key_fingerprint(key),
            # where answers are extrapolated: each feature's range or rows per level here
            # (a level under the card's min_cell counts as unseen)
            "training_support": training_support(X, min_rows=config["card"]["min_cell"]),
            # the smallest group its card reports on, and so its plans (model_min_cell)
            "min_cell": config["card"]["min_cell"],
            # which arms each role was served: an arm a role was (almost) never served has
            # figures for it carried across from other roles, which answers and card say
            ARM_ROLE_KEY: arm_rows_within_role(
                treatment,
                split.train["role"],
                arms=[str(a) for a in models[config["primary"]].arms_],
                all_roles=CATEGORIES["role"],
            ),
        },
    )
