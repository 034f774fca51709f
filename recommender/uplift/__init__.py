"""Multi-arm uplift learners (T, X, doubly robust) on LightGBM and scikit-learn.

``UpliftModel`` is the one estimator the project uses: each non-control arm's effect versus
control per person (``predict_effect``), an interval (``predict_interval``) and exact additive
per-feature reasons (``contributions``). ``doubly_robust_scores`` gives the cross-fitted AIPW
scores that evaluation and model selection rest on. ``GBMSpec``, ``RidgeSpec`` and
``LogLinearSpec`` describe candidate regressors for the ``outcome_candidates`` and
``final_candidates`` parameters. ``compile_effects`` turns fitted learners into one
prediction pass for every outcome, arm and fold (the served form). ``PoorOverlapWarning`` is
what a fit or the scores warn when estimated propensities are clipped, naming arms and rows;
``ConstantFeatureWarning`` what a fit warns of features with one value in every row.
``SEED_LIMIT`` bounds ``random_state`` (seeds from 0 to ``SEED_LIMIT - 1``), for callers that
check a seed from a file before any fit starts.
"""

from ._checks import SEED_LIMIT, ConstantFeatureWarning
from ._compiled import CompiledEffects, compile_effects
from ._linear import LogLinearSpec, RidgeSpec
from ._model import UpliftModel
from ._propensity import PoorOverlapWarning
from ._regressors import GBMSpec
from ._scores import doubly_robust_scores

__all__ = [
    "UpliftModel",
    "doubly_robust_scores",
    "PoorOverlapWarning",
    "ConstantFeatureWarning",
    "GBMSpec",
    "RidgeSpec",
    "LogLinearSpec",
    "CompiledEffects",
    "compile_effects",
    "SEED_LIMIT",
]
