"""``recommender train``: fit, evaluate, gate, register and document a model version."""

from __future__ import annotations

import contextlib
import sys
import time

HELP = "train the uplift models, evaluate them, register a version and write its model card"


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
        type=int,
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
        help="train only if the champion's run had other settings, data, code, package "
        "versions, configuration files or training key; otherwise say so and keep it (make "
        "demo run again)",
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
    from pipelines.train import champion_trained_alike, run_training
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
            alike = champion_trained_alike(
                args.config, data=args.data, seed=args.seed, overrides=overrides or None
            )
            if alike is not None:
                version, run_id = alike
                print(
                    f"not trained: champion version {version} (run {run_id}) was trained with "
                    "these settings on this data, code, configuration and training key, so it "
                    "would be trained again as it is; it stays the champion (without "
                    "--if-changed a new version is trained and registered all the same)"
                )
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
        left = f"version {version} was registered before it" if version else _STOPPED
        print(f"error: training stopped; {left}", file=sys.stderr)
        raise
    except Exception as error:  # noqa: BLE001 - report, then exit 1 as the CLI contract says
        import traceback

        traceback.print_exc()
        version = getattr(error, "registered_version", None)
        if version is not None:
            print(
                f"error: version {version} was registered; the run's bookkeeping failed "
                f"after that: {type(error).__name__}: {error}",
                file=sys.stderr,
            )
        else:
            print(
                f"error: training failed ({type(error).__name__}: {error}); {_UNDONE}",
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
    return 0


_UNCHANGED = "nothing was registered and the champion is unchanged"
_UNDONE = f"the MLflow run is marked FAILED, {_UNCHANGED}"
_STOPPED = f"the MLflow run is marked KILLED, {_UNCHANGED}"


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
