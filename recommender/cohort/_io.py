"""Reading, writing and loading cohort tables (CSV or Parquet, chosen by file suffix).

CSV is read as text so that nothing is coerced behind the validator's back: ``"abc"`` in
``age`` becomes a finding with its row, not a crash or a silent NaN. Only after validation
passes does :func:`load_cohort` give columns their contract types.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender._files import check_writable, write_together
from recommender.errors import InputError

from ._contract import (
    CATEGORIES,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    ORACLE_PREFIX,
    PROFILE_COLUMNS,
    PROPENSITY_COLUMN,
    TRAINING_COLUMNS,
    TREATMENT_COLUMN,
)
from ._features import extra_is_number
from ._validate import validate_cohort

__all__ = [
    "TEXT_SUFFIXES",
    "read_cohort",
    "write_cohort",
    "write_cohorts",
    "spreadsheet_safe",
    "check_table_output",
    "load_cohort",
    "typed_cohort",
    "not_utf8",
    "check_utf8",
    "without_empty_margins",
    "unnamed_column",
    "empty_file_error",
]

# Compressed text read through (open_decompressed, streaming, by suffix), and so the text
# files every command reads, `score` and `train` as `batch-score`: the one table of suffixes.
_CODECS = (".gz", ".bz2", ".zst")
TEXT_SUFFIXES = tuple(f"{kind}{codec}" for kind in (".csv", ".tsv") for codec in ("", *_CODECS))
_PARQUET = (".parquet", ".pq")
_ACCEPTED = (
    f".csv or tab-separated .tsv (uncompressed or {', '.join(_CODECS[:-1])} or {_CODECS[-1]}), "
    f"{' or '.join(_PARQUET)}"
)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(TEXT_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET):
        return "parquet"
    raise InputError(f"{path}: unknown file type; accepted: {_ACCEPTED}")


def read_cohort(path) -> pd.DataFrame:
    """Read a cohort table as it is, without coercing types.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or tab-separated ``.tsv`` file (uncompressed, or ``.gz``, ``.bz2`` or
        ``.zst``), or a ``.parquet`` file.

    Returns
    -------
    DataFrame
        CSV columns as strings (empty cells missing; 'NA' or 'null' is text); Parquet columns
        as stored.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{path}: is a folder; accepted: one {_ACCEPTED} file (a folder of "
            "Spark part files is read by `recommender batch-score`)"
        )
    kind = _kind(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if kind == "csv":
        names = read_csv_header(path)
    try:
        if kind == "csv":
            # Only an empty cell is missing, as for Spark and the outcome files: pandas' own
            # list made 'NA', 'null' and 'None' missing, so such an id was refused as
            # "(empty)" and a crisis_risk of 'NA' read as not flagged, where Spark names it.
            # Through open_decompressed, as the header: pandas reads .zst only with a
            # package we do not depend on.
            with open_decompressed(path) as handle:
                frame = pd.read_csv(
                    handle, dtype=str, sep=_separator(path), keep_default_na=False, na_values=[""]
                )
        else:
            if path.stat().st_size == 0:
                raise empty_file_error(path, parquet=True)
            frame = pd.read_parquet(path)
            if len(frame) == 0:  # no rows: with columns (a schema alone) or none at all
                raise empty_file_error(path, parquet=True, columns=frame.shape[1])
            return frame
    except InputError:
        raise
    except UnicodeDecodeError:
        raise _not_utf8_error(path) from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: cannot be read as {kind}: {str(error).strip()}") from error
    if not isinstance(frame.index, pd.RangeIndex):
        # The first row has more fields than the header: pandas took its first ones for an
        # index and shifted every column (person_id read as age), where a later row is refused.
        raise InputError(
            f"{path}: cannot be read as csv: Expected {len(names)} fields in line 2, saw "
            f"{len(names) + frame.index.nlevels}"
        )
    if len(set(names)) < len(names) and len(names) == frame.shape[1]:
        frame.columns = names  # pandas named the second copy 'ee.1'; validation must see it
    return without_empty_margins(frame)


def without_empty_margins(frame: pd.DataFrame) -> pd.DataFrame:
    """A CSV table without what a spreadsheet leaves around it: columns with no name and no
    value (``,,`` ending every line, which pandas names ``Unnamed: 11``), and the lines of
    empty cells after its last row. An empty row inside the table stays, to be reported by
    its row number, and so does a named column, empty or not."""
    empty_columns = np.asarray([unnamed_column(name) for name in frame.columns], dtype=bool)
    for i in np.flatnonzero(empty_columns):
        empty_columns[i] = bool(_blank_cells(frame.iloc[:, [i]]).all())
    kept = frame.iloc[:, ~empty_columns]
    rows = len(kept)
    while rows:  # from the end, a block at a time: only the margin is looked at
        block = _blank_cells(kept.iloc[max(rows - 1024, 0) : rows]).all(axis=1)
        filled = np.flatnonzero(~block)
        if len(filled):
            rows = max(rows - 1024, 0) + int(filled[-1]) + 1
            break
        rows = max(rows - 1024, 0)
    return kept if rows == len(kept) else kept.iloc[:rows]


def unnamed_column(name) -> bool:
    """Whether a column name is no name: blank as written, or pandas' ``Unnamed: 11`` for it."""
    return str(name).strip() == "" or str(name).startswith("Unnamed: ")


def _blank_cells(frame: pd.DataFrame) -> np.ndarray:
    text = frame.astype("string")
    return (text.isna() | text.apply(lambda column: column.str.strip().eq(""))).to_numpy(bool)


def read_csv_header(path, *, sep: str | None = None) -> list[str]:
    """The column names of a CSV or TSV file as written.

    A name given twice stays twice: pandas and Spark rename the second copy (``ee.1``,
    ``ee11``), which would hide it from validation's ``duplicate_column`` rule. A header split
    by another separator (a spreadsheet export writing ';') is refused, naming it. ``sep`` is
    the file's separator when its name does not say it (a part file of a ``.tsv`` folder).
    """
    path = Path(path)
    sep = _separator(path) if sep is None else sep
    try:
        # Through open_decompressed: pandas reads .zst only with a package we do not depend on.
        with open_decompressed(path) as handle:
            first = pd.read_csv(
                handle, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False
            )
    except UnicodeDecodeError:
        raise _not_utf8_error(path) from None
    except pd.errors.EmptyDataError:  # pandas: "No columns to parse from file"
        raise empty_file_error(path, sep=sep) from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise InputError(f"{path}: cannot be read as csv: {str(error).strip()}") from error
    names = [str(name) for name in first.iloc[0].tolist()] if len(first) else []
    _refuse_other_separator(path, names, sep)
    return names


def not_utf8(path) -> str | None:
    """Where a text file (``.gz``, ``.bz2`` or ``.zst`` read through) stops being UTF-8, said
    for its author: ``line 4 is not UTF-8 text (byte 0xe9 ...)``, or that it is UTF-16 (a
    spreadsheet's "Unicode Text"); None for UTF-8 text. A codec's own position is an offset
    in a buffer of its reader's; this is the file's line. Read in pieces, so a file of
    gigabytes is checked without holding it (Spark, which reads such bytes as U+FFFD, is given
    only checked files).
    """
    import codecs

    path = Path(path)
    lines, carried = 0, b""
    with open_decompressed(path) as handle:
        start = handle.read(2)
        if start in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "UTF-16 text; save it as UTF-8 (in a spreadsheet: CSV UTF-8)"
        piece = start
        while True:
            more = handle.read(1 << 20)
            data = carried + piece + more
            if not data:
                return None
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                # A letter cut by the piece's end is carried to the next piece, not an error.
                if more and error.end == len(data) and len(data) - error.start < 4:
                    carried, piece = data[error.start :], b""
                    lines += data.count(b"\n", 0, error.start)
                    continue
                line = lines + data.count(b"\n", 0, error.start) + 1
                return (
                    f"line {line} is not UTF-8 text (byte 0x{data[error.start]:02x}, as "
                    "Windows-1252 or Latin-1 write an accented letter); save it as UTF-8 (in a "
                    "spreadsheet: CSV UTF-8)"
                )
            if not more:
                return None
            lines += data.count(b"\n")
            carried, piece = b"", b""


def open_decompressed(path):
    """``path`` opened for reading its bytes, decompressed as its suffix says (``.gz``,
    ``.bz2``, ``.zst``; any other read as it is), a piece at a time: a file of gigabytes is
    never held whole. Zstandard is read by pyarrow (a dependency), as Spark's codec writes it.
    """
    return _open_by_suffix(path, "rb")


def _open_by_suffix(path, mode: str):
    """``path`` opened in ``mode`` (``"rb"`` or ``"wb"``) through the codec its suffix names:
    what :func:`open_decompressed` reads, write_cohort writes (pandas writes ``.zst`` only
    with a package we do not depend on)."""
    import bz2
    import gzip

    name = Path(path).name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, mode)
    if name.endswith(".bz2"):
        return bz2.open(path, mode)
    if name.endswith(".zst"):
        import pyarrow as pa

        if mode == "rb":
            return pa.CompressedInputStream(pa.OSFile(str(path), "rb"), "zstd")
        return pa.CompressedOutputStream(str(path), "zstd")
    return open(path, mode)


def check_utf8(path) -> None:
    """Raise :class:`InputError` naming the line where ``path`` stops being UTF-8 text."""
    if not_utf8(path) is not None:
        raise _not_utf8_error(path)


def _not_utf8_error(path) -> InputError:
    return InputError(f"{path}: {not_utf8(path) or 'not UTF-8 text'}; accepted: UTF-8 text")


def empty_file_error(
    path, *, sep: str = ",", parquet: bool = False, columns: int = 0
) -> InputError:
    """A cohort file (or folder of part files) with no rows to read: a text file of 0 bytes or
    blank lines only, a Parquet file of 0 bytes, of no columns or of columns but no rows.
    Nothing to name but what the data contract needs; one wording for every command that reads
    a cohort, ``score`` and ``batch-score`` alike.

    Parameters
    ----------
    path : str or Path
    sep : str, default ","
        A text file's separator (``"\t"``: tab-separated).
    parquet : bool, default False
        A Parquet file or folder.
    columns : int, default 0
        Columns the file has (a Parquet schema without rows).
    """
    needed = (
        f"the data contract's profile columns ({', '.join(PROFILE_COLUMNS)}; a training file "
        f"adds {', '.join(TRAINING_COLUMNS)})"
    )
    empty = "the folder's part files are empty" if Path(path).is_dir() else "the file is empty"
    if not parquet:
        separated = "tab-separated" if sep == "\t" else "comma-separated"
        return InputError(
            f"{path}: {empty} (no header row, no rows); accepted: {separated} text "
            f"whose first line is the header, naming {needed}, then one row per person"
        )
    has = f"{columns} column{'' if columns == 1 else 's'}" if columns else "no columns"
    return InputError(
        f"{path}: {empty} ({has}, no rows); accepted: Parquet whose columns are "
        f"{needed}, with one row per person"
    )


def _separator(path: Path) -> str:
    name = path.name.lower()
    return "\t" if name.endswith(tuple(s for s in TEXT_SUFFIXES if s.startswith(".tsv"))) else ","


_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "bars", ",": "commas"}


def _refuse_other_separator(path: Path, names: list[str], sep: str) -> None:
    # One column whose name holds another separator: the file was split with it (a spreadsheet
    # export in a locale that writes ';'), so say that rather than list every column as missing.
    if len(names) != 1:
        return
    header = names[0]
    found = [s for s in _SEPARATORS if s != sep and header.count(s) >= 2]
    if found:
        expected = "tab-separated (.tsv)" if sep == "\t" else "comma-separated (.csv)"
        shown = header[:60] + ("..." if len(header) > 60 else "")
        raise InputError(
            f"{path}: the header {shown!r} is separated by {_SEPARATORS[found[0]]}; "
            f"accepted: {expected} columns"
        )


def write_cohort(frame: pd.DataFrame, path) -> Path:
    """Write a cohort table as CSV or Parquet by suffix, without the index; returns the path.

    Written whole or not at all: a failure or Ctrl-C leaves an earlier file of that name as it was.
    """
    return write_cohorts({path: frame})[0]


def write_cohorts(frames, *, stale=()) -> list[Path]:
    """:func:`write_cohort` for tables that belong together (path -> frame): all are written, or
    none, and the ``stale`` files (an earlier run's, with no counterpart now) are removed with
    them (see :func:`recommender._files.write_together`). ``category`` columns are written as
    plain text (or numbers), so every reader, MLflow's among them, gets the contract's types.

    A table holds people (their ids, profiles, recommendations, crisis flags), so each file is
    readable by its owner only, as the audit store is. In CSV and TSV a text cell a spreadsheet
    would run as a formula (:func:`spreadsheet_safe`) is written behind an apostrophe.
    """

    def writer(frame: pd.DataFrame, path: Path):
        kind = _kind(path)
        if kind == "csv":
            frame = spreadsheet_safe(frame)

        def write(temporary: Path) -> None:
            if kind == "csv" and Path(path).name.lower().endswith((".csv", ".tsv")):
                frame.to_csv(temporary, index=False, sep=_separator(path))
            elif kind == "csv":  # separated and compressed as read_cohort reads it back
                with _open_by_suffix(temporary, "wb") as handle:
                    frame.to_csv(handle, index=False, sep=_separator(path))
            else:
                _plain_columns(frame).to_parquet(temporary, index=False)

        return write

    return write_together(
        {Path(path): writer(frame, Path(path)) for path, frame in frames.items()},
        stale=stale,
        private=True,
    )


# What a spreadsheet (Excel, LibreOffice, Google Sheets) reads as the start of a formula in a
# cell it opens from CSV, tab and carriage return included (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each text cell that starts as a formula written behind an apostrophe.

    A person id (or any text column) such as ``=HYPERLINK("http://...",A1)`` is data here, but a
    spreadsheet opening the CSV would run it: send a row's cells to a web address, or start a
    program. The apostrophe makes the spreadsheet show the text as it is, without running it;
    a program reading the file back reads the apostrophe too. Numbers are left alone (``-1.3``
    in a numeric column is a number, not a formula).

    >>> spreadsheet_safe(pd.DataFrame({"person_id": ["=1+1", "p-1"], "ee": [-3, 4]}))
      person_id  ee
    0     '=1+1  -3
    1       p-1   4
    """
    texts = [
        c
        for c in frame.columns
        if frame[c].dtype == object
        or isinstance(frame[c].dtype, (pd.CategoricalDtype, pd.StringDtype))
    ]

    def safe(value):
        formula = isinstance(value, str) and value.startswith(FORMULA_STARTS)
        return "'" + value if formula else value

    changed = {}
    for column in texts:
        values = frame[column].astype(object)
        if values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_STARTS)).any():
            changed[column] = values.map(safe)
    return frame.assign(**changed) if changed else frame


def _plain_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its pandas ``category`` columns as plain values (text stays text).

    Parquet keeps a pandas dtype in its metadata, so a category column would come back from
    ``pd.read_parquet`` as ``category``, which MLflow's schema enforcement refuses for the
    registered model's string columns ("Can not safely convert category"): the data contract
    says text, and every reader here (validation, typed_cohort, Spark) reads text. pyarrow still
    stores the repeated values dictionary-encoded, so the file is no bigger.
    """
    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    # infer_objects: string categories become strings, numeric ones numbers; missing stays missing.
    return frame.assign(**{c: frame[c].astype(object).infer_objects() for c in categorical})


def check_table_output(path, *, option: str = "--out", folder: bool = False) -> Path:
    """Raise :class:`InputError` now, naming ``option``, if a table cannot be written at ``path``
    (a folder, a folder that cannot be written or created, an unknown suffix); before the work.

    With ``folder`` the table is a folder of part files (Spark's Parquet output): ``path`` must
    not be a file, and its suffix is the caller's to check.
    """
    path = check_writable(path, option=option, folder=folder)
    if folder:
        return path
    try:
        _kind(path)
    except InputError as error:
        raise InputError(f"{option} {error}") from None
    return path


def typed_cohort(
    frame: pd.DataFrame, *, arms=None, control: str = "none", extra_features=()
) -> pd.DataFrame:
    """Give a *validated* table its contract types.

    Categoricals get the contract's fixed categories, whole-number columns ``int64`` (or
    ``Int64`` if a column may be missing), measurements ``float64``; ``intervention`` gets
    the catalog's arms (control first) as categories. Named ``extra_features`` that read as
    numbers become numbers (``int64`` when every value is whole, else ``float64``), so a CSV
    (read as text) gives the same table as a Parquet file of the same data. Other columns
    outside the contract are left as they are.
    """
    typed = frame.copy()
    if "person_id" in typed.columns:
        typed["person_id"] = typed["person_id"].astype("string").astype(str)
    for name, categories in CATEGORIES.items():
        if name in typed.columns:
            typed[name] = pd.Categorical(typed[name].astype("string"), categories=categories)
    for name in typed.columns:
        if name in INTEGER_COLUMNS:
            numbers = pd.to_numeric(typed[name], errors="raise")
            typed[name] = (
                numbers.astype("int64") if not numbers.isna().any() else numbers.astype("Int64")
            )
        elif name in FLOAT_COLUMNS or name == PROPENSITY_COLUMN or name.startswith(ORACLE_PREFIX):
            typed[name] = pd.to_numeric(typed[name], errors="raise").astype("float64")
    for name in dict.fromkeys(extra_features):
        if name in typed.columns and name not in CATEGORIES and _text_numbers(typed[name]):
            typed[name] = _numbers(typed[name])
    if TREATMENT_COLUMN in typed.columns:
        values = typed[TREATMENT_COLUMN].astype("string")
        if arms is None:
            seen = sorted(set(values.dropna()) - {control})
            arms = (control, *seen)
        # Arms outside the catalog only reach here unvalidated (training=False); keep them
        # rather than turn them silently into missing values.
        others = sorted(set(values.dropna()) - set(arms) - {control})
        categories = tuple(dict.fromkeys((control, *arms, *others)))
        typed[TREATMENT_COLUMN] = pd.Categorical(values, categories=categories)
    return typed


def _text_numbers(column: pd.Series) -> bool:
    """Whether a column holds numbers written as text (a CSV's, read as strings)."""
    text = pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)
    return text and not isinstance(column.dtype, pd.CategoricalDtype) and extra_is_number(column)


def _numbers(column: pd.Series) -> pd.Series:
    """Text numbers typed as ``pd.read_csv`` would: ``int64`` when every one is written as a
    whole number (``4``, not ``4.0``), else ``float64``."""
    text = column.astype("string").str.strip()
    whole = bool(text.str.fullmatch(r"[+-]?\d+").all())
    return pd.to_numeric(text, errors="raise").astype("int64" if whole else "float64")


def load_cohort(
    path, *, training: bool = False, catalog=None, min_arm_rows: int = 30
) -> pd.DataFrame:
    """Read, validate and type a cohort file; raise on any problem.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet file.
    training : bool
        Require the training columns.
    catalog : Catalog, optional
        Restricts ``intervention`` to the catalog's arms and names the control arm.
    min_arm_rows : int
        Fewest rows any arm present may have.

    Raises
    ------
    InputError
        Carrying every problem found (``error.problems``).
    """
    frame = read_cohort(path)
    arms = None if catalog is None else catalog.arm_ids
    control = "none" if catalog is None else catalog.control
    report = validate_cohort(
        frame, training=training, arms=arms, control=control, min_arm_rows=min_arm_rows
    )
    if not report.ok:
        raise InputError(f"{path}: {report.format()}", problems=report.errors)
    return typed_cohort(frame, arms=arms, control=control)
