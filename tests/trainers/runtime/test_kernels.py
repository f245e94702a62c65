"""The CPU kernel path (``trainers/runtime/kernels.py``): what a worker records about it, and the pin that
makes two CPUs of another ISA give the same bits.

The slow test trains in four fresh processes: on this CPU as it is, and "on another CPU",
emulated by the variables that make torch, MKL and oneDNN pick other kernels (ATen's scalar
``default`` path, MKL capped at SSE4.2, oneDNN at SSE4.1; how 12 emulated CPUs once gave 12
RoBERTa presets from 66.8 to 69.3). Without the pin the two differ in the last bits of a tiny
RoBERTa preset trained from scratch and of a two-teacher MetaDistil trial; with it both are
bit-identical. The pin sets those same variables, so this shows that it reaches the process
before torch computes and that nothing else that an emulated CPU changes leaks through; it cannot
show two real CPUs agreeing (Intel against AMD, AVX-512 against AVX2), which takes two machines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.conftest import ROOT, SST2
from trainers.models.refs import weights_digest
from trainers.runtime import kernels

# Another CPU as the kernels see it: ATen without vector kernels, MKL and oneDNN on older ISAs.
OTHER_CPU = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
             "ONEDNN_MAX_CPU_ISA": "SSE41"}


def test_native_sets_nothing_and_portable_pins_every_kernel_family():
    assert kernels.pin_env("native") == {}
    pinned = kernels.pin_env("portable")
    assert {"ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA"} <= set(pinned)
    assert pinned[kernels.SETTING_ENV] == "portable"
    with pytest.raises(ValueError, match="native, portable"):
        kernels.pin_env("avx512")


def test_the_record_is_what_this_process_runs_on(monkeypatch, tmp_path):
    for name in (*kernels.KERNEL_VARS, kernels.SETTING_ENV):
        monkeypatch.delenv(name, raising=False)
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "model.safetensors").write_bytes(b"weights")
    tags = kernels.environment({"minilm": str(teacher), "roberta": ""})
    assert tags["env.cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert tags["env.threads"] == str(torch.get_num_threads())
    assert tags["env.torch"] == torch.__version__ and tags["env.cpu"]
    assert (tags["env.kernels"], tags["env.kernel_vars"]) == ("native", "none")
    assert tags["env.teacher_weights"] == f"minilm={weights_digest(teacher)},roberta=none"
    assert all(key.startswith("env.") for key in tags)


def test_a_pin_the_cpu_cannot_hold_is_recorded_as_not_held(monkeypatch):
    monkeypatch.setenv(kernels.SETTING_ENV, "portable")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    assert kernels.environment()["env.kernels"] == "portable (not held: this CPU runs DEFAULT)"


SCRIPT = """
import hashlib, json, shutil, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from trainers.config import DataConfig, TrainConfig
from trainers.runtime.kernels import environment
from trainers.engine.loop import Trial, run
folder = Path(sys.argv[1])
data = DataConfig(source=sys.argv[2], train_size=128, quiz_size=16, test_size=64, max_length=24)

def train(config):
    trial = Trial.build(config, cache_dir=folder / "cache", device=torch.device("cpu"))
    result = run(trial, report=lambda e, m, f: shutil.rmtree(f), scratch_dir=folder / "scratch")
    weights = b"".join(p.detach().numpy().tobytes() for p in result.student.model.parameters())
    history = [{k: v for k, v in h.items() if k not in ("epoch_time_s", "samples_per_s")}
               for h in result.history]
    return {"weights": hashlib.sha256(weights).hexdigest(), "history": history,
            "probs": hashlib.sha256(result.test_prob_positive.tobytes()).hexdigest()}

# Stage 1's chaotic trial: the tiny RoBERTa preset from scratch at lr 1e-3; then two teachers.
preset = train(TrainConfig(method="finetune", student="roberta", data=data, epochs=2, lr=1e-3))
two = train(TrainConfig(method="metadistil", student="distilbert", teachers=("bert", "roberta"),
                        data=data, epochs=1, lr=1e-3, pilot_lr=1e-3, teacher_lr=1e-4))
print(json.dumps({"preset": preset, "two_teachers": two, "env": environment()}))
"""


def _trial_on(folder, cpu: dict[str, str], setting: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*kernels.KERNEL_VARS, kernels.SETTING_ENV)}
    env.update(cpu)
    kernels.pin(setting, env)  # as Ray sets the worker's runtime environment: over what the CPU says
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), str(SST2)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.system  # trains four small runs in fresh processes (about half a minute): not in test-fast
def test_the_portable_pin_gives_two_cpus_the_same_bits(tmp_path):
    # The four runs are independent and each computes on one thread: side by side, every core of
    # the machine works on them (one after another, they used one of CI's two).
    runs = {"native": ({}, "native"), "other": (OTHER_CPU, "native"),
            "pinned": ({}, "portable"), "pinned-other": (OTHER_CPU, "portable")}
    with ThreadPoolExecutor(len(runs)) as pool:
        done = {name: pool.submit(_trial_on, tmp_path / name, cpu, setting)
                for name, (cpu, setting) in runs.items()}
    native, other, pinned, pinned_other = (done[name].result() for name in runs)
    assert other["env"]["env.cpu_capability"] == "DEFAULT"  # the emulation took
    # Without the pin the kernel path changes the last bits of both trials.
    assert native["preset"]["weights"] != other["preset"]["weights"]
    assert native["two_teachers"]["weights"] != other["two_teachers"]["weights"]

    assert pinned["env"]["env.cpu_capability"] == kernels.PORTABLE_CAPABILITY
    assert pinned_other["env"]["env.kernels"] == "portable"
    for trial in ("preset", "two_teachers"):
        assert pinned[trial] == pinned_other[trial]  # weights, per-epoch history, test probabilities
