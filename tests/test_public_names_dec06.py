"""Found on 6 December: the LightGBM parameter check read a private LightGBM name and let
LightGBM's own ``[LightGBM] [Fatal]`` line reach the user before our message; an interval level
so small that its quantile is infinite gave infinite bounds; and a ranking of usual care alone
said it was meaningful."""

from __future__ import annotations

import os

import pytest

from pipelines.train import config_from_mapping
from recommender.cli import main
from recommender.errors import InputError

# -- 1. LightGBM's parameters, by public means, and its words on stderr --------------------


def _with_extra(extra) -> dict:
    return {"learner": {"params": {"outcome_candidates": [{"gbm": {"extra": extra}}]}}}


def test_lightgbm_lists_its_parameters_and_aliases_through_its_documented_c_api():
    from recommender.uplift._lightgbm_params import lightgbm_parameters

    known = lightgbm_parameters()
    assert known["num_leaves"][0] == "num_leaves" and "num_leaf" in known["num_leaves"]
    assert (
        "random_state" in known["seed"] and "early_stopping_rounds" in known["early_stopping_round"]
    )
    assert "bagging_fraction" in known and "no_such" not in known


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ({"objective": "nonsense"}, "Unknown objective type name: nonsense"),
        ({"bagging_fraction": 2.0}, "(bagging_fraction) <= (1.0)"),
        ({"objective": "quantile", "alpha": 1.5}, "refuses them together"),
    ],
)
def test_only_our_message_reaches_stderr_when_lightgbm_refuses_a_value(capfd, extra, said):
    with pytest.raises(InputError, match="LightGBM refuses") as caught:
        config_from_mapping(_with_extra(extra))
    assert said in str(caught.value)
    out, err = capfd.readouterr()
    assert "[LightGBM]" not in out + err and "Fatal" not in out + err


def test_the_cli_says_the_refusal_once_in_its_own_words(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("RECOMMENDER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = tmp_path / "train.yaml"
    config.write_text(
        "learner:\n  params:\n    outcome_candidates: [{gbm: {extra: {objective: nonsense}}}]\n"
    )
    assert main(["train", "--config", str(config)]) == 2
    out, err = capfd.readouterr()
    assert err.startswith("error: training config ") and err.count("\n") == 1, err
    assert "objective='nonsense' (LightGBM refuses it: Unknown objective type name" in err
    assert "[LightGBM]" not in out + err
    assert not (tmp_path / "home").exists() or not any((tmp_path / "home").iterdir())


def test_what_else_reaches_stderr_meanwhile_is_passed_on(capfd):
    from recommender.uplift._lightgbm_params import _stderr_held

    with _stderr_held() as dropped:
        os.write(2, b"[LightGBM] [Fatal] refused\nanother thread's words\n")
        dropped.append("[LightGBM] [Fatal] refused\n")
    assert capfd.readouterr().err == "another thread's words\n"
