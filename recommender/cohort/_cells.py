"""How a cell of a cohort table is read (missing, a number, within bounds), and the hint a
refused cell's finding carries for its sender (a spreadsheet's spelling, a decimal comma).

Shared by the column checks (:mod:`._column_checks`), the validation that orders them
(:mod:`._validate`), and, through :func:`spelling_hint`, the service's outcomes
(:mod:`recommender.service._outcomes`).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

__all__ = ["spelling_hint"]


def _blank(series: pd.Series) -> np.ndarray:
    """Missing, or a string of only whitespace (what an empty CSV cell means)."""
    missing = series.isna().to_numpy().copy()
    if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
        text = series.astype("string").str.strip()
        missing |= text.eq("").fillna(False).to_numpy(dtype=bool)
    return missing


def _as_numbers(series: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a cell is missing or not a number (true is no number)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=float, na_value=np.nan)
    text = series.astype("string").str.strip()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _within(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (values >= bounds[0]) & (values <= bounds[1])


def spelling_hint(value, allowed) -> str:
    """``did you mean 'nurse'?`` when ``value`` is one of ``allowed`` but for case and spaces
    (a spreadsheet's ``'Nurse'``), else empty: the comparison files and outcomes share."""
    return str(_spelling_hints(pd.Series([value], dtype=object), allowed)[0])


def _spelling_hints(values: pd.Series, allowed) -> np.ndarray:
    """Per value, ``did you mean 'nurse'?`` when it is an allowed value but for case and
    spaces (``'Nurse'``, ``' nurse '``: a spreadsheet's spelling); else empty. Values are
    compared as written, as the service compares a request's, so the file must be corrected."""
    lowered = {str(a).lower(): a for a in allowed}
    plain = [None if pd.isna(v) else _plain(v) for v in values.astype("string")]
    return np.array(
        ["" if pd.isna(v) or v not in lowered else f"did you mean {lowered[v]!r}?" for v in plain],
        dtype=object,
    )


def _plain(text) -> str:
    """A name or value as compared for a hint: case, spaces around and between words aside."""
    return re.sub(r"[\s_]+", "_", str(text).strip().lower())


def _decimal_comma_hints(values: pd.Series) -> np.ndarray | None:
    """Per value, how to write a number given with a decimal comma (``'41,5'``: a spreadsheet
    export in a locale that writes one) with the point the contract reads; else empty."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return None
    text = values.astype("string").str.strip()
    comma = text.str.fullmatch(r"[+-]?\d*,\d+").fillna(False).to_numpy(dtype=bool)
    if not comma.any():
        return None
    return np.array(
        [f"a decimal comma; write {t.replace(',', '.')}" if c else "" for t, c in zip(text, comma)],
        dtype=object,
    )


def _num(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
