"""The default places: everything under the project's results/ folder; a SQLite store keeps its
artifacts beside its database, a tracking server decides for itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import paths
from orchestrator.spec import load_spec


def test_the_defaults_lie_in_the_projects_results_folder():
    assert (paths.PROJECT_ROOT / "orchestrator" / "paths.py").is_file()
    assert paths.RESULTS_DIR == paths.PROJECT_ROOT / "results"
    assert paths.DEFAULT_STORAGE.is_relative_to(paths.RESULTS_DIR)
    assert paths.DEFAULT_TRACKING_URI == f"sqlite:///{paths.RESULTS_DIR}/mlflow.db"
    assert load_spec(paths.DEFAULT_SPACE).name == "smoke"  # the default space is shipped and valid


@pytest.mark.parametrize("uri, expected", [
    (paths.DEFAULT_TRACKING_URI, paths.RESULTS_DIR / "mlartifacts"),
    ("sqlite:////tmp/sweeps/mlflow.db", Path("/tmp/sweeps/mlartifacts")),
    ("sqlite:///runs.db", Path("mlartifacts")),
    ("http://127.0.0.1:5000", None),
    ("postgresql://mlflow@db/mlflow", None),
])
def test_a_sqlite_store_keeps_its_artifacts_beside_the_database(uri, expected):
    assert paths.artifact_root(uri) == expected
