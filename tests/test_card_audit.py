"""The model card read as an auditor reads it: every figure recomputed from the run.

Found auditing real cards (notes of the auditor branch): an arm the model gives one effect for
everyone showed a Qini of 0.60 (90 % CI 0.19 to 1.01) on the card, ranked by the rounding of
its constant prediction, and the card never said which arms had one effect (the answers did);
a version whose gate failed said so only in one table cell, and "Previous champion: 1" read as
if it had replaced version 1; groups of the training data with no one held out were in no
table, which the out-of-scope list reads as absent from the data; a model trained from the log
said "Rows: 2,396" under "2,500 served recommendations" without the rows it set aside.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import pipelines.train as train
from recommender.card import render_html, render_markdown
from service_fixtures import recommender_home, train_version

NAME = "burnout-recommender"
AUTO = {"learner": {"learner": "auto", "n_folds": 2}, "data": {"n": 2000}}


def _card_bytes(home: Path, version: str) -> dict[str, bytes]:
    folder = home / "cards" / version
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """``(home, card of version 1 as written)``: version 1 trained with learner auto on a
    simulated cohort, then version 2, a run of another seed whose gate was made to fail.

    What is read of version 2 is its card's account of the run and the gate, never its
    learners: its run reuses version 1's model rather than fitting one of its own."""
    from recommender.registry import load_model

    home = tmp_path_factory.mktemp("card-audit") / "home"
    assert train_version(home, **AUTO) == "1"
    written = _card_bytes(home, "1")
    with recommender_home(home):
        version_1 = load_model(f"models:/{NAME}/1")
    gate = train.gate_stage

    def failing(*args, **kwargs):
        return dataclasses.replace(
            gate(*args, **kwargs), passed=False, reason="worse than the champion (a test's gate)."
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "gate_stage", failing)
        patch.setattr(train, "fit_stage", lambda split, cohort, config: version_1)
        assert train_version(home, seed=8) == "2"
    return home, written


def _card(home: Path, version: str) -> dict:
    return json.loads((home / "cards" / version / "card.json").read_text(encoding="utf-8"))


def _run(home: Path, version: str):
    """The MLflow run of ``version``, and its training config as it logged it."""
    from recommender.registry import client

    with recommender_home(home):
        mlflow = client()
        run = mlflow.get_run(mlflow.get_model_version(NAME, version).run_id)
        folder = Path(mlflow.download_artifacts(run.info.run_id, "config", str(home / "dl")))
    logged = yaml.safe_load((folder / "train.yaml").read_text(encoding="utf-8"))
    return run, train.config_from_mapping(logged)


@dataclasses.dataclass
class Recomputed:
    """The held-out part and what the registered model makes of it, recomputed here."""

    cohort: object
    split: object
    recommended: np.ndarray
    terms: np.ndarray  # per-person doubly robust EE points avoided by the learned policy
    model: object


@pytest.fixture(scope="module")
def recomputed(audited) -> Recomputed:
    from recommender.registry import load_model, policy_value_scores
    from recommender.uplift import doubly_robust_scores

    home, _ = audited
    _, config = _run(home, "1")
    cohort = train.load_stage(config)
    split = train.split_stage(cohort, config)
    holdout = split.holdout
    with recommender_home(home):
        model = load_model(f"models:/{NAME}/1")
    X = model.feature_frame(holdout)
    effects = model.outcome_models[model.primary].predict_effect(X)[list(model.treatment_arms)]
    recommended = model.recommend(effects, eligible=model.eligibility(holdout)).to_numpy()
    scores = doubly_robust_scores(
        X,
        holdout["intervention"].astype(str).to_numpy(),
        (holdout["ee_followup"] - holdout["ee"]).to_numpy(dtype=float),
        propensity=holdout["propensity"].to_numpy(dtype=float),
        control=model.control,
        n_folds=config["evaluation"]["n_folds"],
        random_state=config["seed"],
        design=train.learner_design(cohort),
    )
    terms = policy_value_scores(scores, recommended, control=model.control)
    return Recomputed(cohort, split, recommended, terms, model)


def _row(table: dict, name: str) -> dict:
    for row in table["rows"]:
        if row[0] == name:
            return dict(zip(table["columns"], row))
    raise AssertionError(f"{name!r} is not a row of {table['columns']}")


def test_the_headline_figures_are_the_runs_metrics(audited):
    home, _ = audited
    card, (run, _) = _card(home, "1"), _run(home, "1")
    metrics, params = run.data.metrics, run.data.params
    e = card["evaluation"]
    learned = _row(e["policy_values"], "learned policy (this model)")
    for key in ("estimate", "lower", "upper"):
        suffix = "" if key == "estimate" else f".{key}"
        assert learned[key] == pytest.approx(metrics[f"policy_value.learned{suffix}"], abs=1e-12)
        gain = metrics[f"personalization_gain{suffix}"]
        assert e["personalization"][key] == pytest.approx(gain, abs=1e-12)
    assert e["personalization"]["adds_value"] == bool(metrics["personalization_adds_value"])
    n = card["evaluation"]["n"]
    for arm, people, share in card["recommendation_mix"]["rows"]:
        assert share == pytest.approx(metrics[f"recommendation_share.{arm}"], abs=1e-12)
        assert people == round(share * n)
    for arm, *_ in e["average_effects"]["rows"]:
        assert _row(e["average_effects"], arm)["estimate"] == pytest.approx(metrics[f"ate.{arm}"])
    d = card["training_data"]
    assert (d["n_train"], d["n_holdout"]) == (
        int(params["rows.train"]),
        int(params["rows.holdout"]),
    )
    for arm, training, held_out, total in d["arm_counts"]["rows"]:
        assert training == int(params[f"rows.train.{arm}"])
        assert held_out == int(params[f"rows.holdout.{arm}"])
        assert total == training + held_out
    assert card["model"]["data_sha256"] == params["data.sha256"] == run.data.tags["data.sha256"]
    assert card["model"]["run_id"] == run.info.run_id


def test_the_cards_figures_equal_those_recomputed_from_the_data(audited, recomputed):
    home, _ = audited
    card = _card(home, "1")
    r = recomputed
    assert card["training_data"]["n_rows"] == len(r.cohort.frame)
    assert card["training_data"]["n_holdout"] == len(r.split.holdout)
    learned = _row(card["evaluation"]["policy_values"], "learned policy (this model)")
    assert learned["estimate"] == pytest.approx(r.terms.mean(), abs=1e-9)
    people = {arm: n for arm, n, _ in card["recommendation_mix"]["rows"]}
    assert people == {arm: int((r.recommended == arm).sum()) for arm in r.model.arms}


def _cells(frame: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    from recommender.evaluation import subgroup_frame, subgroup_labels

    labels = subgroup_labels(subgroup_frame(frame))
    return {(g, c): lab == c for g, lab in labels.items() for c in sorted(set(lab.tolist()))}


def test_every_group_of_the_data_is_on_the_card_with_its_interval_or_flagged(audited, recomputed):
    home, _ = audited
    s = _card(home, "1")["subgroups"]
    at = {c: i for i, c in enumerate(s["table"]["columns"])}
    shown = {(row[0], row[1]): row for row in s["table"]["rows"]}
    held = _cells(recomputed.split.holdout)
    for (grouping, cell), members in held.items():
        row = shown.pop((grouping, cell))  # every held-out group has a row
        if row[at["n"]] == "suppressed":  # under the minimum, or hidden with one that is
            small = [c for (g, c), m in held.items() if g == grouping and m.sum() < s["min_cell"]]
            assert members.sum() < s["min_cell"] or small, (grouping, cell)
            continue
        assert row[at["n"]] == members.sum() >= s["min_cell"]
        value = recomputed.terms[members].mean()
        assert row[at["policy_value"]] == pytest.approx(value, abs=1e-9)
        assert row[at["lower"]] < value < row[at["upper"]]
    assert not shown, f"rows for groups no one held out belongs to: {list(shown)}"
    trained = set(_cells(recomputed.split.train))
    assert [tuple(c) for c in s["not_held_out"]] == sorted(trained - set(held))
    assert s["not_held_out"], "the fixture's seed leaves some group of the data unheld"
    md = render_markdown(_card(home, "1"))
    for grouping, cell in s["not_held_out"]:
        assert f"{grouping} {cell}" in md.split("## Subgroups", 1)[1].split("\n## ", 1)[0]


def test_an_arm_with_one_effect_for_everyone_is_named_and_scores_no_qini(audited, recomputed):
    from recommender.model import model_facts

    home, _ = audited
    card = _card(home, "1")
    arms = card["model"]["one_effect_arms"]
    assert arms == model_facts(recomputed.model)["one_effect_arms"] and arms
    e = card["evaluation"]
    for arm in arms:
        qini = _row(e["qini"], arm)
        assert qini["qini"] == qini["lower"] == qini["upper"] == 0.0
        assert qini["auuc"] == pytest.approx(qini["auuc_random"], abs=1e-12)
        assert _row(e["calibration"], arm)["slope"] is None
    md = render_markdown(card)
    assert (
        f"| Arms given one effect for everyone in ee, which ranks the arms | {', '.join(arms)} (no"
        in md
    )
    assert f"The model gives {', '.join(arms)} one effect for everyone" in md


def test_a_prediction_constant_up_to_rounding_ranks_no_one():
    from recommender.evaluation import qini_curve, qini_terms

    rng = np.random.default_rng(0)
    benefit = rng.normal(2.0, 5.0, 400)
    constant = -2.5 + rng.normal(0.0, 1e-9, 400)  # a one-effect arm, averaged over folds
    assert np.all(qini_terms(benefit, constant) == 0.0)
    curve = qini_curve(benefit, constant)
    assert np.allclose(curve["qini"], curve["random"], atol=0.02)
    assert not np.all(qini_terms(benefit, constant * 1e8) == 0.0)  # a real spread still ranks


def test_a_version_whose_gate_failed_says_so_first_and_whom_it_left_champion(audited):
    home, _ = audited
    card = _card(home, "2")
    md = render_markdown(card)
    head = md.split("## ", 1)[0]
    assert "FAILED the promotion gate" in head and "a test's gate" in head
    assert "| Champion when registered | version 1 (it stayed champion" in md
    assert "FAILED the promotion gate" not in render_markdown(_card(home, "1"))
    assert "| Champion when registered | none |" in render_markdown(_card(home, "1"))


def test_the_card_of_a_version_is_unchanged_after_the_next_registers(audited, tmp_path):
    from recommender.registry import fetch_card

    home, written = audited
    assert _card_bytes(home, "1") == written
    with recommender_home(home):
        fetched = fetch_card("1", tmp_path / "card-1")
    assert (fetched / "card.json").read_bytes() == written["card.json"]
    assert (fetched / "card.html").read_bytes() == written["card.html"]


class _Text(HTMLParser):
    """The page's text as a reader sees it (no style sheet)."""

    def __init__(self):
        super().__init__()
        self.text, self.styled = [], False

    def handle_starttag(self, tag, attrs):
        self.styled = self.styled or tag == "style"

    def handle_endtag(self, tag):
        self.styled = self.styled and tag != "style"

    def handle_data(self, data):
        if not self.styled:
            self.text.append(data)


def _html_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.text).split())


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\d[\d,]*\.\d+", text)


def test_the_html_page_and_the_json_say_the_same_things(audited):
    """Every figure the Markdown gives (rendered from the JSON) is on the HTML page, in the
    same order, and every table row of the JSON's headline tables is there."""
    home, _ = audited
    for version in ("1", "2"):
        card = _card(home, version)
        page = (home / "cards" / version / "card.html").read_text(encoding="utf-8")
        assert page == render_html(card, _plots(home, version))
        text = _html_text(page)
        md = render_markdown(card)
        assert _numbers(text.replace("\\|", "|")) == _numbers(
            " ".join(re.sub(r"[*`>#|]", " ", md).split())
        )
        for row in card["evaluation"]["policy_values"]["rows"]:
            assert f"{row[1]:.3f} {row[2]:.3f} {row[3]:.3f}".replace("-0.000", "0.000") in text


def _plots(home: Path, version: str) -> dict[str, bytes]:
    from recommender.card import read_card

    return read_card(home / "cards" / version)[1]


def test_the_served_card_and_its_json_agree_and_keep_the_version_card(audited, monkeypatch):
    from recommender.service import load_serve_config
    from recommender.service._pages import model_card_facts, model_card_page

    home, written = audited
    with recommender_home(home):
        config = load_serve_config()
        assert Path(config.models_dir) == home
        page = model_card_page(config, "1", None).body.decode()
        facts = json.loads(model_card_facts(config, "1", None).body)
    card = json.loads(written["card.json"])
    assert facts["model"]["aliases_at_registration"] == card["model"]["aliases"]
    assert {k: v for k, v in facts.items() if k != "model" and k != "serving"} == {
        k: v for k, v in card.items() if k != "model"
    }
    assert facts["serving"]["aliases"] == ["champion"]
    assert "Aliases now:</strong> champion" in page
    # the served page is the version's card with the registry's word inserted, nothing lost
    inserted = re.sub(r'<p id="(serving-policy|current-aliases|champion-record)">.*?</p>', "", page)
    assert inserted == written["card.html"].decode()


def test_the_log_rows_set_aside_are_said_beside_the_rows():
    loop = {
        "n_rows": 2500,
        "rows_per_arm": {"coaching": 1042, "none": 157, "peer_group": 96, "balint_group": 8},
        "arms_without_overlap": ["peer_group", "balint_group"],
        "min_arm_rows": 104,
        "carried_arms": [],
    }
    md = render_markdown({"training_data": {"source": "service log", "n_rows": 2396, "loop": loop}})
    assert "| Rows | 2,396 |" in md
    assert (
        "| Rows set aside (arms not learnt; left out of Rows and Rows per arm) | "
        "104 of 2,500 (peer_group: 96, balint_group: 8) |"
    ) in md
    assert "| Logged rows per arm | coaching: 1,042, none: 157, peer_group: 96, balint" in md


def test_learners_are_one_row_per_outcome_and_oracle_figures_are_on_the_page(audited):
    home, _ = audited
    card = _card(home, "1")
    card["model"]["learners"] = {"ee": "t; carried over: peer_group, balint_group", "dp": "t"}
    md = render_markdown(card)
    assert "| Learner for ee | t; carried over: peer_group, balint_group |" in md
    assert "| Learner for dp | t |" in md
    summary = card["evaluation"]["oracle_summary"]
    assert f"{100 * summary['share_of_oracle']:.1f}% of it" in md
    assert not math.isnan(summary["regret"])


def test_data_digest_on_the_card_is_the_cohorts(audited, recomputed):
    home, _ = audited
    frame = recomputed.cohort.frame
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(rows.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    assert _card(home, "1")["model"]["data_sha256"] == digest.hexdigest()
    card = json.dumps(_card(home, "1"))
    assert not any(str(pid) in card for pid in frame["person_id"].head(200))


# Ellis et al. 2024, Medical Research Archives 12(9), the abstract's conclusion, as published
# (shared/evidence/004_e5b084a0215e6c81.txt).
ELLIS_CONCLUSION = (
    "Rigorous data supporting the value of mentorship, including the best approach to be used "
    "(coaching, mentorship, or peer support) is lacking. However, a growing database of "
    "quality studies affirms physician mentoring as important to physician retention, "
    "wellbeing and quality healthcare delivery."
)


def test_the_mentoring_evidence_on_the_card_quotes_the_review_exactly():
    # The card quoted quality studies "affirm physician mentoring as important ...": the
    # review says "affirms", of "a growing database of quality studies".
    from recommender.card import complement_facts
    from recommender.catalog import load_catalog

    facts = {"complements": complement_facts(load_catalog())}
    mentoring = next(c for c in facts["complements"] if "mentor" in c["name"].lower())
    (record,) = [e for e in mentoring["evidence"] if "Ellis" in e["citation"]]
    quotes = re.findall(r'"([^"]+)"', record["effect"])
    assert len(quotes) == 2
    for quote in quotes:
        for part in quote.split(" ... "):
            assert part in ELLIS_CONCLUSION, part
    assert quotes[1] in render_markdown(facts)


def test_a_cost_or_capacity_that_is_an_assumption_is_labelled_so_in_json_and_page():
    # card.json gave coaching's cost_per_person 1400 bare and the page gave no cost at all;
    # the catalog marks it an assumption, with its basis.
    from recommender.card import evidence_facts
    from recommender.catalog import load_catalog

    catalog = load_catalog()
    facts = {"evidence": evidence_facts(catalog)}
    md, page = render_markdown(facts), _html_text(render_html(facts))
    for arm, entry in zip(catalog.arms, facts["evidence"]):
        assert entry["cost_is_assumption"] == arm.cost_is_assumption
        assert entry["capacity_is_assumption"] == arm.capacity_is_assumption
        cost = f"US${arm.cost_per_person:,.0f} a person" + (
            " (assumption)" if arm.cost_is_assumption else ""
        )
        said = f"Cost: {cost}"
        assert said in md and said in page, arm.id
        places = "no limit" if arm.capacity is None else str(arm.capacity)
        places += " (assumption)" if arm.capacity_is_assumption else ""
        assert f"Places per cycle: {places}" in md, arm.id
    assert any(a.cost_is_assumption for a in catalog.arms)


def test_the_minimum_cell_said_is_the_runs(audited):
    # train.yaml's card.min_cell may be raised; the ethics section said 11 whatever it was.
    home, _ = audited
    card = _card(home, "1")
    card["subgroups"]["min_cell"] = 20
    ethics = render_markdown(card).split("## Ethical considerations", 1)[1]
    assert "fewer than 20 people" in ethics and "fewer than 11" not in ethics
    assert "fewer than 11 people" in render_markdown(_card(home, "1"))


def test_the_card_says_what_a_crisis_flag_gets_and_that_it_never_diagnoses(audited):
    home, _ = audited
    md = render_markdown(_card(home, "1"))
    scope = md.split("## Out-of-scope uses", 1)[1].split("\n## ", 1)[0]
    assert "Diagnosis: the model does not diagnose" in scope
    assert "answered with crisis resources and no ranking" in scope
    assert "crisis resources are never withheld" in scope
