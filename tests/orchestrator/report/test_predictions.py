"""A run's per-example test predictions as the report reads them from MLflow: the ``index, label,
prediction`` columns of its CSV, downloaded once per run into the scratch folder; a run whose
artifact is missing, empty or lacks a column is an ``ArtifactError`` naming the run, the file and
the fix (the report's one line, exit 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from orchestrator.check.artifacts import ArtifactError
from orchestrator.report.predictions import Predictions
from orchestrator.tracking import names as tracking
from tests.orchestrator.report.store import make_store

CSV = "index,label,prediction,prob_positive\n7,1,1,0.9\n3,0,1,0.6\n12,1,0,0.2\n"


@pytest.fixture()
def store(tmp_path, empty_database):
    store = make_store(tmp_path / "mlflow", empty_database)
    store.client.create_experiment("s", artifact_location=(tmp_path / "artifacts").as_uri())
    return store


def _run(store, text: str | None) -> str:
    """A run whose predictions artifact holds ``text`` (``None``: no artifact)."""
    experiment = store.client.get_experiment_by_name("s").experiment_id
    run_id = store.client.create_run(experiment).info.run_id
    if text is not None:
        local = store.root / run_id / Path(tracking.PREDICTIONS_ARTIFACT).name
        local.parent.mkdir(parents=True)
        local.write_text(text)
        store.client.log_artifact(run_id, str(local), str(Path(tracking.PREDICTIONS_ARTIFACT).parent))
    return run_id


def test_the_three_columns_of_a_runs_csv_in_file_order(store, tmp_path):
    run_id = _run(store, CSV)
    frame = Predictions(store.client, tmp_path / "scratch").get(run_id)
    expected = pd.DataFrame({"index": [7, 3, 12], "label": [1, 0, 1], "prediction": [1, 1, 0]})
    pd.testing.assert_frame_equal(frame, expected)
    assert (tmp_path / "scratch" / run_id).is_dir()


@pytest.mark.parametrize("text, problem", [
    (None, "is missing"), ("", "is not a CSV file"), ("index,label\n1,0\n", "lacks the columns"),
    ("index;label;prediction\n1;0;0\n", "lacks the columns")])
def test_a_missing_empty_or_incomplete_artifact_is_one_line_naming_run_file_and_fix(store, tmp_path,
                                                                                      text, problem):
    run_id = _run(store, text)
    with pytest.raises(ArtifactError) as raised:
        Predictions(store.client, tmp_path / "scratch", "FIX").get(run_id)
    said, name = str(raised.value), store.client.get_run(run_id).info.run_name
    where = tmp_path / "artifacts" / run_id / "artifacts" / tracking.PREDICTIONS_ARTIFACT
    assert said.startswith(f"run {name} ({run_id}): test predictions {where} {problem}")
    assert said.endswith("; FIX") and "\n" not in said


def test_each_run_is_downloaded_once(store, tmp_path):
    first, second = _run(store, CSV), _run(store, CSV.replace("7,1,1", "7,1,0"))
    predictions = Predictions(store.client, tmp_path / "scratch")
    frame = predictions.get(first)
    shutil.rmtree(tmp_path / "artifacts")  # the store's artifacts gone: only the first is known
    assert predictions.get(first) is frame
    with pytest.raises(ArtifactError):
        predictions.get(second)
