"""Output files: where one may be written is checked before the work, and it is written whole.

A command that spends minutes scoring or planning checks its output path first, so a path in a
folder that cannot be written fails at once, naming the option; the file itself goes to a
temporary sibling renamed into place, so a reader (or a later run) never finds half a file.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from recommender.errors import InputError

__all__ = ["check_writable", "write_atomically"]


def check_writable(path, *, option: str = "--out", folder: bool = False) -> Path:
    """Raise :class:`InputError` now if ``path`` cannot be written; returns it as a Path.

    Nothing is created: the nearest existing ancestor must be a folder this process can create
    files in (tried with a temporary file, since permission bits do not tell for root or a
    read-only mount), and ``path`` itself must not be a folder (a file when ``folder``).
    """
    path = Path(path)
    accepted = "a folder path" if folder else "a file path"
    if path.exists() and path.is_dir() != folder:
        found = "a file" if folder else "a folder"
        raise InputError(f"{option} {path}: is {found}; accepted: {accepted}")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(
            f"{option} {path}: {ancestor} is a file, not a folder; accepted: {accepted} "
            "whose folders are folders or can be created"
        )
    try:
        with tempfile.TemporaryFile(dir=ancestor):
            pass
    except OSError as error:
        raise InputError(
            f"{option} {path}: cannot write in {ancestor} ({error.strerror}); accepted: "
            f"{accepted} in a folder this user can write"
        ) from None
    return path


def write_atomically(path, write) -> Path:
    """Call ``write(temporary)`` on a sibling of ``path`` with the same name ending, then rename it
    over ``path``; on any failure (or Ctrl-C) the temporary goes and an earlier file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder (a rename within one file system) and same ending (the format follows it).
    temporary = path.parent / f".tmp-{secrets.token_hex(4)}-{path.name}"
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
