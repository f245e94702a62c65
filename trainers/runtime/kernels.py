"""The CPU kernel path a trial's numbers depend on: the pin that fixes it across CPUs, and the
record of what a worker ran on.

On one machine a trial is bit-identical from run to run. Across CPUs of another instruction set
(AVX2 against AVX-512/AMX, Intel against AMD) the last bits of matrix products differ: ATen
picks its vectorised kernels by the CPU (``ATEN_CPU_CAPABILITY``), MKL its GEMM code
(``MKL_ENABLE_INSTRUCTIONS``; ``MKL_CBWR`` fixes it), oneDNN its ISA (``ONEDNN_MAX_CPU_ISA``). A
chaotic trial (a tiny preset from scratch at lr 1e-3) grows those bits into another model.
``resources.kernels: portable`` sets the variables below in every Ray Train worker's environment
before the worker process starts (``worker_runtime_env``, ``orchestrator/run/trainable.py``):
ATen's and oneDNN's AVX2 kernels, and MKL's ``COMPATIBLE`` branch, the only one MKL documents as
giving the same results on Intel and non-Intel CPUs (its ``AVX2`` branch is Intel's only: an AMD
CPU silently runs MKL's ``AUTO`` branch instead). ``native`` (the default) lets each CPU pick its
fastest. What the pin cannot fix: a CPU without AVX2 (recorded as not held), the number of
threads (recorded), and oneDNN's blocking by cache size (not measured across CPUs).

The variables are read once, when torch first dispatches (ATen) or first calls MKL/oneDNN: set in
a process that has already computed, they change nothing. :func:`environment` records what the
worker actually got (``env.cpu_capability`` says whether the pin held), as tags of the trial's run.

This module imports torch only inside :func:`environment`, so a driver may import it freely.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path

NATIVE, PORTABLE = "native", "portable"
SETTINGS = (NATIVE, PORTABLE)
# The setting as the worker was started with it (absent: native).
SETTING_ENV = "METADISTIL_KERNELS"
# AVX2: every x86-64 server CPU of the last ten years has it; AVX-512 and AMX machines step down.
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}
# Recorded when set: the pin's, and MKL's own ISA cap (which MKL_CBWR overrides).
KERNEL_VARS = (*PORTABLE_ENV, "MKL_ENABLE_INSTRUCTIONS")
# What the pin makes torch report (``torch.backends.cpu.get_cpu_capability()``).
PORTABLE_CAPABILITY = "AVX2"
TAG_PREFIX = "env."


def pin_env(setting: str) -> dict[str, str]:
    """The environment variables a worker starts with under ``setting``: the kernel pins and
    the setting's name for ``portable``; none for ``native``, so that its workers keep Ray's
    default environment (and its pre-started worker processes)."""
    if setting not in SETTINGS:
        raise ValueError(f"kernels must be one of {', '.join(SETTINGS)}, not {setting!r}")
    return {SETTING_ENV: PORTABLE, **PORTABLE_ENV} if setting == PORTABLE else {}


def pin(setting: str, environ: dict[str, str] | None = None) -> None:
    """Apply ``setting`` to ``environ`` (``os.environ``) in place, for a process started after it
    (a subprocess, or this one before torch computes anything)."""
    (os.environ if environ is None else environ).update(pin_env(setting))


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(teachers: Mapping[str, str] | None = None) -> dict[str, str]:
    """What this process's numbers depend on, as run tags (``env.*``): the CPU, the kernel path
    torch chose, its threads, the versions, the kernel setting and the variables it set, and the
    weights digest of each teacher (``name=digest``, ``teachers``: name → its stage-1 folder)."""
    import torch
    import transformers

    setting = os.environ.get(SETTING_ENV, NATIVE)
    kernel_vars = " ".join(f"{name}={os.environ[name]}" for name in KERNEL_VARS if name in os.environ)
    tags = {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "kernels": setting,
        "kernel_vars": kernel_vars or "none",
    }
    if setting == PORTABLE and tags["cpu_capability"] != PORTABLE_CAPABILITY:
        tags["kernels"] = f"{PORTABLE} (not held: this CPU runs {tags['cpu_capability']})"
    if teachers:
        tags["teacher_weights"] = teacher_digests(teachers)
    return {TAG_PREFIX + key: value for key, value in tags.items()}


def teacher_digests(teachers: Mapping[str, str]) -> str:
    """``minilm=3f2a…,roberta=9c1d…``: each teacher's weights digest (``weights_digest``), in the
    teachers' order; a teacher without a folder (a random one, in tests) reads ``none``."""
    from trainers.models.refs import weights_digest

    return ",".join(f"{name}={weights_digest(Path(folder)) if folder else 'none'}"
                    for name, folder in teachers.items())


def teacher_folders(names: Sequence[str], folders: Sequence[str]) -> dict[str, str]:
    """Teacher name → its stage-1 folder (``""`` where the config names none)."""
    return {name: (folders[i] if i < len(folders) else "") for i, name in enumerate(names)}
