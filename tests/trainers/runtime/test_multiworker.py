"""Trials on more than one Ray Train worker: 2 CPU workers (gloo), each with half the global batch,
train as 1 worker with the whole global batch does: the same per-epoch train loss (and quiz loss)
within 1e-4 relative, for fine-tune, KD and MetaDistil.

Dropout is switched off in every model for this comparison: each worker draws its dropout masks
from its own generator, so with dropout on 2 workers train a different (equally valid) random
network than 1 worker, and only the sharding and the averaging would not be what is compared.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT, SST2
from trainers.config import DataConfig, TrainConfig

pytestmark = pytest.mark.system  # starts Ray, servers or a browser: `make test-fast` skips them

DATA = DataConfig(source=str(SST2), train_size=320, quiz_size=20, test_size=50, max_length=32)
COMMON = {"epochs": 2, "lr": 1e-3, "teacher_lr": 1e-4, "pilot_lr": 1e-3, "student": "tinybert"}
TRIALS = [TrainConfig(method="finetune", data=DATA, **COMMON),
          TrainConfig(method="kd", teachers=("bert",), data=DATA, **COMMON),
          TrainConfig(method="metadistil", teachers=("bert",), data=DATA, **COMMON)]
GLOBAL_BATCH = 32
COMPARED = ("train_loss", "quiz_loss")


def train_trials(config: dict) -> None:
    """Ray Train's loop per worker: each trial through ``trainers.engine.loop`` as ``worker.py`` runs it,
    without MLflow or storage; rank 0 writes every trial's history to ``config["out"]``."""
    import ray.train
    import ray.train.torch

    from trainers.engine.loop import Trial, run

    torch.set_num_threads(1)
    histories = {}
    for raw in config["trials"]:
        trial = Trial.build(TrainConfig.from_dict(raw), cache_dir=Path(config["cache"]),
                            device=ray.train.torch.get_device())
        for model in [trial.student.model, *(t.model for t in trial.teachers)]:
            for module in model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = 0.0
        result = run(trial, report=lambda *_: None, scratch_dir=Path(tempfile.mkdtemp()))
        histories[raw["method"]] = result.history
    if ray.train.get_context().get_world_rank() == 0:
        Path(config["out"]).write_text(json.dumps(histories))


def fit(workers: int, folder: Path) -> dict[str, list[dict[str, float]]]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    trials = [{**t.to_dict(), "batch_size": GLOBAL_BATCH // workers} for t in TRIALS]
    out = folder / f"histories-{workers}.json"
    TorchTrainer(train_trials,
                 train_loop_config={"trials": trials, "cache": str(folder / "cache"), "out": str(out)},
                 torch_config=TorchConfig(backend="gloo"),
                 scaling_config=ScalingConfig(num_workers=workers, resources_per_worker={"CPU": 1}),
                 run_config=RunConfig(name=f"workers-{workers}", storage_path=str(folder / "ray"))).fit()
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def histories(tmp_path_factory):
    import ray

    folder = tmp_path_factory.mktemp("multiworker")
    ray_tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=ray_tmp,
             log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(ROOT),
                                                            "HF_HUB_OFFLINE": "1"}})
    try:
        yield {workers: fit(workers, folder) for workers in (1, 2)}
    finally:
        ray.shutdown()


@pytest.mark.parametrize("method", ["finetune", "kd", "metadistil"])
def test_two_workers_train_as_one_with_the_same_global_batch(histories, method):
    one, two = histories[1][method], histories[2][method]
    assert len(one) == len(two) == COMMON["epochs"]
    for a, b in zip(one, two):
        for key in COMPARED:
            if key in a:
                assert abs(b[key] - a[key]) <= 1e-4 * abs(a[key]), (method, key, a[key], b[key])
    print(f"{method}: samples/s 1 worker {one[-1]['samples_per_s']:.0f}, "
          f"2 workers {two[-1]['samples_per_s']:.0f} ({os.cpu_count()} cores)")
