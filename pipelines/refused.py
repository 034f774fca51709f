"""A run refused before its cohort file was read (an option argparse refuses: ``--budget -5``,
``--alpha abc``): the file's rows flagged for crisis risk get their resources all the same, as
they do for every refusal once the file is read (see :mod:`pipelines._crisis_rows`)."""

from __future__ import annotations

import numpy as np

from pipelines._crisis_rows import beside, with_crisis_rows
from recommender.errors import InputError

__all__ = ["crisis_rows_answered"]


def crisis_rows_answered(
    refusal: str, data, out, *, nothing: str, serve_config=None, spark_master=None
) -> str:
    """``refusal`` saying that ``nothing`` was written and where the crisis-flagged rows of
    ``data`` got their resources (``<out>.crisis.csv``, written now).

    ``spark_master``: read ``data`` on Spark, as ``recommender batch-score`` reads it (a folder
    of part files too). The safety rules are the service's (``serve_config``, as score's).

    Unchanged when there is nobody to answer or no way to: no ``data`` or ``out``, a file or
    settings that cannot be read, a crisis file that cannot be written or would be written over
    the cohort file. The refusal is said either way; this only adds to it.
    """
    from pipelines.score import service_settings
    from recommender.cohort import check_table_output, read_cohort
    from recommender.policy import crisis_flags

    if not data or not out:
        return refusal
    try:
        crisis_file = check_table_output(beside(out, "crisis"), option="--out")
        if crisis_file.is_file() and crisis_file.samefile(data):
            return refusal
        rules = service_settings(serve_config).safety
        if spark_master is None:
            frame = read_cohort(data)
            # a flag that cannot be read counts as set, as for every other refusal
            flagged = np.asarray(crisis_flags(frame, strict=False), dtype=bool)
        else:
            from pipelines.batch import flagged_rows_on_spark

            frame = flagged_rows_on_spark(data, master=spark_master)
            flagged = np.ones(len(frame), dtype=bool)
        if not flagged.any():
            return refusal
        said = with_crisis_rows(InputError(refusal), frame, flagged, rules, out, nothing=nothing)
    except (InputError, OSError):
        return refusal
    return str(said)
