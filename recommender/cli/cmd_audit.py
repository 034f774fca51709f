"""``recommender audit export``: the service's audit log for auditors, as CSV or JSON lines;
``recommender audit erase``: a person's rows out of it (withdrawn consent, a clinician who left).
"""

from __future__ import annotations

HELP = (
    "export the service's audit log (every answered recommendation; hashed person ids), or "
    "erase people from it"
)

INTERRUPTED = (
    "an export's file is written whole or not at all; an erasure is written in parts, each "
    "whole, and stopped between parts its record in `audit export --table erasures` has no "
    "completed_at: run it again to finish it (it says the ids erased already have no row)"
)


def _models_folder(args) -> str:
    """An erasure writes the audit store; an export, or an erasure's dry run, reads it."""
    return "writes" if args.action == "erase" and not args.dry_run else "reads"


MODELS_FOLDER = _models_folder
SERVE_CONFIG_OPTION = "config"  # its --config is the service's settings


def configure(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write the audit rows as CSV or JSON lines",
        description="Write the audit rows, oldest first. Person ids appear only as salted hashes.",
    )
    export.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="file to write (.csv, or .jsonl for JSON lines); default: stdout",
    )
    export.add_argument(
        "--since",
        default=None,
        metavar="DATE",
        help="only rows logged at or after this ISO 8601 date or time; UTC "
        "unless it carries an offset (2026-12-03T09:00:00+05:00)",
    )
    export.add_argument(
        "--table",
        default="recommendations",
        choices=("recommendations", "outcomes", "erasures"),
        help="recommendations (default): every answer; outcomes: every outcome row, "
        "corrections and the rows they replaced (who replaced each, when); erasures: each "
        "`audit erase`, when and how many rows (never whose)",
    )
    export.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings naming the audit store (default: configs/serve.yaml)",
    )
    erase = actions.add_parser(
        "erase",
        help="erase people: delete their assignments and outcomes, redact their answers",
        description="Erase people from the audit store, in parts of whole people (erasure."
        "part_rows rows each, one transaction a part): their assignments "
        "(profiles) and outcomes (follow-up scores) are deleted, crisis answers included; their "
        "answers are kept, so the log still counts them, with the person hash, request id and "
        "effects replaced. The erasure is recorded (when, how many rows; never whose: "
        "`audit export --table erasures`). Ids are hashed with the service's salt; an id the "
        "store does not hold is reported, and the others are erased.",
    )
    given = erase.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--person-id",
        action="append",
        metavar="ID",
        help="a person_id as the program sent it to the service (repeat for several); "
        "other users see a command line (ps): for real people prefer --ids-file",
    )
    given.add_argument(
        "--ids-file",
        metavar="FILE",
        help="UTF-8 text, one person_id a line (blank lines skipped; a first line "
        "'person_id' is a header)",
    )
    erase.add_argument(
        "--dry-run",
        action="store_true",
        help="say what would be erased and change nothing",
    )
    erase.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings naming the audit store and salt (default: configs/serve.yaml)",
    )


def run(args) -> int:
    return _erase(args) if args.action == "erase" else _export(args)


def _store(config) -> str:
    """The audit store's URL, or :class:`InputError` when its SQLite file does not exist
    (opening it would only leave an empty store behind)."""
    from recommender.errors import InputError
    from recommender.service import sqlite_file

    url = config.audit_store
    database = sqlite_file(url) if url.startswith("sqlite") else None
    if url.startswith("sqlite") and (database is None or not database.is_file()):
        raise InputError(
            f"no audit log at {database}: the service has not answered any "
            "request with these settings (see audit.url in serve.yaml)"
        )
    return url


def _export(args) -> int:
    import json
    import os
    import sys
    from datetime import datetime
    from pathlib import Path

    from recommender._files import check_writable, write_atomically
    from recommender.registry import promotion_log_path
    from recommender.service import (
        ERASURE_COLUMNS,
        OUTCOME_HISTORY_COLUMNS,
        AuditLog,
        audit_csv_chunks,
        erasure_history,
        load_serve_config,
        outcome_history_rows,
        parse_since,
        rows_csv_chunks,
        sqlite_file,
    )

    config = load_serve_config(args.config)
    url = config.audit_store
    database = sqlite_file(url) if url.startswith("sqlite") else None
    if args.out:
        _check_out(Path(args.out), kept=[database, promotion_log_path()])
        check_writable(args.out)
    since = None if args.since is None else parse_since(args.since)
    audit = AuditLog(_store(config), salt=None)
    written = 0

    def counted(rows):
        nonlocal written
        for row in rows:
            written += 1
            yield row

    if args.table == "outcomes":
        rows = counted(outcome_history_rows(audit, since=since))
        as_csv = lambda rows: rows_csv_chunks(rows, OUTCOME_HISTORY_COLUMNS)  # noqa: E731
    elif args.table == "erasures":  # a few rows a year
        rows = counted(erasure_history(audit, since=since))
        as_csv = lambda rows: rows_csv_chunks(rows, ERASURE_COLUMNS)  # noqa: E731
    else:
        rows, as_csv = counted(audit.export_rows(since=since)), audit_csv_chunks
    if args.out and Path(args.out).suffix.lower() in (".jsonl", ".json"):
        pieces = (
            json.dumps({n: v.isoformat() if isinstance(v, datetime) else v for n, v in row.items()})
            + "\n"
            for row in rows
        )
    else:
        pieces = as_csv(rows)
    # Written as read from the store, a chunk of rows at a time: a store of years holds
    # millions of rows, which an export held whole in memory (several GB) before writing any.
    try:
        if args.out:
            # A temporary sibling renamed into place: an export is never left half written.
            def write(temporary):
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
                with os.fdopen(os.open(temporary, flags, 0o666), "w", encoding="utf-8") as out:
                    for piece in pieces:
                        out.write(piece)

            write_atomically(args.out, write, private=True)  # hashes and scores of people
        else:
            sys.stdout.writelines(pieces)
    finally:
        pieces.close()
        audit.close()
    if args.out:
        kind = {"outcomes": "outcome", "erasures": "erasure"}.get(args.table, "audit")
        print(f"wrote {written} {kind} row(s) to {args.out}", file=sys.stderr)
    return 0


def _erase(args) -> int:
    from recommender.service import (
        AuditLog,
        erase_people,
        load_serve_config,
        resolve_salt,
    )

    config = load_serve_config(args.config)
    if args.ids_file is not None:
        ids, named = _read_ids(args.ids_file)
    else:
        ids = args.person_id
        named = [f"--person-id {i + 1} of {len(ids)}" for i in range(len(ids))]
    url = _store(config)
    # The service's salt, never a new one: a new salt would hash every id to no one's.
    salt = resolve_salt(config.audit_salt, config.models_dir, create=False)
    audit = AuditLog(url, salt=salt)
    try:
        report = erase_people(
            audit, ids, dry_run=args.dry_run, named=named, part_rows=config.erase_part_rows
        )
    finally:
        audit.close()
    for line in _said(report, named):
        print(line)
    return 0


def _said(report, named) -> list[str]:
    """The report in words: counts, and where each id no row holds was given (never the id)."""
    answers = f"{report.answers} answer(s) ({report.crisis_answers} crisis answer(s) among them)"
    deleted = f"{report.assignments} assignment(s) and {report.outcomes} outcome row(s)"
    if not report.found:
        return [
            f"nothing to erase: none of the {report.asked} person id(s) given has a row in "
            "the store (erased already, or never served with this store's salt); nothing "
            "was changed or recorded"
        ]
    if report.dry_run:
        lines = [
            f"dry run, nothing changed: {report.found} of {report.asked} person id(s) found; "
            f"erasing would redact {answers} and delete {deleted}"
        ]
    else:
        lines = [
            f"erased {report.found} of {report.asked} person id(s): redacted {answers}, "
            f"deleted {deleted}; recorded as erasure {report.erasure_id} (`recommender "
            f"audit export --table erasures`), written in {report.parts} part(s)"
        ]
    return lines + [f"not in the store: {named[p]}" for p in report.missing]


def _read_ids(path) -> tuple[list[str], list[str]]:
    """The ids of an ids file and where each was (``line 3 of ids.txt``)."""
    from pathlib import Path

    from recommender.cohort import not_utf8
    from recommender.errors import InputError

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"--ids-file {path}: cannot be read ({error.strerror}); accepted: a readable "
            "UTF-8 text file, one person_id a line"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"--ids-file {path}: {not_utf8(path) or 'not UTF-8 text'}; accepted: UTF-8 text, "
            "one person_id a line"
        ) from None
    ids, named = [], []
    # Lines end at \n (or \r\n) alone: an id is hashed as given, so nothing else is cut.
    for number, line in enumerate(text.removeprefix("\ufeff").split("\n"), 1):
        line = line.removesuffix("\r")
        if not line or (number == 1 and line == "person_id"):
            continue
        ids.append(line)
        named.append(f"line {number} of {path.name}")
    if not ids:
        raise InputError(
            f"--ids-file {path}: holds no person id; accepted: UTF-8 text, one person_id a line"
        )
    return ids, named


_SUFFIXES = (".csv", ".jsonl", ".json")


def _check_out(out, *, kept) -> None:
    """Refuse an ``--out`` that would be written in another format than its name says, or
    that is one of the program's records (replacing the audit store with its own CSV would
    lose every record in it)."""
    from recommender.errors import InputError

    if out.suffix.lower() not in _SUFFIXES:
        raise InputError(
            f"--out {out}: {out.suffix or 'no suffix'} is not an export format; accepted: "
            ".csv, or .jsonl (.json) for JSON lines"
        )
    for record in kept:
        if record is not None and out.resolve() == record.resolve():
            raise InputError(
                f"--out {out} is one of the program's records (the audit store, the "
                "promotion log), which the export would replace; accepted: a file of its "
                "own (e.g. models/work/audit.csv)"
            )
