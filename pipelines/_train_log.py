"""The log stage: everything a training run records in its MLflow run, the metrics last."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from pipelines._log_contract import left_out_tags
from pipelines._train_cohort import Cohort, Split
from pipelines._train_evaluate import Evaluation

__all__ = ["log_stage", "run_description", "example_profiles", "METRIC_UNITS"]

# MLflow has no place for a metric's unit; the run's description says it once for all runs.
METRIC_UNITS = (
    "Metrics, on the held-out rows: policy_value.* and true_value.* are EE points avoided per "
    "person against usual care for all (higher is better); ate.* is the change in EE against "
    "usual care (lower is better); personalization_gain, regret, pehe.*, interval_width.*, "
    "mean_width, qini.* and auuc.* are EE points; qini_curve.<arm> (qini_curve_oracle.<arm> "
    "on simulated data, ranked by the true effects) is the Qini curve, EE points avoided per "
    "person when the arm goes only to the top share ranked by predicted benefit, with step the "
    "share targeted in percent (0 to 100); outcome_improved.<outcome> is points of that "
    "outcome improved (for pa, higher is better); recommendation_share.*, coverage.*, "
    "coverage_mean and share_of_oracle are fractions of people (0 to 1); calibration_slope.* "
    "has no unit (1 is calibrated); personalized.<arm> is 1 when the arm's predicted effect "
    "varies across people and 0 when it is one effect for everyone (then no "
    "calibration_slope.<arm> is logged); gate.challenger, gate.champion and gate.difference are "
    "the promotion gate's policy values in EE points avoided per person (higher is better) on "
    "gate.rows rows (the difference on the rows the log measures), gate.extrapolated the "
    "outcome model's figure for the rows it cannot, gate.passed is 1 or 0; .lower and .upper "
    "bound the interval at the run's "
    "alpha. EE is MBI-HSS emotional exhaustion (0 to 54)."
)


def run_description(cohort: Cohort, split: Split, config: dict, reason: str | None) -> str:
    """What a training run is, in words: learner, data, seed, rows, why, and the units."""
    learner = config["learner"]["learner"]
    how = (
        "learners chosen per outcome (T, X or DR) by a cross-validated doubly robust criterion"
        if learner == "auto"
        else f"{learner.upper()}-learners"
    )
    return (
        f"{how}, {config['learner']['n_folds']} cross-fitting folds, seed {config['seed']}, on "
        f"{cohort.description} ({cohort.design}; sha256 {cohort.sha256[:12]}): "
        f"{len(split.train):,} rows to train, {len(split.holdout):,} held out to evaluate "
        f"and gate. Why: {reason or 'not given (--reason)'}.\n\n{METRIC_UNITS}"
    )


def log_stage(
    run,
    model,
    evaluation: Evaluation,
    cohort: Cohort,
    split: Split,
    config: dict,
    *,
    plots_folder: Path,
    git_commit: str,
    versions: dict,
    safety,
    reproduction: dict,
):
    """Log config, lineage, plots, report, the pyfunc model (not registered) and metrics.

    ``reproduction`` is what retrains the model (:func:`pipelines._train_lineage.reproduction`),
    with the settings as the config file logged at ``config/train.yaml``.
    """
    train_counts = split.train["intervention"].astype(str).value_counts()
    holdout_counts = split.holdout["intervention"].astype(str).value_counts()
    run.log_params(
        {
            # the data section says which cohort to simulate: a run on a file or on the log
            # reads none of it, and logged it would say, in MLflow's compare view, that the
            # run learnt from a simulated trial (config/train.yaml keeps the file as given)
            "config": config
            if cohort.source == "simulated"
            else {k: v for k, v in config.items() if k != "data"},
            "data.source": cohort.source,
            "data.description": cohort.description,
            "data.sha256": cohort.sha256,
            "data.design": cohort.design,
            "rows.train": len(split.train),
            "rows.holdout": len(split.holdout),
            **{f"rows.train.{a}": int(train_counts.get(a, 0)) for a in model.arms},
            **{f"rows.holdout.{a}": int(holdout_counts.get(a, 0)) for a in model.arms},
            "seed.split": config["seed"],
            "seed.learner": config["seed"],
            "seed.evaluation": config["seed"],
            "learner.chosen": {
                o: str(getattr(m, "learner_", "?")) for o, m in model.outcome_models.items()
            },
            "catalog.version": model.catalog_version,
            # which of the store's outcomes made a log-trained model, to find them again there
            **{
                f"data.log.{key}": (cohort.loop or {})[key]
                for key in ("outcomes_recorded_through", "served_by_version")
                if key in (cohort.loop or {})
            },
        }
    )
    run.set_tags(
        {
            "git_commit": git_commit,
            "catalog.version": model.catalog_version,
            "data.sha256": cohort.sha256,
            **{f"version.{k}": v for k, v in versions.items()},
            "config.sha256": reproduction["config_sha256"],
            "catalog.sha256": reproduction["catalog_sha256"],
            "reproduce.command": reproduction["command"] or "none",
            "reproduce.how": reproduction["how"],
            # trained from the log: no command retrains it, so what it read is recorded
            **reproduction.get("trained_on", {}),
            # and the rows it left out, as the contract refuses them, per rule
            **left_out_tags(cohort.loop or {}),
        }
    )
    run.log_text(reproduction["config_yaml"], reproduction["config_artifact"])
    _log_datasets(run, cohort, split, config, model.feature_names)
    run.log_dict(evaluation.report.to_dict(), "evaluation/report.json")
    run.log_dict(
        {"summary": evaluation.report.summary().reset_index().to_dict(orient="records")},
        "evaluation/summary.json",
    )
    run.log_artifacts(plots_folder, "evaluation/plots")
    for outcome, learner in model.outcome_models.items():
        selection = getattr(learner, "selection_", None)
        if isinstance(selection, pd.DataFrame):
            run.log_dict(
                {"selection": selection.reset_index().to_dict(orient="records")},
                f"learners/{outcome}_selection.json",
            )
    example = example_profiles(split.holdout, model.feature_names)
    try:
        model_info = run.log_model(model, example, safety=safety)
    except Exception:
        # The run fails, but keeps what it measured: a data scientist comparing runs sees the
        # failed one's figures beside the others'. Its own error is the one that is raised.
        with contextlib.suppress(Exception):
            _log_evaluation_metrics(run, evaluation)
        raise
    # The metrics after the model: logged with it, they are linked to it as they are written
    # (those at its step, 0); a metric logged before it, MLflow's log_model reads back and
    # links, one request per metric (145 of a small run, each a round trip to a server).
    _log_evaluation_metrics(run, evaluation)
    return model_info


def _log_evaluation_metrics(run, evaluation: Evaluation) -> None:
    run.log_metrics(evaluation.metrics)
    run.log_metric_steps(_qini_steps(evaluation.report.qini_curves))


def example_profiles(data: pd.DataFrame | None = None, features=()) -> pd.DataFrame:
    """The profiles a logged model shows as its input example (and infers its signature
    from): one made-up profile per role, never a row of the data.

    The example is stored in the run's artifacts (input_example.json,
    serving_input_example.json), which an erasure from the audit store does not reach and
    which anyone who may read the registry reads: a real held-out row there was a person's
    profile and scores (from a log-trained run, a staff member's). The signature asks for the
    whole contract profile even when the learners leave a feature out (exclude_features):
    callers send one profile whatever a version uses, and the catalog's eligibility rules read
    role, specialty and years whether or not they are features. A feature beyond the contract
    (``features`` not in it, read from ``data``) takes the data's median, or its most frequent
    value: a figure of many people, in the column's type.
    """
    from recommender.cohort import CATEGORIES, FEATURE_COLUMNS

    roles = list(CATEGORIES["role"])
    n = len(roles)
    example = pd.DataFrame(
        {
            "person_id": [f"example-{r}" for r in roles],
            "age": [40] * n,
            "gender": ["female"] * n,
            "role": roles,
            "specialty": ["internal_medicine"] * n,
            "setting": ["academic"] * n,
            "years_in_practice": [10.0] * n,
            "weekly_hours": [50.0] * n,
            "ee": [30] * n,
            "dp": [10] * n,
            "pa": [35] * n,
        }
    )
    for name in (f for f in features if f not in FEATURE_COLUMNS):
        column = data[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            typical = column.median()
            typical = int(round(typical)) if pd.api.types.is_integer_dtype(column) else typical
        else:
            typical = column.mode().iloc[0]
        example[name] = pd.Series([typical] * n, index=example.index).astype(column.dtype)
    return _plain_profiles(example)


def _qini_steps(curves: dict) -> dict:
    """The Qini curves as step metrics: ``qini_curve.<arm>`` (and ``qini_curve_oracle.<arm>``
    on simulated data) with step = percent of people targeted, 0 to 100.

    As steps, MLflow's compare view overlays them across runs, which the PNG plots cannot.
    """
    series = {}
    for arm, curve in curves.items():
        percent = (curve["fraction"] * 100).round().astype(int)
        for column, name in (("qini", "qini_curve"), ("oracle", "qini_curve_oracle")):
            if column in curve.columns:
                series[f"{name}.{arm}"] = dict(zip(percent, curve[column]))
    return series


def _log_datasets(run, cohort: Cohort, split: Split, config: dict, features) -> None:
    """The training and held-out parts as the run's inputs, without person ids or oracle.

    Two runs on the same data and seed show the same dataset digests, so MLflow's Datasets
    column says at a glance which runs can be compared.
    """
    from recommender.cohort import TRAINING_COLUMNS

    columns = [*features, *TRAINING_COLUMNS, "propensity"]
    if cohort.path:
        name, source = Path(cohort.path).name, str(Path(cohort.path).resolve())
    else:
        name, source = cohort.source, {"source": cohort.source, "description": cohort.description}
    for context, part in (("training", split.train), ("evaluation", split.holdout)):
        run.log_dataset(
            _plain_profiles(part[[c for c in columns if c in part.columns]]),
            name=f"{name} ({cohort.sha256[:8]})",
            context=context,
            source=source,
            targets=f"{config['primary']}_followup",
        )


def _plain_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Profile rows in plain types (strings, int64, float64), as callers send them."""
    plain = frame.copy()
    for column in plain.columns:
        if isinstance(plain[column].dtype, pd.CategoricalDtype) or column == "person_id":
            plain[column] = plain[column].astype(str)
    return plain
