"""``recommender outcomes import FILE``: follow-up scores into the service's store."""

from __future__ import annotations

HELP = "record follow-up scores (EE, DP, PA, arm taken) of people the service has served"

# The models folder: the audit store.
MODELS_FOLDER = "writes"
SERVE_CONFIG_OPTION = "config"  # its --config is the service's settings

INTERRUPTED = (
    "an import is stored whole or not at all: import the file again (rows stored already are "
    "skipped)"
)


def configure(parser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    load = actions.add_parser(
        "import",
        help="import an outcome file (CSV, or JSON: lines, an array or a POST /outcomes body)",
        description="Check every row, link each to the person's served recommendation through "
        "the salted person hash, and store them all or nothing. Columns: "
        "person_id, measured_at, arm_taken, ee_followup, dp_followup, "
        "pa_followup. Rows already stored are skipped, so importing the same file "
        "twice changes nothing.",
    )
    load.add_argument("file", metavar="FILE", help="outcome file (.csv, or .jsonl / .json)")
    load.add_argument(
        "--correct",
        action="store_true",
        help="each row corrects the outcome recorded for the recommendation it links to (a "
        "mistyped score): stored beside it, which is kept and marked replaced; rows identical "
        "to the outcome in force are skipped, a row whose recommendation has no outcome is "
        "refused",
    )
    load.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings naming the store and salt (default: configs/serve.yaml)",
    )


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from recommender.catalog import load_catalog
    from recommender.service import (
        AuditLog,
        OutcomeRefused,
        load_serve_config,
        read_outcome_file,
        record_outcomes,
        resolve_salt,
    )

    from recommender.errors import InputError

    config = load_serve_config(args.config)
    rows = read_outcome_file(args.file)
    store = config.models_dir / "audit.db"
    if not config.audit_url and not store.is_file():
        # outcomes link to answers the service logged: without its log none can, and opening
        # the store here would only leave an empty one behind
        raise InputError(
            f"no audit log at {store}: outcomes are linked to the recommendations the service "
            "answered, so import them where it serves (its models folder, or the audit_url "
            "of its serve.yaml: --config)"
        )
    url = config.audit_store
    audit = AuditLog(url, salt=resolve_salt(config.audit_salt, config.models_dir, create=False))
    try:
        report = record_outcomes(
            audit,
            rows,
            arms=load_catalog().arm_ids,
            source=f"import {Path(args.file).name}",
            duplicates="skip",
            correct=args.correct,
        )
    except OutcomeRefused as error:
        print(f"error: nothing was imported: {error}", file=sys.stderr)
        for problem in error.problems[:50]:
            print("  " + json.dumps(problem), file=sys.stderr)
        if len(error.problems) > 50:
            print(f"  ... and {len(error.problems) - 50} more", file=sys.stderr)
        name = Path(args.file).name
        if Path(name).suffix.lower() not in (".json", ".jsonl"):  # rows counted as over HTTP
            print(f"(outcomes[i] is line i + 2 of {name}, blank lines aside)", file=sys.stderr)
        return 2
    finally:
        audit.close()
    done = f"corrected {report.corrected}" if args.correct else f"recorded {report.recorded}"
    print(
        f"{done} outcome(s); {report.already_recorded} already recorded "
        f"(of {len(rows)} row(s) in {Path(args.file).name})"
    )
    return 0
