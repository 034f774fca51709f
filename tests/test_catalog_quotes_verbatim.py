"""Every quotation in the intervention catalog is its source's text, word for word.

The rule: evidence is quoted exactly as the study reports it. Text the catalog puts in double
quotation marks (straight or curly, in any field) must appear verbatim, after whitespace is
normalised and nothing else, in the five source documents (``shared/evidence``), the design
notes (``shared/design``) or, for a study outside them, a passage copied from its abstract in
``tests/data/evidence_passages.md``. A quote with `` ... `` in it is checked part by part.

``shared`` is the folder beside the repository (CI clones the repository next to it).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import yaml

from recommender.paths import config_path

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared"
PASSAGES = HERE / "data" / "evidence_passages.md"

_QUOTE = re.compile(r'"([^"]+)"|\u201c([^\u201d]+)\u201d')
_ELLIPSIS = re.compile(r"\s*(?:\.\.\.|\u2026)\s*")


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _passages() -> list[tuple[str, str, str]]:
    """(heading, source line, passage) for each section of the fixture."""
    sections = re.split(r"^## ", PASSAGES.read_text(encoding="utf-8"), flags=re.M)[1:]
    found = []
    for section in sections:
        lines = section.splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Source:")), None)
        source = ""
        if start is not None:  # the Source: paragraph, up to the blank line
            end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
            source = " ".join(lines[start:end])
        quoted = "\n".join(line[2:] for line in lines if line.startswith("> "))
        found.append((lines[0].strip(), source, _normalised(quoted)))
    return found


@functools.cache
def _corpus() -> str:
    if not SHARED.is_dir():
        pytest.fail(f"the source documents are not at {SHARED} (CI clones the repo beside them)")
    files = sorted((SHARED / "evidence").glob("*.txt")) + sorted((SHARED / "design").glob("*.md"))
    texts = [path.read_text(encoding="utf-8") for path in files]
    texts += [passage for _, _, passage in _passages()]
    return "\n".join(_normalised(text) for text in texts)


def _strings(node, where: str):
    """Every string in the catalog with the path of the field that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            label = value.get("id") if isinstance(value, dict) and "id" in value else i
            yield from _strings(value, f"{where}[{label}]")
    elif isinstance(node, str):
        yield where, node


def catalog_quotes(catalog: dict) -> list[tuple[str, str]]:
    """(field, quoted part) for every quotation in the catalog, split at ellipses."""
    quotes = []
    for where, text in _strings(catalog, "catalog"):
        if where.endswith(".title"):
            continue  # a title is a name, not a quotation
        for straight, curly in _QUOTE.findall(_normalised(text)):
            for part in _ELLIPSIS.split(straight or curly):
                if part.strip(" .,;"):
                    quotes.append((where, part))
    return quotes


QUOTES = catalog_quotes(yaml.safe_load(config_path("interventions.yaml").read_text()))


def test_the_catalog_quotes_its_sources():
    # A floor so a parse that finds nothing cannot pass: the catalog quotes the five documents
    # (coaching's cost, the mentoring review's conclusion) and abstracts of other studies.
    assert len(QUOTES) >= 12
    fields = {where for where, _ in QUOTES}
    assert any("mentoring" in where for where in fields)
    assert any("leadership" in where for where in fields)


@pytest.mark.parametrize("where, quote", QUOTES, ids=[f"{w}: {q[:40]}" for w, q in QUOTES])
def test_every_quote_is_verbatim_in_a_source(where, quote):
    assert quote in _corpus(), (
        f"{where} quotes {quote!r}, which no source holds word for word (shared/evidence, "
        f"shared/design, {PASSAGES.relative_to(HERE.parent)}); quote the source exactly or "
        "drop the quotation marks"
    )


def test_a_one_character_change_is_caught():
    # The checker itself: the catalog's quote of the coaching cost is found, a one-character
    # change of it (or of a quote's punctuation) is not.
    corpus = _corpus()
    assert "around $1400/individual" in corpus
    assert "around $1401/individual" not in corpus
    assert "a growing database of quality studies affirm physician" not in corpus


def test_each_fixture_passage_says_where_it_came_from():
    passages = _passages()
    assert len(passages) >= 4
    for heading, source, passage in passages:
        assert re.search(r"\b(19|20)\d\d\b", heading), heading  # author and year
        assert "http" in source or "PubMed" in source, f"{heading}: no source given"
        assert len(passage) > 40, f"{heading}: no passage"
