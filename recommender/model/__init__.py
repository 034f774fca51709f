"""The fitted recommendation bundle: one uplift model per outcome, the feature schema, the catalog version.

It knows nothing of MLflow; :mod:`recommender.registry` wraps it as a pyfunc model.
"""

from recommender.model._evidence import EvidenceEstimate, evidence_estimates, evidence_model
from recommender.model._facts import data_source, model_facts, one_effect_arms
from recommender.model._recommendation import RecommendationModel
from recommender.model._schema import feature_schema, frame_from_schema

__all__ = ["EvidenceEstimate", "RecommendationModel", "data_source", "evidence_estimates",
           "evidence_model", "feature_schema", "frame_from_schema", "model_facts",
           "one_effect_arms"]
