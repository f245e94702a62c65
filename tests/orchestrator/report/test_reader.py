"""Reading a sweep from MLflow: a trial logged twice counts once; each run's last validation
value of each of its task's metrics (a search ranks by the main one); predict and the demo, which
read through this module only, load no plotting library."""

from __future__ import annotations

import json
import subprocess
import sys

from orchestrator import paths
from orchestrator.report.build import ReportResult
from orchestrator.report.reader import load_sweep
from orchestrator.tracking import names as tracking
from tests.orchestrator.report.store import Store, read_csv


def test_a_trial_logged_twice_counts_once(paper: ReportResult, store: Store) -> None:
    experiment = store.client.get_experiment_by_name("paper_mini")
    assert experiment is not None
    name = tracking.run_name("kd", "distilbert", ("bert",), 0.0, 0, 0)
    older, newer = store.client.search_runs([experiment.experiment_id],
                                            f"attributes.run_name = '{name}'",
                                            order_by=["attributes.start_time ASC"])
    used = set(read_csv(paper.out_dir / "runs.csv")["run_id"])
    assert newer.info.run_id in used and older.info.run_id not in used
    assert any(older.info.run_id in warning for warning in paper.warnings)


def test_a_run_keeps_each_validation_metric_of_its_task_at_its_last_epoch(tasks_store: Store) -> None:
    runs = load_sweep(tasks_store.client, "mrpc_mini").runs
    assert runs and all(run.task == "mrpc" for run in runs)
    for run in runs:  # store.log_run: 0.6 + 0.1·epoch − wrong/1000 at epochs 1–3 in every metric
        assert dict(run.last).keys() == {"train_loss", "val_accuracy", "val_f1"}
        assert run.last_value("val_f1") == run.last_value("val_accuracy") > 0.85  # 0.9 − wrong/1000


def test_predict_and_the_demo_load_no_plotting_and_no_table_code() -> None:
    """They read MLflow through the reader alone, and pick best runs by the task's metrics (the
    pandas-free ``metrics``). pandas is not asserted: ``import mlflow`` itself loads it (measured
    with mlflow 3.17); matplotlib and the report's pandas-using modules are."""
    code = ("import json, sys; import orchestrator.serve.predict, orchestrator.serve.demo; "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'matplotlib' "
            "or m.startswith(('matplotlib.', 'orchestrator.report')))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=paths.PROJECT_ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded == ["orchestrator.report", "orchestrator.report.best", "orchestrator.report.labels",
                      "orchestrator.report.metrics", "orchestrator.report.reader"]
