"""The Tune trial: a function trainable that builds and fits one Ray Train ``TorchTrainer``.

Ray 2.60 runs Train V2, where a Trainer cannot be handed to the Tuner; the pattern is a Tune
function that fits the trainer, with ``TuneReportCallback`` forwarding each epoch's report to Tune.
The trainer's run is named after the trial's content key under the sweep's storage, so a trial
restarted by a re-run sweep resumes from its last epoch checkpoint (Train V2 picks it up by name).
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import ray.train
from ray.train import CheckpointConfig, FailureConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from trainers.runtime.kernels import pin_env
from trainers.runtime.payload import TrialPayload


def train_loop(payload: TrialPayload) -> None:
    """What each Ray Train worker runs. Imported there, not here: this wrapper process only waits
    on its trainer, and loading torch, transformers and MLflow into it would cost every trial
    seconds of start-up on a small machine."""
    entered_at = time.time()
    from trainers.runtime.worker import train_loop_per_worker

    train_loop_per_worker(payload, entered_at)


def run_trial(config: dict[str, Any], payloads: dict[str, TrialPayload]) -> None:
    """Tune calls this with ``{"name": run name}``, the name of one of ``payloads``, or with
    ``{"name", "payload"}`` for a trial an Optuna search made while the stage ran
    (``optuna_search.StageSearch``); the payload holds the trial's whole setup."""
    payload = config["payload"] if "payload" in config else payloads[config["name"]]
    resources = payload.resources
    use_gpu = resources.gpus_per_worker > 0
    per_worker = {"CPU": resources.cpus_per_worker}
    if use_gpu:
        per_worker["GPU"] = resources.gpus_per_worker
    trainer = TorchTrainer(
        # The payload is bound here rather than passed as ``train_loop_config``, which Ray Train
        # wants to be a dict: it reaches each worker as the typed object the driver built.
        functools.partial(train_loop, payload),
        scaling_config=ScalingConfig(num_workers=resources.workers, use_gpu=use_gpu,
                                     resources_per_worker=per_worker),
        run_config=ray.train.RunConfig(
            name=payload.key,
            storage_path=str(payload.layout.ray),
            callbacks=[TuneReportCallback()],
            failure_config=FailureConfig(max_failures=resources.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            # Read by torch, MKL and oneDNN when they first compute: set before the worker starts.
            worker_runtime_env={"env_vars": pin_env(resources.kernels)},
        ),
    )
    started = time.time()
    trainer.fit()
    # The trial as Tune sees it, Ray Train's start-up and tear-down included: read by
    # benchmarks/bench_sweep.py to split a sweep's time into training and Ray overhead.
    ended = time.time()
    payload.layout.trial_time_file(payload.key).write_text(
        json.dumps({"wall_s": ended - started, "fit_started": started, "fit_ended": ended}))
