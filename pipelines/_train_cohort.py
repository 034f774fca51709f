"""The first two stages: load and validate the training cohort, then split off the held-out
part; and how the learners read a cohort (its design, outcome changes and propensities).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.errors import InputError
from recommender.paths import config_path

__all__ = [
    "Cohort",
    "Split",
    "fit_min_arm_rows",
    "min_arm_rows_reason",
    "training_catalog",
    "catalog_file",
    "load_stage",
    "split_stage",
    "learner_design",
]


@dataclass
class Cohort:
    """A validated training table and where it came from."""

    frame: pd.DataFrame
    catalog: object
    source: str  # "file" or "simulated"
    description: str
    sha256: str
    design: str  # "randomized", "observational" or "not declared"
    path: str | None = None
    loop: dict | None = None  # from the service's log: uptake, certainty, overlap
    # validation's notes: allowed but perhaps unintended (an arm without rows, 'Yes' and 'yes')
    notes: tuple[str, ...] = ()
    # the columns validation found constant in the whole cohort (its constant_feature notes)
    constant_columns: tuple[str, ...] = ()
    # A file's arms too small to learn, set aside for the carry stage, under the log's keys
    # (``arms_without_overlap``, ``rows_per_arm``, ``min_arm_rows``); None when there are none.
    small_arms: dict | None = None

    @property
    def carry(self) -> dict | None:
        """What the carry stage reads and records: the log's summary, or the file's small
        arms (``pipelines._train_carry.carry_stage``)."""
        return self.loop if self.loop is not None else self.small_arms


@dataclass
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


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
    """ "randomized" when logged propensities are one constant per arm (a trial's shares)."""
    if "propensity" not in frame.columns or "intervention" not in frame.columns:
        return "not declared (no propensity column)"
    propensity = pd.to_numeric(frame["propensity"], errors="coerce")
    per_arm = propensity.groupby(frame["intervention"].astype(str)).nunique()
    if propensity.notna().all() and (per_arm <= 1).all():
        return "randomized (logged propensities are constant within each arm)"
    return "observational (logged propensities vary within arms)"


def _arm_minimums(config: dict) -> tuple[int, int]:
    """``(fit, scores)``: fewest rows of an arm the learners need in the training part, and
    the doubly robust scores of the evaluation and the gate in the held-out part."""
    import inspect

    from recommender.uplift import UpliftModel, doubly_robust_scores

    learner = config["learner"]
    default = inspect.signature(UpliftModel).parameters["min_arm_rows"].default
    per_fit = max(
        int((learner.get("params") or {}).get("min_arm_rows", default)), 2 * int(learner["n_folds"])
    )
    scores = inspect.signature(doubly_robust_scores).parameters["min_arm_rows"].default
    per_score = max(int(scores), 2 * int(config["evaluation"]["n_folds"]))
    return per_fit, per_score


def fit_min_arm_rows(config: dict) -> int:
    """Fewest rows of an arm in the whole cohort for the fit and the held-out evaluation to
    succeed after the split.

    The learners refuse an arm with fewer than ``max(min_arm_rows, 2 * n_folds)`` training
    rows; the training part keeps ``1 - holdout_share`` of each arm (stratified split), and the
    held-out part the rest, on which the doubly robust scores of the evaluation and the gate
    need their own minimum per arm. (A cohort from the service's log is held out by person, and
    an arm whose rows belong to a few people may not divide: ``split_stage`` then says so.)
    """
    import math

    per_fit, per_score = _arm_minimums(config)
    share = config["split"]["holdout_share"]
    # +1: the stratified split may round an arm's held-out count down.
    return max(math.ceil(per_fit / (1 - share)), math.ceil((per_score + 1) / share))


def min_arm_rows_reason(config: dict) -> str:
    """Where :func:`fit_min_arm_rows` comes from, in words naming the config's keys."""
    per_fit, per_score = _arm_minimums(config)
    share = config["split"]["holdout_share"]
    return (
        f"{per_fit} to fit in the {1 - share:.0%} training part (learner.params.min_arm_rows, "
        f"learner.n_folds) and {per_score} to evaluate in the {share:.0%} held out "
        "(split.holdout_share, evaluation.n_folds)"
    )


def training_catalog(config: dict):
    """The intervention catalog the training config names (relative to the configs folder)."""
    from recommender.catalog import load_catalog

    return load_catalog(catalog_file(config))


def catalog_file(config: dict):
    """The catalog file the training config names (a relative name: in the configs folder)."""
    name = config["catalog"]
    return config_path(name) if not Path(name).is_absolute() else name


def load_stage(config: dict, data=None) -> Cohort:
    """Load and validate the training cohort: ``data`` (a file) or the configured simulation.

    A file that breaks the data contract raises :class:`InputError` with the whole validation
    report, before any MLflow run exists.
    """
    from recommender.cohort import read_cohort, typed_cohort, validate_cohort

    catalog_file = config["catalog"]
    catalog = training_catalog(config)
    loop = None
    if config.get("source") == "log":
        from pipelines._from_log import log_cohort, log_description

        if data is not None:
            raise InputError("give either --data FILE or train from the log, not both")
        frame, loop, sha = log_cohort(config, catalog, min_arm_rows=fit_min_arm_rows(config))
        source, path = "service log", None
        description = log_description(loop)
        # The logged probabilities are the design, whatever their pattern.
        design = "observational (the service's logged probabilities of the recommended arm)"
    elif data is not None:
        path = Path(data)
        if not path.exists():
            raise InputError(f"training data file {path} does not exist")
        frame = read_cohort(path)
        sha = _file_sha256(path)
        # Only a simulator knows true effects: a file carrying them is a simulated cohort.
        simulated = any(str(c).startswith("true_effect_") for c in frame.columns)
        source = "simulated (file)" if simulated else "file"
        description = f"file {path.name}" + (
            " (simulated, with oracle columns)" if simulated else ""
        )
        design = config["data"].get("design") or _design_from_propensity(frame)
    else:
        from recommender.simulate import load_scenario, simulate_cohort

        spec = config["data"]
        seed = spec["seed"] if spec.get("seed") is not None else config["seed"]
        try:
            scenario = load_scenario(spec["scenario"])
            # before simulating: a cohort with arms the catalog lacks breaks the contract
            scenario.check_catalog(
                catalog.arm_ids, catalog.control, catalog=f"the catalog {catalog_file}"
            )
        except InputError as error:
            raise InputError(f"data.scenario: {error}", problems=error.problems) from error
        frame = simulate_cohort(scenario, spec["n"], seed=seed, assignment=spec["assignment"])
        source, sha, path = "simulated", _frame_sha256(frame), None
        description = (
            f"simulated: scenario {spec['scenario']}, n = {spec['n']}, seed {seed}, "
            f"{spec['assignment']} assignment"
        )
        design = spec.get("design") or (
            "randomized" if spec["assignment"] == "rct" else "observational"
        )
    # The arms a log served too rarely have had their rows set aside (the log's note says so
    # and the carry stage keeps them): "catalog arm has no rows" would say the log has none.
    set_aside = set(loop["arms_without_overlap"]) if loop is not None else set()
    report = validate_cohort(
        # the log's candidate probabilities are for the gate, not a column of the contract
        frame.drop(columns=["probabilities"], errors="ignore") if loop is not None else frame,
        training=True,
        arms=[arm for arm in catalog.arm_ids if arm not in set_aside],
        control=catalog.control,
        extra_features=config["extra_features"],
        min_arm_rows=fit_min_arm_rows(config),
        min_arm_rows_reason=min_arm_rows_reason(config),
        # a log's small arms are set aside above; a file's or a simulation's, here
        carry_small_arms=loop is None,
    )
    if not report.ok:
        where = path or ("the service's log" if loop is not None else "the simulated cohort")
        raise InputError(
            f"{where} does not meet the data contract:\n{report.format()}",
            problems=list(getattr(report, "errors", report.problems)),
        )
    small_arms = None
    if report.carried_arms:
        # Their rows are not learnt from: the carry stage keeps the published estimates.
        small_arms = {
            "arms_without_overlap": list(report.carried_arms),
            "rows_per_arm": dict(report.arm_counts),
            "min_arm_rows": fit_min_arm_rows(config),
        }
        frame = frame[~frame["intervention"].astype(str).isin(report.carried_arms)]
        frame = frame.reset_index(drop=True)
    typed = typed_cohort(
        frame,
        arms=catalog.arm_ids,
        control=catalog.control,
        extra_features=config["extra_features"],
    )
    if loop is None and path is not None:
        # A file is a set of people: the split, the folds and so the model followed its row
        # order, and the same table exported in another order trained another model. In
        # person_id order (unique in a file, the contract) the model follows the rows alone.
        typed = typed.sort_values("person_id", kind="stable").reset_index(drop=True)
    return Cohort(
        frame=typed,
        catalog=catalog,
        source=source,
        description=description,
        sha256=sha,
        design=design,
        path=None if path is None else str(path),
        loop=loop,
        notes=tuple(report.notes()),
        constant_columns=tuple(c.column for c in report.checks if c.rule == "constant_feature"),
        small_arms=small_arms,
    )


def split_stage(cohort: Cohort, config: dict) -> Split:
    """Hold out a share of the cohort so every arm is evaluated.

    A file or a simulated cohort (one row per person) is split by row, stratified by arm. A
    cohort from the service's log is held out by **person** (see ``_held_out_people``): all of
    a person's answers, whatever the survey cycle, fall on one side, and the same people are
    held out at every retraining, so neither the evaluation nor the gate grades a model on
    someone it (or the champion it is compared with) was trained on.

    Raises
    ------
    InputError
        When holding out by person leaves an arm too few rows on either side.
    """
    frame = cohort.frame
    arms = frame["intervention"].astype(str).to_numpy()
    share = config["split"]["holdout_share"]
    if cohort.loop is None:
        from sklearn.model_selection import train_test_split

        train_index, holdout_index = train_test_split(
            np.arange(len(frame)),
            test_size=share,
            random_state=config["seed"],
            stratify=arms,
        )
        held = np.zeros(len(frame), dtype=bool)
        held[holdout_index] = True
    else:
        from pipelines._from_log import logged_people

        people = logged_people(frame["person_id"])
        held = _held_out_people(arms, people, share, config)
        _check_person_split(arms, people, held, config)
    return Split(
        train=frame[~held].reset_index(drop=True),
        holdout=frame[held].reset_index(drop=True),
    )


def _draw(person: str, seed) -> float:
    """A person's fixed draw in [0, 1): from their pseudonymous id and the training seed only,
    so it does not change as the log grows."""
    digest = hashlib.blake2b(f"{seed}|{person}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _held_out_people(arms: np.ndarray, people: np.ndarray, share: float, config) -> np.ndarray:
    """Rows held out, whole people at a time: the people whose fixed draw is below ``share``.

    The draw depends on the person and the seed alone, so a retraining with the same seed holds
    out the same people as the champion's did (plus the newcomers whose draw is low), and the
    gate finds the people neither model was trained on. An arm the draws leave short of its
    minimum on one side (``_arm_minimums``) takes the people of that arm whose draws lie
    nearest the threshold from the other side, as long as that side keeps its own minimums.
    """
    per_fit, per_score = _arm_minimums(config)
    arm_codes, arm_index = np.unique(arms, return_inverse=True)
    person_codes, person_index = np.unique(people, return_inverse=True)
    counts = np.zeros((len(person_codes), len(arm_codes)))
    np.add.at(counts, (person_index, arm_index), 1.0)
    draws = np.array([_draw(p, config["seed"]) for p in person_codes])
    held = draws < share
    need = {True: per_score, False: per_fit}  # on the held-out side, on the training side
    for _ in range(len(person_codes)):
        rows = {side: counts[held == side].sum(axis=0) for side in (True, False)}
        short = [
            (side, a) for side in (True, False) for a in np.flatnonzero(rows[side] < need[side])
        ]
        if not short:
            break
        side, arm = short[0]
        giver = rows[not side]
        # people of that arm on the other side who can leave it without making it short
        movable = (held != side) & (counts[:, arm] > 0)
        movable &= (((giver - counts) >= need[not side]) | (counts == 0)).all(axis=1)
        if not movable.any():
            break  # _check_person_split names the arm
        candidates = np.flatnonzero(movable)
        person = candidates[np.argmin(np.abs(draws[candidates] - share))]
        held[person] = side
    return held[person_index]


def _people(people: np.ndarray) -> str:
    n = len(np.unique(people))
    return "1 person" if n == 1 else f"{n} people"


def _check_person_split(arms, people, held, config: dict) -> None:
    per_fit, per_score = _arm_minimums(config)
    short = []
    for arm in np.unique(arms):
        mine = arms == arm
        train, holdout = int((mine & ~held).sum()), int((mine & held).sum())
        if train < per_fit or holdout < per_score:
            short.append(
                f"{arm}: {int(mine.sum())} rows from {_people(people[mine])}, "
                f"{train} for training (needs {per_fit}) and {holdout} held out "
                f"(needs {per_score})"
            )
    if short:
        raise InputError(
            "the log is held out by person (all of a person's cycles on one side), and that "
            "leaves too few rows of " + "; ".join(short) + ". Record more outcomes for "
            "these arms, or change split.holdout_share in the training config"
        )


def _outcome_change(frame: pd.DataFrame, outcome: str) -> np.ndarray:
    return frame[f"{outcome}_followup"].to_numpy(dtype=float) - frame[outcome].to_numpy(dtype=float)


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
