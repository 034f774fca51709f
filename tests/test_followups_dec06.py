"""Follow-ups found on 6 December: a training seed past the learners' limit, LightGBM
parameters in ``learner.params`` that LightGBM refuses, and what an evidence-only model tells
an advanced practice provider (APP), whom no published finding of the catalog concerns."""

from __future__ import annotations

import pytest

from pipelines.train import config_from_mapping, run_training
from recommender.errors import InputError
from recommender.uplift import SEED_LIMIT, UpliftModel
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
