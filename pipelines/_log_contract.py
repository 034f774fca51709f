"""Logged rows the current data contract refuses: left out of what is learnt and valued from the
service's log, counted per rule, and said.

The log is append-only and the program's own history. A profile an earlier release served (and
whose outcome was recorded) may break a rule added since, such as ``practice_too_early``
(years_in_practice above age - 16), a range, a category or a role renamed. Such a row cannot be
trained on, and refusing the whole log would leave the program no way to retrain: so the rows
are found by the very validator trial files meet (:func:`recommender.cohort.validate_cohort`, its
per-row findings), left out of the training table and of the off-policy values on the log alike
(both are built by ``pipelines._from_log.log_training_frame``), and counted per rule in the
run's notes, its MLflow tags and the model card. A row is never named: the counts say which
rules, not whose rows.

Past a quarter of the log the table would no longer be the program's log, so the run stops
instead, saying how many rows, which rules, and what to do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.errors import InputError

__all__ = [
    "LEFT_OUT_KEY",
    "MAX_LEFT_OUT_SHARE",
    "contract_rows",
    "left_out_note",
    "left_out_sentence",
    "left_out_tags",
]

# The log summary's key for what was left out (absent when nothing was: a clean log's summary,
# card and tags are as they were).
LEFT_OUT_KEY = "contract_left_out"
# Above this share of the rows read, leaving rows out would change whom the model learns from
# more than it keeps: the run stops instead.
MAX_LEFT_OUT_SHARE = 0.25


def contract_rows(joined: pd.DataFrame, *, extra_features=()) -> tuple[np.ndarray, dict | None]:
    """``(meets, left_out)``: which rows of a logged cohort (as from ``logged_cohort``) meet
    the data contract, and what was left out (None when every row meets it).

    Only the contract's rules on a row's cells count (ranges, categories, whole numbers,
    missing values, the logged probability, years_in_practice against age): what the table as
    a whole must hold (enough rows per arm, the control present, a column missing) is judged
    after, on the rows kept, as before. Arms are not judged here: an arm the log served too
    rarely is set aside by the log's own rule (``arms_without_overlap``).

    ``left_out`` is ``{"read": rows read, "rows": rows left out, "rules": [{"rule", "column",
    "rows", "reads"}, ...]}`` (a row may break more than one rule, so the rules' rows may add up
    to more than ``rows``).

    Raises
    ------
    InputError
        When every row, or more than :data:`MAX_LEFT_OUT_SHARE` of them, breaks the contract.
    """
    from recommender.cohort import (
        OUTCOME_COLUMNS,
        PROFILE_COLUMNS,
        RULES,
        validate_cohort,
    )

    # No person_id: the rows are logged ones (salted hashes), and no finding is to name one.
    wanted = (*PROFILE_COLUMNS[1:], *extra_features, "intervention", "propensity")
    columns = [c for c in dict.fromkeys((*wanted, *OUTCOME_COLUMNS)) if c in joined.columns]
    report = validate_cohort(
        joined[columns],
        training=True,
        arms=None,  # any arm name: arms are the log summary's to judge
        min_arm_rows=1,
        extra_features=[c for c in extra_features if c in joined.columns],
    )
    failing = np.zeros(len(joined), dtype=bool)
    rules = []
    for check in report.checks:
        if check.severity != "error" or check.rows is None:
            continue  # a finding about the table, not a row: judged on the rows kept
        failing[check.rows] = True
        rules.append(
            {
                "rule": check.rule,
                "column": check.column,
                "rows": int(check.count),
                "reads": f"{check.column}: {RULES[check.rule]}",
            }
        )
    if not failing.any():
        return ~failing, None
    left_out = {"read": int(len(joined)), "rows": int(failing.sum()), "rules": rules}
    if left_out["rows"] == left_out["read"] or left_out["rows"] > MAX_LEFT_OUT_SHARE * len(joined):
        raise InputError(_too_many(left_out))
    return ~failing, left_out


def left_out_sentence(left_out: dict) -> str:
    """The rows left out in words, for the run's notes and the card, e.g. ``12 of 1,200 logged
    rows left out, as the current data contract refuses them (written by an earlier release):
    12 years_in_practice: practice begun before age 16 (rule practice_too_early)``."""
    return (
        f"{left_out['rows']:,} of {left_out['read']:,} logged rows left out, as the current "
        "data contract refuses them (written by an earlier release), neither trained on nor "
        f"valued: {_per_rule(left_out)}"
    )


def left_out_note(frame) -> str | None:
    """What the off-policy values on the log left out (the frame of ``policy_scores_on_log``
    says it), or None when nothing was."""
    left_out = getattr(frame, "attrs", {}).get(LEFT_OUT_KEY)
    return left_out_sentence(left_out) if left_out else None


def left_out_tags(loop: dict) -> dict:
    """What was left out as run tags: ``data.log.left_out_rows`` and one
    ``data.log.left_out.<rule>`` per rule (its rows; a rule on several columns adds them up).
    None of them when nothing was left out."""
    left_out = loop.get(LEFT_OUT_KEY)
    if not left_out:
        return {}
    per_rule: dict[str, int] = {}
    for entry in left_out["rules"]:
        per_rule[entry["rule"]] = per_rule.get(entry["rule"], 0) + int(entry["rows"])
    return {
        "data.log.left_out_rows": str(left_out["rows"]),
        **{f"data.log.left_out.{rule}": str(rows) for rule, rows in per_rule.items()},
    }


def _per_rule(left_out: dict) -> str:
    return "; ".join(f"{r['rows']:,} {r['reads']} (rule {r['rule']})" for r in left_out["rules"])


def _too_many(left_out: dict) -> str:
    share = left_out["rows"] / left_out["read"]
    which = "every one" if left_out["rows"] == left_out["read"] else f"{share:.0%}"
    return (
        f"{left_out['rows']:,} of the {left_out['read']:,} logged rows ({which}) break the "
        f"current data contract: {_per_rule(left_out)}. Up to "
        f"{MAX_LEFT_OUT_SHARE:.0%} of a log's rows are left out of training; more would change "
        "whom the model learns from. The log is append-only: keep serving with this release (it "
        "refuses such profiles, so every row it logs meets the contract) and record outcomes "
        "until these rows are at most a quarter of the log, or train from a trial file that "
        "meets the contract (`recommender validate FILE`, then `recommender train --data FILE`)"
    )
