"""Every package imports the others by their public names, never their ``_private`` modules.

A private module is free to move (the modules past 500 lines were split, and will be again);
an import that reaches into another package's private module would break silently when it does.
The check reads the source (nothing is imported) of the library and the pipelines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "recommender").rglob("*.py"), *(ROOT / "pipelines").rglob("*.py")])


def _owner(path: Path) -> tuple[str, ...]:
    """The package a file belongs to: ``("recommender", "service")`` or ``("pipelines",)``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[:2] if parts[0] == "recommender" and len(parts) > 2 else parts[:1]


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def private_imports(source: str, owner: tuple[str, ...]) -> list[str]:
    """``line: module`` for each import, in ``source`` of package ``owner``, of a private
    module of another package (ours or a third party's)."""
    problems = []
    for line, module in _imported_modules(ast.parse(source)):
        parts = module.split(".")
        if not any(part.startswith("_") and part != "__future__" for part in parts):
            continue
        package = tuple(parts[:2]) if parts[0] == "recommender" else tuple(parts[:1])
        shared = parts[0] == owner[0] == "recommender" and len(parts) == 2  # recommender._json
        if package == owner or shared:
            continue  # the package's own private modules, or the library's shared ones
        problems.append(f"{line}: {module}")
    return problems


def test_the_check_flags_only_other_packages_private_modules():
    source = (
        "from __future__ import annotations\n"
        "from recommender.cohort._contract import RANGES\n"
        "from recommender.service._audit import AuditLog\n"
        "import recommender.service._engine\n"
        "from recommender.cohort import RANGES\n"
        "from recommender._json import dumps\n"
        "from sklearn.utils._param_validation import Interval\n"
        "import numpy as np\n"
    )
    assert private_imports(source, ("recommender", "service")) == [
        "2: recommender.cohort._contract",
        "7: sklearn.utils._param_validation",
    ]
    assert private_imports(source, ("pipelines",)) == [
        "2: recommender.cohort._contract",
        "3: recommender.service._audit",
        "4: recommender.service._engine",
        "6: recommender._json",
        "7: sklearn.utils._param_validation",
    ]
    assert _owner(ROOT / "recommender" / "service" / "_engine.py") == ("recommender", "service")
    assert _owner(ROOT / "pipelines" / "_train_evidence.py") == ("pipelines",)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_other_packages_by_public_names(path):
    assert private_imports(path.read_text(), _owner(path)) == [], (
        f"{path.relative_to(ROOT)} imports another package's private module; "
        "import the name from the package (add it to its __all__ if it belongs to the surface)"
    )
