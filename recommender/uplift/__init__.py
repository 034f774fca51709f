"""Multi-arm uplift learners (T, X, doubly robust) on LightGBM and scikit-learn.

``UpliftModel`` is the one estimator the project uses; ``doubly_robust_scores`` gives the
cross-fitted AIPW scores that evaluation and model selection rest on.
"""

from ._model import UpliftModel
from ._regressors import GBMSpec, RidgeSpec
from ._scores import doubly_robust_scores

__all__ = ["UpliftModel", "doubly_robust_scores", "GBMSpec", "RidgeSpec"]
