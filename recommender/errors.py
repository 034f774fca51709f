"""The one error type every edge raises for bad input.

Validation happens once at each edge (a file, a config, an HTTP request). Whatever is wrong is
raised as an :class:`InputError` whose message says where (row, column, field, entry), what was
found and what would be accepted. The CLI turns it into exit code 2, the service into a 4xx.
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "ModelUnavailable",
    "ModelFilesMissing",
    "ModelUnreadable",
    "PlanTimeout",
]


class InputError(ValueError):
    """Input from a user (file, config, request) that the project will not accept.

    Parameters
    ----------
    message : str
        What was wrong, where, and what is accepted.
    problems : list, optional
        Structured details when there is more than one problem (for example the rows of a
        cohort validation report), so callers can render them rather than parse the message.
    """

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = list(problems or [])


class PlanTimeout(RuntimeError):
    """The allocation solver ran out of time before it found any plan.

    Not the input's fault: a plan giving everyone usual care always satisfies the constraints,
    the solver just did not reach one in the time it had. Retrying with more time (or a smaller
    cohort) can succeed, so callers answer it as a temporary failure, not as bad input.
    """


class ModelUnavailable(RuntimeError):
    """A registered model version whose files cannot be read: its artifacts were deleted, moved
    or are unreachable. Not the caller's input; the message names the version, where its files
    should be and what to do. The CLI prints it in one line (exit 2); the service keeps serving
    the model it has and answers ``/reload`` 503 with it (409 for the two kinds below, which no
    retry mends); ``champion`` is never moved to such a version (promote, rollback, the gate)."""


class ModelFilesMissing(ModelUnavailable):
    """A registered model version whose files are, on this machine, partly or wholly missing
    (deleted, a copy or a mount without them). ``version`` is the version (``None`` for a
    ``runs:/`` URI) and ``missing`` the first file (or folder) found missing, as a path of the
    artifact store, never a staging copy's; the message names both. Both may be left out
    (``None``), as by a caller that rebuilds an error of the same type with a longer message."""

    def __init__(self, message: str, *, version: str | None = None, missing: str | None = None):
        super().__init__(message)
        self.version, self.missing = version, missing


class ModelUnreadable(ModelUnavailable):
    """A registered model version whose files are there but that this release cannot load: a
    model format it does not read (a much older or newer release's) or damaged files. Handled
    as :class:`ModelUnavailable`; the service says that its champion cannot be served (no
    store or network to wait for)."""
