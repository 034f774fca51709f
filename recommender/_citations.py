"""How a study is named in the catalog and the scenarios ("Dyrbye 2019", "Hoff & Lee 2021",
"Maslach and Jackson 1981", "West et al. 2016"): a source must name one, an assumption none."""

from __future__ import annotations

import re

__all__ = ["STUDY_CITATION"]

STUDY_CITATION = re.compile(
    r"\b[A-Z][A-Za-z'\-]+(?:,? (?:&|and) [A-Z][A-Za-z'\-]+| et al\.?)? (?:19|20)\d\d\b"
)
