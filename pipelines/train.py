"""The training pipeline: load → validate → split → fit → evaluate → gate → card → log → register.

Each stage is a plain module-level function that the CLI, this pipeline and the tests call (the
tests replace one stage at a time with a failing one to prove the run is all-or-nothing). A run
that fails at any stage registers nothing and leaves ``champion`` where it was: registration is
the last stage, the card is rendered in a temporary folder before it, and
:meth:`recommender.registry.TrainingRun.register` undoes itself if any of its own steps fails.

The stages live one to a private module (``_train_cohort``: load and split, ``_train_fit``,
``_train_evaluate``, ``_train_gate``, ``_train_card``, ``_train_log``, ``_train_register``);
this module runs them in order and re-exports them, so that replacing one here (as the tests
do) replaces it in the run. What a run tells its reader is in ``_train_notes``; the off-policy
values of registered models on the log (``evaluate-policy``), in ``_train_policy_values``.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recommender.errors import InputError

from pipelines._from_log import (
    best_arms,
    log_description,
    log_summary,
    log_training_frame,
    logged_people,
    policy_on_log,
    policy_scores_on_log,
    unmeasured_rows,
)
from pipelines._log_contract import LEFT_OUT_KEY, left_out_sentence
from pipelines._train_card import card_facts, card_stage
from pipelines._train_carry import carry_stage, scores_with_estimates
from pipelines._train_cohort import Cohort, Split, load_stage, split_stage
from pipelines._train_cohort import fit_min_arm_rows as fit_min_arm_rows
from pipelines._train_cohort import min_arm_rows_reason as min_arm_rows_reason
from pipelines._train_cohort import training_catalog as training_catalog
from pipelines._train_cohort import learner_design as learner_design
from pipelines._train_config import LOWER_IS_BETTER as LOWER_IS_BETTER
from pipelines._train_config import config_from_mapping, load_config
from pipelines._train_evaluate import Evaluation, evaluate_stage
from pipelines._train_fit import constant_features_noted, fit_stage, learner_params
from pipelines._train_gate import gate_stage
from pipelines._train_key import key_fingerprint as key_fingerprint
from pipelines._train_key import comparison_rows, person_hashes, seen_rows, training_key
from pipelines._train_lineage import FINGERPRINT_TAG, _git_commit, _package_versions
from pipelines._train_lineage import reproduction, serve_settings_read, training_fingerprint
from pipelines._train_log import example_profiles, log_stage, run_description
from pipelines._train_notes import _carried_note, _off_policy_note, _overlap_warning
from pipelines._train_overlap import OverlapRecord
from pipelines._train_policy_values import evaluate_policies_on_log
from pipelines._train_register import publish_folder, regated_note, register_stage
from pipelines.score import safety_rules

__all__ = [
    "STAGES",
    "SilentProgress",
    "TrainingResult",
    "Cohort",
    "Split",
    "Evaluation",
    "load_config",
    "run_training",
    "TrainedAlike",
    "trained_alike",
    "training_key",
    "person_hashes",
    "seen_rows",
    "comparison_rows",
    "learner_params",
    "load_stage",
    "split_stage",
    "fit_stage",
    "carry_stage",
    "scores_with_estimates",
    "evaluate_stage",
    "gate_stage",
    "card_stage",
    "log_stage",
    "register_stage",
    "publish_folder",
    "log_training_frame",
    "example_profiles",
    "logged_people",
    "log_summary",
    "log_description",
    "best_arms",
    "policy_on_log",
    "policy_scores_on_log",
    "unmeasured_rows",
    "evaluate_policies_on_log",
]

STAGES = ("load", "split", "fit", "evaluate", "gate", "card", "log", "register")


# ---------------------------------------------------------------------------------- display
class SilentProgress:
    """The default progress display: nothing. The CLI passes a rich one (same two methods)."""

    @contextlib.contextmanager
    def stage(self, name: str, description: str):
        yield

    def note(self, text: str) -> None:
        pass


# ---------------------------------------------------------------------------------- run
@dataclass
class TrainingResult:
    """What a training run produced."""

    run_id: str
    version: str
    aliases: list
    gate: object
    model: object
    report: object
    card_folder: Path
    config: dict
    data_sha256: str

    @property
    def promoted(self) -> bool:
        return "champion" in self.aliases


def run_training(
    config=None,
    *,
    data=None,
    seed: int | None = None,
    progress=None,
    reason: str | None = None,
    overrides: dict | None = None,
) -> TrainingResult:
    """Run the whole pipeline once.

    Parameters
    ----------
    config : str, Path or dict, optional
        The config file (default ``configs/train.yaml``) or an already loaded config.
    data : str or Path, optional
        A cohort file; without it the config's simulated cohort is used.
    seed : int, optional
        Overrides ``seed`` in the config.
    progress : object, optional
        ``progress.stage(name, description)`` (a context manager around each stage) and
        ``progress.note(text)``; default :class:`SilentProgress`.
    reason : str, optional
        Recorded in the promotion log; default names the run.
    overrides : dict, optional
        Nested config values that win over the file (used by tests for small, fast runs).

    Returns
    -------
    TrainingResult

    Raises
    ------
    InputError
        Bad config or a data file that breaks the contract (nothing is logged then).
    """
    from recommender.registry import TrainingRun, aliases as current_aliases

    settings = _settings(config, seed, overrides)
    display = progress or SilentProgress()
    # The service's safety rules travel inside the model (its pyfunc gives crisis resources);
    # read first, so that a broken serve.yaml stops the run before anything is fitted.
    safety = safety_rules(settings["log"]["serve_config"])
    if settings["source"] == "evidence":
        from pipelines._train_evidence import run_evidence_training

        if data is not None:
            raise InputError("give either --data FILE or --evidence-only, not both")
        return run_evidence_training(settings, progress=display, reason=reason, safety=safety)

    with display.stage("load", "reading and validating the cohort"):
        cohort = load_stage(settings, data)
    display.note(f"{cohort.description}: {len(cohort.frame):,} rows, sha256 {cohort.sha256[:12]}…")
    for note in cohort.notes:  # what `recommender validate` would have noted: trained as it is
        display.note(f"note: {note}")
    if cohort.loop is not None:
        loop = cohort.loop
        without = ", ".join(loop["arms_without_overlap"]) or "none"
        set_aside = loop["n_rows"] - len(cohort.frame)
        display.note(
            f"log: {loop['n_rows']:,} served recommendations with outcomes; "
            f"{loop['served_with_probability_one']:,} served with probability 1 "
            f"(they inform only the arm they got); arms too rarely served to learn: "
            f"{without}" + (f" (their {set_aside:,} rows are not trained on)" if set_aside else "")
        )
        if loop.get(LEFT_OUT_KEY):  # rows an earlier release logged that the contract refuses
            display.note(left_out_sentence(loop[LEFT_OUT_KEY]))
    git_commit, versions = _git_commit(), _package_versions()
    retrain = reproduction(settings, cohort)
    name = settings["registry"]["model_name"]
    # The learner leads the name: runs sit side by side in MLflow, named by what differs.
    run_name = f"{settings['learner']['learner']}-seed-{settings['seed']}-{cohort.sha256[:8]}"
    tags = {"pipeline": "train", "data.source": cohort.source}
    # The key the fit stage will use (made now if this home has none yet, as it would be then).
    tags[FINGERPRINT_TAG] = _fingerprint(settings, cohort, versions, training_key())

    # Before the run exists: a log that cannot be held out by person leaves no failed run.
    held_out = "people (every survey cycle of theirs)" if cohort.loop else "a stratified share"
    with display.stage("split", f"holding out {held_out} for evaluation"):
        split = split_stage(cohort, settings)
    registration = None
    try:
        with (
            TrainingRun(
                experiment=settings["registry"]["experiment"],
                run_name=run_name,
                tags=tags,
                model_name=name,
                description=run_description(cohort, split, settings, reason),
            ) as run,
            tempfile.TemporaryDirectory(prefix="recommender-train-") as workspace,
        ):
            workspace = Path(workspace)
            overlap = OverlapRecord(settings["outcomes"])
            with (
                display.stage(
                    "fit",
                    f"fitting {settings['learner']['learner']} uplift learners "
                    f"for {', '.join(settings['outcomes'])}",
                ),
                overlap.watching("Training part"),
                constant_features_noted(cohort, display),
            ):
                model = fit_stage(split, cohort, settings)
            if cohort.carry is not None:
                model = carry_stage(model, cohort, settings)
                _carried_note(cohort.carry, display, logged=cohort.loop is not None)
            with (
                display.stage("evaluate", "doubly robust evaluation on the held-out part"),
                overlap.watching("Held-out part (the evaluation's scores)"),
            ):
                evaluation = evaluate_stage(model, split, cohort, settings)
            _overlap_warning(overlap, progress)
            display.note(evaluation.report.statement)
            if cohort.loop is not None:
                _off_policy_note(cohort, model, evaluation, split, settings, display)
            previous_champion = current_aliases(name).get("champion")
            with display.stage("gate", "comparing with the current champion on the same rows"):
                gate = gate_stage(evaluation, split, cohort, settings, model=model)
            display.note(("passes: " if gate.passed else "stays challenger: ") + gate.reason)
            with display.stage("card", "rendering the model card (staged)"):
                plots_folder = workspace / "plots"
                plot_paths = evaluation.report.save_plots(plots_folder)
                plots = {p.stem: p.read_bytes() for p in plot_paths}
                created = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
                # the card's facts but for the gate (taken again if the champion changed)
                facts_for = functools.partial(
                    card_facts,
                    model,
                    evaluation,
                    split,
                    cohort,
                    settings,
                    run_id=run.run_id,
                    git_commit=git_commit,
                    versions=versions,
                    created=created,
                    reproduction=retrain,
                )
                facts = facts_for(gate=gate, previous_champion=previous_champion)
                card_stage(facts, plots, workspace / "card")
            with display.stage("log", "logging parameters, metrics, plots and the model to MLflow"):
                model_info = log_stage(
                    run,
                    model,
                    evaluation,
                    cohort,
                    split,
                    settings,
                    plots_folder=plots_folder,
                    git_commit=git_commit,
                    versions=versions,
                    safety=safety,
                    reproduction=retrain,
                )
            with display.stage("register", f"registering a version of {name}"):
                registration = register_stage(
                    run,
                    model_info,
                    gate=gate,
                    card_facts_=facts,
                    plots=plots,
                    reason=reason or f"training run {run_name}",
                    regate=lambda: gate_stage(evaluation, split, cohort, settings, model=model),
                    facts_for=facts_for,
                )
            regated_note(gate, registration, display)
    except BaseException as error:
        # A failure or Ctrl-C after registration (a note, temp cleanup, closing the run) leaves
        # the version registered: say so, rather than let the caller claim nothing was.
        if registration is not None:
            error.registered_version = registration.version
        raise
    return TrainingResult(
        run_id=run.run_id,
        version=registration.version,
        aliases=registration.aliases,
        gate=registration.gate,
        model=model,
        report=evaluation.report,
        card_folder=getattr(registration, "card_folder", None),
        config=settings,
        data_sha256=cohort.sha256,
    )


@dataclass(frozen=True)
class TrainedAlike:
    """A registered version a run with the same arguments would train again as it is."""

    version: str
    run_id: str
    champion: bool
    gate_passed: bool | None
    gate_reason: str
    trained_at: str  # when its run started, "YYYY-MM-DD HH:MM UTC"
    outcomes_recorded_through: str | None  # trained from the log: its latest outcome's time


def trained_alike(
    config=None, *, data=None, seed: int | None = None, overrides: dict | None = None
) -> TrainedAlike | None:
    """The registered version whose training run had what a run with these arguments would
    have (settings, data, code, package versions, configuration files, training key), so that
    training would make the same model again; None when there is none, or when that cannot be
    told (versions trained before runs were fingerprinted).

    The champion, when it was trained alike; otherwise the latest version trained alike whose
    gate compared with the champion of now (so it would also get the same verdict: a version
    whose gate failed is not trained again every night on an unchanged log). A data file's
    data is its bytes; the service log's is the linked cohort as training reads it (every
    served recommendation with an outcome), so a new outcome is a change and a crisis answer
    or a recommendation without an outcome is not. Not for the evidence-only model, which has
    its own run.
    """
    from recommender.registry import aliases, client, versions_trained_by

    settings = _settings(config, seed, overrides)
    if settings["source"] == "evidence":
        raise InputError(
            "--if-changed: only for a data file, the simulated cohort or the service log "
            "(--from-log), not for the evidence-only model"
        )
    name = settings["registry"]["model_name"]
    try:
        champion = aliases(name, mlflow_client=client(existing=True)).get("champion")
    except InputError:  # no store yet
        return None
    cohort, key = load_stage(settings, data), training_key(create=False)
    fingerprint = _fingerprint(settings, cohort, _package_versions(), key)
    trained = versions_trained_by(FINGERPRINT_TAG, fingerprint, name=name)
    same = [v for v in trained if v.version == champion] or [
        v for v in trained if v.gate_champion == (champion or "none")
    ]
    if not same:
        return None
    found = same[-1]
    return TrainedAlike(
        version=found.version,
        run_id=found.run_id,
        champion=found.version == champion,
        gate_passed=found.gate_passed,
        gate_reason=found.gate_reason,
        trained_at=found.started,
        outcomes_recorded_through=found.params.get("data.log.outcomes_recorded_through"),
    )


def _settings(config, seed, overrides) -> dict:
    """The run's settings: ``config`` (a file or a mapping) with ``seed`` and ``overrides``."""
    extra = dict(overrides or {})
    if seed is not None:
        extra["seed"] = int(seed)
    if isinstance(config, dict):
        return config_from_mapping(config, overrides=extra)
    return load_config(config, overrides=extra)


def _fingerprint(settings: dict, cohort: Cohort, versions: dict, key: bytes | None) -> str:
    """:func:`training_fingerprint` of a run on ``cohort``, with every configuration file and
    the training ``key`` (None: this home holds none yet)."""
    import os

    from recommender.paths import config_dir

    # the service's settings as load_serve_config finds them; counted by what training reads
    serve = Path(
        settings["log"]["serve_config"]
        or os.environ.get("RECOMMENDER_SERVE_CONFIG")
        or config_dir() / "serve.yaml"
    ).resolve()
    files = [path for path in config_dir().rglob("*") if path.is_file()]
    files += [settings["catalog"], settings["data"]["scenario"]]
    return training_fingerprint(
        settings,
        cohort.sha256,
        versions=versions,
        files=[f for f in files if f and Path(f).resolve() != serve],
        training_key_id=key_fingerprint(key) if key is not None else "none",
        service=serve_settings_read(serve),
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `recommender train --config configs/train.yaml`")
