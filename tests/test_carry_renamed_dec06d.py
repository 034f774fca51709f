"""A retraining from the log carries an arm the catalog renamed (``renamed_from``) with what the
champion learnt under its former id, as the service serves it, not the published figures the
champion's arm would otherwise fall back to; the run and the card say the arm's former id.
Over the session's real champion (tests/service_fixtures.py), under a copy of the configs
folder with balint_group renamed balint (tests/test_renamed_paths_dec06d.py)."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
from bench._program import staff_cohort
from service_fixtures import champion_home, copy_champion  # noqa: F401 - fixtures
from test_catalog_change_dec06b import under  # noqa: F401 - a fixture
from test_catalog_reload_dec06c import _rename_balint
from test_loop_carry import RARE, _log, _retrain

KEPT = ["effect_{}", "lower_{}", "upper_{}"]


def test_a_renamed_arm_carries_the_champions_effects_under_its_former_id(under, tmp_path):  # noqa: F811
    from pipelines.train import _carried_note
    from recommender.card._loop import loop_blocks
    from recommender.catalog import load_catalog
    from recommender.model import learnt_arms
    from recommender.registry import MODEL_NAME, load_model

    under(_rename_balint)
    catalog = load_catalog()
    champion = load_model(f"models:/{MODEL_NAME}/1")
    assert catalog.renames == {"balint_group": "balint"}
    assert "balint_group" in learnt_arms(champion)
    # Nobody in the log was served balint: it cannot be learnt, so it is carried over from the
    # registry's champion (the default ``previous``), which learnt it as balint_group.
    model, cohort, _, _ = _retrain(_log(RARE), catalog, None)
    assert "balint" in model.treatment_arms and "balint" not in learnt_arms(model)
    (entry,) = [c for c in cohort.loop["carried_arms"] if c["arm"] == "balint"]
    assert entry["from"] == "the champion, version 1"
    assert entry["formerly"] == "balint_group"
    sources = model.metadata["arm_sources"]
    assert sources["balint"]["formerly"] == "balint_group"
    assert "balint_group" not in sources

    people = staff_cohort("default", 300, seed=9)
    ours, theirs = model.score(people, alpha=0.1), champion.score(people, alpha=0.1)
    new = [k.format("balint") for k in KEPT]
    old = [k.format("balint_group") for k in KEPT]
    assert theirs[old].notna().all().all()
    np.testing.assert_allclose(ours[new], theirs[old], rtol=0, atol=1e-9)
    assert model.compiled is not None  # the figures above: the compiled form's
    # The same figures learner by learner (not compiled) and once saved and read again.
    joblib.dump(model, tmp_path / "model.joblib")
    slow = joblib.load(tmp_path / "model.joblib")
    slow._compiled_carried = None
    one_by_one = slow.score(people, alpha=0.1, contributions=True)
    np.testing.assert_allclose(one_by_one[new], theirs[old], rtol=0, atol=1e-9)
    contributions = [c for c in one_by_one.columns if c.startswith("contrib_")]
    pd.testing.assert_frame_equal(
        model.score(people, alpha=0.1, contributions=True)[contributions],
        one_by_one[contributions],
        atol=1e-9,
    )

    # The run and the card name the arm as the renaming note does.
    said = []
    _carried_note(
        cohort.loop, type("Display", (), {"note": lambda self, line: said.append(line)})()
    )
    assert "balint (formerly balint_group) (0 rows of" in said[0]
    assert "from the champion, version 1" in said[0]
    shown = json.dumps(loop_blocks(cohort.loop))
    assert "balint (formerly balint_group): 0 logged rows" in shown
