"""The sweep beyond one machine, with real components on this host: PostgreSQL, an MLflow tracking
server on it that serves the artifacts, a two-node Ray cluster started with ``ray start`` and token
auth, and the sweep submitted to it as a Ray job, as docker/compose.yaml runs them.

One sweep for the whole file (about 2 minutes on 2 cores): two fine-tune trials whose workers ask
0.6 CPU each on nodes of 1 CPU, so no node fits both and they must train on different nodes. Every
process the file starts lives under one temp folder and is stopped by it (tests/servers.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

import mlflow.artifacts
import pytest
import yaml
from mlflow.tracking import MlflowClient

from orchestrator.check.storage import FIX
from orchestrator.paths import PROJECT_ROOT
from tests.servers import (
    BIN,
    Database,
    RayCluster,
    Server,
    kill_under,
    mlflow_server,
    postgres,
    postgres_bin,
    ray_cluster,
)

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

SPACE = {
    "name": "cluster",
    "seeds": [0],
    "data": {"train_size": 300, "quiz_size": 20, "test_size": 100, "max_length": 32},
    "train": {"epochs": 1, "lr": 5.0e-4, "batch_size": 32},
    "grid": [{"methods": ["finetune"], "students": ["tinybert", "distilbert"]}],
    # 0.6 + 0.6 > 1: a 1-CPU node fits one trial's worker at a time.
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 0.6},
}
JOB_TIMEOUT_S = 480


@dataclass
class Stack:
    root: Path
    database: Database
    tracking: Server
    cluster: RayCluster
    job: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def stack() -> Stack:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries missing (apt-get install postgresql; make test does)")
    # Short (Ray's socket paths live under it) and traversable by the postgres user.
    root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    root.chmod(0o711)
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        stack.callback(kill_under, root)  # last resort: the sweep's driver, any straggler
        database = stack.enter_context(postgres(root / "pg"))
        tracking = stack.enter_context(mlflow_server(root / "mlflow", database.uri))
        # The dashboard's Train view (and this test) needs Ray Train's state tracking.
        cluster = stack.enter_context(ray_cluster(root, cpus=[1, 1], env={
            "RAY_TRAIN_ENABLE_STATE_TRACKING": "1", "HF_HUB_OFFLINE": "1"}))
        tracking.wait_ready("/health")
        (root / "store").mkdir()
        (root / "space.yaml").write_text(yaml.safe_dump(SPACE))
        job = subprocess.run(
            [str(BIN / "ray"), "job", "submit", "--address", cluster.dashboard_url,
             "--submission-id", "cluster-test", "--",
             sys.executable, "-m", "orchestrator.sweep", "--space", str(root / "space.yaml"),
             "--address", "auto", "--tracking-uri", tracking.url, "--storage", str(root / "store"),
             "--no-report"],
            env=cluster.env, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
        yield Stack(root, database, tracking, cluster, job)


def trial_runs(stack: Stack) -> list:
    client = MlflowClient(stack.tracking.url)
    experiment = client.get_experiment_by_name("cluster")
    return client.search_runs([experiment.experiment_id], "tags.trial_key != ''")


def test_the_job_ran_the_sweep(stack):
    out = stack.job.stdout + stack.job.stderr
    assert stack.job.returncode == 0, out[-5000:]
    assert "Job 'cluster-test' succeeded" in out
    assert "2 trials: 2 trained, 0 reused, 0 failed" in out


def test_the_trials_trained_on_both_nodes(stack):
    """Ray Train's own record of each trial's run (named by its content key): the node of its
    worker. One trial per node, and both nodes of the cluster used."""
    runs = stack.cluster.api("/api/train/v2/runs/v1")["train_runs"]
    nodes = {run["name"]: {w["node_id"] for attempt in run["attempts"] for w in attempt["workers"]}
             for run in runs}
    keys = {run.data.tags["trial_key"] for run in trial_runs(stack)}
    assert set(nodes) == keys and len(keys) == 2
    assert all(len(used) == 1 for used in nodes.values())
    assert set().union(*nodes.values()) == set(stack.cluster.node_ids)
    print(f"\ntrial → node: {({key: next(iter(used))[:12] for key, used in nodes.items()})}")


def test_every_trial_finished_in_the_tracking_server(stack, tmp_path):
    """Runs, metrics and artifacts through the server over HTTP; the artifacts were uploaded by
    the workers through the server (mlflow-artifacts:/), which keeps them in its own folder."""
    client = MlflowClient(stack.tracking.url)
    runs = trial_runs(stack)
    assert sorted(r.info.run_name for r in runs) == ["distilbert__finetune__seed0",
                                                     "tinybert__finetune__seed0"]
    (parent,) = client.search_runs([runs[0].info.experiment_id], "tags.kind = 'sweep'")
    assert parent.info.status == "FINISHED"
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        assert {"config.json", "predictions"} <= {
            a.path for a in client.list_artifacts(run.info.run_id)}
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        config = json.loads(
            Path(client.download_artifacts(run.info.run_id, "config.json", str(folder))).read_text())
        assert config["student"] == run.data.tags["student"]
        [output] = run.outputs.model_outputs  # the student as an MLflow model, on the server
        location = client.get_logged_model(output.model_id).artifact_location
        model = Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(folder),
                                                         tracking_uri=client.tracking_uri))
        assert (model / "model" / "model.safetensors").stat().st_size > 100_000
        predictions = client.download_artifacts(run.info.run_id, "predictions/test_predictions.csv",
                                                str(folder))
        assert len(Path(predictions).read_text().splitlines()) == 101
    stored = list((stack.root / "mlflow" / "artifacts").rglob("model.safetensors"))
    assert len(stored) == 2


def test_the_backend_store_is_postgresql(stack):
    """The runs are rows of the PostgreSQL database, not a file beside the server."""
    import psycopg2

    with closing(psycopg2.connect(stack.database.admin_dsn)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT r.name, r.status FROM runs r JOIN experiments e "
                       "ON r.experiment_id = e.experiment_id WHERE e.name = 'cluster' ORDER BY r.name")
        rows = cursor.fetchall()
    assert rows == [("cluster", "FINISHED"), ("distilbert__finetune__seed0", "FINISHED"),
                    ("tinybert__finetune__seed0", "FINISHED")]


def test_the_report_regenerates_from_the_server(stack, tmp_path):
    out = tmp_path / "report"
    done = subprocess.run([sys.executable, "-m", "orchestrator.report", "--tracking-uri", stack.tracking.url,
                           "--sweep", "cluster", "--report-dir", str(out)],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    table1 = (out / "table1.md").read_text()
    assert "| TinyBERT (fine-tuned) | " in table1 and "| DistilBERT (fine-tuned) | " in table1
    run_ids = {r.info.run_id for r in trial_runs(stack)}
    assert all(run_id in (out / "runs.csv").read_text() for run_id in run_ids)


def test_the_dashboard_asks_for_the_token(stack):
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.cluster.dashboard_url}/api/v0/nodes", timeout=30)
    assert refused.value.code == 401


def test_a_node_that_cannot_see_the_storage_stops_the_sweep(stack):
    """A third node whose view of the storage path is its own empty folder (a tmpfs mounted over
    it in a private mount namespace: what a node-local path on another machine looks like). The
    sweep, attached by the GCS address, must stop before any trial with exit code 2 and one line
    naming the storage, that node and the fix. Runs last: it changes the module's cluster."""
    store = stack.root / "store"
    private = ("unshare", "--mount", "--propagation", "private",
               "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(store))
    if subprocess.run([*private, "true"], capture_output=True).returncode != 0:
        pytest.skip("no private mount namespaces here (unshare needs CAP_SYS_ADMIN)")
    blind = stack.cluster.start_node(0, wrapper=private)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.sweep", "--space", str(stack.root / "space.yaml"),
         "--address", stack.cluster.gcs_address, "--tracking-uri", stack.tracking.url,
         "--storage", str(store), "--no-report"],
        env=stack.cluster.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, (done.stdout + done.stderr)[-3000:]
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert f"storage {store} is not shared: Ray node {blind[:12]}" in line
    assert "cannot see the driver's probe file" in line and FIX in line
    assert not list(store.glob(".shared-probe-*"))  # the probe files are cleaned up
