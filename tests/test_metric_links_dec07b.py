"""A training run's metrics are linked to its logged model without reading them back.

MLflow 3's ``log_model`` links the run's metrics at the model's step to the model it logs,
reading each metric's history back first: one request per metric, 145 of a small run, each
a round trip to a tracking server. The log stage logs the metrics after the model instead,
and they are linked as they are written; what is stored is the same.
"""

from __future__ import annotations

import mlflow
import pytest
from test_model_fakes import fake_model, profiles
from test_pipeline_train import SMALL, reuse_model, sketched_plots, use_home  # noqa: F401

import pipelines.train as train
from pipelines.score import safety_rules
from recommender import registry


def logged_model_of(run_id: str):
    client = registry.client()
    experiment = client.get_run(run_id).info.experiment_id
    (model,) = client.search_logged_models(
        experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'"
    )
    return client.get_logged_model(model.model_id)


def test_step_metrics_logged_after_the_model_are_linked_at_its_step(tmp_path, monkeypatch):
    use_home(monkeypatch, tmp_path)
    with registry.TrainingRun(run_name="links") as run:
        run.log_metric_steps({"before.curve": {0: 1.0, 50: 2.0}})  # no model yet
        run.log_model(fake_model(), profiles(5), safety=safety_rules())
        run.log_metrics({"policy_value.learned": 1.5})
        run.log_metric_steps({"after.curve": {0: 0.5, 50: 1.0, 100: 2.0}})
    linked = sorted((m.key, m.step, m.value) for m in logged_model_of(run.run_id).metrics)
    # before the model: linked by MLflow's log_model; after it: as they are logged
    assert linked == [
        ("after.curve", 0, 0.5),
        ("before.curve", 0, 1.0),
        ("policy_value.learned", 0, 1.5),
    ]
    history = registry.client().get_metric_history(run.run_id, "after.curve")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.5), (50, 1.0), (100, 2.0)]


@pytest.mark.usefixtures("sketched_plots")
def test_a_training_links_every_metric_to_its_model_reading_none_back(
    trained, tmp_path, monkeypatch
):
    use_home(monkeypatch, tmp_path)
    reuse_model(monkeypatch, trained[0].model)
    reads = []
    read_history = mlflow.MlflowClient.get_metric_history

    def counted(self, run_id, key):
        reads.append(key)
        return read_history(self, run_id, key)

    monkeypatch.setattr(mlflow.MlflowClient, "get_metric_history", counted)
    result = train.run_training(overrides=SMALL, reason="metric links")
    assert reads == []
    run = registry.client().get_run(result.run_id)
    linked = {m.key: m for m in logged_model_of(result.run_id).metrics}
    # every metric of the run, the curves by their first point (step 0) alone, gate's too
    assert set(linked) == set(run.data.metrics) and "gate.passed" in linked
    assert {m.step for m in linked.values()} == {0}
    curve = next(key for key in linked if key.startswith("qini_curve."))
    assert len(registry.client().get_metric_history(result.run_id, curve)) == 101
