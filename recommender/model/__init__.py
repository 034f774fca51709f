"""The fitted recommendation bundle: one uplift model per outcome, the feature schema, the catalog version.

It knows nothing of MLflow; :mod:`recommender.registry` wraps it as a pyfunc model. Requests are
encoded once (:meth:`RecommendationModel.encode`) and predicted and explained from that
encoding by the learners compiled into one pass (:class:`Prediction`).
"""

from recommender.model._prediction import Prediction
from recommender.model._recommendation import RecommendationModel
from recommender.model._schema import feature_schema, frame_from_schema

__all__ = ["Prediction", "RecommendationModel", "feature_schema", "frame_from_schema"]
