"""The BentoML anchor of bench/service.py: BentoML serving the raw LightGBM calls of one answer.

``bentoml serve bench._bento_anchor:Anchor`` with ``BENCH_ANCHOR_MODELS`` naming a folder
written by :func:`write_anchor_models`: the demo model's compiled forest (every arm's effect
and fold effects of every outcome in one booster) and the primary outcome's merged booster of
each arm. ``/recommend`` takes the same JSON profile as the service, turns it into the float
row with a fixed lookup, and returns what LightGBM computes: the forest's raw scores and the
TreeSHAP contributions of the two arms with the lowest effect. No validation, ranking, audit
or explanation text: the floor a BentoML service with these trees cannot go below.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import bentoml
import numpy as np

MODELS_ENV = "BENCH_ANCHOR_MODELS"


def write_anchor_models(model, folder: Path) -> Path:
    """Write the served model's boosters and its feature lookup for the anchor to load."""
    folder.mkdir(parents=True, exist_ok=True)
    compiled = model.compiled
    forest, slots_to_outputs = compiled.lightgbm_forest()
    forest.save_model(str(folder / "forest.txt"))
    estimator = model.outcome_models[model.primary].estimator_
    arms = []
    for j in range(len(estimator.parts)):
        # a LightGBM stage's model holds its booster; a linear stage's has none
        boosters = [
            p.full_model for p in estimator._full_parts(j) if hasattr(p.full_model, "booster")
        ]
        if boosters:
            boosters[0].booster.save_model(
                str(folder / f"arm-{j}.txt"), num_iteration=boosters[0].rounds
            )
            arms.append(j)
    encoder = compiled.encoder
    lookups = {
        name: {str(level): code for code, level in enumerate(encoder.categories[j])}
        for j, name in enumerate(encoder.feature_names)
        if j in encoder.categories
    }
    (folder / "features.json").write_text(
        json.dumps(
            {
                "names": list(encoder.feature_names),
                "lookups": lookups,
                "arms": arms,
                "effect_columns": [
                    k
                    for k, (o, _, fold) in enumerate(compiled.outputs)
                    if o == model.primary and fold is None
                ],
                "slots_to_outputs": slots_to_outputs.tolist(),
            }
        )
    )
    return folder


@bentoml.service(name="bench_lightgbm_anchor", workers=1, threads=16)
class Anchor:
    def __init__(self) -> None:
        import lightgbm as lgb

        folder = Path(os.environ[MODELS_ENV])
        spec = json.loads((folder / "features.json").read_text())
        self.names = spec["names"]
        self.lookups = spec["lookups"]
        self.forest = lgb.Booster(model_file=str(folder / "forest.txt"))
        self.to_outputs = np.asarray(spec["slots_to_outputs"])
        self.effect_columns = spec["effect_columns"]
        self.arms = {j: lgb.Booster(model_file=str(folder / f"arm-{j}.txt")) for j in spec["arms"]}

    @bentoml.api(route="/recommend")
    def recommend(
        self,
        person_id: str,
        age: float,
        gender: str,
        role: str,
        specialty: str,
        setting: str,
        years_in_practice: float,
        weekly_hours: float,
        ee: float,
        dp: float,
        pa: float,
    ) -> dict:
        profile = locals()
        row = np.array(
            [
                [
                    self.lookups[name].get(str(profile[name]), np.nan)
                    if name in self.lookups
                    else float(profile[name])
                    for name in self.names
                ]
            ]
        )
        outputs = self.forest.predict(row, raw_score=True, num_threads=1) @ self.to_outputs
        effects = outputs[0, self.effect_columns]
        best = [j for j in np.argsort(effects) if j in self.arms][:2]
        contributions = {
            int(j): self.arms[j].predict(row, pred_contrib=True, num_threads=1)[0].tolist()
            for j in best
        }
        return {"effects": effects.tolist(), "contributions": contributions}
