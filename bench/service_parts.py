"""``python -m bench.service --parts``: where a batch's time goes, each step of the engine
timed on its own in process."""

from __future__ import annotations

import os
from pathlib import Path

from bench._report import median
from bench.service_clients import _latencies
from bench.service_contenders import BATCH_ROWS, _engine, _profile, as_served


def parts(home: Path, *, rows: int = BATCH_ROWS, repeats: int = 5) -> str:
    """Where a batch's time goes: each step of the engine timed on its own (medians, ms)."""
    import numpy as np
    from pydantic_core import to_json

    from recommender.registry import load_champion

    os.environ["RECOMMENDER_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    engine = _engine(None, champion=load_champion())
    model = engine.model
    bodies = [_profile(i) for i in range(rows)]
    valid = engine.check_rows(bodies)[0]
    encoded = model.encode(valid)
    prediction = model.predict(encoded, alpha=engine.config.alpha)
    order = np.argsort(prediction.effect, axis=1)
    arms = list(model.treatment_arms)
    needs: dict = {}
    for k in range(rows):  # the two best arms of each row, as an answer explains them
        for j in order[k, :2]:
            needs.setdefault(arms[j], []).append(k)
    answers = engine.recommend(valid, caller_role="program", compact=True)
    as_served()  # the service's heap once its model is loaded: what ships is what is timed
    # Every row's ranking of every modelled arm, for the exploration step on its own.
    from recommender.policy import assign_many, rank_arms

    rankings = [
        rank_arms(
            {
                arm: (prediction.effect[k, j], prediction.lower[k, j], prediction.upper[k, j], 0, 0)
                for j, arm in enumerate(prediction.arms)
            },
            control=engine.control,
        )
        for k in range(rows)
    ]
    hashes = [engine.audit.person_hash(body["person_id"]) for body in bodies]
    steps = {
        "validate the rows": lambda: engine.check_rows(bodies),
        "encode them": lambda: model.encode(valid),
        # The compiled form keeps the last matrix's binning for the explanation that follows;
        # each timed prediction bins afresh, as an answer's does.
        "every arm's effect and interval, all outcomes (compiled forest)": lambda: (
            getattr(model.compiled, "__dict__", {}).pop("_last_bins", None),
            model.predict(encoded, alpha=engine.config.alpha),
        ),
        "TreeSHAP of the two best arms (the rows binned by the prediction)": lambda: model.explain(
            encoded, needs
        ),
        "the exploration's probabilities and draws (assign_many, every modelled arm ranked)": (
            lambda: assign_many(
                rankings,
                hashes,
                engine.config.exploration,
                control=engine.control,
                explore=[True] * rows,
            )
        ),
        "the whole answer (engine.recommend, audit in memory)": lambda: engine.recommend(
            valid, caller_role="program", compact=True
        ),
        "JSON of the answers (pydantic's encoder, as the service's)": lambda: to_json(answers),
    }
    lines = [f"| step ({rows:,} rows, audit store in memory) | ms |", "|---|---|"]
    for name, step in steps.items():
        lines.append(
            f"| {name} | {median(_latencies(lambda _, step=step: step(), repeats)) * 1e3:.0f} |"
        )
    return "\n".join(lines)
