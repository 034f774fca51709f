"""Outcome files: the rows of a CSV or JSON file of follow-up scores, values as given.

Read here, checked by :func:`recommender.service.record_outcomes` exactly as a POST /outcomes
body is (``recommender outcomes import``).
"""

from __future__ import annotations

import json
import math

import pandas as pd

from recommender.cohort import not_utf8, without_empty_margins
from recommender.errors import InputError
from recommender.service._outcomes import OUTCOME_FIELDS

__all__ = ["read_outcome_file"]


_WORKBOOK = "spreadsheet workbook, not a table of text"
_NOT_TEXT = {
    ".xlsx": _WORKBOOK,
    ".xlsm": _WORKBOOK,
    ".xls": _WORKBOOK,
    ".ods": _WORKBOOK,
    ".numbers": _WORKBOOK,
    ".parquet": "Parquet file, which outcome files are not",
    ".pq": "Parquet file, which outcome files are not",
}


def read_outcome_file(path) -> list[dict]:
    """Rows of an outcome file as plain mappings, values as given.

    CSV with a header row, or JSON (``.json``, ``.jsonl``): one outcome object per line, an
    array of them, or the body of ``POST /outcomes`` (``{"outcomes": [...]}``).

    Scores written as numbers become the JSON numbers they write and everything else stays
    text, so the same checks as over HTTP apply (20.0 is 20; 12.5 is refused, not rounded).

    A file without a row (0 bytes, blank lines, a CSV header alone, ``[]``) is refused, naming
    the columns an outcome needs: an import that recorded nothing would look like one that
    found every outcome already recorded.
    """
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise InputError(f"outcome file {path} does not exist")
    accepted = (
        f"accepted: CSV with a header row of {', '.join(OUTCOME_FIELDS)}, or JSON (one "
        "outcome per line, an array of outcomes, or a POST /outcomes body)"
    )
    rows = _rows(path, accepted)
    if not rows:
        json_file = path.suffix.lower() in (".jsonl", ".json")
        said = (
            "the file is empty"
            if not path.read_bytes().strip()
            else "the file holds no outcomes"
            if json_file
            else "the file has its header row but no rows"
        )
        raise InputError(
            f"{path.name}: {said}, so nothing was imported; {accepted}, with at least one outcome"
        )
    return rows


def _rows(path, accepted: str) -> list:
    """The rows of ``path`` as read (see :func:`read_outcome_file`); [] for none."""
    kind = _NOT_TEXT.get(path.suffix.lower())
    if kind:  # read as CSV, its bytes were refused as text that is not UTF-8, or not CSV
        raise InputError(f"{path.name}: a {kind}; save it as CSV UTF-8; {accepted}")
    if path.suffix.lower() in (".jsonl", ".json"):
        try:
            text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad) is no value
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path.name}: byte {error.start} is not UTF-8 text; {accepted} in UTF-8"
            ) from None
        try:  # one JSON document: an array of outcomes, or a POST /outcomes body saved
            document = json.loads(text)
        except json.JSONDecodeError:
            document = None  # several values: JSON lines, read one by one below
        if isinstance(document, list):
            return document
        if isinstance(document, dict) and list(document) == ["outcomes"]:
            return document["outcomes"]
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise InputError(f"{path.name} line {number}: not JSON ({error.msg})") from None
        return rows
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:  # pandas: "No columns to parse from file"
        return []
    except UnicodeDecodeError:
        problem = not_utf8(path) or "not UTF-8 text"
        raise InputError(f"{path.name}: {problem}; {accepted} in UTF-8") from None
    except ValueError as error:  # empty, not CSV, not UTF-8 text: all ValueErrors in pandas
        raise InputError(
            f"{path.name}: cannot be read as CSV ({str(error).strip()}); {accepted}"
        ) from None
    frame = without_empty_margins(frame)
    missing = [c for c in OUTCOME_FIELDS if c not in frame.columns]
    if missing:
        # Shown quoted: a space after each comma or a spreadsheet's semicolons hide the names.
        read = ", ".join(repr(str(c)) for c in frame.columns[:20])
        more = f" and {len(frame.columns) - 20} more" if len(frame.columns) > 20 else ""
        raise InputError(
            f"{path.name}: missing column(s) {missing}; required: {', '.join(OUTCOME_FIELDS)}, "
            f"comma-separated; the header read has {read}{more}"
        )
    # A program's own sheet keeps columns of its own (a department, a survey wave): each was
    # refused on every row, thousands of identical problems for one fact about the header.
    extra = [str(c) for c in frame.columns if c not in OUTCOME_FIELDS]
    if extra:
        raise InputError(
            f"{path.name}: column(s) {extra} are not outcome fields, so nothing was imported; "
            f"an outcome file has the columns {', '.join(OUTCOME_FIELDS)} (in any order) and "
            "no others: remove the other columns and import it again"
        )
    rows = []
    for record in frame.to_dict(orient="records"):
        for name in ("ee_followup", "dp_followup", "pa_followup"):
            record[name] = _number(record.get(name, ""))
        rows.append(record)
    return rows


def _number(text: str):
    """A CSV cell as the JSON number it writes (``20``, ``20.0``, ``3e1``; spaces around it
    aside), else the text as given, for the checks to refuse by its value."""
    plain = text.strip()
    if plain.lstrip("-").isdigit():
        return int(plain)
    try:
        number = float(plain)
    except ValueError:
        return text
    return number if math.isfinite(number) else text
