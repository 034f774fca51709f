"""The training pipeline: load → validate → split → fit → evaluate → gate → card → log → register.

Each stage is a plain module-level function that the CLI, this pipeline and the tests call (the
tests replace one stage at a time with a failing one to prove the run is all-or-nothing). A run
that fails at any stage registers nothing and leaves ``champion`` where it was: registration is
the last stage, the card is rendered in a temporary folder before it, and
:meth:`recommender.registry.TrainingRun.register` undoes itself if any of its own steps fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.errors import InputError
from pipelines._train_config import LOWER_IS_BETTER, config_from_mapping, load_config
from recommender.paths import config_path, models_dir

__all__ = [
    "STAGES", "SilentProgress", "TrainingResult", "Cohort", "Split", "Evaluation",
    "load_config", "run_training", "training_key", "person_hashes",
    "learner_params", "load_stage", "split_stage", "fit_stage", "evaluate_stage", "gate_stage", "card_stage",
    "log_stage", "register_stage", "publish_folder",
]

STAGES = ("load", "split", "fit", "evaluate", "gate", "card", "log", "register")
_PACKAGES = ("burnout-recommender", "mlflow", "lightgbm", "scikit-learn", "pandas", "numpy",
             "scipy", "pyarrow")
# Fewest held-out rows unseen by the champion on which the gate compares (else all rows).
_GATE_MIN_ROWS = 200


# ---------------------------------------------------------------------------------- stages
@dataclass
class Cohort:
    """A validated training table and where it came from."""

    frame: pd.DataFrame
    catalog: object
    source: str                # "file" or "simulated"
    description: str
    sha256: str
    design: str                # "randomized", "observational" or "not declared"
    path: str | None = None


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


@dataclass
class Evaluation:
    """What the evaluation stage measured on the held-out part."""

    report: object
    dr_scores: pd.DataFrame
    effects: pd.DataFrame
    recommended: np.ndarray
    secondary: pd.DataFrame
    metrics: dict = field(default_factory=dict)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _frame_sha256(frame: pd.DataFrame) -> str:
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(rows.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


def _design_from_propensity(frame: pd.DataFrame) -> str:
    """"randomized" when logged propensities are one constant per arm (a trial's shares)."""
    if "propensity" not in frame.columns or "intervention" not in frame.columns:
        return "not declared (no propensity column)"
    propensity = pd.to_numeric(frame["propensity"], errors="coerce")
    per_arm = propensity.groupby(frame["intervention"].astype(str)).nunique()
    if propensity.notna().all() and (per_arm <= 1).all():
        return "randomized (logged propensities are constant within each arm)"
    return "observational (logged propensities vary within arms)"


def fit_min_arm_rows(config: dict) -> int:
    """Fewest rows of an arm in the whole cohort for the fit to succeed after the split.

    The learners refuse an arm with fewer than ``max(min_arm_rows, 2 * n_folds)`` training
    rows; the training part keeps ``1 - holdout_share`` of each arm (stratified split).
    """
    import inspect
    import math

    from recommender.uplift import UpliftModel

    learner = config["learner"]
    default = inspect.signature(UpliftModel).parameters["min_arm_rows"].default
    per_fit = max(int((learner.get("params") or {}).get("min_arm_rows", default)),
                  2 * int(learner["n_folds"]))
    return math.ceil(per_fit / (1 - config["split"]["holdout_share"]))


def load_stage(config: dict, data=None) -> Cohort:
    """Load and validate the training cohort: ``data`` (a file) or the configured simulation.

    A file that breaks the data contract raises :class:`InputError` with the whole validation
    report, before any MLflow run exists.
    """
    from recommender.catalog import load_catalog
    from recommender.cohort import read_cohort, typed_cohort, validate_cohort

    catalog_file = config["catalog"]
    catalog = load_catalog(config_path(catalog_file) if not Path(catalog_file).is_absolute()
                           else catalog_file)
    if data is not None:
        path = Path(data)
        if not path.exists():
            raise InputError(f"training data file {path} does not exist")
        frame = read_cohort(path)
        sha = _file_sha256(path)
        # Only a simulator knows true effects: a file carrying them is a simulated cohort.
        simulated = any(str(c).startswith("true_effect_") for c in frame.columns)
        source = "simulated (file)" if simulated else "file"
        description = f"file {path.name}" + (" (simulated, with oracle columns)"
                                             if simulated else "")
        design = config["data"].get("design") or _design_from_propensity(frame)
    else:
        from recommender.simulate import simulate_cohort

        spec = config["data"]
        seed = spec["seed"] if spec.get("seed") is not None else config["seed"]
        frame = simulate_cohort(spec["scenario"], spec["n"], seed=seed,
                                assignment=spec["assignment"])
        source, sha, path = "simulated", _frame_sha256(frame), None
        description = (f"simulated: scenario {spec['scenario']}, n = {spec['n']}, seed {seed}, "
                       f"{spec['assignment']} assignment")
        design = spec.get("design") or ("randomized" if spec["assignment"] == "rct"
                                         else "observational")
    report = validate_cohort(frame, training=True, arms=catalog.arm_ids,
                             control=catalog.control, extra_features=config["extra_features"],
                             min_arm_rows=fit_min_arm_rows(config))
    if not report.ok:
        where = path if path is not None else "the simulated cohort"
        raise InputError(f"{where} does not meet the data contract:\n{report.format()}",
                         problems=list(getattr(report, "errors", report.problems)))
    typed = typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control)
    return Cohort(frame=typed, catalog=catalog, source=source, description=description,
                  sha256=sha, design=design, path=None if path is None else str(path))


def split_stage(cohort: Cohort, config: dict) -> Split:
    """Hold out a share of the rows, stratified by arm so every arm is evaluated."""
    from sklearn.model_selection import train_test_split

    frame = cohort.frame
    arms = frame["intervention"].astype(str)
    train_index, holdout_index = train_test_split(
        np.arange(len(frame)), test_size=config["split"]["holdout_share"],
        random_state=config["seed"], stratify=arms.to_numpy())
    return Split(train=frame.iloc[np.sort(train_index)].reset_index(drop=True),
                 holdout=frame.iloc[np.sort(holdout_index)].reset_index(drop=True))


_KEY_ENV = "RECOMMENDER_TRAINING_KEY"
_KEY_FILE = "training.key"


def training_key(*, create: bool = True) -> bytes | None:
    """The secret that keys the person-id hashes a model carries; never stored in the model.

    ``RECOMMENDER_TRAINING_KEY`` wins; otherwise ``<models_dir>/training.key``, created once
    with a random key (mode 0600, written whole or not at all). None when neither exists and
    ``create`` is False.
    """
    import os
    import secrets

    env = os.environ.get(_KEY_ENV)
    if env:
        raw = env.encode()
    else:
        path = models_dir() / _KEY_FILE
        if not path.exists():
            if not create:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temp = tempfile.mkstemp(prefix=".training-key-", dir=path.parent)
            try:
                os.fchmod(handle, 0o600)
                os.write(handle, secrets.token_hex(32).encode())
                os.close(handle)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(handle)
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        raw = path.read_bytes().strip()
    # BLAKE2b keys are at most 64 bytes: condense whatever was given.
    return hashlib.blake2b(raw, digest_size=32, person=b"train-key").digest()


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key, so a gate can tell whether it holds the same one."""
    return hashlib.blake2b(key, digest_size=8, person=b"key-id").hexdigest()


def person_hashes(person_ids, key: bytes) -> np.ndarray:
    """8-byte keyed BLAKE2b digests of person ids, so a model can remember whom it was trained
    on (for a fair gate) without carrying the identifiers, and without anyone lacking the key
    being able to test whether a given id was in the training data."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(str(p).encode(), digest_size=8,
                                                       key=key).digest(), "big")
                        for p in person_ids),
                       dtype=np.uint64, count=len(person_ids))


def _outcome_change(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    return (frame[f"{outcome}_followup"].to_numpy(dtype=float)
            - frame[outcome].to_numpy(dtype=float))


def learner_design(cohort: Cohort) -> str:
    """The ``design`` the learners and the evaluation's scores use for this cohort.

    A randomized cohort (declared in ``data.design``, simulated as a trial, or detected from
    logged propensities that are one share per arm) uses the arm shares as propensities, so a
    trial export without a propensity column never gets classifier-estimated ones.
    """
    for design in ("randomized", "observational"):
        if str(cohort.design).startswith(design):
            return design
    return "auto"


def _propensity(frame: pd.DataFrame):
    return frame["propensity"].to_numpy(dtype=float) if "propensity" in frame.columns else None


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
                raise InputError(f"learner.params.{key}[{position}] = {entry!r}; accepted: "
                                 "{gbm: {num_leaves: .., max_rounds: ..}} or {ridge: {alpha: ..}}")
            kind, settings = next(iter(entry.items()))
            try:
                specs.append(kinds[kind](**(settings or {})))
            except TypeError as error:
                raise InputError(f"learner.params.{key}[{position}]: {error}") from None
        out[key] = tuple(specs)
    return out


def fit_stage(split: Split, cohort: Cohort, config: dict):
    """Fit one uplift model per outcome on the training part; returns a RecommendationModel."""
    from recommender.cohort import feature_frame
    from recommender.model import RecommendationModel
    from recommender.uplift import UpliftModel

    key = training_key()
    X = feature_frame(split.train, config["extra_features"])
    treatment = split.train["intervention"].astype(str).to_numpy()
    learner = config["learner"]
    models = {}
    for outcome in [config["primary"], *[o for o in config["outcomes"]
                                         if o != config["primary"]]]:
        model = UpliftModel(learner=learner["learner"], control=cohort.catalog.control,
                            n_folds=learner["n_folds"], random_state=config["seed"],
                            design=learner_design(cohort),
                            **learner_params(learner.get("params")))
        models[outcome] = model.fit(X, treatment, _outcome_change(split.train, outcome),
                                    propensity=_propensity(split.train))
    return RecommendationModel(
        outcome_models=models, features=X, catalog_version=cohort.catalog.version,
        control=cohort.catalog.control, primary=config["primary"], catalog=cohort.catalog,
        metadata={"data_sha256": cohort.sha256, "data": cohort.description,
                  "seed": config["seed"],
                  "training_person_hashes": person_hashes(split.train["person_id"], key),
                  "training_key_id": key_fingerprint(key)})


def evaluate_stage(model, split: Split, cohort: Cohort, config: dict) -> Evaluation:
    """Evaluate on the held-out part against doubly robust scores fitted there."""
    from recommender.evaluation import evaluate_effects, subgroup_frame
    from recommender.registry import estimate, policy_value_scores
    from recommender.uplift import doubly_robust_scores

    holdout = split.holdout
    X = model.feature_frame(holdout)
    treatment = holdout["intervention"].astype(str).to_numpy()
    alpha, folds, seed = config["evaluation"]["alpha"], config["evaluation"]["n_folds"], config["seed"]
    control = cohort.catalog.control
    primary = model.outcome_models[model.primary]
    effects = primary.predict_effect(X)[list(model.treatment_arms)]
    lower, upper = primary.predict_interval(X, alpha=alpha)

    def scores_for(outcome):
        return doubly_robust_scores(X, treatment, _outcome_change(holdout, outcome),
                                    propensity=_propensity(holdout), control=control,
                                    n_folds=folds, random_state=seed,
                                    design=learner_design(cohort))

    dr_scores = scores_for(model.primary)
    oracle_columns = [f"true_effect_{arm}" for arm in model.treatment_arms]
    oracle = None
    if all(c in holdout.columns for c in oracle_columns):
        oracle = holdout[oracle_columns].set_axis(list(model.treatment_arms), axis=1)
    # The evaluation and the gate value the policy the service serves: eligible arms only.
    eligible = model.eligibility(holdout)
    report = evaluate_effects(effects, dr_scores, lower=lower, upper=upper, oracle=oracle,
                              groups=subgroup_frame(holdout), alpha=alpha, control=control,
                              random_state=seed, eligible=eligible,
                              min_cell=config["card"]["min_cell"])
    recommended = model.recommend(effects, eligible=eligible).to_numpy()

    rows = []
    for outcome in model.outcomes:
        scores = dr_scores if outcome == model.primary else scores_for(outcome)
        gained = estimate(policy_value_scores(scores, recommended, control=control,
                                              lower_is_better=LOWER_IS_BETTER[outcome]),
                          alpha=alpha)
        rows.append({"outcome": outcome,
                     "better_when": "lower" if LOWER_IS_BETTER[outcome] else "higher",
                     "points_improved": gained.estimate, "lower": gained.lower,
                     "upper": gained.upper})
    secondary = pd.DataFrame(rows)
    metrics = dict(report.metrics())
    for row in rows:
        for key in ("points_improved", "lower", "upper"):
            suffix = "" if key == "points_improved" else f".{key}"
            metrics[f"outcome_improved.{row['outcome']}{suffix}"] = row[key]
    return Evaluation(report=report, dr_scores=dr_scores, effects=effects,
                      recommended=recommended, secondary=secondary, metrics=metrics)


def gate_stage(evaluation: Evaluation, split: Split, cohort: Cohort, config: dict):
    """Compare with the current champion on the same held-out rows and scores.

    No champion: the challenger passes. A champion that cannot be loaded or scored on these
    rows fails the gate closed (a person can still promote by hand after review).
    """
    from recommender.registry import (
        aliases,
        gate_decision,
        load_model,
        policy_value_scores,
    )

    alpha = config["gate"]["alpha"]
    control = cohort.catalog.control
    note = ""
    challenger = policy_value_scores(evaluation.dr_scores, evaluation.recommended,
                                     control=control)
    name = config["registry"]["model_name"]
    version = aliases(name).get("champion")
    if version is None:
        return gate_decision(challenger, alpha=alpha)
    try:
        champion_model = load_model(f"models:/{name}/{version}")
        champion_effects = champion_model.predict_effect(split.holdout)
        champion_recommended = champion_model.recommend(
            champion_effects, eligible=champion_model.eligibility(split.holdout)).to_numpy()
        champion = policy_value_scores(evaluation.dr_scores, champion_recommended,
                                       control=control)
        # A champion trained on some of these rows would be graded on data it has fitted,
        # which flatters it; compare on the rows neither model has seen when enough remain.
        seen = champion_model.metadata.get("training_person_hashes")
        key = training_key(create=False)
        if seen is not None and "person_id" in split.holdout.columns:
            if key is None or (champion_model.metadata.get("training_key_id")
                               != key_fingerprint(key)):
                # Hashes under another key (another machine, an older model) match nothing.
                note = (" The champion's training rows could not be recognised (its person "
                        "hashes use a training key this machine does not hold), so the gate "
                        "compared on all held-out rows, some of which the champion may have "
                        "been trained on.")
            else:
                unseen = ~np.isin(person_hashes(split.holdout["person_id"], key),
                                  np.asarray(seen))
                if unseen.sum() >= max(_GATE_MIN_ROWS, 0.25 * len(unseen)):
                    challenger, champion = challenger[unseen], champion[unseen]
    except Exception as error:  # noqa: BLE001 - any failure means "not comparable": fail closed
        from recommender.registry import GateDecision, estimate

        return GateDecision(
            passed=False, alpha=alpha, challenger=estimate(challenger, alpha=alpha),
            champion_version=str(version),
            reason=(f"champion version {version} could not be valued on this run's held-out "
                    f"data ({type(error).__name__}: {error}); the challenger stays challenger "
                    "until a person promotes it"))
    decision = gate_decision(challenger, champion, alpha=alpha, champion_version=str(version))
    return dataclasses.replace(decision, reason=decision.reason + note) if note else decision


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def _package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def card_facts(model, evaluation: Evaluation, split: Split, cohort: Cohort, config: dict, *,
               gate, run_id: str | None, git_commit: str, versions: dict,
               previous_champion: str | None = None, created: str | None = None) -> dict:
    """Every fact the model card shows (version and aliases are added at registration)."""
    from recommender.card import training_card_facts

    return training_card_facts(
        model=model, report=evaluation.report, recommended=evaluation.recommended,
        secondary=evaluation.secondary, holdout_features=model.feature_frame(split.holdout),
        treatment_train=split.train["intervention"].astype(str),
        treatment_holdout=split.holdout["intervention"].astype(str),
        catalog=cohort.catalog,
        data={"source": cohort.source, "description": cohort.description,
              "design": cohort.design, "sha256": cohort.sha256,
              "propensity_logged": "propensity" in cohort.frame.columns,
              "n_rows": len(cohort.frame)},
        config=config, gate=gate, run_id=run_id, git_commit=git_commit, versions=versions,
        previous_champion=previous_champion, created=created)


def card_stage(facts: dict, plots: dict, folder) -> dict:
    """Render the card into ``folder`` (a staging folder before registration)."""
    from recommender.card import PLOT_CAPTIONS, write_card

    facts = dict(facts)
    facts["plots"] = {name: {"caption": PLOT_CAPTIONS.get(name, name)} for name in plots}
    return write_card(facts, folder, plots=plots)


def log_stage(run, model, evaluation: Evaluation, cohort: Cohort, split: Split, config: dict,
              *, plots_folder: Path, git_commit: str, versions: dict):
    """Log config, lineage, metrics, plots, report and the pyfunc model (not registered)."""
    train_counts = split.train["intervention"].astype(str).value_counts()
    holdout_counts = split.holdout["intervention"].astype(str).value_counts()
    run.log_params({
        "config": config,
        "data.source": cohort.source, "data.description": cohort.description,
        "data.sha256": cohort.sha256, "data.design": cohort.design,
        "rows.train": len(split.train), "rows.holdout": len(split.holdout),
        **{f"rows.train.{a}": int(train_counts.get(a, 0)) for a in model.arms},
        **{f"rows.holdout.{a}": int(holdout_counts.get(a, 0)) for a in model.arms},
        "seed.split": config["seed"], "seed.learner": config["seed"],
        "seed.evaluation": config["seed"],
        "learner.chosen": {o: str(getattr(m, "learner_", "?"))
                           for o, m in model.outcome_models.items()},
        "catalog.version": model.catalog_version,
    })
    run.set_tags({"git_commit": git_commit, "data.sha256": cohort.sha256,
                  **{f"version.{k}": v for k, v in versions.items()}})
    run.log_dict(config, "config/train.yaml")
    run.log_metrics(evaluation.metrics)
    run.log_dict(evaluation.report.to_dict(), "evaluation/report.json")
    run.log_dict({"summary": evaluation.report.summary().reset_index()
                  .to_dict(orient="records")}, "evaluation/summary.json")
    run.log_artifacts(plots_folder, "evaluation/plots")
    for outcome, learner in model.outcome_models.items():
        selection = getattr(learner, "selection_", None)
        if isinstance(selection, pd.DataFrame):
            run.log_dict({"selection": selection.reset_index().to_dict(orient="records")},
                         f"learners/{outcome}_selection.json")
    example = split.holdout[[c for c in split.holdout.columns if c == "person_id"]
                            + model.feature_names].head(5)
    example = _plain_profiles(example)
    return run.log_model(model, example)


def _plain_profiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Profile rows in plain types (strings, int64, float64), as callers send them."""
    plain = frame.copy()
    for column in plain.columns:
        if isinstance(plain[column].dtype, pd.CategoricalDtype) or column == "person_id":
            plain[column] = plain[column].astype(str)
    return plain


def publish_folder(source, target: Path) -> None:
    """Copy ``source`` to ``target`` so that readers see the old folder or the new, never half.

    The copy goes to a temporary sibling first and is renamed into place; a folder already at
    ``target`` (left by a deleted version of an earlier store) is moved aside for the swap and
    removed after it.
    """
    import os
    import secrets

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    fresh = target.parent / f".{target.name}.new-{token}"
    old = target.parent / f".{target.name}.old-{token}"
    try:
        shutil.copytree(source, fresh)
        if target.exists():
            os.replace(target, old)
        os.replace(fresh, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def register_stage(run, model_info, *, gate, reason: str, card_facts_: dict, plots: dict,
                   previous_champion: str | None):
    """Register the version, alias it, write the final card with its version; all or nothing."""
    published: list[Path] = []

    def publish(registration):
        facts = dict(card_facts_)
        facts["model"] = {**facts["model"], "version": registration.version,
                          "aliases": registration.aliases,
                          "previous_champion": previous_champion}
        target = models_dir() / "cards" / registration.version
        with tempfile.TemporaryDirectory(prefix="recommender-card-") as staging:
            card_stage(facts, plots, staging)
            run.log_artifacts(staging, "card")
            publish_folder(staging, target)
            published.append(target)
        registration.card_folder = target

    try:
        return run.register(model_info, gate=gate, reason=reason, on_registered=publish)
    except BaseException:
        # The version has been deleted again; so must its published card be.
        for target in published:
            shutil.rmtree(target, ignore_errors=True)
        raise


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


def run_training(config=None, *, data=None, seed: int | None = None, progress=None,
                 reason: str | None = None, overrides: dict | None = None) -> TrainingResult:
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

    extra = dict(overrides or {})
    if seed is not None:
        extra["seed"] = int(seed)
    if isinstance(config, dict):
        settings = config_from_mapping(config, overrides=extra)
    else:
        settings = load_config(config, overrides=extra)
    display = progress or SilentProgress()

    with display.stage("load", "reading and validating the cohort"):
        cohort = load_stage(settings, data)
    display.note(f"{cohort.description}: {len(cohort.frame):,} rows, sha256 "
                 f"{cohort.sha256[:12]}…")
    git_commit, versions = _git_commit(), _package_versions()
    name = settings["registry"]["model_name"]
    run_name = f"seed-{settings['seed']}-{cohort.sha256[:8]}"
    tags = {"pipeline": "train", "data.source": cohort.source}

    registration = None
    try:
        with TrainingRun(experiment=settings["registry"]["experiment"], run_name=run_name,
                         tags=tags, model_name=name) as run, \
                tempfile.TemporaryDirectory(prefix="recommender-train-") as workspace:
            workspace = Path(workspace)
            with display.stage("split", "holding out a stratified share for evaluation"):
                split = split_stage(cohort, settings)
            with display.stage("fit", f"fitting {settings['learner']['learner']} uplift learners "
                                      f"for {', '.join(settings['outcomes'])}"):
                model = fit_stage(split, cohort, settings)
            with display.stage("evaluate", "doubly robust evaluation on the held-out part"):
                evaluation = evaluate_stage(model, split, cohort, settings)
            display.note(evaluation.report.statement)
            previous_champion = current_aliases(name).get("champion")
            with display.stage("gate", "comparing with the current champion on the same rows"):
                gate = gate_stage(evaluation, split, cohort, settings)
            display.note(("passes: " if gate.passed else "stays challenger: ") + gate.reason)
            with display.stage("card", "rendering the model card (staged)"):
                plots_folder = workspace / "plots"
                plot_paths = evaluation.report.save_plots(plots_folder)
                plots = {p.stem: p.read_bytes() for p in plot_paths}
                created = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
                facts = card_facts(model, evaluation, split, cohort, settings, gate=gate,
                                   run_id=run.run_id, git_commit=git_commit, versions=versions,
                                   previous_champion=previous_champion, created=created)
                card_stage(facts, plots, workspace / "card")
            with display.stage("log", "logging parameters, metrics, plots and the model to MLflow"):
                model_info = log_stage(run, model, evaluation, cohort, split, settings,
                                       plots_folder=plots_folder, git_commit=git_commit,
                                       versions=versions)
            with display.stage("register", f"registering a version of {name}"):
                registration = register_stage(
                    run, model_info, gate=gate, card_facts_=facts, plots=plots,
                    reason=reason or f"training run {run_name}",
                    previous_champion=previous_champion)
            display.note(f"version {registration.version}: {', '.join(registration.aliases)}")
    except Exception as error:
        # A failure after registration (a note, temp cleanup, closing the run) leaves the
        # version registered: say so, rather than let the caller claim nothing was.
        if registration is not None:
            error.registered_version = registration.version
        raise
    return TrainingResult(run_id=run.run_id, version=registration.version,
                          aliases=registration.aliases, gate=gate, model=model,
                          report=evaluation.report,
                          card_folder=getattr(registration, "card_folder", None),
                          config=settings, data_sha256=cohort.sha256)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `recommender train --config configs/train.yaml`")
