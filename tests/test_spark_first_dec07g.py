"""tests/spark_first.py: in an xdist worker, the modules with a Spark test come first, whole and
in their order; without xdist, pytest's order is left as it is."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from spark_first import pytest_collection_modifyitems


def _item(module: str, name: str, *fixtures: str):
    return SimpleNamespace(path=Path(module), name=name, fixturenames=list(fixtures))


def _collection():
    return [
        _item("test_a.py", "a1"),
        _item("test_b.py", "b1", "tmp_path"),
        _item("test_b.py", "b2", "spark", "tmp_path"),  # one Spark test moves the whole module
        _item("test_c.py", "c1"),
        SimpleNamespace(path=Path("doctests.py"), name="d1"),  # an item without fixtures
        _item("test_e.py", "e1", "trained", "spark"),
        _item("test_e.py", "e2"),
        _item("test_f.py", "f1"),
    ]


def test_in_a_worker_the_spark_modules_come_first_whole_and_in_order():
    items = _collection()
    pytest_collection_modifyitems(SimpleNamespace(workerinput={"workerid": "gw0"}), items)
    assert [item.name for item in items] == ["b1", "b2", "e1", "e2", "a1", "c1", "d1", "f1"]


def test_without_xdist_the_order_is_pytests():
    items = _collection()
    pytest_collection_modifyitems(SimpleNamespace(), items)
    assert items == _collection()


def test_a_collection_without_spark_keeps_its_order():
    items = [item for item in _collection() if "spark" not in getattr(item, "fixturenames", ())]
    before = list(items)
    pytest_collection_modifyitems(SimpleNamespace(workerinput={"workerid": "gw1"}), items)
    assert items == before
