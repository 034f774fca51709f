"""Batch scoring: a cohort file in, the scored table of the data contract out.

The model is the registered pyfunc artifact (loaded through :mod:`recommender.registry`), the
same one the service loads; rows are validated once at this edge and scored in chunks so a
large cohort needs little memory. The model is met with the catalog in force by
:func:`model_in_force` and a cohort's rows are scored by :func:`scored_table`: ``recommender
batch-score`` (:mod:`pipelines.batch`) runs the very same two on Spark, :func:`scored_table` on
each partition, so a row gets the same recommendation and figures from both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines._crisis_rows import beside, crisis_rows_kept, refuse_writing_over
from recommender.errors import InputError

__all__ = [
    "CRISIS_NOT_SCORED",
    "ModelInForce",
    "ScoreResult",
    "extra_features",
    "model_in_force",
    "model_notes",
    "recommendation_counts",
    "recommendation_mix_text",
    "safety_rules",
    "service_settings",
    "score_frame",
    "score_file",
    "scored_table",
]

# How the recommendation mix names the rows flagged for crisis risk (resources, no ranking).
CRISIS_NOT_SCORED = "(crisis: not scored)"


@dataclass
class ScoreResult:
    """What :func:`score_file` wrote."""

    path: Path
    rows: int
    model_uri: str
    version: str | None
    arm_counts: dict  # rows per arm (see recommendation_counts)
    notes: list = field(default_factory=list)  # what every output says (see model_notes)
    catalog_version: str | None = None  # the intervention catalog in force, scored with
    catalog_sha256: str | None = None  # its file's digest (recommender.catalog.catalog_sha256)
    warnings: list = field(default_factory=list)  # e.g. arms of that catalog never learnt

    @property
    def recommendation_mix(self) -> dict:
        """Share of rows per arm in ``arm_counts`` (the crisis rows' share completes 1)."""
        return {arm: (n / self.rows if self.rows else 0.0) for arm, n in self.arm_counts.items()}


def recommendation_counts(recommended, arms) -> dict:
    """Rows per recommended arm as ``score`` and ``batch-score`` say them: each of ``arms``
    (the model's :meth:`~recommender.model.RecommendationModel.recommendable_arms` under the
    catalog in force; 0 when no row got it), then the rows flagged for crisis risk under
    :data:`CRISIS_NOT_SCORED` (``recommended``: arm -> rows, ``None`` for the crisis rows).

    Examples
    --------
    >>> recommendation_counts({"coaching": 7, None: 1, "none": 2}, ["none", "coaching", "mindfulness"])
    {'none': 2, 'coaching': 7, 'mindfulness': 0, '(crisis: not scored)': 1}
    """
    counts = {str(arm): 0 for arm in arms}
    for arm, rows in recommended.items():
        key = CRISIS_NOT_SCORED if arm is None or pd.isna(arm) else str(arm)
        counts[key] = counts.get(key, 0) + int(rows)
    if CRISIS_NOT_SCORED in counts:  # last, whatever order they came in
        counts[CRISIS_NOT_SCORED] = counts.pop(CRISIS_NOT_SCORED)
    return counts


def recommendation_mix_text(counts: dict) -> str:
    """``counts`` (:func:`recommendation_counts`) as one line's text: each arm's rows and share.

    Examples
    --------
    >>> recommendation_mix_text({"none": 500, "coaching": 1_400, "(crisis: not scored)": 100})
    'none 500 (25.0%), coaching 1,400 (70.0%), (crisis: not scored) 100 (5.0%)'
    """
    total = sum(counts.values())
    return ", ".join(
        f"{arm} {rows:,} ({rows / total if total else 0.0:.1%})" for arm, rows in counts.items()
    )


def score_frame(
    model,
    profiles: pd.DataFrame,
    *,
    alpha: float = 0.1,
    contributions: bool = False,
    offered=None,
    chunk_size: int = 50_000,
    max_overlap: float = 0.5,
    catalog=None,
) -> pd.DataFrame:
    """Score validated profile rows with a RecommendationModel, ``chunk_size`` rows at a time
    (``catalog``: the catalog in force, see :meth:`RecommendationModel.score`)."""
    if chunk_size < 1:
        raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
    options = dict(
        alpha=alpha, contributions=contributions, offered=offered, max_overlap=max_overlap
    )
    if catalog is not None:  # stand-in models in tests take no catalog
        options["catalog"] = catalog
    parts = [
        model.score(profiles.iloc[start : start + chunk_size], **options)
        for start in range(0, len(profiles), chunk_size)
    ]
    if not parts:
        return model.score(profiles, **options)
    return pd.concat(parts).reset_index(drop=True)


def score_file(
    model: str,
    data,
    out,
    *,
    alpha: float | None = None,
    contributions: bool = False,
    offered=None,
    chunk_size: int = 50_000,
    serve_config=None,
    max_overlap: float | None = None,
) -> ScoreResult:
    """Validate ``data`` against the contract, score it with ``model`` and write ``out``.

    Parameters
    ----------
    model : str
        ``models:/burnout-recommender@champion``, a version number, an alias, or any URI or
        path MLflow loads (see :func:`recommender.registry.resolve_model`).
    data : path
        Cohort file (CSV or Parquet) with the profile columns.
    out : path
        ``.csv`` or ``.parquet``: ``person_id``, ``recommended``, ``ranking_meaningful`` and
        ``benefit_established`` (what the service's answer says of the person's ranking, see
        :meth:`recommender.model.RecommendationModel.score`), ``effect_<arm>`` (primary),
        its interval bounds, each secondary outcome's effects and interval bounds
        (``effect_/lower_/upper_<outcome>_<arm>``), contributions if asked, then ``safety_level``
        and ``referral`` (see :func:`recommender.policy.triage_table`). A row flagged in the
        optional ``crisis_risk`` column is not scored: its recommendation, judgements and
        effects are empty and its ``referral`` holds the crisis resources. When nothing can be scored
        (rows that fail the contract, a crisis flag that cannot be read, a model that cannot
        be found or loaded), the flagged rows' resources, and those of rows whose flag cannot
        be read, are written to ``<out>.crisis.csv`` all the same, and the error names it (see
        :mod:`pipelines._crisis_rows`).
    alpha : float, optional
        Intervals are two-sided ``1 - alpha``; default: the service's ``alpha``.
    serve_config : path, optional
        The service's ``serve.yaml``, whose safety rules, ``alpha`` and ``ranking.max_overlap``
        apply (default: ``$RECOMMENDER_SERVE_CONFIG``, else the project's, as the service).
    max_overlap : float, optional
        The overlap threshold of ``ranking_meaningful``; default: the service's.

    Returns
    -------
    ScoreResult
    """
    from recommender.cohort import check_table_output, read_cohort, validate_cohort, write_cohorts
    from recommender.policy import crisis_flags

    check_table_output(out)  # before the model is loaded: an unwritable path is said at once
    refuse_writing_over(data, out, table="the scored table", does="scores")
    service = service_settings(serve_config)
    rules = service.safety
    alpha = service.alpha if alpha is None else alpha
    max_overlap = service.max_overlap if max_overlap is None else max_overlap
    # The file first: whatever fails after it (the model, the contract), the rows flagged for
    # crisis risk still get their resources, beside ``out``; a crisis answer needs no profile.
    frame = read_cohort(data)
    # a flag that cannot be read refuses the file, but its person gets the resources too
    possible = crisis_flags(frame, strict=False)
    with crisis_rows_kept(frame, possible, rules, out, nothing="nothing was scored"):
        crisis = crisis_flags(frame, where=str(data))
        # The catalog in force, as the service answers with: its arms alone are recommended,
        # to the people its rules offer them to; one the model never learnt is warned of (and
        # never recommended), as the service does; an arm it renamed is scored under its new
        # id with what the model learnt under the former one, and said so.
        loaded = model_in_force(model)
        recommendation_model = loaded.served
        report = validate_cohort(
            frame, training=False, extra_features=extra_features(recommendation_model)
        )
        if not report.ok:
            raise InputError(
                f"{data} does not meet the data contract:\n{report.format()}",
                problems=list(getattr(report, "errors", report.problems)),
            )
        # Crisis rows are never given to the model: their lines keep the id and the safety
        # columns, with no recommendation, judgement or figure, in columns that keep their types.
        scored = scored_table(
            recommendation_model,
            frame,
            crisis,
            rules,
            catalog=loaded.catalog,
            alpha=alpha,
            contributions=contributions,
            offered=offered,
            chunk_size=chunk_size,
            max_overlap=max_overlap,
        )
    # An earlier failed run's crisis file goes with this table's writing: it is not this table's.
    # A table the disk cannot hold still leaves the flagged rows their resources.
    with crisis_rows_kept(frame, crisis, rules, out, nothing="nothing was scored"):
        (path,) = write_cohorts({out: scored}, stale=[beside(out, "crisis")])
    # Every row counted, as batch-score counts them: the crisis rows complete the total.
    recommended = scored["recommended"].value_counts().to_dict()
    if crisis.any():
        recommended[None] = int(crisis.sum())
    arms = recommendation_model.recommendable_arms(offered=offered, catalog=loaded.catalog)
    return ScoreResult(
        path=path,
        rows=len(scored),
        model_uri=loaded.ref.uri,
        version=loaded.ref.version,
        arm_counts=recommendation_counts(recommended, arms),
        notes=model_notes(recommendation_model, loaded.renamed),
        catalog_version=loaded.catalog.version,
        catalog_sha256=loaded.catalog.sha256,
        warnings=[] if loaded.unlearnt is None else [loaded.unlearnt],
    )


@dataclass(frozen=True)
class ModelInForce:
    """A model as the catalog in force serves it (see :func:`model_in_force`).

    Attributes
    ----------
    learnt : RecommendationModel
        The model as it was learnt and registered (what a Spark worker is given).
    served : RecommendationModel or RenamedArms
        ``learnt`` under the ids of ``catalog`` (:func:`recommender.model.served_under`).
    catalog : Catalog
        The intervention catalog in force.
    ref : recommender.registry.ModelRef
        The model's URI, and its version when registered.
    renamed, unlearnt : str or None
        What to say of the arms ``catalog`` renamed, and of those the model never learnt.
    """

    learnt: object
    served: object
    catalog: object
    ref: object
    renamed: str | None = None
    unlearnt: str | None = None


def model_in_force(model: str, catalog=None) -> ModelInForce:
    """Load ``model`` (a URI, version or alias, see :func:`recommender.registry.resolve_model`)
    and meet it with ``catalog`` (default: the catalog in force, as the service reads it), as
    ``score`` and ``batch-score`` both do."""
    from recommender.catalog import load_catalog
    from recommender.model import arms_not_learnt, served_under
    from recommender.registry import load_model, resolve_model

    catalog = load_catalog() if catalog is None else catalog
    ref = resolve_model(model)
    learnt = load_model(ref.uri)
    served, renamed = served_under(learnt, catalog, version=ref.version)
    unlearnt = arms_not_learnt(served, catalog, version=ref.version)
    return ModelInForce(learnt, served, catalog, ref, renamed, unlearnt)


def scored_table(
    model,
    frame: pd.DataFrame,
    crisis,
    rules,
    *,
    catalog,
    alpha: float = 0.1,
    contributions: bool = False,
    offered=None,
    chunk_size: int = 50_000,
    max_overlap: float = 0.5,
) -> pd.DataFrame:
    """The scored table of validated rows ``frame``: the rows ``crisis`` does not flag ranked by
    ``model`` with ``catalog`` (the catalog in force, :func:`score_frame`), every row then
    triaged with the safety ``rules`` (:func:`recommender.policy.triaged_scores`): a flagged row
    gets the crisis resources and no recommendation, judgement or figure. ``score`` calls it on
    the whole file, ``batch-score`` on each Spark partition."""
    from recommender.policy import triaged_scores

    crisis = np.asarray(crisis, dtype=bool)
    scored = score_frame(
        model,
        frame.loc[~crisis],
        alpha=alpha,
        contributions=contributions,
        offered=offered,
        chunk_size=chunk_size,
        max_overlap=max_overlap,
        catalog=catalog,
    )
    return triaged_scores(scored, frame, rules, crisis)


def extra_features(model) -> list[str]:
    """The features ``model`` reads besides the data contract's profile columns (a program's
    own, named in the training config's ``extra_features``): a cohort file must have them."""
    return model.extra_features


def model_notes(model, renamed: str | None = None) -> list[str]:
    """What every scored file and plan says besides its figures: individual programs complement
    organisational change; the data the model learned from; the arms it gives one effect for
    everyone (read from the model's metadata, see :func:`recommender.model.model_facts`); and
    ``renamed``, the arms the catalog in force renamed (:func:`recommender.model.served_under`)."""
    from recommender.model import model_facts

    facts = model_facts(model)
    notes = ["individual programs complement organisational change; they do not replace it"]
    about = f" ({facts['data']})" if facts["data"] else ""
    notes.append(
        {
            "simulated": f"the model learned from SIMULATED data{about}: its effects show "
            "the method, not what the program's own people gain",
            "program": f"the model learned from the program's own data{about}",
            "evidence": f"the model learned from no data: its effects are published "
            f"trials' and reviews'{about}, not measured on the program's own people",
        }.get(facts["data_source"], "the data the model learned from is not recorded in it")
    )
    if facts["one_effect_arms"]:
        notes.append(
            "one effect for everyone (no measurable benefit in personalising): "
            + ", ".join(facts["one_effect_arms"])
        )
    if renamed is not None:
        notes.append(renamed)
    return notes


def service_settings(serve_config=None):
    """The service's settings (:func:`recommender.service.load_serve_config`): the same file
    the service reads (``serve_config``, else ``$RECOMMENDER_SERVE_CONFIG``, else the project's
    ``configs/serve.yaml``), checked the same way, so a table's safety columns, interval level
    and ``ranking_meaningful`` are those of the service's answers."""
    from recommender.service import load_serve_config

    return load_serve_config(serve_config)


def safety_rules(serve_config=None):
    """The safety rules of the service's ``serve.yaml`` (see :func:`service_settings`)."""
    return service_settings(serve_config).safety
