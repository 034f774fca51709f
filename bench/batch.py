"""Batch scoring throughput: Spark ``local[2]`` (each partition scored by ``recommender score``'s own
function, ``pipelines.score.scored_table``) beside scoring the same cohort in process with pandas,
on the same registered model and the same Parquet file.

Three figures, all end to end where a user would see them: ``score_with_spark`` (read,
validate per partition, score, write Parquet, atomically), ``pipelines.score.score_file``
(the in-process ``recommender score``: read, validate, score in 50k-row chunks, write), and
the floor: ``RecommendationModel.score`` on the frame already in memory. Spark's first run
pays for starting its Python workers (imports, model load) and is reported on its own.

Run ``python -m bench.batch``; ``--n``, ``--repeats``, ``--master`` and ``--model`` change the
size, repetitions, Spark master and model (default: a small model trained here by the
pipeline, in a temporary store).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run", "to_markdown", "main"]

# A small model (tests/test_batch_spark.py uses it too): the throughput compared is the
# scoring path's, not the learner's.
SMALL_TRAINING = {
    "seed": 3,
    "data": {"n": 2000, "seed": 3},
    "learner": {
        "learner": "t",
        "n_folds": 2,
        "params": {"outcome_candidates": [{"gbm": {"max_rounds": 40, "num_leaves": 7}}]},
    },
    "evaluation": {"n_folds": 2},
}


def _timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def run(
    n: int = 200_000,
    repeats: int = 3,
    master: str = "local[2]",
    model: str | None = None,
    log=print,
) -> dict:
    """Measure; returns the raw times (seconds) and what was measured."""
    import pandas as pd

    from pipelines.batch import score_with_spark, spark_session
    from pipelines.score import score_file
    from recommender.cohort import PROFILE_COLUMNS, write_cohort
    from recommender.registry import load_model
    from recommender.simulate import load_scenario, simulate_cohort

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        folder = Path(folder)
        trained_here = model is None
        if model is None:
            os.environ["RECOMMENDER_HOME"] = str(folder / "home")
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            from pipelines.train import run_training

            log("training a small model with the pipeline ...")
            trained = run_training(overrides=SMALL_TRAINING, reason="bench.batch")
            model = f"models:/burnout-recommender/{trained.version}"
        recommendation_model = load_model(model)
        cohort = simulate_cohort(load_scenario("default"), n, seed=11)[list(PROFILE_COLUMNS)]
        data = folder / "cohort.parquet"
        write_cohort(cohort, data)  # text columns as text, as the project writes its tables
        profiles = pd.read_parquet(data)

        log("starting Spark ...")
        startup, spark = _timed(lambda: spark_session(master))
        log(f"Spark {master}: first run (workers start) ...")
        cold, summary = _timed(lambda: score_with_spark(model, data, folder / "spark.parquet"))
        spark_times = []
        for i in range(repeats):
            log(f"Spark {master}: run {i + 1}/{repeats} ...")
            spark_times.append(
                _timed(lambda: score_with_spark(model, data, folder / "spark.parquet"))[0]
            )
        file_times, frame_times = [], []
        for i in range(repeats):
            log(f"in process: run {i + 1}/{repeats} ...")
            file_times.append(_timed(lambda: score_file(model, data, folder / "pandas.parquet"))[0])
            frame_times.append(_timed(lambda: recommendation_model.score(profiles))[0])
        spark.stop()
    return {
        "n": n,
        "repeats": repeats,
        "master": master,
        "model": model,
        "trained": trained_here,
        "partitions": summary.partitions,
        "spark_startup": startup,
        "spark_cold": cold,
        "spark": spark_times,
        "file": file_times,
        "frame": frame_times,
        "arms": summary.arm_counts,
    }


def to_markdown(result: dict) -> str:
    from bench._report import machine_line, markdown_table, median

    n = result["n"]
    which = (
        "a small T-learner trained by the pipeline for the benchmark"
        if result["trained"]
        else f"`{result['model']}`"
    )
    option = "" if result["trained"] else f" --model {result['model']}"
    spark, in_file, frame = (median(result[k]) for k in ("spark", "file", "frame"))
    rows = [
        {
            "what": f"`score_with_spark` on {result['master']} ({result['partitions']} partitions): "
            "read, validate, score, write",
            "median s": spark,
            "rows per s": n / spark,
            "vs in process": spark / in_file,
        },
        {
            "what": "`score_file` in process (pandas, 50k-row chunks): read, validate, score, write",
            "median s": in_file,
            "rows per s": n / in_file,
            "vs in process": 1.0,
        },
        {
            "what": "floor: `RecommendationModel.score` on the frame in memory",
            "median s": frame,
            "rows per s": n / frame,
            "vs in process": frame / in_file,
        },
        {
            "what": "`score_with_spark`, first run (Python workers import and load the model)",
            "median s": result["spark_cold"],
            "rows per s": n / result["spark_cold"],
            "vs in process": result["spark_cold"] / in_file,
        },
        {
            "what": "Spark session start-up (JVM), once",
            "median s": result["spark_startup"],
            "rows per s": "",
            "vs in process": "",
        },
    ]
    return "\n".join(
        [
            "## Batch scoring: Spark vs in process",
            "",
            f"Command: `python -m bench.batch --n {n} --repeats {result['repeats']} "
            f"--master '{result['master']}'{option}`  ",
            f"Machine: {machine_line()}",
            "",
            f"{n:,} simulated profiles in one Parquet file, scored with the same registered model "
            f"({which}) by the same function (`pipelines.score.scored_table`, on each Spark "
            "partition through `mapInPandas`, the model broadcast once). Medians of "
            f"{result['repeats']} runs after one warm-up run; `vs in process` is the time ratio to "
            "`score_file` (below 1 means faster). The machine is shared with other agents while this "
            "runs, so the absolute times are noisy; Spark's value is in spreading a cohort too large "
            "for one process over a cluster, not in beating pandas on two cores.",
            "",
            markdown_table(rows, ["what", "median s", "rows per s", "vs in process"]),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--model", default=None, help="model URI (default: train a small one in a temporary store)"
    )
    args = parser.parse_args(argv)
    from bench._report import write_section

    markdown = to_markdown(run(args.n, args.repeats, args.master, args.model))
    path = write_section("batch", markdown)
    print(markdown)
    print(f"\nwrote section 'batch' of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
