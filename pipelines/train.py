"""The training pipeline: load → validate → split → fit → evaluate → gate → card → log → register.

Each stage is a plain module-level function that the CLI, this pipeline and the tests call (the
tests replace one stage at a time with a failing one to prove the run is all-or-nothing). A run
that fails at any stage registers nothing and leaves ``champion`` where it was: registration is
the last stage, the card is rendered in a temporary folder before it, and
:meth:`recommender.registry.TrainingRun.register` undoes itself if any of its own steps fails.

The stages live one to a private module (``_train_cohort``: load and split, ``_train_fit``,
``_train_evaluate``, ``_train_gate``, ``_train_card``, ``_train_log``, ``_train_register``);
this module runs them in order and re-exports them, so that replacing one here (as the tests
do) replaces it in the run.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import tempfile
import warnings
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
from pipelines._train_lineage import reproduction, training_fingerprint
from pipelines._train_log import example_profiles, log_stage, run_description
from pipelines._train_overlap import OverlapRecord
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

    files = [path for path in config_dir().rglob("*") if path.is_file()]
    files += [
        settings["catalog"],
        settings["data"]["scenario"],
        settings["log"]["serve_config"] or os.environ.get("RECOMMENDER_SERVE_CONFIG", ""),
    ]
    return training_fingerprint(
        settings,
        cohort.sha256,
        versions=versions,
        files=[f for f in files if f],
        training_key_id=key_fingerprint(key) if key is not None else "none",
    )


def evaluate_policies_on_log(config: dict, catalog, *, versions=()) -> dict | None:
    """Off-policy values of the champion's (and ``versions``') best-arm policies on the log.

    None when the service's log holds no outcome yet. Values are EE change against usual care
    for all per person (lower is better), by DR, IPS and SNIPS, with ``1 - alpha`` intervals and
    the effective number of rows behind their weights; ``notes`` say which rows were compared,
    per policy where the log could not have served its arms, where its weights are extreme,
    and whether personalizing beats the best single arm (``note``: the same, joined).
    """
    from pipelines._from_log import log_policy_frame, off_policy_notes, off_policy_table
    from pipelines._train_key import comparison_rows
    from recommender.model import served_under
    from recommender.registry import aliases, load_model

    name = config["registry"]["model_name"]
    # Checked before the log is valued (which takes a while): a mistyped version fails at once.
    versions = [_registered_version(name, v) for v in versions]
    logged = log_policy_frame(config, catalog, required=True)
    if logged is None:
        return None
    frame, scores, change = logged
    wanted = []
    champion = aliases(name).get("champion")
    if champion is not None:
        wanted.append((f"champion (version {champion})", str(champion)))
    wanted += [(f"version {v}", v) for v in dict.fromkeys(versions) if v != str(champion)]
    models = {}
    for label, version in wanted:
        try:
            # as the service serves it: an arm the catalog renamed, under its new id
            models[label], _ = served_under(load_model(f"models:/{name}/{version}"), catalog)
        except InputError as error:  # say which model: the others may be fine
            raise InputError(f"{label}: {error}", problems=error.problems) from None
    # A model valued on the people it was trained on is flattered: all are valued on the rows
    # none of them has seen, when enough remain (the note says what was done).
    rows, note = comparison_rows(models, frame["person_id"], logged=True)
    frame = frame[rows].reset_index(drop=True)
    scores, change = scores[rows].reset_index(drop=True), change[rows]
    values, notes = [], [note] if note else []
    for label, model in models.items():
        settings = dict(control=catalog.control, alpha=config["evaluation"]["alpha"], label=label)
        try:
            table = off_policy_table(model, frame, scores, change, **settings)
            notes += off_policy_notes(model, frame, scores, table, **settings)
        except InputError as error:  # say which model: the others may be fine
            raise InputError(f"{label}: {error}", problems=error.problems) from None
        for row in table:
            values.append(
                {
                    "policy": row[0],
                    "estimator": row[1],
                    "estimate": row[2],
                    "lower": row[3],
                    "upper": row[4],
                    "rows": row[5],
                    "effective_rows": row[6],
                    "unmeasured_rows": row[7],
                }
            )
    return {
        "rows": int(len(frame)),
        "logged_rows": int(len(rows)),
        "note": "; ".join(notes),
        "notes": notes,
        "values": values,
    }


def _registered_version(name: str, given) -> str:
    """The version number of ``given``, a version number or an alias of model ``name``."""
    from recommender.registry import resolve_model, tracking_uri

    text = str(given).strip()
    try:
        ref = resolve_model(
            f"models:/{name}/{text}" if text.isdigit() else f"models:/{name}@{text}"
        )
    except InputError:
        ref = None
    if ref is None or ref.version is None:  # unknown, or no version or alias at all ("a/b")
        raise InputError(
            f"version {given!r} is not a registered version or alias of {name} in the store "
            f"at {tracking_uri()}; accepted: "
            "a version number or alias of the registry (e.g. 3, champion, challenger)"
        )
    return ref.version


def _overlap_warning(overlap: OverlapRecord, progress) -> None:
    """The run's poor overlap, once: a note of the progress display, else a warning."""
    said = overlap.statement()
    if not said:
        return
    if progress is None:
        warnings.warn(said, UserWarning, stacklevel=3)
    else:
        progress.note(f"warning: {said}")


def _carried_note(loop: dict, display, *, logged: bool = True) -> None:
    """Which arms a run carried over, and which it could not."""
    from recommender.model import formerly

    carried = loop.get("carried_arms") or []
    if carried:
        display.note(
            (
                "carried over (too few logged rows to learn; the previous estimate is kept, "
                "offered and explored until they are learnt): "
                if logged
                else "carried over (too few rows to learn; the published estimate is kept, "
                "the same for everyone in a role, until a file or the service's log has "
                "enough rows of them): "
            )
            + "; ".join(
                f"{formerly(c['arm'], c.get('formerly'))} ({c['rows']:,} rows of {c['min_rows']:,} needed; from {c['from']})"
                for c in carried
            )
        )
    if loop.get("arms_not_carried"):
        display.note(
            "left out (no earlier estimate to carry): " + ", ".join(loop["arms_not_carried"])
        )


def _off_policy_note(cohort, model, evaluation, split, settings, display) -> None:
    """On a log: the model's off-policy values on the held-out log rows, for the card."""
    from pipelines._from_log import OFF_POLICY_COLUMNS, off_policy_notes, off_policy_table

    holdout = split.holdout
    change = (holdout["ee_followup"] - holdout["ee"]).to_numpy(dtype=float)
    how = dict(
        control=cohort.catalog.control,
        alpha=settings["evaluation"]["alpha"],
        label="this model's best arms (held-out log)",
    )
    rows = off_policy_table(model, holdout, evaluation.dr_scores, change, **how)
    notes = off_policy_notes(model, holdout, evaluation.dr_scores, rows, **how)
    cohort.loop["off_policy"] = {"columns": OFF_POLICY_COLUMNS, "rows": rows, "notes": notes}
    dr = next(row for row in rows if row[1] == "DR")
    display.note(_off_policy_line(dr, notes))


def _off_policy_line(dr_row, notes) -> str:
    """The one line ``train --from-log`` prints of its off-policy value: the figure with its
    interval, or, where the table holds none (too few effective rows), "not measurable" and the
    note saying why, as the card says it (a missing figure printed as a number read ``+nan``)."""
    estimate, lower, upper = dr_row[2], dr_row[3], dr_row[4]
    if all(v is not None and math.isfinite(v) for v in (estimate, lower, upper)):
        return (
            f"off-policy (doubly robust) on the held-out log: {estimate:+.2f} EE points vs "
            f"usual care ({lower:+.2f} to {upper:+.2f})"
        )
    why = next((note for note in notes if "not measurable" in note), None)
    return "off-policy (doubly robust) on the held-out log: not measurable" + (
        f": {why.split('not measurable: ', 1)[-1]}" if why else ""
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `recommender train --config configs/train.yaml`")
