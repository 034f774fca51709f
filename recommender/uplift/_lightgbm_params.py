"""LightGBM parameters a candidate names in ``GBMSpec.extra``, checked before any fit starts.

A name must be one LightGBM knows (with its closest name suggested otherwise), must not be one
a ``GBMSpec`` field or the learner already sets, and its value must be one LightGBM takes:
LightGBM itself is asked, on a few rows. Only public names of LightGBM are used: the list of
parameters and aliases comes from its documented C API (``LGBM_DumpParamAliases`` in
``c_api.h``), read from the shared library the installed ``lightgbm`` distribution ships.
"""

from __future__ import annotations

import contextlib
import ctypes
import difflib
import functools
import importlib.metadata
import json
import os
import re
import sys
import tempfile
import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np

__all__ = ["extra_problems", "feature_count_problems"]

_PARAMETERS_PAGE = "https://lightgbm.readthedocs.io/en/stable/Parameters.html"

# LightGBM parameters that a GBMSpec field or the learner sets: the same one (or an alias of it)
# in ``extra`` would override them unseen (or, for early stopping, stop twice).
_SET_ELSEWHERE = {
    "num_leaves": "GBMSpec's num_leaves",
    "min_data_in_leaf": "GBMSpec's min_child_samples",
    "learning_rate": "GBMSpec's learning_rate",
    "num_iterations": "GBMSpec's max_rounds",
    "early_stopping_round": "GBMSpec's patience",
    "lambda_l2": "GBMSpec's lambda_l2",
    "max_bin": "GBMSpec's max_bin",
    "seed": "UpliftModel's random_state",
    "num_threads": "UpliftModel's n_jobs",
}

_LIBRARY_NAMES = ("lib_lightgbm.so", "lib_lightgbm.dylib", "lib_lightgbm.dll")


def _lightgbm_library() -> str:
    """The path of LightGBM's shared library: among the files the ``lightgbm`` distribution
    records as installed, else where its package loads it from (its folder's ``lib`` and
    ``bin``, or the folder above); the one already loaded, so the list is of this LightGBM."""
    try:
        recorded = [f.locate() for f in importlib.metadata.files("lightgbm") or []]
    except importlib.metadata.PackageNotFoundError:
        recorded = []
    package = Path(lgb.__file__).resolve().parent
    candidates = [Path(p) for p in recorded if Path(p).name in _LIBRARY_NAMES]
    for folder in (package.parent, package / "bin", package / "lib"):
        candidates += [folder / name for name in _LIBRARY_NAMES]
    for path in candidates:
        if path.is_file():
            return str(path)
    raise RuntimeError(
        f"LightGBM's shared library ({' | '.join(_LIBRARY_NAMES)}) is neither among the lightgbm "
        f"distribution's files nor beside its package {package}; reinstall lightgbm"
    )


@functools.cache
def lightgbm_parameters() -> dict[str, tuple[str, ...]]:
    """Every LightGBM parameter with its aliases (the name first), as the installed LightGBM
    lists them: ``int LGBM_DumpParamAliases(int64_t buffer_len, int64_t* out_len, char*
    out_str)`` writes a JSON object of each parameter's aliases (0 on success)."""
    library = ctypes.CDLL(_lightgbm_library())
    dump = library.LGBM_DumpParamAliases
    dump.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int64), ctypes.c_char_p]
    dump.restype = ctypes.c_int
    library.LGBM_GetLastError.restype = ctypes.c_char_p
    needed = ctypes.c_int64(1 << 16)
    while True:  # twice at most: the first call says how long the text is
        text = ctypes.create_string_buffer(needed.value)
        if dump(len(text), ctypes.byref(needed), text) != 0:
            said = library.LGBM_GetLastError().decode("utf-8", "replace")
            raise RuntimeError(f"LightGBM could not list its parameters: {said}")
        if needed.value <= len(text):
            break
    aliases = json.loads(text.value.decode("utf-8"))
    return {name: (name, *others) for name, others in aliases.items()}


# LightGBM writes "[LightGBM] [Fatal] <what it refuses>" straight to the process's stderr
# (file descriptor 2, past Python and its logger) before raising the same words as an error;
# the check turns those words into its own message, so the line is held back.
_STDERR = threading.Lock()


@contextlib.contextmanager
def _stderr_held():
    """Hold what is written to file descriptor 2 meanwhile; yields a list the caller fills
    with the texts to drop, and writes the rest (another thread's words, say) on exit. Without
    a file descriptor 2 (a daemon's closed stderr) nothing is held."""
    dropped: list[str] = []
    with _STDERR, tempfile.TemporaryFile() as held:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield dropped
            return
        os.dup2(held.fileno(), 2)
        try:
            yield dropped
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            said = held.read()
            for text in dropped:
                said = said.replace(text.encode("utf-8"), b"", 1)
            if said:
                os.write(2, said)


# Parameters holding one value per feature, in X's column order: LightGBM refuses another
# length only once a fit builds its booster, with a "[LightGBM] [Fatal]" line of its own.
_PER_FEATURE = ("monotone_constraints", "feature_contri", "max_bin_by_feature")
# Parameters naming features by column index: LightGBM takes an index past the last feature
# without a word, so the constraint silently names nothing.
_BY_INDEX = ("interaction_constraints",)


def feature_count_problems(extra, feature_names) -> list[str]:
    """``name=value (accepted: ...)`` for each per-feature parameter of ``extra`` whose length
    is not the number of features (``feature_names``, X's columns), or that names a column
    index past the last: what a fit would otherwise stop on, checked before any fit starts."""
    owner = {alias: main for main, aliases in lightgbm_parameters().items() for alias in aliases}
    count = len(feature_names)
    shown = ", ".join(map(str, feature_names[:8])) + (", ..." if count > 8 else "")
    features = f"X has {count} feature{'s' * (count != 1)} ({shown})"
    problems = []
    for name, value in extra:
        if not isinstance(value, (list, tuple)):
            continue  # a value of the wrong type: the parameter check names it
        if owner.get(name) in _PER_FEATURE and len(value) != count:
            problems.append(
                f"{name}={value!r} ({len(value)} value{'s' * (len(value) != 1)}; {features}; accepted: {count} "
                "values, one per feature in X's column order)"
            )
        elif owner.get(name) in _BY_INDEX and _columns_named(value) > count:
            problems.append(
                f"{name}={value!r} (names column index {_columns_named(value) - 1}; "
                f"{features}; accepted: groups of column indices from 0 to {count - 1})"
            )
    return problems


def _columns_named(value) -> int:
    """How many columns a per-feature list names (``monotone_constraints``,
    ``max_bin_by_feature``; groups of column indices for ``interaction_constraints``)."""
    if not isinstance(value, (list, tuple)):
        return 0
    groups = [v for v in value if isinstance(v, (list, tuple))]
    if groups:
        return 1 + max([-1, *(i for g in groups for i in g if isinstance(i, int))])
    return len(value)


def _lightgbm_refuses(params: dict, aliases) -> str | None:
    """What LightGBM says when it builds a booster with ``params`` on a few rows, or None.

    A per-feature list gets as many columns as it names (its length against X's columns is
    :func:`feature_count_problems`'s)."""
    columns = max(_columns_named(v) for v in params.values()) or 2
    rows = np.arange(10.0 * columns).reshape(10, columns) % 7
    quiet = {"objective": "regression", "verbosity": -1, "num_threads": 1}
    quiet = {k: v for k, v in quiet.items() if k not in aliases} | params
    with _stderr_held() as dropped:
        try:
            lgb.Booster(params=quiet, train_set=lgb.Dataset(rows, np.arange(10.0), params=quiet))
        except lgb.basic.LightGBMError as error:
            dropped.append(f"[LightGBM] [Fatal] {error}\n")
            said = str(error)
        except (TypeError, ValueError) as error:
            said = str(error)
        else:
            return None
    # LightGBM's CHECK messages end with its source file and line: not the user's concern
    return re.sub(r" at \S+, line \d+ ?\.?\s*$", "", said.strip())


def extra_problems(extra) -> list[str]:
    """``name=value (accepted: ...)`` for each ``(name, value)`` of ``extra`` that LightGBM
    does not know, that a field or the learner already sets, or whose value LightGBM refuses
    (alone, then all together)."""
    known = lightgbm_parameters()
    owner = {alias: main for main, aliases in known.items() for alias in aliases}
    problems = []
    for name, value in extra:
        if name not in owner:
            close = difflib.get_close_matches(name, owner, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                f"{name}={value!r} (accepted: a LightGBM parameter name or alias, "
                f"{_PARAMETERS_PAGE}{hint})"
            )
        elif owner[name] in _SET_ELSEWHERE:
            problems.append(
                f"{name}={value!r} (LightGBM's {owner[name]}, which "
                f"{_SET_ELSEWHERE[owner[name]]} sets; accepted: set it there)"
            )
        else:
            refused = _lightgbm_refuses({name: value}, known[owner[name]])
            if refused:
                problems.append(
                    f"{name}={value!r} (LightGBM refuses it: {refused}; accepted: a value "
                    f"of the type and range of {owner[name]} in {_PARAMETERS_PAGE})"
                )
    if not problems:
        problems += _per_feature_lengths_differ(extra, owner)
    # one parameter may depend on another (checked quietly: verbosity was checked alone)
    together = {n: v for n, v in extra if owner.get(n) != "verbosity"}
    if not problems and len(together) > 1:
        given = {alias for name in together for alias in known[owner[name]]}
        refused = _lightgbm_refuses(together, given)
        if refused:
            problems.append(
                f"{'+'.join(together)}={together!r} (LightGBM refuses them together: {refused}; "
                f"accepted: parameters that agree, {_PARAMETERS_PAGE})"
            )
    return problems


def _per_feature_lengths_differ(extra, owner) -> list[str]:
    """One problem naming every per-feature list of ``extra`` when their lengths differ: no X
    fits them all, and LightGBM's trial booster would refuse them in its own words ("Check
    failed: ... size()"), naming neither parameter's length."""
    lists = [
        (name, len(value))
        for name, value in extra
        if owner.get(name) in _PER_FEATURE and isinstance(value, (list, tuple))
    ]
    if len({length for _, length in lists}) < 2:
        return []
    named = " and ".join(
        f"{name} has {length} value{'s' * (length != 1)}" for name, length in lists
    )
    return [
        f"{'+'.join(name for name, _ in lists)} ({named}; accepted: lists of one length, each "
        "one value per feature in X's column order, as many values as X has features)"
    ]
