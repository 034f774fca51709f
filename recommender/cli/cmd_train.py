"""``recommender train``: fit, evaluate, gate, register and document a model version."""

from __future__ import annotations

from recommender.cli._numbers import whole_number
from recommender.cli._restore_first import serve_config_of_training

import contextlib
import sys
import time

HELP = "train the uplift models, evaluate them, register a version and write its model card"

# The models folder: registers a version, its card; --from-log reads the audit log.
MODELS_FOLDER = "writes"
# --serve-config, else the serve.yaml train.yaml names (log.serve_config), as run reads it
SERVE_CONFIG_OPTION = serve_config_of_training


def configure(parser) -> None:
    parser.add_argument(
        "--config", default=None, help="training config YAML (default: configs/train.yaml)"
    )
    parser.add_argument(
        "--data",
        default=None,
        metavar="FILE",
        help="cohort file (.csv/.parquet) with the training columns; without "
        "it the config's simulated cohort is used",
    )
    parser.add_argument(
        "--seed",
        type=whole_number(minimum=0),
        default=None,
        help="overrides the config's seed (split, learners, evaluation)",
    )
    parser.add_argument(
        "--reason", default=None, help="why this run was made; recorded in the promotion log"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-log",
        action="store_true",
        help="train from the service's log: served recommendations joined with "
        "their follow-up outcomes (source: log)",
    )
    source.add_argument(
        "--evidence-only",
        action="store_true",
        help="build the day-one model from the catalog's published evidence "
        "alone (source: evidence)",
    )
    parser.add_argument(
        "--serve-config",
        default=None,
        metavar="FILE",
        help="with --from-log: the service settings naming its store (default: configs/serve.yaml)",
    )
    parser.add_argument(
        "--if-changed",
        action="store_true",
        help="train only if no registered version was trained with these settings on this "
        "data (with --from-log: the same outcomes), code, package versions, configuration "
        "files and training key; otherwise say which and keep it (make demo run again, a "
        "scheduled retraining)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress display; print only the result line"
    )


class RichProgress:
    """One spinner line per stage, then a tick and its time; on stderr, so stdout stays clean."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)

    @contextlib.contextmanager
    def stage(self, name: str, description: str):
        start = time.perf_counter()
        with self.console.status(f"[bold]{name}[/]: {description}", spinner="dots"):
            try:
                yield
            except BaseException:
                self.console.print(
                    f"[red]✗[/] {name}: {description} "
                    f"(failed after {time.perf_counter() - start:.1f} s)"
                )
                raise
        self.console.print(
            f"[green]✓[/] {name}: {description} ({time.perf_counter() - start:.1f} s)"
        )

    def note(self, text: str) -> None:
        # Plain text: a note's "[unused_arm]" or a value in brackets is no style to apply.
        self.console.print(f"  {text}", highlight=False, markup=False)


def run(args) -> int:
    from pipelines.train import run_training, trained_alike
    from recommender._locations import shown_location
    from recommender.errors import InputError
    from recommender.registry import tracking_uri

    try:
        overrides = {}
        if args.from_log:
            overrides["source"] = "log"
        if args.evidence_only:
            overrides["source"] = "evidence"
        if args.serve_config:
            overrides["log"] = {"serve_config": args.serve_config}
        if args.if_changed:
            alike = trained_alike(
                args.config, data=args.data, seed=args.seed, overrides=overrides or None
            )
            if alike is not None:
                print(_not_trained(alike))
                return 0
        result = run_training(
            args.config,
            data=args.data,
            seed=args.seed,
            progress=None if args.quiet else RichProgress(),
            reason=args.reason,
            overrides=overrides or None,
        )
    except InputError:
        raise
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or a kill (see recommender.cli)
        version = getattr(interrupt, "registered_version", None)
        interrupt.left = (
            f"version {version} was registered before it" if version else _undone(interrupt)
        )
        raise
    except Exception as error:  # noqa: BLE001 - report, then exit 1 as the CLI contract says
        import traceback

        from recommender._files import no_space

        version = getattr(error, "registered_version", None)
        if version is None and no_space(error):  # not ours to debug: said in one line
            print(f"error: training failed: {_no_space(error)}; {_undone(error)}", file=sys.stderr)
            return 1
        traceback.print_exc()
        if version is not None:
            print(
                f"error: version {version} was registered; the run's bookkeeping failed "
                f"after that: {type(error).__name__}: {error}",
                file=sys.stderr,
            )
        else:
            print(
                f"error: training failed ({type(error).__name__}: {error}); {_undone(error)}",
                file=sys.stderr,
            )
        return 1
    aliases = ", ".join(result.aliases)
    print(
        f"registered burnout-recommender version {result.version} ({aliases}); run {result.run_id}"
    )
    if not args.quiet:
        # The gate's verdict and the evaluation's statement were said by the progress display,
        # each under its stage (and the gate again if it was taken again): not repeated here.
        print(f"model card: {result.card_folder / 'card.html'}")
        uri = tracking_uri()
        if uri.startswith("sqlite:"):
            print(f"compare runs: {_mlflow_command()} ui --backend-store-uri {uri} --port 5000")
        elif uri.startswith(("http://", "https://")):
            experiment = result.config["registry"]["experiment"]
            print(f"compare runs: {shown_location(uri).rstrip('/')} (experiment {experiment})")
    return 0


def _not_trained(alike) -> str:
    """The one line ``train --if-changed`` says when a version was trained alike."""
    data = "this data"
    if alike.outcomes_recorded_through:
        data = f"this log (outcomes recorded up to {alike.outcomes_recorded_through}, none since)"
    if alike.champion:
        kept = "it stays the champion"
    else:
        verdict = "passed" if alike.gate_passed else "did not pass"
        reason = " ".join(alike.gate_reason.split())
        kept = (
            f"its gate {verdict} against the champion of now ({reason}), as it would again; "
            "nothing is registered"
        )
    which = "champion version" if alike.champion else "version"
    return (
        f"not trained: {which} {alike.version} (run {alike.run_id}, trained "
        f"{alike.trained_at}) was trained with these settings on {data}, with this code, "
        f"configuration and training key, so it would be trained again as it is; {kept} "
        "(without --if-changed a new version is trained and registered all the same)"
    )


_UNCHANGED = "nothing was registered and the champion is unchanged"


def _undone(error: BaseException) -> str:
    """What a run that stopped before registering left: none (stopped before it started), its
    run ended FAILED (KILLED when stopped), or, when the store could not be reached to say so,
    a run still shown RUNNING; and a version the store would not let it delete again, left
    pending without aliases."""
    from recommender._files import no_space

    status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
    unchanged = _UNCHANGED
    pending = getattr(error, "pending_version", None)
    if pending is not None:
        unchanged = (
            f"version {pending} could not be deleted again (the store took no more writes) and "
            "stays, marked pending, with no alias: the champion is unchanged, and the next "
            "train, promote or rollback on this store deletes it"
        )
    why = getattr(error, "run_not_ended", None)
    if why is None and getattr(error, "run_ended", None) is None:
        # stopped while the cohort was read or split, before the run
        return f"no MLflow run was started, {unchanged}"
    if why is None:
        return f"the MLflow run is marked {status}, {unchanged}"
    if no_space(RuntimeError(why)):
        why = "no space left for that either"
    return (
        f"the MLflow run could not be marked {status} ({why}), so the store still shows it "
        f"RUNNING; {unchanged}"
    )


def _no_space(error: BaseException) -> str:
    """A full disk, said with where: the file that could not be written when the error names
    it, else the models folder (the MLflow store, its artifacts and the cards)."""
    from recommender.paths import models_dir

    where = None
    seen = error
    while seen is not None and where is None:
        where = getattr(seen, "filename2", None) or getattr(seen, "filename", None)
        seen = seen.__cause__ or seen.__context__
    place = f"{where}" if where else f"the models folder {models_dir()}"
    return (
        f"no space left on the device holding {place}; free space there (or set "
        "RECOMMENDER_HOME to a folder on a disk with room) and run again"
    )


def _mlflow_command() -> str:
    # The mlflow next to this interpreter (.venv/bin/mlflow), as the README writes it: a bare
    # `mlflow` may be another installation, or none.
    import os
    import sys
    from pathlib import Path

    mlflow = Path(sys.executable).parent / "mlflow"
    try:
        relative = os.path.relpath(mlflow)
    except ValueError:  # another drive (Windows)
        return str(mlflow)
    return str(mlflow) if relative.startswith("..") else relative
