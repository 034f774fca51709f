"""The intervention catalog: the arms a program offers, as configuration.

Loaded from ``configs/interventions.yaml`` (see that file for the conventions). A program adds
or removes an arm by editing the YAML; :func:`load_catalog` checks it and names the entry and
field of every problem.
"""

from ._document import ASSUMED_EE_SD, CONVERSION_NOTE, cost_and_capacity, evidence_markdown
from ._load import catalog_sha256, load_catalog, parse_catalog
from ._model import Arm, Catalog, Complement, Eligibility, Evidence, Exclusion

__all__ = [
    "ASSUMED_EE_SD",
    "CONVERSION_NOTE",
    "cost_and_capacity",
    "evidence_markdown",
    "catalog_sha256",
    "load_catalog",
    "parse_catalog",
    "Catalog",
    "Arm",
    "Complement",
    "Eligibility",
    "Evidence",
    "Exclusion",
]
