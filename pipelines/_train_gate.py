"""The gate stage: the challenger against the current champion on the same rows.

Those rows are the program's own log when the service has one with outcomes: a run trained from
the log compares on the log's held-out part, and a run trained on a file or a simulated cohort
compares on the whole log (doubly robust scores built on the logged probabilities), because the
people the program serves are the ones a new model must do well for. Without a log, or when the
log cannot value both models, the run's held-out rows decide, and the reason says why.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines._train_cohort import Cohort, Split
from pipelines._train_evaluate import Evaluation
from pipelines._train_key import comparison_rows

__all__ = ["gate_stage", "gate_on_log"]


def gate_stage(evaluation: Evaluation, split: Split, cohort: Cohort, config: dict, *, model=None):
    """Compare with the current champion on the same rows and scores.

    No champion: the challenger passes. A champion that cannot be loaded or scored on these
    rows fails the gate closed (a person can still promote by hand after review). With
    ``model`` (the challenger) and a service log with outcomes, a run not trained from the log
    is judged on the log (see the module docstring).
    """
    why = ""
    decision = None
    # The champion's files are read once: the comparison and the request-field check share it.
    load = _version_loader(config["registry"]["model_name"])
    if model is not None and cohort.loop is None:
        decision, why = gate_on_log(model, cohort.catalog, config, load=load)
    if decision is None:
        decision = _gate_on_holdout(evaluation, split, cohort, config, load=load)
        if why:
            note = f"{why}, so the gate compared on this run's held-out rows"
            reason = decision.reason.rstrip(".") + "." + _sentence(note)
            decision = dataclasses.replace(decision, reason=reason)
    return _held_for_new_fields(decision, model, config, load=load)


def _version_loader(name: str):
    """``load(version)``: the :class:`~recommender.model.RecommendationModel` of a registered
    version of ``name``, read from the store the first time it is asked for and kept for the
    next (a registered version's files never change). A load that fails is not kept."""
    loaded = {}

    def load(version):
        from recommender.registry import load_model

        version = str(version)
        if version not in loaded:
            loaded[version] = load_model(f"models:/{name}/{version}")
        return loaded[version]

    return load


def _held_for_new_fields(decision, model, config: dict, *, load=None):
    """A passing challenger that needs request fields the champion does not (extra features
    beyond the data contract) stays challenger: once it served, every caller not yet sending
    them would be refused 422. A person promotes it (``--force``) when the callers send them."""
    if model is None or not decision.passed or decision.champion_version is None:
        return decision
    from recommender.model import new_request_fields

    load = load or _version_loader(config["registry"]["model_name"])
    try:
        served = load(decision.champion_version)
    except Exception as error:  # noqa: BLE001 - not comparable: fail closed, as the gate does
        why = f"the champion's request fields could not be read ({type(error).__name__}: {error})"
    else:
        fields = new_request_fields(model, served)
        if not fields:
            return decision
        why = (
            f"it needs request fields the champion (version {decision.champion_version}) does "
            f"not: {', '.join(fields)}; once it served, every caller not sending them would be "
            "refused"
        )
    return dataclasses.replace(
        decision,
        passed=False,
        reason=f"{decision.reason.rstrip('.')}. But {why}, so it stays challenger until a "
        "person promotes it (`recommender promote VERSION --force`) when the callers are "
        "ready.",
    )


def gate_on_log(model, catalog, config: dict, *, load=None):
    """``(decision, "")`` on the service's log, or ``(None, why)`` when there is none (``why``
    empty) or it cannot value the models (``why`` says so, a clause for the caller's reason).

    The gate of a run trained on a file or a simulated cohort, and of the evidence-only model
    (which has no held-out rows of its own). ``load(version)`` reads the champion (default:
    :func:`_version_loader` of the registered model)."""
    from pipelines._from_log import log_policy_frame, policy_on_log
    from pipelines._log_contract import left_out_note
    from recommender.errors import InputError
    from recommender.model import served_under
    from recommender.registry import aliases, gate_decision, policy_value_scores

    try:
        logged = log_policy_frame(config, catalog)
    except InputError as error:
        return None, f"the service's log cannot value the models yet ({error})"
    except Exception as error:  # noqa: BLE001 - an unreadable log must not stop a file's run
        return None, f"the service's log could not be read ({type(error).__name__}: {error})"
    if logged is None:
        return None, ""
    frame, scores, _ = logged
    alpha = config["gate"]["alpha"]
    control = catalog.control
    left_out = left_out_note(frame)
    where = (
        f" Judged on the service's log: {len(frame):,} served recommendations with "
        "outcomes, doubly robust scores built on the logged probabilities"
        + (f" ({left_out})." if left_out else ".")
    )
    try:
        challenger_arms, valued = policy_on_log(model, frame, scores, control=control)
        challenger = policy_value_scores(valued, challenger_arms, control=control)
    except Exception as error:  # noqa: BLE001 - a log the model cannot score: held-out rows
        return None, (
            "the challenger could not be valued on the service's log "
            f"({type(error).__name__}: {error})"
        )
    name = config["registry"]["model_name"]
    version = aliases(name).get("champion")
    if version is None:
        decision = gate_decision(challenger, alpha=alpha)
        return dataclasses.replace(decision, reason=decision.reason + where), ""
    load = load or _version_loader(name)
    try:
        # as the service serves it: an arm the catalog renamed, under its new id
        champion_model, _ = served_under(load(version), catalog)
        # an arm both models may pick is valued by the challenger's estimate when the log
        # cannot score it (the champion's only for arms the challenger lacks)
        arms, valued = policy_on_log(champion_model, frame, valued, control=control)
        champion = policy_value_scores(valued, arms, control=control)
        # a champion trained from this log would be graded on the people it was fitted to
        rows, note = comparison_rows(
            {"the champion": champion_model, "the challenger": model},
            frame["person_id"],
            logged=True,
        )
    except Exception as error:  # noqa: BLE001 - any failure means "not comparable": fail closed
        return _fails_closed(challenger, version, alpha, error, "the service's log"), ""
    decision = _decide(challenger, champion, rows, frame, (challenger_arms, arms), version, alpha)
    # the held-out rows' explanation (a parenthesis) does not hold here; what follows it does
    reason, _, after = decision.reason.replace(" held-out rows", " logged rows", 1).partition(
        " (people of"
    )
    reason = (reason + after.partition(")")[2]).rstrip(".")
    return dataclasses.replace(decision, reason=reason + "." + where + _sentence(note)), ""


def _fails_closed(challenger, version, alpha, error, where: str):
    """The gate's answer when the champion cannot be valued: the challenger stays challenger."""
    from recommender.registry import GateDecision, estimate

    return GateDecision(
        passed=False,
        alpha=alpha,
        challenger=estimate(challenger, alpha=alpha),
        champion_version=str(version),
        reason=(
            f"champion version {version} could not be valued on {where} "
            f"({type(error).__name__}: {error}); the challenger stays challenger until a "
            "person promotes it"
        ),
    )


def _gate_on_holdout(
    evaluation: Evaluation, split: Split, cohort: Cohort, config: dict, *, load=None
):
    from pipelines._train_carry import scores_with_estimates
    from recommender.model import served_under
    from recommender.registry import aliases, gate_decision, policy_value_scores

    alpha = config["gate"]["alpha"]
    control = cohort.catalog.control
    note = ""
    challenger = policy_value_scores(evaluation.dr_scores, evaluation.recommended, control=control)
    name = config["registry"]["model_name"]
    version = aliases(name).get("champion")
    if version is None:
        return gate_decision(challenger, alpha=alpha)
    load = load or _version_loader(name)
    try:
        # as the service serves it: an arm the catalog renamed, under its new id, so that it
        # is valued by the held-out rows' scores of that arm
        champion_model, _ = served_under(load(version), cohort.catalog)
        champion_effects = champion_model.predict_effect(split.holdout)
        champion_recommended = champion_model.recommend(
            champion_effects, eligible=champion_model.eligibility(split.holdout)
        ).to_numpy()
        # evaluation.dr_scores value the challenger's carried arms by its estimates; an arm
        # only the champion may pick and the held-out rows cannot score, by the champion's
        scores = scores_with_estimates(
            evaluation.dr_scores,
            champion_effects[list(champion_model.treatment_arms)],
            control=control,
        )
        champion = policy_value_scores(scores, champion_recommended, control=control)
        rows = np.ones(len(challenger), dtype=bool)
        # A champion trained on some of these rows (or these people, in another cycle) would
        # be graded on data it has fitted, which flatters it; compare on the rows neither model
        # has seen when enough remain.
        if "person_id" in split.holdout.columns:
            rows, note = comparison_rows(
                {"the champion": champion_model},
                split.holdout["person_id"],
                logged=cohort.loop is not None,
            )
    except Exception as error:  # noqa: BLE001 - any failure means "not comparable": fail closed
        return _fails_closed(challenger, version, alpha, error, "this run's held-out data")
    arms = (evaluation.recommended, champion_recommended)
    decision = _decide(challenger, champion, rows, split.holdout, arms, version, alpha)
    reason = decision.reason.rstrip(".") + ("." if note else "") + _sentence(note)
    return dataclasses.replace(decision, reason=reason)


def _decide(challenger, champion, rows, frame, arms, version, alpha: float):
    """The gate on ``rows`` of the two models' values (``arms``: the arms each serves), told
    where the log could not have served both arms (a frame with logged propensities)."""
    from pipelines._from_log import unmeasured_rows
    from recommender.registry import gate_decision

    differs = unmeasured = None
    if "propensity" in frame.columns:
        differs, unmeasured = unmeasured_rows(frame[rows], arms[0][rows], arms[1][rows])
    return gate_decision(
        challenger[rows],
        champion[rows],
        alpha=alpha,
        champion_version=str(version),
        differs=differs,
        unmeasured=unmeasured,
    )


def _sentence(note: str) -> str:
    """`` Note.`` to append to a reason (empty for no note)."""
    return f" {note[0].upper()}{note[1:]}." if note else ""
