"""The training cohort from the service's own log: served recommendations joined with outcomes.

Treatment is the arm the service recommended and its propensity the probability the service
logged for it, so the model learns the effect of *recommending* an arm (intention to treat),
which is what the service can act on; what people actually took is reported beside it (the
uptake table), never used as the treatment.

Two limits are reported rather than hidden: rows served with probability one (greedy answers
and severe profiles) say nothing about the arms that were not possible for them, and an arm
served too rarely cannot be learnt at all (no overlap); such arms are named and left out.
"""

from __future__ import annotations


import numpy as np
import pandas as pd

from recommender.errors import InputError

# What an off-policy value on the log says, in its own module; imported from here as before.
from pipelines._log_off_policy import (  # noqa: F401 - re-exported
    FEW_EFFECTIVE_ROWS,
    OFF_POLICY_COLUMNS,
    _why_not_given,
    off_policy_notes,
    off_policy_table,
)

__all__ = [
    "OFF_POLICY_COLUMNS",
    "best_arms",
    "log_cohort",
    "log_description",
    "log_policy_frame",
    "log_summary",
    "log_training_frame",
    "logged_candidates",
    "logged_people",
    "off_policy_notes",
    "off_policy_table",
    "policy_on_log",
    "policy_scores_on_log",
    "unmeasured_rows",
]

# Every candidate arm's logged probability (JSON), as the audit store keeps it.
CANDIDATES_COLUMN = "probabilities"
# Each row's outcome id in the store it was read from (``logged_cohort``): not a fact of the
# row, so not in the log's digest.
STORE_ID_COLUMN = "outcome_id"

# Where a person id of the training table comes from: the salted hash and the answer's id, so
# rows stay pseudonymous and one person's answers in several cycles stay distinct rows.
_HASH_CHARS = 24


def logged_people(person_ids) -> np.ndarray:
    """The person behind each row id of a training table built from the log (the salted hash
    part of ``<hash>-<request id>``): the same in every cycle the person was served, so a split
    or a comparison can keep a person's rows together."""
    return np.array([str(p).split("-", 1)[0] for p in person_ids], dtype=object)


def _audit_store(serve_config: str | None):

    from recommender.service import AuditLog, load_serve_config, sqlite_file

    serve = load_serve_config(serve_config)
    url = serve.audit_store
    if url.startswith("sqlite"):
        database = sqlite_file(url)
        if database is None or not database.is_file():
            raise InputError(
                f"no service log at {database}: the service has not answered any "
                "request with these settings (see audit.url in serve.yaml)"
            )
    return AuditLog(url, salt=None), serve


def log_cohort(config: dict, catalog, *, min_arm_rows: int) -> tuple[pd.DataFrame, dict, str]:
    """The training table built from the log, what the card reports about it, and the sha256
    of the linked cohort it was built from.

    The digest covers every served recommendation with an outcome as read (the rows of arms
    set aside too: their counts are in the model, and the gate values on them; and the rows
    the data contract refuses: their counts are in the run and the card), and nothing else in
    the store: a crisis answer or a recommendation still without an outcome leaves it as it
    was, a new outcome changes it. What was trained on is the summary's ``table_sha256``.

    Parameters
    ----------
    config : dict
        The training config (``log.serve_config`` names the service's settings and therefore
        its store; ``extra_features`` are carried from the logged profiles).
    catalog : Catalog
    min_arm_rows : int
        Fewest logged rows an arm needs to be learnt (see ``fit_min_arm_rows``).

    Raises
    ------
    InputError
        No log, no outcome yet, or no row served usual care.
    """
    from recommender.service import logged_cohort

    audit, serve = _audit_store(config["log"]["serve_config"])
    try:
        joined = logged_cohort(audit)
    finally:
        audit.close()
    if joined.empty:
        raise InputError(
            "the service log holds no served recommendation with a follow-up "
            "outcome yet; record outcomes first (POST /outcomes or `recommender "
            "outcomes import FILE`)"
        )
    frame, summary = log_training_frame(
        joined, catalog, extra_features=config["extra_features"], min_arm_rows=min_arm_rows
    )
    summary["exploration"] = serve.exploration.describe()
    from pipelines._train_cohort import _frame_sha256

    # What the run was trained on, for an auditor to tell two from-log runs apart: the log
    # grows, so no command retrains it. The table is the rows kept (arms set aside left out).
    summary["table_rows"] = int(len(frame))
    summary["table_sha256"] = _frame_sha256(frame)
    # the outcome ids are this store's own (another store numbers the same rows otherwise)
    return frame, summary, _frame_sha256(joined.drop(columns=[STORE_ID_COLUMN], errors="ignore"))


def log_training_frame(
    joined: pd.DataFrame, catalog, *, extra_features=(), min_arm_rows: int
) -> tuple[pd.DataFrame, dict]:
    """The data-contract training table from logged rows (as from ``logged_cohort``).

    Rows the current data contract refuses (an earlier release logged them) are left out and
    counted per rule in the summary (see ``pipelines._log_contract``); so are the rows of arms
    without overlap (fewer than ``min_arm_rows`` served), named in the summary. The summary
    describes the rows that meet the contract, but for the newest outcome read.

    Raises
    ------
    InputError
        When no row kept was served usual care, or too many rows break the contract.
    """
    frame, summary, _ = _training_frame(
        joined, catalog, extra_features=extra_features, min_arm_rows=min_arm_rows
    )
    return frame, summary


def _training_frame(joined: pd.DataFrame, catalog, *, extra_features, min_arm_rows: int):
    """``(frame, summary, kept)``: :func:`log_training_frame`'s, and which rows of ``joined``
    the frame holds (the one place both the training table and the values on the log leave
    rows out, so they leave out the same)."""
    from pipelines._log_contract import LEFT_OUT_KEY, contract_rows
    from recommender.cohort import OUTCOME_COLUMNS, PROFILE_COLUMNS

    meets, left_out = contract_rows(joined, extra_features=extra_features)
    read, joined = joined, (joined[meets] if left_out is not None else joined)
    summary = log_summary(joined, catalog, min_arm_rows=min_arm_rows)
    if left_out is not None:
        summary[LEFT_OUT_KEY] = left_out
        # the newest outcome read, left out or not: the log's digest covers every row read
        summary.update(_newest_read(read))
    set_aside = read["intervention"].isin(summary["arms_without_overlap"]).to_numpy()
    kept = joined[~joined["intervention"].isin(summary["arms_without_overlap"])]
    control_rows = int((kept["intervention"] == catalog.control).sum())
    if not control_rows:
        raise InputError(
            f"no logged row was served usual care ({catalog.control!r}); effects are learnt "
            "against it. Serve with exploration on (usual care keeps usual_care_share while "
            "exploring) or train from a trial file (--data) instead"
        )
    learnt = len(catalog.treatment_arms) - len(summary["arms_without_overlap"])
    if control_rows < min_arm_rows or not learnt:
        # Said here, of the whole log: once the rarely served arms are set aside, the data
        # contract would only see usual care's rows and call the other arms empty.
        served = ", ".join(f"{arm} {rows}" for arm, rows in summary["rows_per_arm"].items())
        raise InputError(
            f"usual care ({catalog.control!r}) and at least one other arm each need at least "
            f"{min_arm_rows} served recommendations with outcomes to learn from; the log holds "
            f"{summary['n_rows']:,} ({served}). Record more outcomes (the service keeps "
            "serving its model meanwhile)"
        )
    frame = pd.DataFrame(
        {
            "person_id": [
                f"{h[:_HASH_CHARS]}-{r}" for h, r in zip(kept["person_id"], kept["request_id"])
            ]
        }
    )
    for column in (*PROFILE_COLUMNS[1:], *extra_features):
        if column not in kept.columns:
            raise InputError(
                f"the logged profiles lack {column!r}, which the training config "
                "names; log it by serving a model trained with it"
            )
        frame[column] = kept[column].to_numpy()
    frame["intervention"] = kept["intervention"].to_numpy()
    frame["propensity"] = _kept_propensity(kept, summary["arms_without_overlap"])
    for column in OUTCOME_COLUMNS:
        frame[column] = kept[column].to_numpy()
    if CANDIDATES_COLUMN in kept.columns:
        # not a feature: which arms each row could have been served, for the gate
        frame[CANDIDATES_COLUMN] = kept[CANDIDATES_COLUMN].to_numpy()
    return frame, summary, meets & ~set_aside


def _kept_propensity(kept: pd.DataFrame, left_out) -> np.ndarray:
    """The logged probability of each kept row's arm, given that no left-out arm was served.

    Rows of arms without overlap are dropped, so the rows kept were drawn from the other arms
    only: each probability is divided by one minus the left-out arms' logged probabilities
    (from every candidate's probability in the log), which keeps inverse-probability weights
    and doubly robust scores on the kept rows consistent.
    """
    propensity = kept["propensity"].to_numpy(dtype=float)
    if not len(left_out) or "probabilities" not in kept.columns:
        return propensity
    import json

    left_out = set(left_out)
    dropped = np.array(
        [
            sum(float(p) for arm, p in json.loads(text).items() if arm in left_out)
            if isinstance(text, str)
            else 0.0
            for text in kept["probabilities"]
        ]
    )
    return propensity / np.clip(1.0 - dropped, propensity, None)


def log_summary(joined: pd.DataFrame, catalog, *, min_arm_rows: int) -> dict:
    """Uptake, certainty and overlap of a logged cohort (as from ``logged_cohort``)."""
    uptake = pd.crosstab(joined["intervention"], joined["arm_taken"])
    uptake.index.name, uptake.columns.name = "recommended", None
    counts = joined["intervention"].value_counts()
    without = [arm for arm in catalog.treatment_arms if int(counts.get(arm, 0)) < min_arm_rows]
    certain = np.isclose(joined["propensity"].to_numpy(dtype=float), 1.0)
    followed = float((joined["intervention"] == joined["arm_taken"]).mean())
    # Which outcomes made the model: outcomes are only ever added, so those recorded up to the
    # latest one read are the same rows in the store later; and the versions that served them.
    lineage = _newest_read(joined)
    if "model_version" in joined.columns:
        served_by = joined["model_version"].astype(str).value_counts()
        lineage["served_by_version"] = {
            version: int(served_by[version]) for version in sorted(served_by.index, key=_numeric)
        }
    return {
        **lineage,
        "n_rows": int(len(joined)),
        "served_with_probability_one": int(certain.sum()),
        "arms_without_overlap": without,
        "min_arm_rows": int(min_arm_rows),
        "rows_per_arm": {str(k): int(v) for k, v in counts.items()},
        "cycles": sorted(int(c) for c in joined["cycle"].unique()),
        "policies": sorted(str(p) for p in joined["policy"].unique()),
        "followed_share": followed,
        "uptake": {
            "columns": ["recommended", *map(str, uptake.columns)],
            "rows": [
                [str(arm), *map(int, row)] for arm, row in zip(uptake.index, uptake.to_numpy())
            ],
        },
    }


def _newest_read(joined: pd.DataFrame) -> dict:
    """The newest outcome of ``joined``: when it was recorded, and its id in the store."""
    newest = {}
    if "recorded_at" in joined.columns:
        latest = pd.to_datetime(joined["recorded_at"], utc=True).max()
        newest["outcomes_recorded_through"] = latest.isoformat()
    if STORE_ID_COLUMN in joined.columns and len(joined):
        # the newest outcome row read: the rows of this store's outcomes export up to it
        newest["last_outcome_id"] = int(joined[STORE_ID_COLUMN].max())
    return newest


def _numeric(version: str):
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def log_description(loop: dict) -> str:
    """What a log-trained model was made from, in words, for its run and card: the outcomes
    (how many, up to when they were recorded), the cycles and the versions that served them."""
    through = loop.get("outcomes_recorded_through")
    versions = loop.get("served_by_version") or {}
    return (
        f"the service's log: {loop['n_rows']:,} served recommendations with outcomes"
        + (f" recorded up to {through}" if through else "")
        + (
            f" ({left_out['rows']:,} more left out: the current data contract refuses them)"
            if (left_out := loop.get("contract_left_out"))
            else ""
        )
        + f", cycles {', '.join(map(str, loop['cycles']))}"
        + (
            ", served by version(s) "
            + ", ".join(f"{version} ({rows:,})" for version, rows in versions.items())
            if versions
            else ""
        )
    )


def log_policy_frame(config: dict, catalog, *, required: bool = False):
    """The whole logged cohort with the doubly robust scores fitted on it, or None.

    ``(frame, dr_scores, outcome_change)``: everything needed to value any model's best-arm
    policy on the program's own log (the gate and ``recommender evaluate-policy``). None when
    the service has no outcome yet, or no log at all unless the log is ``required``.

    Raises
    ------
    InputError
        When the logged outcomes cannot value a policy (too few, a feature missing; naming
        the log), or when a ``required`` log does not exist (naming where it was looked for).
    """
    from recommender.service import logged_cohort

    try:
        audit, _ = _audit_store(config["log"]["serve_config"])
    except InputError:
        if required:
            raise
        return None
    try:
        joined = logged_cohort(audit)
    finally:
        audit.close()
    if joined.empty:
        return None
    try:
        frame, scores, change, _ = policy_scores_on_log(joined, config, catalog)
    except InputError as error:
        raise InputError(
            f"the service's log holds {len(joined):,} served recommendation(s) with outcomes "
            f"and cannot value a policy: {error}",
            problems=error.problems,
        ) from error
    return frame, scores, change


def policy_scores_on_log(joined: pd.DataFrame, config: dict, catalog):
    """Doubly robust scores on logged rows (as from ``logged_cohort``).

    ``(frame, dr_scores, outcome_change, kept)``: the training table of the rows kept (rows the
    data contract refuses and arms without overlap left out, as in training; the arms'
    probability taken out of the kept rows' propensities),
    cross-fitted scores with the logged probabilities, the EE change, and which of ``joined``'s
    rows were kept.
    """
    import inspect

    from pipelines._log_contract import LEFT_OUT_KEY
    from recommender.cohort import feature_frame, typed_cohort
    from recommender.uplift import doubly_robust_scores

    # Scoring needs fewer rows per arm than fitting after a split: the scores' own minimum.
    least = inspect.signature(doubly_robust_scores).parameters["min_arm_rows"].default
    frame, summary, kept = _training_frame(
        joined,
        catalog,
        extra_features=config["extra_features"],
        min_arm_rows=max(int(least), 2 * int(config["evaluation"]["n_folds"])),
    )
    frame = typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control)
    if LEFT_OUT_KEY in summary:  # for the values' notes to say (``left_out_note``)
        frame.attrs[LEFT_OUT_KEY] = summary[LEFT_OUT_KEY]
    change = (frame["ee_followup"] - frame["ee"]).to_numpy(dtype=float)
    scores = doubly_robust_scores(
        feature_frame(frame, config["extra_features"]),
        frame["intervention"].astype(str),
        change,
        propensity=frame["propensity"].to_numpy(dtype=float),
        control=catalog.control,
        n_folds=config["evaluation"]["n_folds"],
        random_state=config["seed"],
        design="observational",
    )
    return frame, scores, change, kept


def best_arms(model, frame) -> np.ndarray:
    """The model's best eligible arm per row (its policy without exploration)."""
    return policy_on_log(model, frame)[0]


def policy_on_log(model, frame, dr_scores=None, *, control: str = "none"):
    """``(best arms, scores)``: the model's best eligible arm per row, and ``dr_scores`` with
    a column for every arm it may pick that they lack (a carried arm the log served too
    rarely to score), from the model's estimate (see ``scores_with_estimates``)."""
    from pipelines._train_carry import scores_with_estimates

    effects = model.predict_effect(frame)[list(model.treatment_arms)]
    arms = model.recommend(effects, eligible=model.eligibility(frame)).to_numpy()
    if dr_scores is None:
        return arms, None
    return arms, scores_with_estimates(dr_scores, effects, control=control)


def unmeasured_rows(frame, arms, other_arms) -> tuple[np.ndarray, np.ndarray]:
    """``(differs, unmeasured)``: the rows of ``frame`` (logged arm and propensity) where two
    policies serve different arms, and of those the rows the log could not have served one of
    the two: the row was served another arm with probability 1 (a greedy answer, a severe
    profile), or the arm was served on none of the rows (a carried arm). There the doubly
    robust difference of the two policies is the outcome model's, not a measurement.

    Where the frame keeps every candidate's logged probability (``probabilities``, as the log
    does), an arm outside the row's candidates had probability 0 there too; without it, rows
    served with probability below 1 count as measured.
    """
    from recommender.evaluation import unservable

    arms = np.asarray(arms, dtype=object)
    other_arms = np.asarray(other_arms, dtype=object)
    served = frame["intervention"].astype(str).to_numpy(dtype=object)
    propensity = frame["propensity"].to_numpy(dtype=float)
    candidates = logged_candidates(frame)
    differs = arms != other_arms
    unmeasured = unservable(served, propensity, arms, candidates) | unservable(
        served, propensity, other_arms, candidates
    )
    return differs, differs & unmeasured


def logged_candidates(frame) -> list | None:
    """Per row of ``frame``, the arms the log could have served there with their logged
    probabilities (``{arm: p}`` for p > 0; None where the row does not say), or None without
    the log's column. ``off_policy_values`` takes them as a row's candidates, and from the
    probabilities judges whether its weights are too skewed for a normal interval."""
    import json

    if CANDIDATES_COLUMN not in frame.columns:
        return None
    return [
        {arm: float(p) for arm, p in json.loads(text).items() if float(p) > 0}
        if isinstance(text, str)
        else None
        for text in frame[CANDIDATES_COLUMN]
    ]
