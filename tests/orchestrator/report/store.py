"""A real MLflow store for the report's tests: a SQLite database and a file artifact root under
pytest's tmp_path, filled through the MLflow API with the tags, metrics and artifacts of
orchestrator.tracking.names. The fixtures built on it are in this package's conftest.py."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric

from orchestrator.tracking import names as tracking
from trainers.data.metrics import scores
from trainers.data.tasks import TASKS

N_TEST = 200
LABELS = np.arange(N_TEST) % 2
# The original work's models (DESIGN.md): its Times Smaller, 1.7× and 8.2×, comes from these.
# The pretrained MiniLM and its 2-layer cut, for sweeps of pretrained models.
PARAMS = {"bert": 109_483_778, "roberta": 124_647_170, "distilbert": 66_955_010,
          "tinybert": 14_350_874, "minilm": 22_713_986, "minilm@2": 15_616_130}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Spec:
    """One configuration; seed s gets the first ``wrong + s`` test examples wrong. ``None`` for
    ``noise_teachers``, ``meta_every`` or ``recipe``: no such tag, as in runs logged before them;
    for ``task``: no task tag, an SST-2 run. A task scored by more than accuracy (``mrpc``: F1,
    ``cola``: Matthews) gets the first ``wrong + s`` *positive* examples wrong instead (false
    negatives only, so that its main metric moves unlike accuracy) and logs each of its metrics."""

    method: str
    teachers: tuple[str, ...]
    student: str
    wrong: int
    noise_p: float = 0.0
    warmup_epochs: int = 0
    noise_teachers: bool | None = None
    meta_every: int | None = None
    recipe: str | None = None
    task: str | None = None


PAPER_SPECS = (
    Spec("finetune", (), "bert", 6),
    Spec("finetune", (), "roberta", 8),
    Spec("finetune", (), "distilbert", 14),
    Spec("kd", ("bert",), "distilbert", 20),
    Spec("metadistil", ("bert",), "distilbert", 10),
    Spec("metadistil", ("bert", "roberta"), "distilbert", 12),
    Spec("metadistil", ("bert",), "distilbert", 16, warmup_epochs=1),
    Spec("metadistil", ("bert", "roberta"), "distilbert", 24, noise_p=0.1),
)
# A sweep that never ran KD, with one seed each.
PARTIAL_SPECS = (
    Spec("finetune", (), "bert", 6),
    Spec("finetune", (), "distilbert", 14),
    Spec("metadistil", ("bert",), "distilbert", 10),
)

# Pair tasks scored by F1 first (MRPC), and CoLA by Matthews' correlation: the errors are false
# negatives (Spec), so F1 and Matthews move unlike accuracy. MRPC one seed, CoLA two.
MRPC_SPECS = tuple(Spec(s.method, s.teachers, s.student, s.wrong, task="mrpc") for s in (
    Spec("finetune", (), "bert", 6), Spec("finetune", (), "distilbert", 14),
    Spec("kd", ("bert",), "distilbert", 20), Spec("metadistil", ("bert",), "distilbert", 10)))
COLA_SPECS = tuple(Spec(s.method, s.teachers, s.student, s.wrong, task="cola") for s in MRPC_SPECS)


@dataclass(frozen=True)
class Store:
    uri: str
    client: MlflowClient
    root: Path


def make_store(root: Path, empty_database: Path) -> Store:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_database, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    return Store(uri, MlflowClient(tracking_uri=uri), root)


def add_sweep(store: Store, sweep: str, specs: tuple[Spec, ...], seeds: tuple[int, ...],
              parent_tags: dict[str, str]) -> str:
    """An experiment named after the sweep, a parent run, one FINISHED child run per trial."""
    experiment_id = store.client.create_experiment(
        sweep, artifact_location=(store.root / "artifacts" / sweep).as_uri())
    tags = {"kind": tracking.SWEEP_RUN_KIND, "sweep": sweep, **parent_tags}
    parent = store.client.create_run(experiment_id, run_name=sweep, tags=tags)
    for spec in specs:
        for seed in seeds:
            log_trial(store, experiment_id, parent.info.run_id, sweep, spec, seed, "FINISHED")
    store.client.set_terminated(parent.info.run_id)
    return experiment_id


def log_trial(store: Store, experiment_id: str, parent_id: str, sweep: str, spec: Spec,
              seed: int, status: str, stopped_at: int | None = None) -> str:
    values = {"sweep": sweep, "stage": "1" if spec.method == "finetune" else "2",
              "method": spec.method, "teachers": tracking.teachers_tag(spec.teachers),
              "student": spec.student, "size": "tiny", "noise_p": str(spec.noise_p),
              "warmup_epochs": str(spec.warmup_epochs), "seed": str(seed),
              "trial_key": f"{sweep}-{spec}-{seed}"}
    newer = {"noise_teachers": None if spec.noise_teachers is None else str(spec.noise_teachers).lower(),
             "meta_every": None if spec.meta_every is None else str(spec.meta_every),
             "recipe": spec.recipe, "task": spec.task}
    tags = ({key: values[key] for key in tracking.TAG_KEYS if key not in newer}
            | {key: value for key, value in newer.items() if value is not None}
            | {"mlflow.parentRunId": parent_id})
    name = tracking.run_name(spec.method, spec.student, spec.teachers, spec.noise_p,
                             spec.warmup_epochs, seed)
    return log_run(store, experiment_id, name, tags, spec.wrong + seed, status, stopped_at)


def log_run(store: Store, experiment_id: str, name: str, tags: dict[str, str], wrong: int, status: str,
            stopped_at: int | None = None) -> str:
    """One child run that gets the first ``wrong`` test examples wrong (of a ``task`` tag's task
    scored by more than accuracy: the first ``wrong`` positive ones), validation accuracy (and
    each ``val_<metric>`` of the task) 0.6 + 0.1·epoch − wrong/1000 at epochs 1–3, test scores
    ``test_<metric>``. ``stopped_at``: the scheduler stopped it after that epoch (KILLED,
    ``stopped_at_epoch``): no test, no predictions."""
    client = store.client
    if stopped_at is not None:
        tags = {**tags, "stopped_at_epoch": str(stopped_at), "stopped_by": "asha"}
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    metrics = TASKS[tags["task"]].metrics if "task" in tags else ("accuracy",)
    predictions = LABELS.copy()
    if metrics == ("accuracy",):
        predictions[:wrong] = 1 - predictions[:wrong]
    else:
        predictions = false_negatives(wrong)
    now = int(time.time() * 1000)
    per_epoch = [Metric(key, value, now, epoch) for epoch in range(1, (stopped_at or 3) + 1) for key, value in
                 (*((f"val_{m}", 0.6 + 0.1 * epoch - wrong / 1000) for m in metrics),
                  ("train_loss", 1 / epoch))]
    teachers = tags["teachers"].split("+") if tags["teachers"] else []
    tested = scores(metrics, predictions, LABELS, "test")
    final = {**tested, "student_params": PARAMS[tags["student"]],
             "teacher_params": max((PARAMS[t] for t in teachers), default=0)}
    if stopped_at is not None:
        for key in tested:
            final.pop(key)
    client.log_batch(run_id, metrics=per_epoch + [Metric(k, v, now, 0) for k, v in final.items()])
    if stopped_at is None:
        folder = store.root / "staging" / run_id
        folder.mkdir(parents=True)
        csv = folder / Path(tracking.PREDICTIONS_ARTIFACT).name
        pd.DataFrame({"index": np.arange(N_TEST), "label": LABELS, "prediction": predictions,
                      "prob_positive": predictions * 0.8 + 0.1}).to_csv(csv, index=False)
        client.log_artifact(run_id, str(csv), str(Path(tracking.PREDICTIONS_ARTIFACT).parent))
        client.log_dict(run_id, {"method": tags["method"], "seed": int(tags["seed"])},
                        tracking.CONFIG_ARTIFACT)
    client.set_terminated(run_id, status)
    return run_id


def false_negatives(wrong: int) -> np.ndarray:
    """The test predictions of a task-scored run that gets the first ``wrong`` positives wrong."""
    predictions = LABELS.copy()
    predictions[np.flatnonzero(LABELS == 1)[:wrong]] = 0
    return predictions


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def markdown_rows(path: Path) -> dict[str, list[str]]:
    """Method label → cells, for the data rows of a Markdown table file."""
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith("| *"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells
    return rows


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]
