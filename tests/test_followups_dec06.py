"""Follow-ups found on 6 December: a training seed past the learners' limit, LightGBM
parameters in ``learner.params`` that LightGBM refuses, and what an evidence-only model tells
an advanced practice provider (APP), whom no published finding of the catalog concerns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.train import config_from_mapping, run_training
from recommender.errors import InputError
from recommender.uplift import SEED_LIMIT, GBMSpec, UpliftModel
from service_fixtures import recommender_home

# -- 1. the training seed ------------------------------------------------------------------


def test_a_seed_past_the_learners_limit_is_refused_by_the_config_check():
    # Found: any seed >= 0 passed the check; 2**32 was refused only once fitting started.
    with pytest.raises(InputError) as caught:
        config_from_mapping({"seed": 2**32})
    assert caught.value.problems == [
        {
            "field": "seed",
            "value": str(2**32),
            "message": f"Input should be less than or equal to {SEED_LIMIT - 1}",
            "accepted": f"an integer from 0 to {SEED_LIMIT - 1}",
        }
    ]
    assert config_from_mapping({"seed": SEED_LIMIT - 1})["seed"] == SEED_LIMIT - 1


def test_the_config_takes_exactly_the_seeds_the_learners_take():
    UpliftModel(random_state=SEED_LIMIT - 1).check_parameters()
    with pytest.raises(InputError, match="random_state"):
        UpliftModel(random_state=SEED_LIMIT).check_parameters()


def test_a_training_run_with_such_a_seed_stops_before_anything_is_drawn_or_logged(tmp_path):
    home = tmp_path / "home"
    with recommender_home(home), pytest.raises(InputError, match=r"^training config .*seed = "):
        run_training(overrides={"seed": 2**40, "data": {"n": 200}})
    assert not home.exists() or not any(home.iterdir())


# -- 2. LightGBM parameters of a candidate (GBMSpec.extra) ---------------------------------


def _with_extra(extra) -> dict:
    return {"learner": {"params": {"outcome_candidates": [{"gbm": {"extra": extra}}]}}}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        # unknown to LightGBM, with its closest name
        ({"bagging_fractio": 0.5}, "extra.bagging_fractio=0.5 (accepted: a LightGBM parameter"),
        ({"bagging_fractio": 0.5}, "did you mean 'bagging_fraction'?"),
        # wrongly typed or out of range, as LightGBM itself says
        ({"bagging_freq": 1.5}, "bagging_freq should be of type int"),
        ({"extra_trees": "maybe"}, "extra.extra_trees='maybe' (LightGBM refuses it"),
        ({"bagging_fraction": 2.0}, "(bagging_fraction) <= (1.0); accepted:"),
        ({"lambda_l1": {"a": 1}}, "extra.lambda_l1={'a': 1} (LightGBM refuses it"),
        # an alias of what a GBMSpec field or the learner sets would override it unseen
        ({"num_leaf": 3}, "num_leaf=3 (LightGBM's num_leaves, which GBMSpec's num_leaves"),
        ({"random_state": 3}, "which UpliftModel's random_state sets"),
        ({"early_stopping_rounds": 5}, "which GBMSpec's patience sets"),
        # each alone is accepted, together LightGBM refuses them
        ({"objective": "quantile", "alpha": 1.5}, "extra.objective+alpha={'objective': "),
        ({"objective": "quantile", "alpha": 1.5}, "refuses them together: Check failed"),
        # not parameters at all
        (["x"], "accepted: a mapping of LightGBM parameters to values"),
    ],
)
def test_lightgbm_parameters_are_checked_with_the_config(extra, said):
    with pytest.raises(InputError) as caught:
        config_from_mapping(_with_extra(extra))
    message = str(caught.value)
    assert message.startswith("training config: learner.params")
    assert said in message
    assert " at /" not in message  # LightGBM's source file and line are not the user's concern


def test_lightgbm_parameters_it_accepts_pass_with_their_types():
    extra = {
        "extra_trees": True,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "subsample_for_bin": 5000,  # an alias
        "monotone_constraints": [1, -1, 0],  # per feature: checked on as many columns
        "interaction_constraints": [[0, 1], [2]],
    }
    config = config_from_mapping(_with_extra(extra))
    assert config["learner"]["params"]["outcome_candidates"][0]["gbm"]["extra"] == extra


def test_a_library_user_gets_the_same_refusal_before_any_fit():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=60)})
    t = np.repeat(["none", "a"], 30)
    model = UpliftModel(learner="t", outcome_candidates=[GBMSpec(extra={"no_such": 1})])
    with pytest.raises(InputError, match=r"outcome_candidates\[0\]\.extra\.no_such=1"):
        model.fit(X, t, rng.normal(size=60))
    assert not hasattr(model, "arms_")
