"""Checks of one scenario field at a time: tags, numbers, shares, scores and mappings.

Every problem is recorded with its field path, the value and what is accepted; the caller
raises them all at once (:mod:`recommender.simulate._scenario_reader` walks the scenario's
sections with these checks). Every parameter must carry a tag (``source:`` a study, or
``assumption:`` a reason); see :mod:`recommender.simulate._scenario`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from recommender._citations import STUDY_CITATION
from recommender.simulate._scenario import SCORES, Correlations, ParameterTag, Scores

__all__ = ["FieldReader"]

_SHARE_SLACK = 1e-3  # shares written with two decimals may miss 1 by rounding
_TAG_KEYS = ("value", "source", "assumption", "note")
_UNTAGGED = object()


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))


def _has_tag(node) -> bool:
    if not isinstance(node, dict):
        return False
    return "value" in node or any(_has_tag(child) for child in node.values())


class FieldReader:
    """Reads one field at a time, recording every problem with its field path."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []
        self.tags: dict[str, ParameterTag] = {}

    # -- primitives ----------------------------------------------------------------------
    def problem(self, path: str, message: str):
        self.problems.append(f"field '{path}' {message}")
        return None

    # -- tags ----------------------------------------------------------------------------
    def param(self, reader):
        """Reader for a parameter: strip its tags (refusing an untagged one), then read it."""

        def read(node, path):
            plain = self.untag(node, path)
            return None if plain is _UNTAGGED else reader(plain, path)

        return read

    def untag(self, node, path: str):
        if isinstance(node, dict) and "value" in node:
            return self.tag(node, path)
        if isinstance(node, dict) and node and _has_tag(node):
            plain, complete = {}, True
            for key, child in node.items():
                plain[key] = self.untag(child, f"{path}.{key}")
                complete = complete and plain[key] is not _UNTAGGED
            return plain if complete else _UNTAGGED
        self.problem(
            path,
            "has no tag: write it as {value: ..., source: <a study, e.g. 'Dyrbye 2019'>} or "
            "{value: ..., assumption: <a one-line reason>}",
        )
        return _UNTAGGED

    def tag(self, node: dict, path: str):
        for key in node:
            if key not in _TAG_KEYS:
                self.problem(
                    f"{path}.{key}",
                    f"is not an accepted key of a tagged parameter; accepted: {', '.join(_TAG_KEYS)}",
                )
        kinds = [kind for kind in ("source", "assumption") if kind in node]
        if len(kinds) != 1:
            self.problem(
                path, "needs exactly one of 'source:' (a study) or 'assumption:' (a reason)"
            )
            return _UNTAGGED
        kind, text, note = kinds[0], node[kinds[0]], node.get("note", "")
        if not isinstance(text, str) or not text.strip() or "\n" in text.strip():
            self.problem(f"{path}.{kind}", f"must be one line of text, got {text!r}")
            return _UNTAGGED
        if not isinstance(note, str) or (note and kind != "source"):
            self.problem(f"{path}.note", "is one line of text, and only beside a 'source:'")
        cited = STUDY_CITATION.search(text)
        if kind == "source" and cited is None:
            self.problem(
                f"{path}.source",
                f"must name a study as 'Author Year' (e.g. 'Dyrbye 2019'), got {text!r}",
            )
        if kind == "assumption" and cited is not None:
            self.problem(
                f"{path}.assumption",
                f"names a study ({cited.group(0)!r}): an assumption never carries a study's "
                "name; tag the figure with 'source:' if it comes from the study",
            )
        self.tags[path] = ParameterTag(path, kind, text.strip(), str(note).strip(), node["value"])
        return node["value"]

    def mapping(self, node, path: str) -> dict | None:
        if not isinstance(node, dict):
            return self.problem(path, f"must be a mapping, got {node!r}")
        return node

    def number(
        self, value, path: str, *, lo=-math.inf, hi=math.inf, strict_lo=False
    ) -> float | None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            return self.problem(path, f"must be a finite number, got {value!r}")
        low_bad = value <= lo if strict_lo else value < lo
        if low_bad or value > hi:
            bracket = "(" if strict_lo else "["
            return self.problem(path, f"must be in {bracket}{lo}, {hi}], got {value!r}")
        return float(value)

    def keyed(self, node, path: str, allowed, reader, *, required=()) -> dict | None:
        node = self.mapping(node, path)
        if node is None:
            return None
        out = {}
        for key, value in node.items():
            if key not in allowed:
                self.problem(
                    f"{path}.{key}", f"is not an accepted key; accepted: {', '.join(allowed)}"
                )
                continue
            out[key] = reader(value, f"{path}.{key}")
        for key in required:
            if key not in node:
                self.problem(f"{path}.{key}", "is missing")
        return out

    def shares(self, node, path: str, allowed) -> dict | None:
        values = self.keyed(node, path, allowed, lambda v, p: self.number(v, p, lo=0.0, hi=1.0))
        if values is None or any(v is None for v in values.values()):
            return None
        total = sum(values.values())
        if not values or abs(total - 1.0) > _SHARE_SLACK:
            return self.problem(path, f"shares must sum to 1, they sum to {total:.4g}")
        return {key: value / total for key, value in values.items()}

    def scores(self, node, path: str) -> Scores | None:
        values = self.keyed(node, path, SCORES, lambda v, p: self.number(v, p), required=SCORES)
        if values is None or len(values) < 3 or any(v is None for v in values.values()):
            return None
        return Scores(**values)

    def correlations(self, node, path: str) -> Correlations | None:
        keys = ("ee_dp", "ee_pa", "dp_pa")
        values = self.keyed(
            node, path, keys, lambda v, p: self.number(v, p, lo=-0.99, hi=0.99), required=keys
        )
        if values is None or len(values) < 3 or any(v is None for v in values.values()):
            return None
        result = Correlations(**values)
        if np.linalg.eigvalsh(result.matrix()).min() <= 0:
            return self.problem(
                path, f"is not a valid correlation matrix (not positive definite): {values}"
            )
        return result

    def fields(
        self, node, path: str, spec: dict, *, optional: Mapping = MappingProxyType({})
    ) -> dict | None:
        """A mapping with exactly the keys of ``spec`` (key -> reader); ``optional`` gives defaults."""
        node = self.mapping(node, path or "<top level>")
        if node is None:
            return None
        for key in node:
            if key not in spec:
                self.problem(
                    f"{path}.{key}".lstrip("."),
                    f"is not an accepted field; accepted: {', '.join(spec)}",
                )
        out = {}
        for key, reader in spec.items():
            sub = f"{path}.{key}".lstrip(".")
            if key in node:
                out[key] = reader(node[key], sub)
            elif key in optional:
                out[key] = optional[key]
            else:
                out[key] = self.problem(sub, "is missing")
        return out

    def distribution(self, keys: dict):
        """Reader for {mean, sd, ...} with per-key bounds."""

        def read(node, path):
            return self.fields(
                node,
                path,
                {
                    k: (lambda v, p, b=b: self.number(v, p, lo=b[0], hi=b[1]))
                    for k, b in keys.items()
                },
            )

        return read
