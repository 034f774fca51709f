"""For the test suite's subprocesses only (tests/mlflow_template.py): when
RECOMMENDER_TEST_MLFLOW_TEMPLATE names a made MLflow store, MLflow's ``_initialize_tables``
copies it into a new empty SQLite store instead of running every migration. Nothing is
imported until MLflow's module is (a finder that waits for that one name)."""

import os
import sys

_TEMPLATE = os.environ.get("RECOMMENDER_TEST_MLFLOW_TEMPLATE")
_MODULE = "mlflow.store.db.utils"


class _AfterMlflowUtils:
    """Patches MLflow's store utilities right after they are executed."""

    def find_spec(self, name, path=None, target=None):
        if name != _MODULE:
            return None
        import importlib.util
        from pathlib import Path

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        execute = spec.loader.exec_module
        here = Path(__file__).resolve().parent.parent

        def exec_module(module):
            execute(module)
            found = importlib.util.spec_from_file_location(
                "_suite_mlflow_template", here / "mlflow_template.py"
            )
            template = importlib.util.module_from_spec(found)
            found.loader.exec_module(template)
            template.patch_module(module, Path(_TEMPLATE))

        spec.loader.exec_module = exec_module
        return spec


if _TEMPLATE:
    sys.meta_path.insert(0, _AfterMlflowUtils())
