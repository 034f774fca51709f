"""The scored table out: a finished folder moved into place, and a destination that is not
an earlier scored table refused unless the caller asks to replace it.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
from pathlib import Path

from recommender.cohort import check_table_output
from recommender.errors import InputError


def _publish(staging: Path, out_path: Path, *, overwrite: bool = False) -> None:
    """Move the finished folder into place; an existing table is replaced only afterwards.

    The table names people (raw ids, crisis flags, recommendations), so it is made readable by
    its owner only first, as ``score``'s and ``allocate``'s tables are: Spark writes by the
    umask. (While Spark writes it, the hidden staging folder is as the umask makes it.)
    """
    _owner_only(staging)
    if not out_path.exists() and not out_path.is_symlink():
        os.rename(staging, out_path)
        return
    # Checked again: something may have been put there while the job ran.
    _check_destination(out_path, None, overwrite=overwrite)
    retired = out_path.parent / f".{out_path.name}.replaced-{uuid.uuid4().hex[:12]}"
    os.rename(out_path, retired)
    try:
        os.rename(staging, out_path)
    except BaseException:
        os.rename(retired, out_path)
        raise
    if retired.is_dir() and not retired.is_symlink():
        shutil.rmtree(retired, ignore_errors=True)
    else:
        retired.unlink(missing_ok=True)


def _owner_only(folder: Path) -> None:
    """``folder`` and everything in it readable by its owner only (folders 0700, files 0600);
    the folder itself first, which closes it to others at once."""
    os.chmod(folder, 0o700)
    for parent, folders, files in os.walk(folder):
        for name in folders:
            os.chmod(os.path.join(parent, name), 0o700)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o600)


# Spark's own output files: what a folder written by an earlier run may hold.
_SPARK_OUTPUT_PATTERNS = ("part-*.parquet", "_SUCCESS", "*.crc")


def _is_spark_output(folder: Path) -> bool:
    """True for a real folder holding only Spark output files and hidden files (or nothing)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    for entry in folder.iterdir():
        if entry.is_symlink() or not entry.is_file():
            return False
        name = entry.name
        ours = any(fnmatch.fnmatch(name, pattern) for pattern in _SPARK_OUTPUT_PATTERNS)
        if not (ours or name.startswith(".")):
            return False
    return True


def _check_destination(out_path: Path, data_path, *, overwrite: bool) -> None:
    """Refuse to replace anything at ``out_path`` but an earlier scored table, unless told to.

    The destination is replaced as a whole, so a mistyped ``--out`` naming a user's folder
    would otherwise delete it.
    """
    if data_path is not None:
        resolved = out_path.resolve()
        data = Path(data_path).resolve()
        if data == resolved or resolved in data.parents:
            raise InputError(
                f"--out {out_path}: it holds the cohort being scored ({data_path}); "
                "choose another destination"
            )
        if data in resolved.parents:
            # A Parquet folder is read with everything below it (pandas, pyarrow): the scored
            # table would become part of the cohort for the next reader.
            raise InputError(
                f"--out {out_path}: it is inside the cohort folder {data_path}, whose next "
                "reader would take the scored table for cohort rows; choose a path outside it"
            )
    if not out_path.exists() and not out_path.is_symlink():
        check_table_output(out_path, folder=True)
        return
    if overwrite or _is_spark_output(out_path):
        return
    kind = "folder" if out_path.is_dir() and not out_path.is_symlink() else "file"
    raise InputError(
        f"--out {out_path}: an existing {kind} that is not an earlier Spark output; "
        "accepted: a new path, or a folder holding only part-*.parquet, _SUCCESS, *.crc "
        "and hidden files (pass --overwrite to replace it anyway)"
    )
