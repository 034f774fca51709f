"""Every package uses the others by their public names, never their ``_private`` ones.

A private module or name is free to move or change (the modules past 500 lines were split, and
will be again; a library's private helpers change between its releases); code that reaches into
another package's would break silently when it does. The check reads the source (nothing is
imported) of the library, the pipelines and the benchmarks, and flags, for a package other than
the file's own (ours or a third party's, the standard library included):

- an import of a private module (``from sklearn.utils._param_validation import Interval``);
- an import of a private name (``from lightgbm.basic import _ConfigAliases``);
- an attribute that is private, reached from an imported name (``lgb.basic._ConfigAliases``,
  ``np.core._x``), or asked of one with ``getattr`` and a literal name.

Dunder names (``__version__``, ``__file__``) are public. The benchmarks use the anchors they
measure against (EconML, CausalML, FastAPI...) by those libraries' public API only, too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# bench/out/ (ignored by git) holds the benchmarks' trained models, whose MLflow artifacts carry
# a copy of the package's code as it was: not the sources under test.
SOURCES = sorted(
    path
    for folder in ("recommender", "pipelines", "bench")
    for path in (ROOT / folder).rglob("*.py")
    if not path.is_relative_to(ROOT / "bench" / "out")
)

# Benchmarks that measure a private mechanism of the library itself, and so must reach it: the
# interval studies replay and patch (mock.patch.object on the module) the interval rules of
# recommender.uplift; the allocation benchmark times the program's LP bound and MILP, which
# plan_allocation runs inside. They may read those packages' private modules, nothing else's.
WHITE_BOX = {
    "bench/interval_*.py": ("recommender", "uplift"),
    "bench/allocate.py": ("recommender", "policy"),
}

# Underscored names the standard library documents as public: os._exit ("the standard way to
# exit a child process after fork"), sys._getframe.
DOCUMENTED = {("os", "_exit"), ("sys", "_getframe")}


def _owner(path: Path) -> tuple[str, ...]:
    """The package a file belongs to: ``("recommender", "service")``, ``("pipelines",)`` or
    ``("bench",)``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[:2] if parts[0] == "recommender" and len(parts) > 2 else parts[:1]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _package(parts: list[str]) -> tuple[str, ...]:
    return tuple(parts[:2]) if parts[0] == "recommender" else tuple(parts[:1])


def _others(parts: list[str], owner: tuple[str, ...]) -> bool:
    """Whether the module ``parts`` belongs to a package other than ``owner``'s: the
    library's shared modules (``recommender._json``) are every library package's own."""
    shared = parts[0] == owner[0] == "recommender" and len(parts) <= 2
    return _package(parts) != owner and not shared


def _bound(tree: ast.AST, owner: tuple[str, ...]) -> dict[str, str]:
    """The names imports bind to another package's module or object: local name -> dotted
    path (``{"lgb": "lightgbm", "norm": "scipy.stats.norm"}``)."""
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:  # ``import a.b`` binds ``a``
                    bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return {k: v for k, v in bound.items() if _others(v.split("."), owner)}


def _dotted(node: ast.AST) -> list[str] | None:
    """``["lgb", "basic", "_ConfigAliases"]`` for ``lgb.basic._ConfigAliases``; None when the
    chain does not start at a plain name (a call's result, a subscript)."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(names)]


def private_uses(source: str, owner: tuple[str, ...]) -> list[str]:
    """``line: what`` for each use, in ``source`` of package ``owner``, of another package's
    private module or name."""
    tree = ast.parse(source)
    bound = _bound(tree, owner)
    problems = []

    def flag(line: int, dotted: str) -> None:
        parts = dotted.split(".")
        first = next((i for i, part in enumerate(parts) if _private(part)), None)
        if first is None or not _others(parts, owner):
            return
        if (".".join(parts[:first]), parts[first]) not in DOCUMENTED:
            problems.append(f"{line}: {dotted}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                flag(node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            private_module = any(_private(part) for part in node.module.split("."))
            if private_module:
                flag(node.lineno, node.module)
            else:
                for alias in node.names:
                    flag(node.lineno, f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Attribute):
            chain = _dotted(node)
            if chain and chain[0] in bound and _private(chain[-1]):
                flag(node.lineno, ".".join([bound[chain[0]], *chain[1:]]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            chain = _dotted(node.args[0])
            if chain and chain[0] in bound:
                flag(node.lineno, ".".join([bound[chain[0]], *chain[1:], node.args[1].value]))
    return sorted(set(problems), key=lambda said: (int(said.split(":")[0]), said))


def test_the_check_flags_other_packages_private_modules_and_names():
    source = (
        "from __future__ import annotations\n"  # 1
        "from recommender.cohort._contract import RANGES\n"  # 2: a private module
        "from recommender.service._audit import AuditLog\n"  # 3: own private module
        "import recommender.service._engine\n"  # 4: own private module
        "from recommender.cohort import RANGES\n"  # 5
        "from recommender._json import dumps\n"  # 6: the library's shared module
        "from sklearn.utils._param_validation import Interval\n"  # 7
        "import numpy as np\n"  # 8
        "import lightgbm as lgb\n"  # 9
        "import mlflow.tracking\n"  # 10
        "from lightgbm.basic import _ConfigAliases\n"  # 11: a private name
        "from recommender.uplift import _checks, GBMSpec\n"  # 12: a private name
        "from recommender.service import _engine\n"  # 13: own
        "aliases = lgb.basic._ConfigAliases.get('seed')\n"  # 14
        "np.core._x(1)\n"  # 15
        "mlflow.tracking._y\n"  # 16
        "lgb.__version__, np.__file__, lgb.Booster\n"  # 17: dunders and public names
        "getattr(lgb.basic, '_LIB')\n"  # 18
        "getattr(lgb, 'Booster')\n"  # 19
        "import os, sys\n"  # 20
        "os._exit(0), sys._getframe(), sys._current_frames()\n"  # 21
        "model = lgb.Booster()\n"  # 22
        "model._private, GBMSpec()._x, self._y\n"  # 23: not reached from an import
        "RANGES._z\n"  # 24: an imported object's private attribute
    )
    everyones = [  # another package's, whoever reads them
        "2: recommender.cohort._contract",
        "7: sklearn.utils._param_validation",
        "11: lightgbm.basic._ConfigAliases",
        "12: recommender.uplift._checks",
        "14: lightgbm.basic._ConfigAliases",
        "15: numpy.core._x",
        "16: mlflow.tracking._y",
        "18: lightgbm.basic._LIB",
        "21: sys._current_frames",
        "24: recommender.cohort.RANGES._z",
    ]
    assert private_uses(source, ("recommender", "service")) == everyones
    services = ["3: recommender.service._audit", "4: recommender.service._engine"]
    services += ["6: recommender._json", "13: recommender.service._engine"]
    by_line = lambda said: int(said.split(":")[0])  # noqa: E731
    assert private_uses(source, ("pipelines",)) == sorted(everyones + services, key=by_line)
    # the benchmarks: the anchors' private names too, and their own private modules pass
    bench = (
        "import econml._ortho_learner\nfrom bench._data import cohort\nfrom bench import _report\n"
    )
    assert private_uses(bench, ("bench",)) == ["1: econml._ortho_learner"]
    assert _owner(ROOT / "recommender" / "service" / "_engine.py") == ("recommender", "service")
    assert _owner(ROOT / "pipelines" / "_train_evidence.py") == ("pipelines",)
    assert _owner(ROOT / "bench" / "_anchors.py") == ("bench",)
    assert _measured(ROOT / "bench" / "interval_rules.py") == ("recommender", "uplift")
    assert _measured(ROOT / "bench" / "learners.py") is None


def _measured(path: Path) -> tuple[str, ...] | None:
    relative = path.relative_to(ROOT)
    return next((pkg for pattern, pkg in WHITE_BOX.items() if relative.match(pattern)), None)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_uses_other_packages_by_public_names(path):
    measured = _measured(path)
    uses = private_uses(path.read_text(), _owner(path))
    if measured:
        uses = [u for u in uses if _package(u.split(": ")[1].split(".")) != measured]
    assert uses == [], (
        f"{path.relative_to(ROOT)} uses another package's private module or name; use the "
        "package's public name (add it to its __all__ if it belongs to the surface)"
    )
