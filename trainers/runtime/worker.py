"""The Ray Train adapter: runs one trial's loop inside a ``TorchTrainer`` worker (the only file in
``trainers/`` that knows Ray).

Every worker trains its shard; rank 0 also logs the trial's MLflow run (created by the driver and
passed in by id, so a restarted worker continues the same run instead of opening a new one),
reports a checkpoint per epoch to Ray Train, and at the end writes the finished trial's folder
(weights as safetensors, tokenizer, test predictions, ``result.json``) under the storage path. The
folder is written last and atomically: its ``result.json`` is what marks a trial as done.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import ray.train
import ray.train.torch
import torch

from trainers.config import TrainConfig
from trainers.data import tasks
from trainers.data.glue import Examples
from trainers.engine.loop import Trial, TrialResult, run
from trainers.models import prune
from trainers.models.compressed import int8_and_cost
from trainers.models.quantize import save_int8
from trainers.record.artifacts import (
    CONFIG_ARTIFACT,
    INT8_PREDICTIONS_ARTIFACT,
    MODEL_ARTIFACT_DIR,
    PREDICTIONS_ARTIFACT,
    RESULT_FILE,
)
from trainers.record.atomic import staged
from trainers.record.checkpoint import STATE
from trainers.record.model_log import set_labels
from trainers.record.run_log import RunLog
from trainers.runtime import kernels
from trainers.runtime.payload import TrialPayload

# Test hook: the worker exits once at this epoch (a marker file records that it happened, and where).
FAULT_EPOCH_ENV = "METADISTIL_FAULT_EPOCH"
FAULT_MARKER_ENV = "METADISTIL_FAULT_MARKER"


def train_loop_per_worker(payload: TrialPayload, entered_at: float) -> None:
    """Entry point given to ``TorchTrainer``; ``entered_at``: when the worker started this trial,
    before its imports."""
    imported_at = time.time()
    torch.set_num_threads(payload.resources.threads)
    config = payload.config
    rank = ray.train.get_context().get_world_rank()
    run_log = RunLog(payload.tracking_uri, payload.run_id) if rank == 0 else None
    trial = Trial.build(config, cache_dir=payload.layout.cache, device=ray.train.torch.get_device())
    # What the numbers depend on, as this worker saw it (torch has computed: its kernel path is set).
    environment = kernels.environment(kernels.teacher_folders(config.teachers, config.teacher_dirs))
    if run_log is not None:
        run_log.start_system_metrics()
        run_log.datasets(trial.splits, config.data.source)
        run_log.environment(environment)
    kept = getattr(trial.student.model.config, "kept_layers", None)
    if run_log is not None and kept:  # a student cut from a pretrained model: which layers it kept
        run_log.client.log_param(run_log.run_id, "student_kept_layers", ",".join(map(str, kept)))
    pruning = getattr(trial.student.model.config, "pruning", None)
    if run_log is not None and pruning:  # a pruned student: what each layer kept, and why
        for key, value in prune.summary(pruning).items():
            run_log.client.log_param(run_log.run_id, key, value)
        run_log.client.log_dict(run_log.run_id, pruning, prune.RECORD_ARTIFACT)
    scratch = Path(tempfile.mkdtemp(prefix="metadistil-"))

    def report(epoch: int, metrics: dict[str, float], folder: Path) -> None:
        ray.train.report({**metrics, "epoch": epoch},
                         checkpoint=ray.train.Checkpoint.from_directory(folder) if rank == 0 else None)
        shutil.rmtree(folder, ignore_errors=True)
        if run_log is not None:
            run_log.epoch(epoch, metrics)
        _maybe_fail(epoch, payload.name)

    checkpoint = ray.train.get_checkpoint()
    with checkpoint.as_directory() if checkpoint else nullcontext(None) as resume_dir:
        if resume_dir is not None and run_log is not None:
            history = json.loads((Path(resume_dir) / STATE).read_text())["history"]
            run_log.backfill(history)
        result = run(trial, report=report, scratch_dir=scratch,
                     resume_from=Path(resume_dir) if resume_dir else None)
    shutil.rmtree(scratch, ignore_errors=True)
    if rank == 0:
        timing = {"entered": entered_at, "imported": imported_at, "finished": time.time()}
        finish(result, payload, run_log, timing, environment)


def finish(result: TrialResult, payload: TrialPayload, run_log: RunLog | None,
           timing: dict[str, float], environment: dict[str, str] | None = None) -> None:
    """Write the trial's folder (atomically, last) and close its MLflow run; a cohort's trial also
    writes each peer's folder first (the driver closes their runs from them)."""
    for peer, peer_result in zip(payload.peers, result.peers):
        _write_folder(peer_result, payload.layout.model_dir(peer.key), peer.config, peer.key,
                      peer.name, peer.run_id, timing, environment, payload.layout.cache)
    folder = payload.layout.model_dir(payload.key)
    _write_folder(result, folder, payload.config, payload.key, payload.name, payload.run_id, timing,
                  environment, payload.layout.cache)
    if run_log is not None:  # after the folder: a crash in between is mended by the driver's adopt
        run_log.final(result.final, folder)


def _write_folder(result: TrialResult, folder: Path, config: TrainConfig, key: str, name: str,
                  run_id: str, timing: dict[str, float], environment: dict[str, str] | None,
                  cache: Path) -> None:
    set_labels(result.student.model.config, tasks.get(config.data.task).labels)
    # The int8 variant's test scores and both variants' cost (``trainers/models/compressed.py``) join the
    # final metrics: into result.json here, into the MLflow run by ``run_log.final`` after; the
    # int8 predictions go beside the fp32 ones, so that the two can be compared example by example.
    compressed = int8_and_cost(result.student, result.test, config.data.task,
                               max_length=config.data.max_length, cache_dir=cache,
                               batch_size=config.eval_batch_size)
    result.final.update(compressed.metrics)
    with staged(folder) as staging:
        result.student.model.save_pretrained(staging / MODEL_ARTIFACT_DIR)  # safetensors
        result.student.tokenizer.save_pretrained(staging / MODEL_ARTIFACT_DIR)
        # The int8 variant scored above, beside its config: predict and the demo load it from here.
        save_int8(compressed.model, staging / MODEL_ARTIFACT_DIR)
        _write_predictions(staging / Path(PREDICTIONS_ARTIFACT).name, result.test,
                           result.test_predictions, result.test_prob_positive)
        _write_predictions(staging / Path(INT8_PREDICTIONS_ARTIFACT).name, result.test,
                           compressed.predictions, compressed.prob_positive)
        config.save(staging / CONFIG_ARTIFACT)
        summary = {"key": key, "name": name, "run_id": run_id,
                   "final": result.final, "history": result.history,
                   # When the worker entered, finished importing and finished (a restarted worker:
                   # its last attempt), read by benchmarks/bench_sweep.py to split Ray's overhead.
                   "timing": timing,
                   # The worker's CPU, kernel path, versions and teachers (``trainers/runtime/kernels.py``):
                   # a run adopting this folder in another sweep tags them too.
                   "environment": environment or {}}
        (staging / RESULT_FILE).write_text(json.dumps(summary, indent=1))


def _write_predictions(path: Path, test: Examples, predictions: np.ndarray,
                       prob_positive: np.ndarray) -> None:
    rows = np.column_stack([test.ids, test.labels, predictions])
    with path.open("w") as handle:
        handle.write("index,label,prediction,prob_positive\n")
        for (index, label, prediction), prob in zip(rows.tolist(), prob_positive.tolist()):
            handle.write(f"{index},{label},{prediction},{prob:.6f}\n")


def _maybe_fail(epoch: int, trial_name: str) -> None:
    if os.environ.get(FAULT_EPOCH_ENV) != str(epoch):
        return
    try:  # exclusive create: of trials reaching the epoch together, exactly one crashes
        with Path(os.environ[FAULT_MARKER_ENV]).open("x") as marker:
            marker.write(json.dumps({"trial": trial_name, "epoch": epoch}))
    except FileExistsError:
        return
    os._exit(1)  # a hard crash, as an OOM kill or a lost node would be
