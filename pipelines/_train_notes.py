"""What a training run tells its reader beside its result: the arms it carried over and those
it could not (:func:`_carried_note`), its poor overlap, once (:func:`_overlap_warning`), and on
a log, the model's off-policy value on the held-out rows, which the card shows too
(:func:`_off_policy_note`, :func:`_off_policy_line`).
"""

from __future__ import annotations

import math
import warnings

from pipelines._train_overlap import OverlapRecord


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
