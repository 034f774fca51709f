"""Crisis resources for the flagged rows of a file that could not be scored or planned.

``score`` and ``allocate`` write one table for a whole cohort file; when it cannot be written
(rows that fail the data contract, a model that cannot be loaded, the solver out of time), the
people flagged for crisis risk must still get their resources: a crisis answer reads no profile
field but the role. They are written beside the output, as ``<out>.crisis.csv``, and the error
names the file; the service's refusals carry ``crisis_results`` the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from recommender.errors import InputError, ModelUnavailable, PlanTimeout

__all__ = [
    "beside",
    "crisis_rows_kept",
    "crisis_rows_left",
    "refuse_writing_over",
    "with_crisis_rows",
]


def beside(out, kind: str) -> Path:
    """``plan.csv`` -> ``plan.<kind>.csv``: a file written beside the output."""
    return Path(out).with_name(Path(out).stem + f".{kind}.csv")


def refuse_writing_over(data, out, *, table: str, does: str, kinds=("crisis",)) -> None:
    """Refuse an ``out`` that is, or whose files beside it (``kinds``) are, the cohort file
    ``data``: the table would replace the program's only copy of its people's profiles.
    ``table`` names what ``out`` holds (``"the plan"``), ``does`` what it does to the cohort
    (``"plans"``)."""
    if not Path(data).is_file():
        return  # read_cohort says what is wrong with it
    for path in (Path(out), *(beside(out, kind) for kind in kinds)):
        if path.is_file() and path.samefile(data):
            raise InputError(
                f"--out {out}: {table} would be written over the cohort file it {does} "
                f"(--data {data}, as {path.name}); accepted: a path that is not the cohort file's"
            )


@contextmanager
def crisis_rows_kept(frame, crisis, rules, out, *, nothing: str) -> Iterator[None]:
    """Run the block that makes ``out``; when it fails, write the crisis-flagged rows of
    ``frame`` beside ``out`` and raise the error saying where (an expected one, input or
    model or solver, in its one line; an unexpected one with its traceback and that as a
    note). Stopped by Ctrl-C or ``kill``, the flagged rows are written all the same (a few
    rows, at once: stopping the work is not a reason to withhold them), and the interrupt's
    ``left`` says where, for the command's one line (see :mod:`recommender.cli`)."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        crisis_rows_left(interrupt, frame, crisis, rules, out, nothing=nothing)
        raise
    except Exception as error:
        said = with_crisis_rows(error, frame, crisis, rules, out, nothing=nothing)
        if isinstance(said, Exception):
            raise said from None
        error.add_note(said)
        raise


def crisis_rows_left(
    interrupt: KeyboardInterrupt,
    frame,
    crisis,
    rules,
    out,
    *,
    nothing: str,
    unfinished: str = "no file was left half-written (an earlier one stays)",
) -> None:
    """Stopped by Ctrl-C or ``kill`` before ``out`` was made: write the crisis-flagged rows of
    ``frame`` beside ``out`` and set the interrupt's ``left`` to say where (and that
    ``unfinished``; ``nothing`` was written), for the command's one line. No flagged row: the
    command's own words stand."""
    if np.asarray(crisis, dtype=bool).any():
        interrupt.left = with_crisis_rows(
            RuntimeError(unfinished), frame, crisis, rules, out, nothing=nothing
        )


def with_crisis_rows(error: Exception, frame, crisis, rules, out, *, nothing: str):
    """``error`` (``nothing`` was written: e.g. "no plan was written") saying so, after writing
    the crisis-flagged rows' resources beside ``out`` and saying where.

    Returns the same kind of error with the longer message (an :class:`InputError` keeps its
    problems), or, for an unexpected error, the text to add to it as a note.
    """
    from recommender.cohort import write_cohorts
    from recommender.policy import triage_table

    said = f"{error}; {nothing}"
    flagged = np.asarray(crisis, dtype=bool)
    if flagged.any():
        rows = frame.loc[flagged]
        safety = triage_table(rows, rules, flagged[flagged])
        listed = pd.DataFrame(
            {
                "person_id": rows["person_id"].astype(str).to_numpy()
                if "person_id" in rows.columns
                else np.full(len(rows), ""),
                "safety_level": safety["safety_level"].to_numpy(),
                "referral": safety["referral"].to_numpy(),
            }
        )
        try:
            (path,) = write_cohorts({beside(out, "crisis"): listed})
        except Exception as unwritten:  # noqa: BLE001 - a full disk: said here instead
            # The file beside cannot be written either (the same full disk): the resources
            # are said here, by row, so that no one flagged goes without them.
            referrals = "; ".join(
                f"row {row}: {referral}"
                for row, referral in zip(rows.index, listed["referral"], strict=True)
            )
            said += (
                f", but the {len(listed):,} profile(s) flagged for crisis risk need the crisis "
                f"resources now, and they could not be written beside it either "
                f"({unwritten}): {referrals}"
            )
        else:
            said += (
                f", but the {len(listed):,} profile(s) flagged for crisis risk need the crisis "
                f"resources now: they are in {path} (person_id, referral)"
            )
    if isinstance(error, InputError):
        return InputError(said, problems=error.problems)
    if isinstance(error, (ModelUnavailable, PlanTimeout)):
        return type(error)(said)
    return said
