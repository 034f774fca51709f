"""An arm the catalog renamed (``renamed_from``), served under its new id: what the last session
left open.

- Every method of the model's class runs on the view :func:`recommender.model.served_under`
  gives, so one added later reads the arms under the ids in force too; its properties and data
  are checked against a list of those known to hold no arm id, so a new one is looked at.
- A model registered before ``one_effect_arms`` was recorded (or with no metadata at all) is
  served under the new ids: what it gives one effect for everyone is worked out from its
  learners, which know the former id, and said under the new one.
- ``recommender batch-score`` (Spark) writes the ids and columns ``recommender score`` writes
  for the same model and catalog (and reads a copied home's own copy of the model).

The first two use the evidence-only model of the installed catalog (built from the catalog, no
training); the last the session's champion (tests/service_fixtures.py) and a local Spark.
"""

from __future__ import annotations

import inspect
import types
from types import SimpleNamespace

import pandas as pd
import pytest
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session
from test_batch_spark import SAFETY_COLUMNS, _assert_same_scores
from test_catalog_change_dec06b import under  # noqa: F401 - a fixture
from test_catalog_reload_dec06c import _rename_balint

from recommender.catalog import load_catalog
from recommender.model import (
    CarriedModel,
    RecommendationModel,
    RenamedArms,
    evidence_model,
    model_facts,
    served_under,
)

# Properties and data of the model that hold no arm id, so the view may give the model's own.
# A new one fails test_every_property_and_datum_of_the_model_is_looked_at until it is listed
# here (it names no arm) or the view gives it under the ids in force.
ARM_FREE = {
    "compiled",  # positions, not ids: built once on the model
    "extra_features",
    "feature_names",
    "outcomes",
    "features",
    "outcome_models",  # the learners, which know the former ids; reached through the view
    "catalog_version",
    "control",
    "primary",
}


@pytest.fixture
def model():
    """The evidence-only model of the installed catalog, which has balint_group."""
    built = evidence_model(load_catalog())
    assert "balint_group" in built.treatment_arms
    return built


def _renaming_catalog(model):
    """What served_under reads of a catalog that renamed balint_group balint."""
    arms = (model.control, *(a for a in model.treatment_arms if a != "balint_group"), "balint")
    return SimpleNamespace(renames={"balint_group": "balint"}, arm_ids=arms)


def _profiles(n: int = 40) -> pd.DataFrame:
    from recommender.simulate import load_scenario, simulate_cohort

    return simulate_cohort(load_scenario("default"), n, seed=5)


# ------------------------------------------------------------------ (b) what the view reads
@pytest.mark.parametrize("cls", [RecommendationModel, CarriedModel])
def test_every_method_of_the_models_class_runs_on_the_view(model, cls):
    instance = cls.__new__(cls)
    instance.__dict__.update(vars(model))
    view, _ = served_under(instance, _renaming_catalog(model))
    assert isinstance(view, RenamedArms)
    methods = [
        name
        for name, value in inspect.getmembers_static(cls)
        if isinstance(value, types.FunctionType) and not name.startswith("__")
    ]
    assert {"score", "recommend", "eligibility", "encode", "_candidates"} <= set(methods)
    for name in methods:
        bound = getattr(view, name)
        assert bound.__self__ is view, f"{cls.__name__}.{name} runs on the model, not the view"


@pytest.mark.parametrize("cls", [RecommendationModel, CarriedModel])
def test_every_property_and_datum_of_the_model_is_looked_at(model, cls):
    instance = cls.__new__(cls)
    instance.__dict__.update(vars(model))
    view, _ = served_under(instance, _renaming_catalog(model))
    properties = {
        name for name, value in inspect.getmembers_static(cls) if isinstance(value, property)
    }
    data = set(vars(instance))
    given = set(vars(view))  # what the view sets under the ids in force
    unchecked = sorted((properties | data) - given - ARM_FREE)
    assert not unchecked, (
        f"{cls.__name__} has {unchecked}, which the view gives as the model's own: if it "
        "holds arm ids, RenamedArms must give it under the ids in force; if not, list it "
        "in ARM_FREE"
    )


def test_a_method_added_later_reads_the_arms_under_the_ids_in_force(model):
    class Later(RecommendationModel):
        def arms_ranked(self, profiles):
            return [*self._order(), *self.score(profiles)["recommended"].unique()]

        def _order(self):
            return list(self.treatment_arms)

    later = Later.__new__(Later)
    later.__dict__.update(vars(model))
    view, _ = served_under(later, _renaming_catalog(model))
    named = view.arms_ranked(_profiles())
    assert "balint" in named and "balint_group" not in named


def test_properties_and_static_methods_stay_the_models(model):
    class WithStatic(RecommendationModel):
        @staticmethod
        def plain(x):
            return x

    instance = WithStatic.__new__(WithStatic)
    instance.__dict__.update(vars(model))
    view, _ = served_under(instance, _renaming_catalog(model))
    assert view.plain(3) == 3  # not handed the view as its first argument
    assert view.outcomes == model.outcomes and view.feature_names == model.feature_names
    with pytest.raises(AttributeError):
        view.no_such_attribute  # noqa: B018 - the model's own AttributeError


# -------------------------------------- (c) a model that records no one_effect_arms or metadata
def _constant_for(model, arm):
    """Make ``model``'s primary learner say it kept one effect for everyone for ``arm`` alone,
    as a selection table records it (recommender.model.one_effect_arms)."""
    learner = model.outcome_models[model.primary]
    learner.selection_ = pd.DataFrame(
        {
            "arm": list(learner.arms_),
            "learner": "s",
            "settings": [
                "constant (no heterogeneity)" if a == arm else "depth 3" for a in learner.arms_
            ],
            "chosen": True,
        }
    )


@pytest.mark.parametrize("recorded", ["no one_effect_arms", "no metadata"])
def test_a_model_that_records_no_one_effect_arms_is_served_under_the_new_ids(model, recorded):
    from pipelines.score import model_notes
    from recommender.service import load_serve_config
    from recommender.service._context import answer_context

    _constant_for(model, "balint_group")
    if recorded == "no metadata":
        del model.metadata  # pickled before models carried metadata
    assert "one_effect_arms" not in (getattr(model, "metadata", None) or {})
    assert model_facts(model)["one_effect_arms"] == ["balint_group"]  # as learnt

    view, note = served_under(model, _renaming_catalog(model), version="3")
    assert model_facts(view)["one_effect_arms"] == ["balint"]
    context = answer_context(load_serve_config(), view)
    assert [item["arm"] for item in context["one_effect_for_everyone"]] == ["balint"]
    said = model_notes(view, note)
    assert any(line.endswith("personalising): balint") for line in said), said
    assert not any("balint_group" in line for line in said if "formerly" not in line)
    scored = view.score(_profiles())
    assert "effect_balint" in scored and "effect_balint_group" not in scored


# ------------------------------------------------------------------ (a) batch-score on Spark
def _rename_coaching_and_balint(data):
    """balint_group renamed balint (never recommended by the small champion) and coaching,
    which it recommends to about half of everyone, renamed coaching_one_to_one."""
    _rename_balint(data)
    coaching = next(arm for arm in data["arms"] if arm["id"] == "coaching")
    coaching.update(id="coaching_one_to_one", renamed_from="coaching")


@pytest.mark.slow
def test_batch_score_writes_the_ids_and_columns_score_writes(under, spark, tmp_path, capsys):  # noqa: F811
    from recommender.cli import main
    from recommender.cohort import PROFILE_COLUMNS
    from recommender.simulate import load_scenario, simulate_cohort

    under(_rename_coaching_and_balint)  # a copied home: batch-score reads its own copy too
    # One small cohort: starting Spark's workers is the slow part.
    cohort = simulate_cohort(load_scenario("default"), 60, seed=11, assignment="rct")
    data = tmp_path / "cohort.csv"
    cohort[list(PROFILE_COLUMNS)].to_csv(data, index=False)

    in_process, on_spark = tmp_path / "in-process.parquet", tmp_path / "spark.parquet"
    assert main(["score", "--data", str(data), "--out", str(in_process)]) == 0
    scored = capsys.readouterr().out
    assert main(["batch-score", "--data", str(data), "--out", str(on_spark)]) == 0
    said = capsys.readouterr().out.splitlines()

    expected, written = pd.read_parquet(in_process), pd.read_parquet(on_spark)
    _assert_same_scores(written, expected)  # same columns in the same order, same values
    for column in SAFETY_COLUMNS:
        assert written[column].tolist() == expected[column].tolist()
    for arm in ("balint", "coaching_one_to_one"):
        assert {f"effect_{arm}", f"lower_{arm}", f"upper_{arm}", f"effect_dp_{arm}"} <= set(
            written.columns
        )
    formerly = ("effect_coaching", "effect_balint_group", "upper_pa_balint_group")
    assert not [c for c in written.columns if c in formerly]
    recommended = set(written["recommended"])
    assert "coaching_one_to_one" in recommended and "coaching" not in recommended
    # Said as score says it; the recommendation mix counts the arms under their ids in force.
    note = next(line for line in scored.splitlines() if "(formerly balint_group)" in line)
    assert "coaching_one_to_one (formerly coaching)" in note and note in said
    (mix,) = [line for line in said if line.startswith("recommended:")]
    assert " balint 0 " in mix and " coaching_one_to_one " in mix, mix
    assert "balint_group" not in mix and " coaching " not in mix, mix
