"""A training whose model cannot be logged fails, and its MLflow run keeps what it measured.

The log stage logs the metrics after the model (tests/test_metric_links_dec07b.py); a failed
``log_model`` must not leave the failed run without them: a data scientist comparing runs sees
its figures beside the others', and nothing is registered.
"""

from __future__ import annotations

import pytest
from test_pipeline_train import SMALL, reuse_model, sketched_plots, use_home  # noqa: F401

import pipelines.train as train
from recommender import registry


def _failed_run(tmp_path, monkeypatch, trained, *, metrics_fail: bool):
    use_home(monkeypatch, tmp_path)
    reuse_model(monkeypatch, trained[0].model)

    def refused(self, *args, **kwargs):
        raise OSError("injected: the artifact store refused the model")

    monkeypatch.setattr(registry.TrainingRun, "log_model", refused)
    if metrics_fail:

        def down(self, *args, **kwargs):
            raise ConnectionError("injected: the tracking server went away")

        monkeypatch.setattr(registry.TrainingRun, "log_metrics", down)
    with pytest.raises(OSError, match="artifact store refused"):  # its own error, not the later
        train.run_training(overrides=SMALL, reason="a model that cannot be logged")
    client = registry.client()
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string="attributes.status = 'FAILED'",
    )
    assert client.search_model_versions() == []  # nothing registered
    return run


@pytest.mark.usefixtures("sketched_plots")
def test_a_run_whose_model_cannot_be_logged_fails_with_its_metrics(trained, tmp_path, monkeypatch):
    run = _failed_run(tmp_path, monkeypatch, trained, metrics_fail=False)
    metrics = run.data.metrics
    assert any(key.startswith("policy_value.") for key in metrics), sorted(metrics)
    assert any(key.startswith("qini_curve.") for key in metrics), sorted(metrics)


@pytest.mark.usefixtures("sketched_plots")
def test_metrics_that_cannot_be_logged_either_leave_the_models_error_raised(
    trained, tmp_path, monkeypatch
):
    run = _failed_run(tmp_path, monkeypatch, trained, metrics_fail=True)
    assert not any(key.startswith("policy_value.") for key in run.data.metrics)
