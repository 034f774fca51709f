"""A log holding profiles the current data contract refuses must not block retraining.

Found (main at c3ac571): a store written by an earlier release held 12 served recommendations,
with outcomes, for profiles the contract now refuses (years_in_practice 40 at age 30, rule
practice_too_early); `recommender train --from-log` named the rows and stopped ("the service's
log does not meet the data contract"), and the program had no way forward: the log is
append-only. Now such rows are left out of the training table and of the off-policy values on
the log alike, counted per rule in the run's notes, its MLflow tags and the card, never naming
a row; past a quarter of the log the run stops, saying how many, which rule and what to do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from test_loop_carry import SETTINGS
from test_loop_log_frame import _joined
from test_pipeline_train import sketched_plots, use_home  # noqa: F401 - a fixture
from test_reproduce_log_dec06b import N, SALT, noisy_log, store

from pipelines._train_config import config_from_mapping
from pipelines.train import log_description, log_training_frame, policy_scores_on_log
from recommender.catalog import load_catalog
from recommender.errors import InputError

LEFT_OUT_KEY = "contract_left_out"  # the log summary's, pipelines._log_contract's
BAD = 12  # rows an earlier release served and the contract now refuses


def _older(joined, rows=range(BAD), *, role_rows=()):
    """``joined`` with ``rows`` written as an earlier release took them: practice begun at
    -10 (30 years old, 40 years in practice); ``role_rows`` with a role the contract lacks."""
    joined = joined.copy()
    at = joined.index[list(rows)]
    joined.loc[at, "age"] = 30
    joined.loc[at, "years_in_practice"] = 40.0
    if len(role_rows):
        joined["role"] = joined["role"].astype(object)  # as the store reads it: text
        joined.loc[joined.index[list(role_rows)], "role"] = "intern"
    return joined


def _ids(joined, rows) -> set:
    return {str(joined["request_id"].iloc[r]) for r in rows}


def test_rows_the_contract_refuses_are_left_out_of_the_training_table_and_counted():
    from pipelines._log_contract import left_out_sentence, left_out_tags

    clean = _joined(n=600)
    joined = _older(clean, role_rows=range(100, 103))
    frame, summary = log_training_frame(joined, load_catalog(), min_arm_rows=1)
    trained = {str(p).split("-", 1)[1] for p in frame["person_id"]}
    assert not trained & _ids(joined, [*range(BAD), *range(100, 103)])
    assert len(frame) == 600 - BAD - 3
    left_out = summary[LEFT_OUT_KEY]
    assert left_out["read"] == 600 and left_out["rows"] == BAD + 3
    per_rule = {(r["rule"], r["column"]): r["rows"] for r in left_out["rules"]}
    assert per_rule == {("practice_too_early", "years_in_practice"): BAD, ("category", "role"): 3}
    # the summary describes the rows that meet the contract
    assert summary["n_rows"] == 600 - BAD - 3 == sum(summary["rows_per_arm"].values())
    said = left_out_sentence(left_out)
    assert said.startswith(f"{BAD + 3} of 600 logged rows left out")
    assert (
        f"{BAD} years_in_practice: practice begun before age 16 (rule practice_too_early)" in said
    )
    assert left_out_tags(summary) == {
        "data.log.left_out_rows": str(BAD + 3),
        "data.log.left_out.practice_too_early": str(BAD),
        "data.log.left_out.category": "3",
    }
    assert f"({BAD + 3} more left out: the current data contract refuses them)" in (
        log_description(summary)
    )
    # no row is named: neither its person hash nor its answer's id
    text = json.dumps(left_out) + said
    for r in [*range(BAD), *range(100, 103)]:
        assert str(joined["person_id"].iloc[r])[:12] not in text
        assert f"'{joined['request_id'].iloc[r]}'" not in text


def test_the_values_on_the_log_leave_out_the_same_rows_and_say_so():
    from pipelines._log_contract import left_out_note

    joined = _older(_joined(n=600))
    config = config_from_mapping(SETTINGS)
    frame, _, _, kept = policy_scores_on_log(joined, config, load_catalog())
    assert not kept[:BAD].any()
    trained, _ = log_training_frame(
        joined, load_catalog(), min_arm_rows=4, extra_features=config["extra_features"]
    )
    assert list(frame["person_id"]) == list(trained["person_id"])
    assert len(frame) == int(kept.sum())
    assert left_out_note(frame).startswith(f"{BAD} of 600 logged rows left out")


@pytest.mark.parametrize("bad", [151, 600])
def test_too_many_rows_refused_stop_with_how_many_which_rule_and_what_to_do(bad):
    joined = _older(_joined(n=600), rows=range(bad))
    with pytest.raises(InputError) as raised:
        log_training_frame(joined, load_catalog(), min_arm_rows=1)
    said = str(raised.value)
    assert f"{bad} of the 600 logged rows" in said
    assert ("every one" if bad == 600 else "25%") in said
    assert "(rule practice_too_early)" in said
    assert "record outcomes" in said and "recommender train --data FILE" in said
    # a quarter exactly is still left out
    frame, summary = log_training_frame(
        _older(_joined(n=600), rows=range(150)), load_catalog(), min_arm_rows=1
    )
    assert summary[LEFT_OUT_KEY]["rows"] == 150 and len(frame) == 450


def test_a_clean_log_is_as_before():
    from pipelines._log_contract import LEFT_OUT_KEY as KEY
    from pipelines._log_contract import left_out_note, left_out_tags
    from recommender.card._loop import loop_blocks

    joined = _joined(n=600)
    frame, summary = log_training_frame(joined, load_catalog(), min_arm_rows=1)
    assert KEY == LEFT_OUT_KEY not in summary and len(frame) == len(joined)
    assert summary["n_rows"] == 600
    assert left_out_tags(summary) == {}
    assert "left out" not in log_description(summary)
    rows = loop_blocks(summary)[0][1]["rows"]
    assert not any(row[0].startswith("Rows left out") for row in rows)
    scored, _, _, kept = policy_scores_on_log(joined, config_from_mapping(SETTINGS), load_catalog())
    assert kept.all() and left_out_note(scored) is None and scored.attrs == {}


@pytest.mark.usefixtures("sketched_plots")
def test_train_from_a_log_an_earlier_release_wrote_succeeds_and_says_what_it_left_out(
    tmp_path, monkeypatch, capsys
):
    from recommender import registry
    from recommender.cli import main
    from recommender.service import logged_cohort

    use_home(monkeypatch, tmp_path / "home")
    database = tmp_path / "audit.db"
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", f"sqlite:///{database}")
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", SALT)
    # written through the store as an earlier release did: it served these profiles
    audit = store(_older(noisy_log()), range(N), url=f"sqlite:///{database}")
    read = logged_cohort(audit)
    audit.close()
    refused = read["age"].eq(30) & read["years_in_practice"].eq(40.0)
    assert int(refused.sum()) == BAD
    hidden = [*read.loc[refused, "person_id"], *read.loc[refused, "request_id"]]
    hidden += [f"p-{i}" for i in range(BAD)]
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(SETTINGS))
    argv = ["train", "--from-log", "--config", str(tmp_path / "train.yaml")]
    assert main(argv) == 0
    said = capsys.readouterr()
    out = said.out + said.err
    assert f"{BAD} of {N:,} logged rows left out" in " ".join(out.split()), out
    assert "rule practice_too_early" in out
    client = registry.client()
    (version,) = client.search_model_versions()
    run = client.get_run(version.run_id)
    tags = run.data.tags
    assert tags["data.log.left_out_rows"] == str(BAD)
    assert tags["data.log.left_out.practice_too_early"] == str(BAD)
    assert version.tags["data.log.left_out_rows"] == str(BAD)
    # what was read (the log's digest covers every row) and what was trained on
    assert tags["data.log.rows"] == str(N)
    card_folder = tmp_path / "card"
    assert (
        main(
            [
                "card",
                "--model",
                f"models:/{version.name}/{version.version}",
                "--out",
                str(card_folder),
            ]
        )
        == 0
    )
    facts = json.loads((card_folder / "card.json").read_text())
    loop = facts["training_data"]["loop"]
    assert loop[LEFT_OUT_KEY]["rows"] == BAD
    trained = facts["training_data"]["n_rows"]
    assert tags["data.log.table_rows"] == str(trained) == str(loop["table_rows"])
    assert trained <= N - BAD and loop["n_rows"] == N - BAD
    html = (card_folder / "card.html").read_text()
    assert "Rows left out" in html
    assert f"{BAD} of {N:,} read: {BAD} years_in_practice: practice begun before age 16" in html
    # no raw id anywhere: the notes, the run's tags and params, the card
    everything = out + json.dumps(tags) + json.dumps(run.data.params) + html
    everything += json.dumps(facts)
    for text in hidden:
        assert str(text) not in everything, text
    # and `recommender evaluate-policy --from-log` values the champion on the same rows
    capsys.readouterr()
    assert main(["evaluate-policy", "--from-log", "--config", str(tmp_path / "train.yaml")]) == 0
    valued = capsys.readouterr().out
    assert f"{BAD} of {N:,} logged rows left out" in " ".join(valued.split()), valued
    assert np.all([str(text) not in valued for text in hidden])
