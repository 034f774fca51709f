"""The scored table says of every row what the service's answer says of that person: the same
recommended arm, ranking_meaningful and benefit over usual care established or not, for the
same offered arms, interval level and overlap threshold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from test_model_fakes import LinearUplift, features, profiles

from recommender.catalog import load_catalog
from recommender.model import RecommendationModel
from recommender.policy import ExplorationRule
from recommender.service import AuditLog, RecommendationEngine, load_serve_config

NOT_ESTABLISHED = "a benefit over usual care is not established"

# Effects (EE points) chosen to sit on the ranking's edges: balint_group and coaching within
# rounding of each other (-1.6044 and -1.6040 both show as -1.604; the catalog lists coaching
# first), peer_group within rounding of no change, resilience_training's upper bound within
# rounding of 0 (-1.0004 + 1 = -0.0004, shown as -0.0: not below 0), and mindfulness
# sweeping across all of them with baseline exhaustion.
INTERCEPTS = {
    "balint_group": -1.6044,
    "coaching": -1.6040,
    "mindfulness": -1.0,
    "peer_group": -0.0004,
    "resilience_training": -1.0004,
}
SLOPES = {
    "balint_group": 0.0,
    "coaching": 0.0,
    "mindfulness": -1.3,
    "peer_group": 0.0,
    "resilience_training": 0.0,
}


def edge_model(*, width: float = 1.0) -> RecommendationModel:
    X = features(profiles())
    learners = {
        o: LinearUplift(intercepts=INTERCEPTS, slopes=SLOPES, width=width).fit(X, None, None)
        for o in ("ee", "dp", "pa")
    }
    return RecommendationModel(
        outcome_models=learners, features=X, catalog_version="test-1", catalog=load_catalog()
    )


def greedy_engine(model, *, max_overlap: float = 0.5, alpha: float = 0.1):
    config = load_serve_config()
    config = dataclasses.replace(
        config,
        alpha=alpha,
        max_overlap=max_overlap,
        exploration=ExplorationRule(policy="greedy"),
    )
    return RecommendationEngine(
        model, "1", catalog=load_catalog(), config=config, audit=AuditLog("sqlite://", salt="s")
    )


def answers_for(engine, rows: pd.DataFrame, offered=None) -> list[dict]:
    bodies = []
    for record in rows.to_dict("records"):
        if offered is not None:
            record["offered"] = list(offered)
        bodies.append(engine.check_row(record))
    return engine.recommend(bodies, caller_role="program", compact=True)


def what_answers_say(answers) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recommended": [a["recommended"] for a in answers],
            "ranking_meaningful": [a["ranking_meaningful"] for a in answers],
            "benefit_established": [
                a["recommended"] != "none" and NOT_ESTABLISHED not in a["ranking_note"]
                for a in answers
            ],
        }
    )


@pytest.mark.parametrize(
    "offered",
    [None, ["balint_group", "coaching", "peer_group"], ["peer_group"], ["resilience_training"]],
)
def test_the_scored_table_says_what_the_service_answers(offered):
    model = edge_model()
    rows = profiles(400, seed=3)
    table = model.score(rows, offered=offered)
    said = what_answers_say(answers_for(greedy_engine(model), rows, offered))
    for column in ("recommended", "ranking_meaningful", "benefit_established"):
        # a missing judgement in the table is the answer's null (usual care alone ranked)
        scored = [None if pd.isna(v) else v for v in table[column].tolist()]
        differ = np.flatnonzero([a != b for a, b in zip(scored, said[column].tolist())])
        assert differ.size == 0, (column, table.iloc[differ[:3]].T, said.iloc[differ[:3]])
    # The edges were reached: every judgement takes both values, and near ties were decided.
    if offered is None:
        assert table["ranking_meaningful"].nunique() == 2
        assert table["benefit_established"].nunique() == 2
        assert {"coaching", "mindfulness"} <= set(table["recommended"])
        assert "balint_group" not in set(table["recommended"])  # a tie: catalog order
    if offered == ["peer_group"]:  # -0.0004 shows as no change: usual care wins the tie
        assert set(table["recommended"]) == {"none"}
    if offered == ["resilience_training"]:  # its upper bound -0.0004 shows as no change
        assert set(table["recommended"]) == {"resilience_training"}
        assert not table["benefit_established"].any()


def test_the_service_threshold_and_interval_level_are_honoured():
    model = edge_model(width=0.7)
    rows = profiles(300, seed=5)
    for max_overlap, alpha in ((0.2, 0.1), (0.9, 0.05)):
        table = model.score(rows, max_overlap=max_overlap, alpha=alpha)
        said = what_answers_say(
            answers_for(greedy_engine(model, max_overlap=max_overlap, alpha=alpha), rows)
        )
        meaningful = [None if pd.isna(v) else v for v in table["ranking_meaningful"].tolist()]
        assert meaningful == said["ranking_meaningful"].tolist()
        assert table["benefit_established"].tolist() == said["benefit_established"].tolist()
    loose = model.score(rows, max_overlap=1.0)["ranking_meaningful"]
    strict = model.score(rows, max_overlap=0.0)["ranking_meaningful"]
    assert loose.all() and not strict.all()


def test_the_judgements_are_plain_booleans_beside_the_recommendation():
    table = edge_model().score(profiles(20))
    assert list(table.columns[:4]) == [
        "person_id",
        "recommended",
        "ranking_meaningful",
        "benefit_established",
    ]
    # nullable: missing where usual care alone is ranked (no order was made), as the answer's null
    assert str(table["ranking_meaningful"].dtype) == "boolean"
    assert table["benefit_established"].dtype == bool
    # Usual care recommended: there is no benefit over usual care to establish.
    nothing = edge_model().score(profiles(20), offered=["peer_group"])
    assert not nothing["benefit_established"].any()
