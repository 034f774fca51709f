"""What an off-policy value of a model's best arms on the service's log says: its table (DR, IPS
and SNIPS with intervals, effective and unmeasured rows) and the notes it must carry besides its
figures (rows the log could not have served, extreme weights, whether personalizing beats the
best single arm).

Importable from :mod:`pipelines._from_log`, as the run's notes, ``recommender evaluate-policy``
and the tests import it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FEW_EFFECTIVE_ROWS", "OFF_POLICY_COLUMNS", "off_policy_notes", "off_policy_table"]


def off_policy_table(
    model, frame, dr_scores, change, *, control: str, alpha: float, label: str
) -> list[list]:
    """Rows ``[policy, method, estimate, lower, upper, n, effective n, unmeasured]`` for the card
    and the CLI (the effective number of rows behind the weights, and the rows the log could not
    measure: see ``off_policy_values``); an estimate not given is NaN."""
    from pipelines._from_log import logged_candidates, policy_on_log
    from recommender.evaluation import off_policy_values

    arms, dr_scores = policy_on_log(model, frame, dr_scores, control=control)
    values = off_policy_values(
        frame["intervention"].astype(str).to_numpy(),
        frame["propensity"].to_numpy(dtype=float),
        change,
        arms,
        control=control,
        dr_scores=dr_scores,
        alpha=alpha,
        candidates=logged_candidates(frame),
    )
    return [
        [
            label,
            v.method.upper(),
            v.estimate,
            v.lower,
            v.upper,
            v.n,
            round(v.effective_n, 1),
            v.unmeasured,
        ]
        for v in values.values()
    ]


# Fewest effective rows (Kish) behind an off-policy estimate before its weights are called
# extreme: below it a few rows logged with small probabilities carry the estimate.
FEW_EFFECTIVE_ROWS = 100


def off_policy_notes(model, frame, dr_scores, table, *, control: str, alpha: float, label: str):
    """What an off-policy value of ``model``'s best arms on the log must say besides its
    figures (``table``: its rows from :func:`off_policy_table`): the rows where it picks an arm
    the log could not have served (valued by the outcome model alone), the rows where it
    serves another arm than usual care and the log could not have served usual care, weights so extreme
    that few rows carry the estimate, and whether personalizing beats the best single arm."""
    from pipelines._from_log import logged_candidates, policy_on_log, unmeasured_rows
    from recommender.evaluation import personalization_gain, unservable

    arms, scores = policy_on_log(model, frame, dr_scores, control=control)
    notes = []
    served = frame["intervention"].astype(str).to_numpy(dtype=object)
    _, guessed = unmeasured_rows(frame, arms, served)
    if guessed.any():
        notes.append(
            f"{label}: on {int(guessed.sum()):,} of {len(frame):,} rows it picks an arm the log "
            "could not have served there (another arm served with probability 1, or an arm "
            "never served): DR values those rows by the outcome model alone and IPS and SNIPS "
            "cannot value them, so its figures are not wholly measured"
        )
    # the figures are against usual care for all: usual care's outcome is needed on every row
    # where the policy serves another arm, and a row served another arm for certain has none
    no_care = unservable(
        served,
        frame["propensity"].to_numpy(dtype=float),
        np.full(len(frame), control, dtype=object),
        logged_candidates(frame),
    )
    care = no_care & (arms != control) & ~guessed
    if care.any():
        notes.append(
            f"{label}: on {int(care.sum()):,} {'more ' if guessed.any() else ''}of "
            f"{len(frame):,} rows it serves an arm other than usual care where the log could "
            "not have served usual care (another arm served with probability 1, or usual care "
            "not among the row's candidates): against usual care, DR takes usual care's outcome "
            "there from the outcome model and IPS and SNIPS leave it out, so its figures are "
            "not wholly measured"
        )
    not_given = [row[1] for row in table if not np.isfinite(row[2])]
    if not_given:
        why = _why_not_given(arms, served, control)
        notes.append(f"{label}: {' and '.join(not_given)} not measurable: {why}")
    effective = min(row[6] for row in table)
    # with no figure given there is no interval left to call too narrow
    if effective < FEW_EFFECTIVE_ROWS and len(not_given) < len(table):
        behind = min(int((served == arms).sum()), int((served == control).sum()))
        why = (
            "rows logged with small probabilities carry most of the weight"
            if effective < behind / 2
            else f"only {behind:,} rows were served usual care or the arm it picks"
        )
        notes.append(
            f"{label}: the estimates rest on about {effective:,.0f} effective rows of "
            f"{len(frame):,} ({why}), so their intervals may be too narrow"
        )
    # one arm for everyone, for each arm with a score on every row (a carried arm's estimate
    # is missing where the arm is not offered)
    whole = [arm for arm in dr_scores.columns if np.isfinite(dr_scores[arm]).all()]
    # each one-arm policy as a program could run it: the arm for those it is offered to
    eligible = model.eligibility(frame)
    gain, best, _ = personalization_gain(
        scores, arms, control=control, alpha=alpha, single_arms=whole, eligible=eligible
    )
    level = f"{100 * (1 - alpha):.0f}% CI {gain.lower:+.2f} to {gain.upper:+.2f}"
    versus = (
        f"{best} for everyone it is offered to (the best single arm on these rows)"
        if best != control
        else f"{best} for everyone (the best single arm on these rows)"
    )
    if gain.lower > 0:
        # "adds to mindfulness for everyone ..." read as if it added to the arm
        verdict = f"personalizing measurably beats {versus}"
    elif gain.upper < 0:
        verdict = f"personalizing does measurably worse than {versus}"
    else:
        verdict = f"personalizing adds nothing measurable over {versus}"
    notes.append(
        f"{label}: {verdict}: gain {gain.estimate:+.2f} EE points per person ({level}, doubly "
        "robust)"
    )
    return notes


def _why_not_given(arms, served, control: str) -> str:
    """Why ``off_policy_values`` gave no figure (NaN) for the policy ``arms``."""
    contrast = arms != control
    never = sorted((set(arms[contrast]) | {control}) - set(served)) if contrast.any() else []
    if never:
        return (
            f"no logged row was served {', '.join(map(str, never))}, which it needs against "
            "usual care, and weights know nothing of an arm never served"
        )
    if not (served == control).any():
        return "no logged row was served usual care, so its weights sum to 0"
    if not (served == arms).any():
        return "no logged row was served the arm it picks there, so its weights sum to 0"
    from recommender.evaluation import MIN_TAIL_ROWS

    fewest = ", ".join(f"{count} for {m.upper()}" for m, count in MIN_TAIL_ROWS.items())
    return (
        "its weights rest on rows logged with so small a probability that too few of them are "
        f"expected to be served for a normal interval (fewer than {fewest})"
    )


OFF_POLICY_COLUMNS = [
    "policy",
    "estimator",
    "EE change vs usual care",
    "lower",
    "upper",
    "rows",
    "effective rows",
    "unmeasured rows",
]
