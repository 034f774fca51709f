"""Multi-arm uplift learners (T, X, doubly robust) on LightGBM and scikit-learn.

``UpliftModel`` is the one estimator the project uses; ``doubly_robust_scores`` gives the
cross-fitted AIPW scores that evaluation and model selection rest on.
"""

from ._scores import doubly_robust_scores

__all__ = ["doubly_robust_scores"]
