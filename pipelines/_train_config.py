"""The training config: defaults, overrides and one check that names every bad field."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from recommender.errors import InputError
from recommender.paths import config_path

__all__ = ["load_config", "config_from_mapping", "DEFAULTS", "LOWER_IS_BETTER", "SOURCES"]

DEFAULTS: dict = {
    "seed": 0,
    # What the model is built from: data (a --data file or the simulated cohort), log (the
    # service's served recommendations joined with outcomes) or evidence (the catalog alone).
    "source": "data",
    "log": {"serve_config": None},
    "data": {"scenario": "default", "n": 20000, "seed": None, "assignment": "rct",
             "design": None},
    "catalog": "interventions.yaml",
    "extra_features": [],
    "exclude_features": [],
    "split": {"holdout_share": 0.3},
    "outcomes": ["ee", "dp", "pa"],
    "primary": "ee",
    "learner": {"learner": "auto", "n_folds": 3, "params": {}},
    "evaluation": {"alpha": 0.1, "n_folds": 5},
    "gate": {"alpha": 0.1},
    "card": {"policy_tree_depth": 3, "min_cell": 11},
    "registry": {"experiment": "burnout-recommender", "model_name": "burnout-recommender"},
}
SOURCES = ("data", "log", "evidence")
# How the training cohort was assigned; null = detect from its logged propensities.
DESIGNS = (None, "randomized", "observational")
# For each outcome: is a lower follow-up better? (MBI: exhaustion and depersonalization yes.)
LOWER_IS_BETTER = {"ee": True, "dp": True, "pa": False}


def _merge(base: dict, override: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "params":
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(path=None, *, overrides: dict | None = None) -> dict:
    """Read the training config, fill defaults, apply ``overrides`` and check every field.

    Parameters
    ----------
    path : str or Path, optional
        YAML file; default ``configs/train.yaml`` (see :func:`recommender.paths.config_path`).
    overrides : dict, optional
        Nested values that win over the file (``{"seed": 3, "data": {"n": 3000}}``).

    Returns
    -------
    dict
        The complete config, as logged to MLflow.

    Raises
    ------
    InputError
        Naming the field, the value and what is accepted.
    """
    path = config_path("train.yaml") if path is None else Path(path)
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputError(f"training config {path} does not exist") from None
    except yaml.YAMLError as error:
        raise InputError(f"training config {path} is not valid YAML: {error}") from None
    return config_from_mapping(loaded, overrides=overrides, source=f"training config {path}")


def config_from_mapping(loaded, *, overrides: dict | None = None,
                        source: str = "training config") -> dict:
    """Fill defaults into ``loaded``, apply ``overrides`` and check every field.

    The same check as :func:`load_config`, for a config given as a mapping (tests, notebooks).
    """
    if not isinstance(loaded, dict):
        raise InputError(f"{source} must be a mapping of settings")
    unknown = sorted(set(loaded) - set(DEFAULTS))
    if unknown:
        raise InputError(f"{source}: unknown field(s) {unknown}; accepted are {sorted(DEFAULTS)}")
    config = _merge(_merge(DEFAULTS, loaded), overrides or {})
    problems = []

    def need(ok, field_name, value, accepted):
        if not ok:
            problems.append(f"{field_name} = {value!r} (accepted: {accepted})")

    need(isinstance(config["seed"], int) and config["seed"] >= 0, "seed", config["seed"],
         "an integer >= 0")
    need(config["source"] in SOURCES, "source", config["source"], ", ".join(SOURCES))
    serve_config = config["log"].get("serve_config")
    need(serve_config is None or isinstance(serve_config, str), "log.serve_config",
         serve_config, "null (configs/serve.yaml) or the path of the service's settings")
    share = config["split"]["holdout_share"]
    need(isinstance(share, (int, float)) and 0.05 <= share <= 0.8, "split.holdout_share",
         share, "a number from 0.05 to 0.8")
    outcomes = config["outcomes"]
    need(isinstance(outcomes, list) and set(outcomes) <= set(LOWER_IS_BETTER) and outcomes,
         "outcomes", outcomes, f"a non-empty list from {list(LOWER_IS_BETTER)}")
    # The recommendation is the arm with the LOWEST expected change in the primary outcome, so
    # an outcome where higher is better (pa) would silently recommend the most harmful arm.
    lower_better = [o for o in LOWER_IS_BETTER if LOWER_IS_BETTER[o]]
    need(config["primary"] in lower_better and config["primary"] in (outcomes or []),
         "primary", config["primary"],
         f"one of the outcomes where lower is better: {lower_better}")
    need(config["learner"]["learner"] in ("auto", "t", "x", "dr"), "learner.learner",
         config["learner"]["learner"], "auto, t, x or dr")
    need(isinstance(config["learner"].get("params") or {}, dict), "learner.params",
         config["learner"].get("params"), "a mapping of UpliftModel keyword arguments")
    for section in ("evaluation", "gate"):
        alpha = config[section]["alpha"]
        need(isinstance(alpha, float) and 0 < alpha < 0.5, f"{section}.alpha", alpha,
             "a number strictly between 0 and 0.5")
    n = config["data"]["n"]
    need(isinstance(n, int) and n >= 200, "data.n", n, "an integer >= 200")
    need(config["data"]["assignment"] in ("rct", "observational"), "data.assignment",
         config["data"]["assignment"], "rct or observational")
    need(config["data"]["design"] in DESIGNS, "data.design", config["data"]["design"],
         "null (detect from the propensity column), randomized or observational")
    need(isinstance(config["extra_features"], list), "extra_features",
         config["extra_features"], "a list of column names")
    problems += _excluded_problems(config)
    need(config["card"]["min_cell"] >= 11 if isinstance(config["card"]["min_cell"], int)
         else False, "card.min_cell", config["card"]["min_cell"],
         "an integer >= 11 (privacy floor)")
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems), problems=problems)
    return config


def _excluded_problems(config: dict) -> list[str]:
    """``exclude_features``: names of features the learners leave out (e.g. gender), each one a
    feature the model would otherwise use, and at least one feature left."""
    from recommender.cohort import FEATURE_COLUMNS

    excluded = config["exclude_features"]
    extras = config["extra_features"] if isinstance(config["extra_features"], list) else []
    accepted = [*FEATURE_COLUMNS, *(str(c) for c in extras if c not in FEATURE_COLUMNS)]
    if not isinstance(excluded, list) or not all(isinstance(c, str) for c in excluded):
        return [f"exclude_features = {excluded!r} (accepted: a list of feature names from "
                f"{', '.join(accepted)})"]
    unknown = [c for c in excluded if c not in accepted]
    if unknown:
        return [f"exclude_features: unknown feature(s) {', '.join(map(repr, unknown))} "
                f"(accepted: {', '.join(accepted)})"]
    if not set(accepted) - set(excluded):
        return ["exclude_features leaves no feature to learn from (accepted: a list that "
                "keeps at least one of " + ", ".join(accepted) + ")"]
    return []
