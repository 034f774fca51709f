"""Poor overlap of the arms, said once per training run.

The learners of every outcome estimate the same propensities on the same rows (they follow from
the features and the arms, never from the outcome), and the evaluation's scores estimate them
again on the held-out part for each outcome. Left to Python's warnings, a run printed the same
poor-overlap warning once per outcome and part: three times while fitting, three more while
evaluating. The run records them here by part and says them once, naming the outcomes and arms.
"""

from __future__ import annotations

import contextlib
import warnings

__all__ = ["OverlapRecord", "warnings_of"]


@contextlib.contextmanager
def warnings_of(category, found: list):
    """Append the warnings of ``category`` raised inside (their messages) to ``found``, to be
    said once by the caller; every other warning is shown as it would have been."""
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", category)
            yield
    finally:
        for record in caught:
            if issubclass(record.category, category):
                found.append(record.message)
            else:
                warnings.showwarning(
                    record.message,
                    record.category,
                    record.filename,
                    record.lineno,
                    record.file,
                    record.line,
                )


class OverlapRecord:
    """The poor-overlap warnings of one run, by part of the cohort (``watching``), said once
    (``statement``)."""

    def __init__(self, outcomes):
        self.outcomes = [str(o) for o in outcomes]
        # part -> the distinct (clip, arms) warned there, in the order first warned
        self.parts: dict[str, list[tuple]] = {}

    @contextlib.contextmanager
    def watching(self, part: str):
        """Record the poor-overlap warnings raised inside as ``part``'s (e.g. "training
        part"); every other warning is shown as it would have been."""
        from recommender.uplift import PoorOverlapWarning

        warned: list = []
        try:
            with warnings_of(PoorOverlapWarning, warned):
                yield
        finally:
            for message in warned:
                found = (message.clip, message.arms)
                seen = self.parts.setdefault(part, [])
                if found not in seen:
                    seen.append(found)

    def statement(self) -> str:
        """One sentence for the whole run ("" when no propensity was clipped)."""
        said = []
        for part, found in self.parts.items():
            for clip, arms in found:
                concerned = "; ".join(
                    f"arm {arm!r} {rows:,} rows" + (f", {region}" if region else "")
                    for arm, rows, region in arms
                )
                said.append(f"{part}, propensities estimated below {clip} clipped: {concerned}")
        if not said:
            return ""
        return (
            f"poor overlap, effects there rest on extrapolation (outcomes "
            f"{', '.join(self.outcomes)} alike: their learners share the propensities, which "
            "follow from the features and arms alone). " + ". ".join(said)
        )
