"""burnout-recommender: which wellness intervention is expected to help a clinician most.

Nothing happens on import; the sub-packages are imported where they are used.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
