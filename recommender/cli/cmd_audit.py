"""``recommender audit export``: the service's audit log for auditors, as CSV or JSON lines."""

from __future__ import annotations

HELP = "export the service's audit log (every answered recommendation; hashed person ids)"


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
        choices=("recommendations", "outcomes"),
        help="recommendations (default): every answer; outcomes: every outcome row, "
        "corrections and the rows they replaced (who replaced each, when)",
    )
    export.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings naming the audit store (default: configs/serve.yaml)",
    )


def run(args) -> int:
    import json
    import sys
    from datetime import datetime
    from pathlib import Path

    from recommender._files import check_writable, write_atomically
    from recommender.errors import InputError
    from recommender.registry import promotion_log_path
    from recommender.service import (
        AuditLog,
        audit_csv,
        load_serve_config,
        outcome_history,
        outcome_history_csv,
        parse_since,
        sqlite_file,
    )

    config = load_serve_config(args.config)
    url = config.audit_store
    database = sqlite_file(url) if url.startswith("sqlite") else None
    if args.out:
        _check_out(Path(args.out), kept=[database, promotion_log_path()])
        check_writable(args.out)
    since = None if args.since is None else parse_since(args.since)
    if url.startswith("sqlite") and (database is None or not database.is_file()):
        raise InputError(
            f"no audit log at {database}: the service has not answered any "
            "request with these settings (see audit.url in serve.yaml)"
        )
    audit = AuditLog(url, salt=None)
    if args.table == "outcomes":
        rows, as_csv = outcome_history(audit, since=since), outcome_history_csv
    else:
        rows, as_csv = audit.export(since=since), audit_csv
    audit.close()
    if args.out and Path(args.out).suffix.lower() in (".jsonl", ".json"):
        text = "".join(
            json.dumps({n: v.isoformat() if isinstance(v, datetime) else v for n, v in row.items()})
            + "\n"
            for row in rows
        )
    else:
        text = as_csv(rows)
    if args.out:
        # A temporary sibling renamed into place: an export is never left half written.
        write_atomically(args.out, lambda temporary: temporary.write_text(text, encoding="utf-8"))
        kind = "outcome" if args.table == "outcomes" else "audit"
        print(f"wrote {len(rows)} {kind} row(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


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
