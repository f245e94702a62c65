"""The Tune trial, without a Ray cluster: how a payload becomes a ``TorchTrainer`` (the real one,
built and validated; only its ``fit``, which would start Ray, is replaced) with the trial's
workers, CPUs, GPUs and retries, named by its content key under the sweep's storage so that a
re-run resumes it; what each worker then runs; and the timing file written after the fit. The rest
of this module is Ray's own machinery (the sweep's system tests run it); Tune's report callback,
which refuses to exist outside a Tune session, is stubbed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ray.train.torch import TorchTrainer
from ray.tune.integration.ray_train import TuneReportCallback

from orchestrator.run import trainable
from tests.conftest import SST2
from trainers.config import DataConfig, TrainConfig
from trainers.record.layout import StorageLayout
from trainers.runtime.payload import TrialPayload, TrialResources


def _payload(tmp_path, name: str, **resources) -> TrialPayload:
    config = TrainConfig(method="finetune", student="tinybert", data=DataConfig(source=str(SST2)))
    return TrialPayload(config=config, key=f"key-{name}", name=name, run_id="r",
                        tracking_uri="sqlite:///x.db", resources=TrialResources(**resources),
                        layout=StorageLayout(tmp_path / "store"))


class OutsideTune(TuneReportCallback):
    """Tune's callback without the Tune session its constructor looks up (there is none here)."""

    def __init__(self) -> None:
        pass


@pytest.fixture()
def fitted(monkeypatch):
    """The trainers ``run_trial`` builds and fits; a fit makes the run's folder, as Ray Train does."""
    made: list[TorchTrainer] = []

    class Recorded(TorchTrainer):
        def fit(self):
            made.append(self)
            (Path(self.run_config.storage_path) / self.run_config.name).mkdir(parents=True)

    monkeypatch.setattr(trainable, "TorchTrainer", Recorded)
    monkeypatch.setattr(trainable, "TuneReportCallback", OutsideTune)
    return made


def test_a_named_trial_gets_its_payloads_resources_name_and_storage(tmp_path, fitted):
    payloads = {n: _payload(tmp_path, n, workers=2, cpus_per_worker=1.5, max_failures=3)
                for n in ("a", "b")}
    trainable.run_trial({"name": "b"}, payloads)
    (trainer,) = fitted
    scaling, run = trainer.scaling_config, trainer.run_config
    assert (scaling.num_workers, scaling.use_gpu, scaling.resources_per_worker) == (2, False, {"CPU": 1.5})
    assert run.name == "key-b" and run.storage_path == str(payloads["b"].layout.ray)
    assert run.failure_config.max_failures == 3 and run.checkpoint_config.num_to_keep == 1
    assert any(isinstance(c, TuneReportCallback) for c in run.callbacks)
    timing = json.loads(payloads["b"].layout.trial_time_file("key-b").read_text())
    assert timing["fit_started"] <= timing["fit_ended"] and timing["wall_s"] >= 0
    assert not payloads["a"].layout.trial_time_file("key-a").exists()


def test_a_trial_an_optuna_search_made_carries_its_payload_and_a_gpu_share(tmp_path, fitted):
    payload = _payload(tmp_path, "suggested", gpus_per_worker=0.5)
    stale = _payload(tmp_path, "planned")  # a planned trial of that name: the payload given wins
    trainable.run_trial({"name": "suggested", "payload": payload}, payloads={"suggested": stale})
    (trainer,) = fitted
    assert trainer.scaling_config.use_gpu
    assert trainer.scaling_config.resources_per_worker == {"CPU": 1.0, "GPU": 0.5}
    assert trainer.run_config.name == "key-suggested"


def test_each_worker_runs_the_trial_loop_with_the_payload(tmp_path, fitted, monkeypatch):
    from trainers.runtime import worker

    called = []
    monkeypatch.setattr(worker, "train_loop_per_worker",
                        lambda payload, entered: called.append((payload, entered)))
    payload = _payload(tmp_path, "a")
    trainable.run_trial({"name": "a"}, {"a": payload})
    fitted[0].train_loop_per_worker()  # what Ray Train calls in each worker process
    ((given, entered),) = called
    assert given is payload and entered > 0


@pytest.mark.parametrize("kernels", ["native", "portable"])
def test_the_kernel_setting_reaches_every_worker_before_it_starts(tmp_path, fitted, kernels):
    """Set as the worker's runtime environment, the pin is in place before the worker process
    imports torch: ``portable`` sets the kernel variables, ``native`` none."""
    trainable.run_trial({"name": "a"}, {"a": _payload(tmp_path, "a", kernels=kernels)})
    (trainer,) = fitted
    env_vars = trainer.run_config.worker_runtime_env["env_vars"]
    if kernels == "native":
        assert env_vars == {}
    else:
        assert env_vars["ATEN_CPU_CAPABILITY"] == "avx2" and env_vars["MKL_CBWR"] == "COMPATIBLE"
        assert env_vars["METADISTIL_KERNELS"] == "portable"
