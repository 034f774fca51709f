"""The training config: defaults, overrides and one check that names every bad field.

The keys, types and ranges are :class:`TrainSettings` (pydantic, unknown keys refused); the
pipeline stages read the checked config as a plain dict, as it is logged to MLflow.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from recommender.config_file import read_beside, read_config
from recommender.errors import InputError
from recommender.levels import ALPHA_LEAST
from recommender.paths import config_path
from recommender.registry import MODEL_NAME
from recommender.settings import Section, check_settings
from recommender.simulate import MAX_PEOPLE, MAX_SEED
from recommender.uplift import SEED_LIMIT

__all__ = [
    "load_config",
    "config_from_mapping",
    "TrainSettings",
    "DEFAULTS",
    "LOWER_IS_BETTER",
    "SOURCES",
]

# What the model is built from: data (a --data file or the simulated cohort), log (the
# service's served recommendations joined with outcomes) or evidence (the catalog alone).
SOURCES = ("data", "log", "evidence")

# For each outcome: is a lower follow-up better? (MBI: exhaustion and depersonalization yes.)
LOWER_IS_BETTER = {"ee": True, "dp": True, "pa": False}


class _Data(Section):
    scenario: str = Field(
        "default",
        description=(
            "a scenario name of configs/scenarios (default, homogeneous, conservative, local, "
            'or "null" in quotes: a bare null is YAML for no value) or a scenario file\'s path'
        ),
    )
    n: int = Field(20000, ge=200, le=MAX_PEOPLE)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    assignment: Literal["rct", "observational"] = "rct"
    # How the training cohort was assigned; null = detect from its logged propensities.
    design: Literal["randomized", "observational"] | None = Field(
        None, description="null (detect from the propensity column), randomized or observational"
    )


class _Split(Section):
    holdout_share: float = Field(0.3, ge=0.05, le=0.8)


class _Learner(Section):
    learner: Literal["auto", "t", "x", "dr"] = "auto"
    n_folds: int = Field(3, ge=2, le=20)
    # Keyword arguments of recommender.uplift.UpliftModel, checked there.
    params: dict[str, Any] = Field({}, description="a mapping of UpliftModel keyword arguments")


class _Evaluation(Section):
    alpha: float = Field(0.1, ge=ALPHA_LEAST, lt=0.5)
    n_folds: int = Field(5, ge=2, le=20)


class _Gate(Section):
    alpha: float = Field(0.1, ge=ALPHA_LEAST, lt=0.5)


class _Card(Section):
    policy_tree_depth: int = Field(3, ge=1, le=8)
    min_cell: int = Field(11, ge=11, description="an integer >= 11 (privacy floor)")


class _Registry(Section):
    experiment: str = Field("burnout-recommender", min_length=1)
    # The one registered model the service serves and promote, rollback and champions act on:
    # a version registered under another name was gated against that name's champion and
    # could never be promoted or served (and a quote in a name broke the store's searches).
    model_name: Literal[MODEL_NAME] = Field(
        MODEL_NAME,
        description=f"{MODEL_NAME}, the registered model the service serves and "
        "promote, rollback and champions act on",
    )


class _Log(Section):
    serve_config: str | None = Field(
        None,
        description="null ($RECOMMENDER_SERVE_CONFIG, else configs/serve.yaml) or the path "
        "of the service's settings (its store, and the safety rules a model carries)",
    )


class TrainSettings(Section):
    """The keys of ``train.yaml``, their types and ranges (see the file for what each means)."""

    # The learners' own limit: checked here, a seed past it would be refused only once fitting
    # starts, after the cohort is read and split.
    seed: int = Field(0, ge=0, le=SEED_LIMIT - 1)
    source: Literal[SOURCES] = "data"
    log: _Log = _Log()
    data: _Data = _Data()
    catalog: str = "interventions.yaml"
    extra_features: list[str] = Field([], description="a list of column names")
    # Features the learners leave out (e.g. gender); checked by _excluded_problems.
    exclude_features: Any = Field([], description="a list of feature names")
    split: _Split = _Split()
    outcomes: list[Literal[tuple(LOWER_IS_BETTER)]] = Field(
        ["ee", "dp", "pa"],
        min_length=1,
        description=f"a non-empty list from {list(LOWER_IS_BETTER)}",
    )
    primary: str = "ee"
    learner: _Learner = _Learner()
    evaluation: _Evaluation = _Evaluation()
    gate: _Gate = _Gate()
    card: _Card = _Card()
    registry: _Registry = _Registry()


DEFAULTS: dict = TrainSettings().model_dump()


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
    loaded = read_config(path, what="training config")
    source = f"training config {path}"
    config = config_from_mapping(loaded, overrides=overrides, source=source)
    _read_beside(config, path, overrides or {})
    return config


def config_from_mapping(
    loaded, *, overrides: dict | None = None, source: str = "training config"
) -> dict:
    """Fill defaults into ``loaded``, apply ``overrides`` and check every field.

    The same check as :func:`load_config`, for a config given as a mapping (tests, notebooks).
    """
    if not isinstance(loaded, dict):
        raise InputError(f"{source} must be a mapping of settings")
    config = check_settings(
        TrainSettings,
        _merge(loaded, overrides or {}),
        source=source,
        lines=_file_lines(loaded, overrides or {}),
    ).model_dump()
    # The recommendation is the arm with the LOWEST expected change in the primary outcome, so
    # an outcome where higher is better (pa) would silently recommend the most harmful arm.
    lower_better = [o for o in LOWER_IS_BETTER if LOWER_IS_BETTER[o]]
    if config["primary"] not in lower_better or config["primary"] not in config["outcomes"]:
        accepted = f"one of the outcomes where lower is better: {lower_better}"
        problem = f"primary = {config['primary']!r} is not accepted; give {accepted}"
        raise InputError(
            f"{source}: {problem}",
            problems=[
                {
                    "field": "primary",
                    "value": config["primary"],
                    "message": "not a lower-is-better outcome",
                    "accepted": accepted,
                }
            ],
        )
    problems = (
        _repeated_problems(config)
        + _mbi_item_problems(config)
        + _excluded_problems(config)
        + _learner_params_problems(config)
    )
    if problems:
        raise InputError(f"{source}: " + "; ".join(problems), problems=problems)
    return config


def _file_lines(loaded, overrides: dict) -> dict[str, int]:
    """The lines of the keys whose values come from the file (an override's do not)."""
    lines = dict(getattr(loaded, "lines", {}))

    def drop(mapping: dict, prefix: str) -> None:
        for key, value in mapping.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and key != "params":
                drop(value, f"{dotted}.")
                continue
            for name in [
                n for n in lines if n == dotted or n.startswith((dotted + ".", dotted + "["))
            ]:
                del lines[name]

    drop(overrides, "")
    return lines


def _repeated_problems(config: dict) -> list[str]:
    """A name listed twice (a hand edit's slip): a second model fitted for one outcome, a
    column carried twice."""
    problems = []
    for key in ("outcomes", "extra_features", "exclude_features"):
        names = config[key] if isinstance(config[key], list) else []
        twice = []
        for index, name in enumerate(names):
            if name in names[:index] and name not in twice:
                twice.append(name)
        if twice:
            problems.append(
                f"{key}: {', '.join(map(repr, twice))} given twice (accepted: each name once)"
            )
    return problems


def _read_beside(config: dict, path: Path, overrides: dict) -> None:
    """Read the files ``config`` names by a relative path beside its file ``path``, where
    there is one (:func:`~recommender.config_file.read_beside`): the catalog, else from the
    configs folder; a scenario file and the service's settings, else from the working folder.
    A value given as an override (``--serve-config``) is the caller's, from the working folder.
    """
    from recommender.paths import config_dir

    if "catalog" not in overrides:
        config["catalog"] = read_beside(config["catalog"], path, config_dir())
    data = config["data"]
    scenario = Path(data["scenario"])
    named_by_path = scenario.suffix in (".yaml", ".yml") or scenario.parent != Path(".")
    if named_by_path and "scenario" not in overrides.get("data", {}):
        data["scenario"] = read_beside(data["scenario"], path, Path.cwd())
    log = config["log"]
    if log["serve_config"] and "serve_config" not in overrides.get("log", {}):
        log["serve_config"] = read_beside(log["serve_config"], path, Path.cwd())


def _mbi_item_problems(config: dict) -> list[str]:
    """``extra_features`` named like MBI items' answers: a model would learn from them, the
    service would ask every request for them and keep them in its log."""
    from recommender.cohort import MBI_ITEMS_REFUSED, looks_like_mbi_item

    extras = config["extra_features"]
    items = [repr(c) for c in extras if looks_like_mbi_item(c)]
    if not items:
        return []
    return [
        f"extra_features: {', '.join(items)} read as MBI item answers, which are not accepted "
        f"as features (accepted: other columns; the model takes {MBI_ITEMS_REFUSED})"
    ]


def _excluded_problems(config: dict) -> list[str]:
    """``exclude_features``: names of features the learners leave out (e.g. gender), each one a
    feature the model would otherwise use, and at least one feature left."""
    from recommender.cohort import FEATURE_COLUMNS

    excluded = config["exclude_features"]
    extras = config["extra_features"] if isinstance(config["extra_features"], list) else []
    accepted = [*FEATURE_COLUMNS, *(str(c) for c in extras if c not in FEATURE_COLUMNS)]
    if not isinstance(excluded, list) or not all(isinstance(c, str) for c in excluded):
        return [
            f"exclude_features = {excluded!r} (accepted: a list of feature names from "
            f"{', '.join(accepted)})"
        ]
    unknown = [c for c in excluded if c not in accepted]
    if unknown:
        return [
            f"exclude_features: unknown feature(s) {', '.join(map(repr, unknown))} "
            f"(accepted: {', '.join(accepted)})"
        ]
    if not set(accepted) - set(excluded):
        return [
            "exclude_features leaves no feature to learn from (accepted: a list that "
            "keeps at least one of " + ", ".join(accepted) + ")"
        ]
    return []


# UpliftModel arguments the config sets through its own keys; also given in learner.params they
# would collide inside the learner.
_PARAMS_SET_ELSEWHERE = {
    "learner": "learner.learner",
    "n_folds": "learner.n_folds",
    "random_state": "seed",
    "design": "data.design",
    "control": "the catalog's control arm",
}


def _learner_params_problems(config: dict) -> list[str]:
    """``learner.params``: keyword arguments of UpliftModel, checked here rather than as a
    TypeError (and a traceback) once the fit stage starts."""
    from recommender.uplift import UpliftModel

    accepted = [p for p in UpliftModel().get_params() if p not in _PARAMS_SET_ELSEWHERE]
    problems = []
    for key in config["learner"]["params"]:
        if key in _PARAMS_SET_ELSEWHERE:
            problems.append(
                f"learner.params.{key} is set by {_PARAMS_SET_ELSEWHERE[key]}, not here "
                f"(accepted in learner.params: {', '.join(accepted)})"
            )
        elif key not in accepted:
            problems.append(
                f"learner.params.{key} is not an UpliftModel argument "
                f"(accepted: {', '.join(accepted)})"
            )
    if not problems:  # the names are right: now their values, before any run starts
        from pipelines._train_fit import learner_params

        try:
            UpliftModel(**learner_params(config["learner"]["params"])).check_parameters()
        except InputError as error:
            problems.append(f"learner.params: {error}")
    return problems
