"""A trial's MLflow run as its two writers fill it: the worker that trains the trial (:class:`RunLog`, rank 0
in ``trainers/runtime/worker.py``) and the driver that adopts a finished trial's folder into a run
(``orchestrator.tracking.runs.adopt_finished``). Both log an epoch only if the run lacks it
(:func:`logged_epochs`), attach the same files (:func:`log_results`) and log the student as an MLflow model
the same way (``trainers/record/model_log.py``), so a run reads the same whichever wrote it. It lives in
``trainers/`` because the workers use it and ``trainers/`` never imports ``orchestrator/``."""

from __future__ import annotations

import warnings
from pathlib import Path

from mlflow.entities import DatasetInput, InputTag, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from trainers.data.glue import Splits
from trainers.record.artifacts import (
    CONFIG_ARTIFACT,
    INT8_PREDICTIONS_ARTIFACT,
    MODEL_DIR_TAG,
    PREDICTIONS_ARTIFACT,
)
from trainers.record.model_log import log_model_and_finish

EPOCH_METRIC = "val_accuracy"  # logged every epoch (step = epoch): its steps are the epochs logged
SPLITS = ("train", "quiz", "validation", "test")
HUB_SOURCE = "https://huggingface.co/datasets/nyu-mll/glue"  # data.source "hub": GLUE's sst2
# MLflow's default is 10 s; a small trial lasts about a minute. $MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL
# overrides it.
SYSTEM_METRICS_INTERVAL_S = 5


def logged_epochs(client: MlflowClient, run_id: str) -> set[int]:
    """The epochs the run already holds: a restarted worker redoes an epoch its checkpoint
    missed, and a re-adopted folder repeats its whole history; neither may log one twice."""
    return {m.step for m in client.get_metric_history(run_id, EPOCH_METRIC)}


def log_results(client: MlflowClient, run_id: str, folder: Path) -> None:
    """A finished trial's ``config.json`` and test predictions, from its folder, as the run's
    artifacts (the predictions under ``predictions/``, where the report reads them); the int8
    variant's too, where the folder has them (one written before they were has not)."""
    client.log_artifact(run_id, str(folder / CONFIG_ARTIFACT))
    int8 = folder / Path(INT8_PREDICTIONS_ARTIFACT).name
    for path in (folder / Path(PREDICTIONS_ARTIFACT).name, *([int8] if int8.is_file() else [])):
        client.log_artifact(run_id, str(path), artifact_path=str(Path(PREDICTIONS_ARTIFACT).parent))


def log_environment(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    """The ``env.*`` tags of :func:`trainers.runtime.kernels.environment` on the run, in one call."""
    if tags:
        client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def split_inputs(splits: Splits, source: str) -> list[DatasetInput]:
    """A trial's four splits as MLflow dataset inputs (``<task>-train`` ... ``<task>-test``, e.g.
    ``sst2-train``, each tagged with its role as MLflow's dataset context), their texts (a pair
    task's second sentences as ``sentence2``) and labels giving the schema and row counts, and the
    split's fingerprint as the digest: two runs on the same split show the same datasets."""
    import pandas as pd
    from mlflow.data import from_pandas

    inputs = []
    for name in SPLITS:
        examples = getattr(splits, name)
        texts = {"sentence": list(examples.sentences)} if examples.second is None else {
            "sentence1": list(examples.sentences), "sentence2": list(examples.second)}
        frame = pd.DataFrame({"index": examples.ids, **texts, "label": examples.labels})
        with warnings.catch_warnings():
            # Two hints that do not apply: a local path is a "local artifact source" under two
            # registered schemes (the same class twice), and the integer columns have no gaps.
            warnings.simplefilter("ignore", UserWarning)
            dataset = from_pandas(frame, source=HUB_SOURCE if source == "hub" else source,
                                  targets="label", name=f"{splits.task.name}-{name}",
                                  digest=splits.fingerprint)
            entity = dataset._to_mlflow_entity()  # the schema is inferred here
        inputs.append(DatasetInput(entity, [InputTag(MLFLOW_DATASET_CONTEXT, name)]))
    return inputs


class RunLog:
    """The trial's MLflow run, continued by id: its splits, system metrics while it trains,
    per-epoch metrics, final metrics, artifacts and the student as an MLflow model."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.logged = logged_epochs(self.client, run_id)
        self.monitor = None

    def start_system_metrics(self) -> None:
        """CPU, memory, disk and network of the worker's machine (and its GPUs, where NVML finds
        any) as ``system/*`` metrics, MLflow's monitor sampling in a thread until :meth:`final`;
        a restarted worker continues the steps."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        self.monitor = SystemMetricsMonitor(self.run_id, sampling_interval=SYSTEM_METRICS_INTERVAL_S,
                                            resume_logging=True, tracking_uri=self.tracking_uri)
        self.monitor.start()

    def datasets(self, splits: Splits, source: str) -> None:
        """The splits the trial trains and is judged on (MLflow keeps one of each per run, so a
        restarted worker logging them again adds nothing)."""
        self.client.log_inputs(self.run_id, datasets=split_inputs(splits, source))

    def environment(self, tags: dict[str, str]) -> None:
        """What the trial's numbers depend on (``trainers/runtime/kernels.py``, ``env.*``): tags, not
        params, so that a worker restarted on another machine overwrites them with its own."""
        log_environment(self.client, self.run_id, tags)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        if epoch in self.logged:
            return
        for key, value in metrics.items():
            self.client.log_metric(self.run_id, key, value, step=epoch)
        self.logged.add(epoch)

    def backfill(self, history: list[dict[str, float]]) -> None:
        """After a restart: log the epochs the checkpoint holds but the run lost, so the metric
        history is continuous and nothing is logged twice."""
        for epoch, metrics in enumerate(history, start=1):
            self.epoch(epoch, metrics)

    def final(self, final: dict[str, float], folder: Path) -> None:
        """The final metrics, the folder's files, the student as an MLflow model; FINISHED."""
        if self.monitor is not None:
            self.monitor.finish()
        for key, value in final.items():
            self.client.log_metric(self.run_id, key, value)
        log_results(self.client, self.run_id, folder)
        self.client.set_tag(self.run_id, MODEL_DIR_TAG, str(folder))  # as the driver tags a run it adopts
        log_model_and_finish(self.tracking_uri, self.run_id, folder)
