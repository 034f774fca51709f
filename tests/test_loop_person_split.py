"""A log holds a person's answers of several survey cycles: the held-out part and every
comparison of models keep a person's rows together, so no model is graded on someone it was
trained on in another cycle."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from bench._program import staff_cohort
from pipelines._train_config import config_from_mapping
from pipelines.train import Cohort, fit_min_arm_rows, log_training_frame, split_stage
from recommender.catalog import load_catalog
from recommender.cohort import PROFILE_COLUMNS, typed_cohort
from recommender.errors import InputError

SETTINGS = {
    "seed": 0,
    "outcomes": ["ee"],
    "primary": "ee",
    "learner": {"learner": "t", "n_folds": 2},
    "evaluation": {"n_folds": 2},
}
SHARES = {"none": 0.3, "coaching": 0.3, "mindfulness": 0.3, "peer_group": 0.1}


def _person(k: int) -> str:
    return hashlib.sha256(f"person|{k}".encode()).hexdigest()


def _log(people: int, cycles: int, *, seed=3, first_cycle=0, shares=SHARES) -> pd.DataFrame:
    """A log as ``logged_cohort`` returns it: ``people`` staff served in each of ``cycles``."""
    # not the staff cohort's own stream: the arms would follow the roles it drew
    rng = np.random.default_rng([seed, 1])
    parts = []
    for cycle in range(first_cycle, first_cycle + cycles):
        staff = staff_cohort("default", people, seed=seed + cycle)
        served = rng.choice(np.array(list(shares)), size=people, p=list(shares.values()))
        part = staff[list(PROFILE_COLUMNS)].copy()
        part["intervention"] = served
        part["propensity"] = [shares[a] for a in served]
        part["probabilities"] = json.dumps(shares)
        # not below 0, the scale's least: the service records no other (nor the contract reads)
        part["ee_followup"] = np.clip(part["ee"] - 1, 0, None)
        part["dp_followup"], part["pa_followup"] = part["dp"], part["pa"]
        part["arm_taken"] = served
        part["request_id"] = [f"c{cycle}r{k}" for k in range(people)]
        part["person_id"] = [_person(k) for k in range(people)]
        part["cycle"], part["policy"] = cycle, "thompson"
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _cohort(joined, catalog, settings) -> Cohort:
    frame, summary = log_training_frame(joined, catalog, min_arm_rows=fit_min_arm_rows(settings))
    return Cohort(
        frame=typed_cohort(frame, arms=catalog.arm_ids, control=catalog.control),
        catalog=catalog,
        source="service log",
        description="a test log",
        sha256="-",
        design="observational (the service's logged probabilities of the recommended arm)",
        loop=summary,
    )


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_a_log_is_held_out_by_person_the_same_people_at_every_retraining(catalog):
    # Held out by row, about half of the people served in three cycles had rows on both
    # sides: the evaluation and the gate graded the model on people it was trained on.
    settings = config_from_mapping(SETTINGS)
    joined = _log(1500, 3)
    cohort = _cohort(joined, catalog, settings)
    split = split_stage(cohort, settings)
    # a row id of a log's table is "<the person's salted hash>-<the answer's id>"
    trained = {p.split("-")[0] for p in split.train["person_id"]}
    held = {p.split("-")[0] for p in split.holdout["person_id"]}
    assert not trained & held
    assert len(trained | held) == 1500
    assert 0.26 < len(held) / 1500 < 0.34
    # The next retraining, with a fourth cycle and 500 newcomers: the people held out before
    # are held out again (so the champion's held-out people are still unseen by both models),
    # and every newcomer falls on one side.
    later = pd.concat([joined, _log(2000, 1, seed=9, first_cycle=3)], ignore_index=True)
    again = split_stage(_cohort(later, catalog, settings), settings)
    held_again = {p.split("-")[0] for p in again.holdout["person_id"]}
    assert held <= held_again and not held_again & trained
    assert not held_again & {p.split("-")[0] for p in again.train["person_id"]}


def test_every_arm_keeps_its_minimum_on_both_sides(catalog):
    # An arm near its minimum (about 125 rows, 30 needed on each side): the people's draws
    # alone often hold out too few of its rows; people of that arm nearest the threshold move.
    from pipelines.train import fit_min_arm_rows

    rare = {"none": 0.35, "coaching": 0.3, "mindfulness": 0.3, "peer_group": 0.05}
    joined = _log(2500, 1, seed=4, shares=rare)
    for seed in range(20):
        settings = config_from_mapping({**SETTINGS, "seed": seed, "split": {"holdout_share": 0.25}})
        assert (joined["intervention"] == "peer_group").sum() >= fit_min_arm_rows(settings)
        split = split_stage(_cohort(joined, catalog, settings), settings)
        for part in (split.train, split.holdout):
            assert part["intervention"].astype(str).value_counts()["peer_group"] >= 30, seed
        trained = {p.split("-")[0] for p in split.train["person_id"]}
        assert not trained & {p.split("-")[0] for p in split.holdout["person_id"]}


def test_a_trial_file_is_still_split_by_row_stratified(catalog):
    # Only a log is grouped: a file's rows are people, and its split is sklearn's stratified
    # one (the fitted models of file runs are unchanged).
    from sklearn.model_selection import train_test_split

    settings = config_from_mapping(SETTINGS)
    cohort = _cohort(_log(800, 1), catalog, settings)
    cohort.loop = None
    split = split_stage(cohort, settings)
    _, expected = train_test_split(
        np.arange(len(cohort.frame)),
        test_size=settings["split"]["holdout_share"],
        random_state=settings["seed"],
        stratify=cohort.frame["intervention"].astype(str).to_numpy(),
    )
    assert split.holdout["person_id"].tolist() == (
        cohort.frame["person_id"].iloc[np.sort(expected)].tolist()
    )


def test_an_arm_whose_rows_are_one_persons_is_refused_by_name(catalog):
    settings = config_from_mapping(SETTINGS)
    joined = _log(2000, 1)
    # every peer-group row belongs to one person (served in many cycles)
    peer = joined["intervention"] == "peer_group"
    joined.loc[peer, "person_id"] = _person(10_000)
    cohort = _cohort(joined, catalog, settings)
    with pytest.raises(InputError) as caught:
        split_stage(cohort, settings)
    message = str(caught.value)
    assert "held out by person" in message
    assert f"peer_group: {int(peer.sum())} rows from 1 person" in message
    assert "coaching:" not in message and "split.holdout_share" in message


class _Trained:
    """A model's record of whom it was trained on, as ``fit_stage`` writes it."""

    def __init__(self, ids, key):
        from pipelines.train import key_fingerprint, person_hashes

        self.metadata = {
            "training_person_hashes": person_hashes(ids, key),
            "training_key_id": key_fingerprint(key),
        }


def test_a_model_has_seen_a_persons_other_cycles(monkeypatch):
    from pipelines.train import comparison_rows, seen_rows, training_key

    monkeypatch.setenv("RECOMMENDER_TRAINING_KEY", "test-suite-key")
    key = training_key()
    people = [_person(k) for k in range(1000)]
    cycle0 = [f"{p[:24]}-c0r{k}" for k, p in enumerate(people)]
    cycle1 = [f"{p[:24]}-c1r{k}" for k, p in enumerate(people)]
    # trained from the log on the first 400 people's cycle-0 answers
    model = _Trained([p[:24] for p in people[:400]], key)
    seen, note = seen_rows(model, cycle1, logged=True)
    assert note == "" and seen[:400].all() and not seen[400:].any()
    # a model trained from the log before people were recorded kept each row's id
    older = _Trained(cycle0[:400], key)
    assert (seen_rows(older, cycle0, logged=True)[0] == seen).all()
    # a file's ids are people already: no part of them is taken for one
    file_ids = [f"{p[:24]}-x" for p in people]
    assert not seen_rows(model, file_ids, logged=False)[0].any()

    rows, note = comparison_rows({"the champion": model}, cycle1, logged=True)
    assert rows.sum() == 600 and not rows[:400].any()
    assert note.startswith("400 of the 1,000 rows belong to people")
    # too few unseen rows to compare on: all, and the note says the comparison flatters
    greedy = _Trained([p[:24] for p in people[:900]], key)
    rows, note = comparison_rows({"the champion": greedy}, cycle1, logged=True)
    assert rows.all() and "flatters that model" in note
    # another machine's key: nothing recognised, and said
    monkeypatch.setenv("RECOMMENDER_TRAINING_KEY", "another-machine")
    rows, note = comparison_rows({"the champion": model}, cycle1, logged=True)
    assert rows.all() and "the champion: its training rows could not be recognised" in note
