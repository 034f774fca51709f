"""``recommender backup``: a consistent copy of the models folder, the audit store and the
configs, taken while the service runs; ``--restore`` puts one back."""

from __future__ import annotations

HELP = (
    "back up the models folder (MLflow store, artifacts, cards, salt), the SQLite audit store "
    "and the configs, while the service runs; or restore such a backup"
)

# The models folder: copies the folder, or restores into it.
MODELS_FOLDER = "writes"
SERVE_CONFIG_OPTION = "config"  # its --config is the service's settings


def configure(parser) -> None:
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--to",
        metavar="DIR",
        help="a new or empty folder to write the backup and its manifest.json into",
    )
    given.add_argument(
        "--restore",
        metavar="DIR",
        help="a folder `backup --to` wrote: put it back where the settings name (stop the "
        "service first; what is replaced is moved aside, named *.before-restore-<time>). "
        "Either form first finishes, or undoes, a restore that was killed midway",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings naming the models folder and audit store "
        "(default: configs/serve.yaml)",
    )


def run(args) -> int:
    import sys
    from pathlib import Path

    from recommender._backup import back_up, restore
    from recommender._restore_swap import finish_interrupted_restore, restored_left
    from recommender.paths import config_dir
    from recommender.registry import tracking_uri
    from recommender.service import load_serve_config

    config = load_serve_config(args.config)
    # A restore killed midway was finished or undone before run (recommender.cli, as for
    # every command opening the folder); a backup also removes the copies that a restore from
    # before the journal left anywhere in the folder, said even when what follows is refused.
    for line in finish_interrupted_restore(config.models_dir):
        print(f"recovered: {line}", file=sys.stderr)
    if args.restore is not None:
        report = restore(Path(args.restore), config, tracking_uri=tracking_uri())
        try:
            _say_restored(args.restore, config.models_dir, report)
        except KeyboardInterrupt as interrupt:  # what it says is done: not "run it again"
            models = Path(config.models_dir).resolve()
            interrupt.left = restored_left(models, Path(args.restore), report.stamp)
            raise
        return 0
    report = back_up(config, Path(args.to), tracking_uri=tracking_uri(), configs=config_dir())
    manifest = report.manifest
    size = sum(f["bytes"] for f in manifest["files"])
    audit = manifest["audit_store"]
    print(
        f"backed up {len(manifest['files'])} files ({size} bytes) into {args.to}: champion "
        f"version {manifest['registry']['champion'] or 'none'}, audit store at schema revision "
        f"{audit.get('schema_revision') or 'none'}, {(audit.get('erasures') or {}).get('count', 0)}"
        " erasure(s) recorded; see manifest.json"
    )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _say_restored(backup, models_dir, report) -> None:
    import sys

    print(f"restored {backup} into {models_dir}")
    # The databases one by one (the replaced audit store is the one an operator looks
    # for); the artifact files, often hundreds, in one line.
    for path in report.databases_aside:
        print(f"moved aside: {path}")
    others = [path for path in report.moved_aside if path not in report.databases_aside]
    if others:
        print(
            f"moved aside: {len(others)} other replaced file(s) under {models_dir}, "
            f"each renamed <name>.before-restore-{report.stamp} in its folder"
        )
    for note in report.notes:
        print(f"warning: {note}", file=sys.stderr)
